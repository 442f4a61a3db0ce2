//! A fake OpenAI-compatible upstream for the gateway's tests and load test: it counts its calls,
//! waits a fixed delay (a model's latency), and answers `answer <n>: <last message>`, as one JSON
//! completion or as a stream of chunks; a message containing FAIL gets a 500.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The fake's state: calls so far and the delay before each answer.
pub struct Fake {
    /// Chat requests received so far.
    pub calls: AtomicUsize,
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
        delay,
    });
    let router = Router::new()
        .route("/v1/chat/completions", post(fake_chat))
        .with_state(Arc::clone(&fake));
    (router, fake)
}

async fn fake_chat(State(fake): State<Arc<Fake>>, body: String) -> Response {
    let n = fake.calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(fake.delay).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body.get("cache").is_none(),
        "the gateway's own field is not forwarded"
    );
    let text = body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if text.contains("FAIL") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"boom"}}"#,
        )
            .into_response();
    }
    let answer = format!("answer {n}: {text}");
    if body["stream"] == json!(true) {
        let (a, b) = answer.split_at(answer.len() / 2);
        let chunk = |delta: Value, finish: Value| {
            let e = json!({"id": "x", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {e}\n\n")
        };
        let events = [
            chunk(json!({"role": "assistant", "content": a}), Value::Null),
            chunk(json!({"content": b}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        return ([("content-type", "text/event-stream")], events).into_response();
    }
    let reply = json!({"id": "x", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]});
    ([("content-type", "application/json")], reply.to_string()).into_response()
}
