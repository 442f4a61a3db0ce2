//! The OpenAI-compatible server behind the gateway.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Where requests go on a miss or a bypass.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    /// `{base}/chat/completions`, where base is like `https://api.openai.com/v1`.
    url: String,
}

/// An upstream answer the gateway passes on as it is and never caches: a non-2xx status, a 2xx
/// body it cannot cache (tool calls, several choices), or the gateway's own 502/504 when the
/// upstream could not be reached or timed out.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream answered {}", self.status)
    }
}

impl std::error::Error for Reply {}

impl Reply {
    /// The gateway's own error in the OpenAI error shape.
    pub(crate) fn gateway_error(status: StatusCode, message: &str) -> Self {
        let body = json!({"error": {"message": message, "type": "gateway_error"}});
        Reply {
            status,
            content_type: Some(HeaderValue::from_static("application/json")),
            body: Bytes::from(body.to_string()),
        }
    }

    /// Read a whole upstream response into a reply.
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        match response.bytes().await {
            Ok(body) => Reply {
                status,
                content_type,
                body,
            },
            Err(e) => transport_error(&e),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        if let Some(ct) = self.content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        response
    }
}

fn transport_error(e: &reqwest::Error) -> Reply {
    if e.is_timeout() {
        Reply::gateway_error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")
    } else {
        Reply::gateway_error(StatusCode::BAD_GATEWAY, "upstream unreachable")
    }
}

impl Upstream {
    /// An upstream at `base` (e.g. `http://127.0.0.1:8000/v1`). A call gives up when the
    /// upstream stays silent for `timeout`: before its answer starts, or between two pieces of
    /// a stream (a long stream that keeps coming is never cut).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Upstream {
            client: reqwest::Client::builder()
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .read_timeout(timeout)
                .build()?,
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
        })
    }

    /// POST `body`, passing on the caller's credentials. Transport failures come back as the
    /// gateway's own 502/504 reply.
    pub(crate) async fn send(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
    ) -> Result<reqwest::Response, Reply> {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(Value::Object(body.clone()).to_string());
        // The key is passed through, never stored or logged.
        for name in ["authorization", "openai-organization", "openai-project"] {
            if let Some(v) = headers.get(name) {
                request = request.header(name, v.as_bytes());
            }
        }
        request.send().await.map_err(|e| transport_error(&e))
    }
}
