//! A fake OpenAI-compatible upstream for the gateway's tests and load test: it counts its calls,
//! waits a fixed delay (a model's latency), and answers `answer <n>: <last message>`, as one JSON
//! completion or as a stream of chunks, with a `usage` object (one token a word) and the
//! `x-request-id` and `x-ratelimit-*` headers OpenAI sends. A last message containing FAIL gets
//! a 500, RATELIMIT a 429 with `retry-after: 7`, TOOL an answer with a tool call.
//! `GET /v1/models` lists one model; any other path echoes the request back as JSON (method,
//! path and query, headers, body), so tests can see what the gateway passed on.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The fake's state: calls so far and the delay before each answer.
pub struct Fake {
    /// Chat requests received so far.
    pub calls: AtomicUsize,
    /// Requests to other paths received so far.
    pub other_calls: AtomicUsize,
    /// How long each answer waits before it is sent.
    pub delay: Duration,
}

/// The fake's routes (`POST /v1/chat/completions`) and its state, to read the call count from.
///
/// A test double: a body that is not a chat request, or one that still carries the gateway's own
/// `cache` field, panics the handler (and drops the connection), which fails the test using it.
pub fn router(delay: Duration) -> (Router, Arc<Fake>) {
    let fake = Arc::new(Fake {
        calls: AtomicUsize::new(0),
        other_calls: AtomicUsize::new(0),
        delay,
    });
    let router = Router::new()
        .route("/v1/chat/completions", post(fake_chat).fallback(echo))
        .route("/v1/models", get(models))
        .fallback(echo)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Arc::clone(&fake));
    (router, fake)
}

async fn models() -> Response {
    let list = json!({"object": "list", "data": [
        {"id": "fake-model", "object": "model", "created": 0, "owned_by": "paracache"}]});
    ([("content-type", "application/json")], list.to_string()).into_response()
}

async fn echo(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.other_calls.fetch_add(1, Ordering::SeqCst);
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
        .collect();
    // A large body is echoed as its length only.
    let body = if body.len() > 4096 {
        json!({"bytes": body.len()})
    } else {
        json!(String::from_utf8_lossy(&body))
    };
    let reply = json!({"method": method.as_str(), "uri": uri.to_string(), "headers": headers,
        "body": body});
    (
        StatusCode::CREATED,
        [("content-type", "application/json"), ("x-fake-echo", "1")],
        reply.to_string(),
    )
        .into_response()
}

fn words(v: &Value) -> u64 {
    v.as_str()
        .map_or(0, |s| s.split_whitespace().count() as u64)
}

async fn fake_chat(State(fake): State<Arc<Fake>>, body: String) -> Response {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(fake.delay).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body.get("cache").is_none(),
        "the gateway's own field is not forwarded"
    );
    let messages = body["messages"].as_array().unwrap();
    let text = messages.last().unwrap()["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let request_id = format!("req-{n}");
    let headers = [
        ("x-request-id", request_id.as_str()),
        ("x-ratelimit-limit-requests", "100"),
        ("x-ratelimit-remaining-requests", "99"),
    ];
    if text.contains("FAIL") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            r#"{"error":{"message":"boom"}}"#,
        )
            .into_response();
    }
    if text.contains("RATELIMIT") {
        let error = json!({"error": {"message": "Rate limit reached", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}});
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json"),
                ("retry-after", "7"),
                ("x-request-id", request_id.as_str()),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "7s"),
            ],
            error.to_string(),
        )
            .into_response();
    }
    let answer = format!("answer {n}: {text}");
    let prompt_tokens: u64 = messages.iter().map(|m| words(&m["content"])).sum();
    let completion_tokens = answer.split_whitespace().count() as u64;
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens});
    let tool = text.contains("TOOL");
    let tool_call = json!({"id": format!("call_{n}"), "type": "function",
        "function": {"name": "lookup", "arguments": "{\"q\":1}"}});
    if body["stream"] == json!(true) {
        let (a, b) = answer.split_at(answer.len() / 2);
        let chunk = |delta: Value, finish: Value| {
            let e = json!({"id": "x", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {e}\n\n")
        };
        let mut events = if tool {
            let mut call = tool_call.clone();
            call["index"] = json!(0);
            vec![
                chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
            ]
        } else {
            vec![
                chunk(json!({"role": "assistant", "content": a}), Value::Null),
                chunk(json!({"content": b}), Value::Null),
                chunk(json!({}), json!("stop")),
            ]
        };
        if body["stream_options"]["include_usage"] == json!(true) {
            let e = json!({"id": "x", "object": "chat.completion.chunk", "model": "fake",
                "choices": [], "usage": usage});
            events.push(format!("data: {e}\n\n"));
        }
        events.push("data: [DONE]\n\n".to_string());
        let mut response = (headers, events.concat()).into_response();
        response
            .headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return response;
    }
    let (message, finish) = if tool {
        (
            json!({"role": "assistant", "content": null, "tool_calls": [tool_call]}),
            "tool_calls",
        )
    } else {
        (json!({"role": "assistant", "content": answer}), "stop")
    };
    let reply = json!({"id": "x", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
    let mut response = (headers, reply.to_string()).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}
