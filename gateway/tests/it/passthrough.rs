//! Items 3 and 4 of issue 19: upstream headers passed through; other paths proxied.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_passes_on_retry_after_and_rate_limit_headers_uncached() {
    let (url, fake) = start(Duration::ZERO).await;
    for body in [
        chat("RATELIMIT me"),
        streamed_chat("RATELIMIT me"),
        chat("RATELIMIT me"),
    ] {
        let a = ask(&url, "k1", body).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.header("retry-after"), Some("7"));
        assert_eq!(a.header("x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(a.header("x-ratelimit-reset-requests"), Some("7s"));
        assert!(a.header("x-request-id").unwrap().starts_with("req-"));
        let e: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3, "never cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misses_and_bypasses_carry_the_upstream_request_id() {
    let (url, _) = start(Duration::ZERO).await;
    let plain = ask(&url, "k1", chat("Who answered?")).await;
    assert_eq!(plain.header("x-request-id"), Some("req-1"));
    assert_eq!(plain.header("x-ratelimit-remaining-requests"), Some("99"));
    let streamed = ask(&url, "k1", streamed_chat("Who answered the stream?")).await;
    assert_eq!(streamed.header("x-request-id"), Some("req-2"));
    let mut hot = chat("Who answered?");
    hot["temperature"] = json!(1.5);
    let bypass = ask(&url, "k1", hot).await;
    assert_eq!(bypass.header("x-request-id"), Some("req-3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_paths_are_proxied_as_they_are_and_never_cached() {
    let (url, fake) = start(Duration::ZERO).await;
    let client = reqwest::Client::new();
    let models = client
        .get(format!("{url}/v1/models"))
        .header("authorization", "Bearer k1")
        .send()
        .await
        .unwrap();
    let models: Value = serde_json::from_str(&models.text().await.unwrap()).unwrap();
    assert_eq!(models["data"][0]["id"], "fake-model");
    for _ in 0..2 {
        let r = client
            .post(format!("{url}/v1/embeddings?dims=3"))
            .header("authorization", "Bearer k1")
            .header("x-custom", "kept")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "dropped")
            .header("content-type", "application/json")
            .body(r#"{"model":"e","input":"hello"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "the upstream's status");
        assert_eq!(r.headers()["x-fake-echo"], "1", "the upstream's headers");
        assert!(r.headers().get("x-cache").is_none());
        let echo: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["uri"], "/v1/embeddings?dims=3");
        assert_eq!(echo["headers"]["authorization"], "Bearer k1");
        assert_eq!(echo["headers"]["x-custom"], "kept");
        assert!(
            echo["headers"].get("x-hop").is_none(),
            "named by Connection"
        );
        assert_eq!(echo["body"], r#"{"model":"e","input":"hello"}"#);
    }
    for (method, path) in [
        (reqwest::Method::POST, "/v1/completions"),
        (reqwest::Method::DELETE, "/v1/files/f-1"),
        (reqwest::Method::GET, "/v1/chat/completions"),
    ] {
        let r = client
            .request(method.clone(), format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        let echo: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            (echo["method"].as_str(), echo["uri"].as_str()),
            (Some(method.as_str()), Some(path))
        );
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    assert_eq!(fake.other_calls.load(Ordering::SeqCst), 5);
}
