//! Per-request cache controls, in the forms that users of other gateways already send.
//!
//! | control | effect |
//! | --- | --- |
//! | body `"cache": false` | bypass: forwarded, neither read nor stored |
//! | body `"cache": {"no-cache": true}` (LiteLLM), header `Cache-Control: no-cache`, `Cache-Control: max-age=0`, `x-portkey-cache-force-refresh: true` (Portkey) | skip the read, call the upstream, store its answer in place of the old one (`x-cache: refresh`) |
//! | body `"cache": {"no-store": true}`, header `Cache-Control: no-store` | read, but do not store a miss's answer |
//! | both of the above | bypass |
//! | body `"cache": {"s-maxage": N}`, header `Cache-Control: max-age=N` | serve only an answer younger than N seconds; an older one is refetched and replaced |
//! | body `"cache": {"ttl": N}` | the answer stored by this request ends N seconds after it was stored (then it is a miss, and replaced) |
//! | body `"cache": {"namespace": "..."}` | a separate partition of the cache, inside the caller's tenant |
//!
//! Any other field in the body's `cache` object, or a value of the wrong type, is a 400 in
//! OpenAI's error shape: a control the gateway does not know is never silently ignored. Other
//! `Cache-Control` directives are ignored, as HTTP caches do.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The fields of the body's `cache` object.
pub const CACHE_FIELDS: &[&str] = &["no-cache", "no-store", "ttl", "s-maxage", "namespace"];

/// One request's cache controls (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// `"cache": false`: neither read nor store.
    pub off: bool,
    /// Skip the read; store the fresh answer (replacing the old one).
    pub no_cache: bool,
    /// Do not store this request's answer.
    pub no_store: bool,
    /// Serve only an answer younger than this many seconds.
    pub max_age: Option<u64>,
    /// The stored answer ends this many seconds after it was stored.
    pub ttl: Option<u64>,
    /// A partition of the cache within the tenant.
    pub namespace: Option<String>,
}

impl Controls {
    /// Read the controls of a request; `Err` holds the 400's message.
    pub fn parse(headers: &HeaderMap, body: &Map<String, Value>) -> Result<Controls, String> {
        let mut c = Controls::default();
        for value in headers.get_all("cache-control") {
            let value = value
                .to_str()
                .map_err(|_| "Cache-Control is not ASCII".to_string())?;
            for directive in value.split(',').map(str::trim) {
                let lower = directive.to_ascii_lowercase();
                match lower.split_once('=') {
                    None if lower == "no-cache" => c.no_cache = true,
                    None if lower == "no-store" => c.no_store = true,
                    Some(("max-age", n)) => {
                        let n = n.trim_matches('"').parse::<u64>().map_err(|_| {
                            format!(
                                "Cache-Control max-age must be a whole number of seconds, got {n:?}"
                            )
                        })?;
                        c.tighten(n);
                    }
                    _ => {} // other directives do not apply to a request here
                }
            }
        }
        if let Some(v) = headers.get("x-portkey-cache-force-refresh") {
            match v.to_str().map(str::to_ascii_lowercase).as_deref() {
                Ok("true") => c.no_cache = true,
                Ok("false") => {}
                _ => return Err("x-portkey-cache-force-refresh must be true or false".into()),
            }
        }
        match body.get("cache") {
            None | Some(Value::Bool(true)) | Some(Value::Null) => {}
            Some(Value::Bool(false)) => c.off = true,
            Some(Value::Object(fields)) => c.body_fields(fields)?,
            Some(_) => {
                return Err("cache must be true, false, or an object of cache controls".into());
            }
        }
        Ok(c)
    }

    fn body_fields(&mut self, fields: &Map<String, Value>) -> Result<(), String> {
        for (name, value) in fields {
            let bad = |what: &str| Err(format!("cache.{name} must be {what}"));
            match (name.as_str(), value) {
                ("no-cache", Value::Bool(b)) => self.no_cache |= b,
                ("no-store", Value::Bool(b)) => self.no_store |= b,
                ("no-cache" | "no-store", _) => return bad("true or false"),
                ("ttl", v) => match v.as_u64() {
                    Some(n) if n > 0 => self.ttl = Some(n),
                    _ => return bad("a whole number of seconds above 0"),
                },
                ("s-maxage", v) => match v.as_u64() {
                    Some(n) => self.tighten(n),
                    None => return bad("a whole number of seconds"),
                },
                ("namespace", Value::String(s)) => self.namespace = Some(s.clone()),
                ("namespace", _) => return bad("a string"),
                _ => {
                    return Err(format!(
                        "unknown cache control {name:?}: the gateway knows {}",
                        CACHE_FIELDS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// A maximum age: the smallest one given wins; zero is `no-cache`.
    fn tighten(&mut self, secs: u64) {
        if secs == 0 {
            self.no_cache = true;
        }
        self.max_age = Some(self.max_age.map_or(secs, |m| m.min(secs)));
    }

    /// Why the request bypasses the cache altogether, if it does.
    pub fn bypass(&self) -> Option<&'static str> {
        if self.off {
            Some("cache: false")
        } else if self.no_cache && self.no_store {
            Some("no-cache, no-store")
        } else {
            None
        }
    }

    /// Whether a stored answer of age `age_ms` may be served to this request.
    pub fn accepts_age(&self, age_ms: u64) -> bool {
        self.max_age
            .is_none_or(|secs| age_ms < secs.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(headers: &[(&'static str, &'static str)], body: Value) -> Result<Controls, String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, v.parse().unwrap());
        }
        Controls::parse(&h, body.as_object().unwrap())
    }

    #[test]
    fn headers_and_body_fields_are_read_and_unknown_fields_refused() {
        assert_eq!(parse(&[], json!({})).unwrap(), Controls::default());
        let c = parse(&[("cache-control", "No-Cache, max-age=60")], json!({})).unwrap();
        assert!(c.no_cache && c.max_age == Some(60));
        let c = parse(&[("cache-control", "max-age=0")], json!({})).unwrap();
        assert!(c.no_cache);
        let c = parse(&[("x-portkey-cache-force-refresh", "true")], json!({})).unwrap();
        assert!(c.no_cache);
        let c = parse(
            &[("cache-control", "max-age=30")],
            json!({"cache": {"s-maxage": 10, "ttl": 600, "namespace": "eu", "no-store": true}}),
        )
        .unwrap();
        assert_eq!(
            c,
            Controls {
                no_store: true,
                max_age: Some(10),
                ttl: Some(600),
                namespace: Some("eu".into()),
                ..Controls::default()
            }
        );
        assert!(c.accepts_age(9_999) && !c.accepts_age(10_000));
        assert_eq!(
            parse(&[], json!({"cache": false})).unwrap().bypass(),
            Some("cache: false")
        );
        let both = json!({"cache": {"no-cache": true, "no-store": true}});
        assert!(parse(&[], both).unwrap().bypass().is_some());
        for bad in [
            json!({"cache": {"nocache": true}}),
            json!({"cache": {"ttl": -1}}),
            json!({"cache": {"ttl": "600"}}),
            json!({"cache": {"no-cache": "yes"}}),
            json!({"cache": {"namespace": 3}}),
            json!({"cache": "on"}),
        ] {
            assert!(parse(&[], bad.clone()).is_err(), "{bad}");
        }
        assert!(parse(&[("cache-control", "max-age=soon")], json!({})).is_err());
    }
}
