//! The keying policy: which requests may be cached, under which scope, and with which text.
//!
//! - **Scope** (both tiers are partitioned by it, so nothing is ever served across it): the
//!   tenant, which is the caller's credential (the `Authorization` header, and `api-key` /
//!   `x-api-key` when sent; hashed, so no key is stored), narrowed by the `x-tenant-id` header
//!   only when [`Policy::trusted_tenant_header`] says a trusted proxy sets it; the cache
//!   namespace the request asks for (see [`crate::controls`]); the model, the system and developer messages, every other request field that can change the
//!   answer (temperature, top_p, max_tokens, stop, seed, tools, tool_choice, response_format,
//!   penalties... as canonical JSON: any field not known to be inert counts), and a hash of the
//!   conversation before its last user message.
//! - **Text**: the last user message. With the history in the scope, a follow-up question is
//!   only ever matched against follow-ups of the same conversation.
//! - **Bypass** (forwarded, never cached): temperature above the configured bound, `n` above 1,
//!   a conversation that does not end with a user message, or message content other than text.
//!   The per-request controls (`"cache": false`, `no-cache` with `no-store`) are read by
//!   [`crate::controls`].

use axum::http::HeaderMap;
use md5::{Digest, Md5};
use paracache::Scope;
use serde_json::{Map, Value};

/// Request fields that never change the answer, or that the policy accounts for elsewhere.
const INERT_FIELDS: &[&str] = &[
    "messages",
    "stream",
    "stream_options",
    "user",
    "cache",
    "metadata",
    "store",
];

/// What the policy decided for one request.
#[derive(Debug)]
pub enum Decision {
    /// Forward without touching the cache, for this reason.
    Bypass(&'static str),
    /// Look up (and on a miss, store) `text` in `scope`.
    Cache {
        /// The partition the request's answer is stored in and looked up in.
        scope: Scope,
        /// The prompt text to match: the last user message.
        text: String,
    },
}

/// The policy's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Requests sampled hotter than this are not cached: their caller asked for variety.
    pub max_temperature: f64,
    /// The embedder's model id, part of every scope (the gateway sets it from its embedder).
    pub embedding_model: String,
    /// Whether the `x-tenant-id` header is set by a trusted proxy in front of the gateway (which
    /// strips any the client sent). Only then is it read, and then it narrows the tenant within
    /// the caller's credential, never replaces it. Off by default: a client could send anything.
    pub trusted_tenant_header: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_temperature: 1.0,
            embedding_model: String::new(),
            trusted_tenant_header: false,
        }
    }
}

impl Policy {
    /// Decide for a request with these headers and this (already parsed) body, in the cache
    /// `namespace` the request asked for (if any).
    pub fn decide(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
        namespace: Option<&str>,
    ) -> Decision {
        let temperature = body
            .get("temperature")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        if temperature > self.max_temperature {
            return Decision::Bypass("temperature");
        }
        if body.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
            return Decision::Bypass("n > 1");
        }
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return Decision::Bypass("no messages");
        };
        let Some((last, earlier)) = messages.split_last() else {
            return Decision::Bypass("no messages");
        };
        if last.get("role").and_then(Value::as_str) != Some("user") {
            return Decision::Bypass("last message is not the user's");
        }
        let Some(text) = message_text(last) else {
            return Decision::Bypass("non-text content");
        };
        let mut system = String::new();
        let mut history = Md5::new();
        for m in earlier {
            let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
            if m.get("content").is_some_and(|c| !c.is_null()) && message_text(m).is_none() {
                return Decision::Bypass("non-text content");
            }
            if role == "system" || role == "developer" {
                system.push_str(&message_text(m).unwrap_or_default());
                system.push('\n');
            } else {
                // The whole message, tool calls included: any difference is another conversation.
                history.update(m.to_string().as_bytes());
            }
        }
        let params: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| !INERT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let scope = Scope::builder()
            .tenant(tenant(headers, self.trusted_tenant_header))
            .model(
                body.get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .system_prompt(system)
            .embedding_model(&self.embedding_model)
            // serde_json's map is ordered by key, so equal parameters encode equally.
            .param("request", Value::Object(params).to_string())
            .param("history", hex(&history.finalize()))
            .param("namespace", namespace.unwrap_or_default())
            .build();
        Decision::Cache { scope, text }
    }
}

/// The headers that carry a caller's credential: OpenAI's bearer token, Azure's `api-key`, and
/// the `x-api-key` other servers use.
const CREDENTIALS: &[&str] = &["authorization", "api-key", "x-api-key"];

/// The tenant's identity as the scope sees it: a hash of the caller's credential headers (a fixed
/// name for callers without one), narrowed by the `x-tenant-id` header when `trust_header` says
/// a trusted proxy sets it. The header never stands in for the credential, so a client that
/// sends another tenant's name (or another tenant's key in it) stays in its own key's partition.
pub fn tenant(headers: &HeaderMap, trust_header: bool) -> String {
    let mut h = Md5::new();
    h.update(b"paracache-gateway-tenant\0");
    let mut anonymous = true;
    for name in CREDENTIALS {
        let value = header(headers, name);
        if !value.is_empty() {
            anonymous = false;
        }
        // Length-prefixed, so no two different header sets encode the same.
        h.update((value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    }
    let narrowed = trust_header && headers.contains_key("x-tenant-id");
    if anonymous && !narrowed {
        return "anonymous".to_string();
    }
    if narrowed {
        let t = header(headers, "x-tenant-id");
        h.update(b"\0x-tenant-id\0");
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    hex(&h.finalize())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A message's text: a string, or an array of text parts joined. `None` for anything else
/// (images, audio), which the policy does not cache.
fn message_text(message: &Value) -> Option<String> {
    match message.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| {
                (p.get("type").and_then(Value::as_str) == Some("text"))
                    .then(|| p.get("text").and_then(Value::as_str))
                    .flatten()
            })
            .collect::<Option<Vec<&str>>>()
            .map(|texts| texts.join("\n")),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
