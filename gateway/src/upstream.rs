//! The OpenAI-compatible server behind the gateway, and the OpenAI error shape the gateway
//! answers its own errors in.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Where requests go on a miss, a bypass, or a path the gateway does not cache.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    /// The base URL, like `https://api.openai.com/v1`, without a trailing slash.
    base: String,
    /// `{base}/chat/completions`.
    chat_url: String,
}

/// An upstream answer the gateway passes on as it is and never caches: a non-2xx status, a 2xx
/// body it cannot cache (tool calls, several choices), or the gateway's own 502/504 when the
/// upstream could not be reached or timed out. It is also the error a leading request's
/// computation fails with, so the requests that waited for it get this answer too.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// The upstream's headers that are passed on (see [`passed_on`]).
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream answered {}", self.status)
    }
}

impl std::error::Error for Reply {}

/// An error body in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// An error response in OpenAI's shape (see [`error_body`]).
pub fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = error_body(message, kind, param, code).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl Reply {
    /// The gateway's own error in the OpenAI error shape.
    pub(crate) fn gateway_error(status: StatusCode, message: &str, code: &str) -> Self {
        let body = error_body(message, "gateway_error", None, Some(code));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Reply {
            status,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    /// Read a whole upstream response into a reply.
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = status_of(&response);
        let headers = passed_on(response.headers());
        match response.bytes().await {
            Ok(body) => Reply {
                status,
                headers,
                body,
            },
            Err(e) => transport_error(&e),
        }
    }

    /// Whether the body is a stream of server-sent events.
    pub(crate) fn is_event_stream(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

pub(crate) fn status_of(response: &reqwest::Response) -> StatusCode {
    StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// The upstream response headers a chat answer passes on to its caller: the content type,
/// `retry-after` (and `retry-after-ms`), every `x-ratelimit-*`, `x-request-id` and the
/// `openai-*` headers (processing time, version, organization).
pub(crate) fn passed_on(from: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        let n = name.as_str();
        let keep = n == "content-type"
            || n == "retry-after"
            || n == "retry-after-ms"
            || n == "x-request-id"
            || n.starts_with("x-ratelimit-")
            || n.starts_with("openai-");
        if let (true, Ok(name), Ok(value)) = (
            keep,
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The headers a message's `Connection` header names: hop-by-hop too (RFC 9110 §7.6.1).
fn named_by_connection(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Request headers that are the gateway's own controls, or that it must set itself on a chat
/// request (it reads and re-encodes the body): not forwarded on chat requests.
fn gateway_own(name: &str) -> bool {
    matches!(
        name,
        "content-type" | "accept-encoding" | "cache-control" | "pragma"
    ) || name.starts_with("x-portkey-cache")
}

fn transport_error(e: &reqwest::Error) -> Reply {
    if e.is_timeout() {
        Reply::gateway_error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream timed out",
            "upstream_timeout",
        )
    } else {
        Reply::gateway_error(
            StatusCode::BAD_GATEWAY,
            "upstream unreachable",
            "upstream_unreachable",
        )
    }
}

impl Upstream {
    /// An upstream at `base` (e.g. `http://127.0.0.1:8000/v1`). A call gives up when the
    /// upstream stays silent for `timeout`: before its answer starts, or between two pieces of
    /// a stream (a long stream that keeps coming is never cut).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let base = base.trim_end_matches('/').to_string();
        Ok(Upstream {
            client: reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .read_timeout(timeout)
                .build()?,
            chat_url: format!("{base}/chat/completions"),
            base,
        })
    }

    /// POST a chat `body`, passing on the caller's headers (credentials, organization, project,
    /// user agent, ...) except hop-by-hop ones and the gateway's own cache controls. Transport
    /// failures come back as the gateway's own 502/504 reply.
    pub(crate) async fn send(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
    ) -> Result<reqwest::Response, Reply> {
        let mut request = self
            .client
            .post(&self.chat_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(Value::Object(body.clone()).to_string());
        // The key is passed through, never stored or logged.
        let per_hop = named_by_connection(headers);
        for (name, value) in headers {
            let n = name.as_str();
            if !hop_by_hop(n) && !gateway_own(n) && !per_hop.iter().any(|p| p == n) {
                request = request.header(name.as_str(), value.as_bytes());
            }
        }
        request.send().await.map_err(|e| transport_error(&e))
    }

    /// The upstream URL for a request path: `/v1/...` maps onto the base URL (so a base of
    /// `https://host/openai/v1` serves `/v1/models` from `https://host/openai/v1/models`), any
    /// other path onto the base URL's origin.
    fn url_for(&self, path_and_query: &str) -> String {
        if let Some(rest) = path_and_query.strip_prefix("/v1")
            && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        {
            return format!("{}{rest}", self.base);
        }
        let origin_end = self
            .base
            .find("://")
            .map(|s| {
                self.base[s + 3..]
                    .find('/')
                    .map_or(self.base.len(), |p| s + 3 + p)
            })
            .unwrap_or(self.base.len());
        format!("{}{path_and_query}", &self.base[..origin_end])
    }

    /// Pass a request the gateway does not cache to the upstream as it is (method, path, query,
    /// headers but hop-by-hop ones, body streamed through, of any size) and stream its answer
    /// back as it is.
    pub(crate) async fn proxy(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Body,
    ) -> Response {
        let Ok(method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
            return Reply::gateway_error(StatusCode::BAD_REQUEST, "bad method", "bad_method")
                .into_response();
        };
        let mut request = self.client.request(method, self.url_for(path_and_query));
        let per_hop = named_by_connection(headers);
        for (name, value) in headers {
            let n = name.as_str();
            // The length is kept: the body is streamed through with the length it declared.
            if (!hop_by_hop(n) || name == header::CONTENT_LENGTH) && !per_hop.iter().any(|p| p == n)
            {
                request = request.header(name.as_str(), value.as_bytes());
            }
        }
        let bodiless = headers.get(header::CONTENT_LENGTH).is_none()
            && headers.get(header::TRANSFER_ENCODING).is_none();
        if !bodiless {
            request = request.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_error(&e).into_response(),
        };
        let status = status_of(&response);
        let mut headers = HeaderMap::new();
        let per_hop: Vec<String> = response
            .headers()
            .get_all(reqwest::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        for (name, value) in response.headers() {
            let n = name.as_str();
            if let (false, Ok(name), Ok(value)) = (
                hop_by_hop(n) || per_hop.iter().any(|p| p == n),
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(name, value);
            }
        }
        let mut out = Response::new(Body::from_stream(response.bytes_stream()));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_onto_the_base_url_or_its_origin() {
        let u = Upstream::new("https://host:8443/openai/v1/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            u.url_for("/v1/models"),
            "https://host:8443/openai/v1/models"
        );
        assert_eq!(
            u.url_for("/v1/embeddings?x=1"),
            "https://host:8443/openai/v1/embeddings?x=1"
        );
        assert_eq!(u.url_for("/api/tags"), "https://host:8443/api/tags");
        assert_eq!(u.url_for("/v10/x"), "https://host:8443/v10/x");
        let bare = Upstream::new("http://h", Duration::from_secs(1)).unwrap();
        assert_eq!(bare.url_for("/v1/models"), "http://h/models");
        assert_eq!(bare.url_for("/x"), "http://h/x");
    }
}
