//! Item 5 of issue 19: errors in OpenAI's shape; refused prompts bypassed with a reason.

use super::*;

/// The `error` object of an OpenAI-shaped error body, with all four fields present.
fn openai_error(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap();
    let e = v["error"].clone();
    for field in ["message", "type", "param", "code"] {
        assert!(e.get(field).is_some(), "no {field} in {body}");
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_body_over_2_mib_is_a_413_in_openai_shape_and_uploads_pass() {
    let (url, fake) = start(Duration::ZERO).await;
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(app::MAX_BODY_BYTES)}]}).to_string();
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers()["content-type"], "application/json");
    let e = openai_error(&r.text().await.unwrap());
    assert_eq!(e["code"], "request_too_large");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    // Proxied paths stream bodies of any size through (file and audio uploads).
    let upload = reqwest::Client::new()
        .post(format!("{url}/v1/audio/transcriptions"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 201);
    let echo: Value = serde_json::from_str(&upload.text().await.unwrap()).unwrap();
    assert_eq!(echo["body"]["bytes"], big.len());
    assert_eq!(echo["headers"]["content-length"], big.len().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_body_without_messages_or_not_json_is_a_400() {
    let (url, fake) = start(Duration::ZERO).await;
    let missing = ask(&url, "k1", json!({"model": "m"})).await;
    assert_eq!(missing.status, 400);
    let e = openai_error(&missing.body);
    assert_eq!(
        (e["param"].as_str(), e["code"].as_str()),
        (Some("messages"), Some("missing_required_parameter"))
    );
    let wrong = ask(&url, "k1", json!({"model": "m", "messages": "hi"})).await;
    assert_eq!(wrong.status, 400);
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    openai_error(&r.text().await.unwrap());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prompts_the_cache_refuses_are_bypassed_with_a_reason_and_counted() {
    let (url, fake) = start(Duration::ZERO).await;
    let empty = ask(&url, "k1", chat("  \n ")).await;
    assert_eq!((empty.status, empty.cache.as_str()), (200, "bypass"));
    assert_eq!(empty.header("x-cache-bypass"), Some("empty prompt"));
    let long = ask(&url, "k1", chat(&"word ".repeat(300_000))).await;
    assert_eq!((long.status, long.cache.as_str()), (200, "bypass"));
    assert_eq!(long.header("x-cache-bypass"), Some("prompt too large"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = "paracache_gateway_requests_total{outcome=\"bypass\"} 2";
    assert!(metrics.contains(line), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_errors_are_in_openai_shape() {
    let (url, _) = start_with_timeout(Duration::from_millis(400), Duration::from_millis(100)).await;
    let slow = ask(&url, "k1", chat("Take your time")).await;
    assert_eq!(slow.status, 504);
    assert_eq!(openai_error(&slow.body)["code"], "upstream_timeout");
}
