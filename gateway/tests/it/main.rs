//! The gateway against a fake OpenAI-compatible upstream: both real HTTP servers on 127.0.0.1,
//! talked to with a real client.

mod controls;
mod errors;
mod flights;
mod passthrough;
mod replicas;
mod sdk;
mod support;
mod tenancy;

use axum::Router;
use paracache::{Cache, HashEmbedder};
use paracache_gateway::{app, completion, fake, policy, upstream};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A fake upstream with `delay` and a gateway in front of it: (gateway URL, upstream).
async fn start(delay: Duration) -> (String, Arc<fake::Fake>) {
    start_with_timeout(delay, Duration::from_secs(10)).await
}

/// [`start`] with the gateway giving up on the upstream after `timeout`.
async fn start_with_timeout(delay: Duration, timeout: Duration) -> (String, Arc<fake::Fake>) {
    start_with(Arc::new(HashEmbedder::new(384)), 0.85, delay, timeout).await
}

/// A fake upstream with `delay` and a gateway with `embedder` at `threshold` in front of it.
async fn start_with(
    embedder: Arc<dyn paracache::Embedder>,
    threshold: f32,
    delay: Duration,
    timeout: Duration,
) -> (String, Arc<fake::Fake>) {
    start_full(
        embedder,
        threshold,
        delay,
        timeout,
        policy::Policy::default(),
    )
    .await
}

/// [`start`] under `policy`.
async fn start_with_policy(delay: Duration, policy: policy::Policy) -> (String, Arc<fake::Fake>) {
    let embedder = Arc::new(HashEmbedder::new(384));
    start_full(embedder, 0.85, delay, Duration::from_secs(10), policy).await
}

/// A fake upstream and a gateway in front of it, every setting given.
async fn start_full(
    embedder: Arc<dyn paracache::Embedder>,
    threshold: f32,
    delay: Duration,
    timeout: Duration,
    policy: policy::Policy,
) -> (String, Arc<fake::Fake>) {
    let (router, fake) = fake::router(delay);
    let upstream_url = serve(router).await;
    let cache = Cache::builder(embedder.dimension())
        .threshold(threshold)
        .build()
        .unwrap();
    let upstream = upstream::Upstream::new(&format!("{upstream_url}/v1"), timeout).unwrap();
    let blocks = embedder.model_id().starts_with("bert");
    let gateway = app::Gateway::new(cache, embedder, blocks, upstream, policy);
    (serve(app::router(Arc::new(gateway))).await, fake)
}

struct Answer {
    status: u16,
    cache: String,
    similarity: Option<f32>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    /// A response header as text.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn ask(url: &str, key: &str, body: Value) -> Answer {
    ask_with(url, key, &[], body).await
}

/// [`ask`] with extra request headers.
async fn ask_with(url: &str, key: &str, headers: &[(&str, &str)], body: Value) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let r = request.body(body.to_string()).send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (cache, similarity) = (
        header("x-cache").unwrap_or_default(),
        header("x-cache-similarity"),
    );
    Answer {
        status: r.status().as_u16(),
        cache,
        similarity: similarity.map(|s| s.parse().unwrap()),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "temperature": 0, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text}]})
}

/// [`chat`] asking for a stream.
fn streamed_chat(text: &str) -> Value {
    let mut body = chat(text);
    body["stream"] = json!(true);
    body
}

fn content(answer: &Answer) -> String {
    let v: Value = serde_json::from_str(&answer.body).unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The text a stream of chunks adds up to, and whether it ended with [DONE].
fn streamed_text(body: &str) -> (String, bool) {
    let mut text = String::new();
    let mut done = false;
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let e: Value = serde_json::from_str(data).unwrap();
        text.push_str(
            e["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
    }
    (text, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeat_is_an_exact_hit_without_an_upstream_call() {
    let (url, fake) = start(Duration::ZERO).await;
    let first = ask(&url, "k1", chat("How do I reset my password?")).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "miss"));
    let again = ask(&url, "k1", chat("How do I reset my password?")).await;
    assert_eq!((again.status, again.cache.as_str()), (200, "exact"));
    assert_eq!(again.similarity, Some(1.0));
    assert_eq!(content(&again), content(&first));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

/// With the sentence-embedding model, a paraphrase in other words is a semantic hit, which the
/// lexical embedder cannot see, and the guards still turn a near-identical opposite away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the all-MiniLM-L6-v2 model: run bash .ci/fetch-model (feature bert)"]
async fn with_a_real_model_a_paraphrase_in_other_words_is_a_hit_and_an_opposite_is_not() {
    let dir = support::model_dir();
    #[cfg(not(feature = "bert"))]
    panic!(
        "the model in {} needs feature bert: cargo test --release -p paracache-gateway --features bert -- --ignored",
        dir.display()
    );
    #[cfg(feature = "bert")]
    paraphrase_hit_and_opposite_miss(dir).await;
}

#[cfg(feature = "bert")]
async fn paraphrase_hit_and_opposite_miss(dir: std::path::PathBuf) {
    use paracache::Embedder;
    let model = Arc::new(paracache::BertEmbedder::from_dir(dir).unwrap());
    let (asked, paraphrase) = (
        "How do I cancel my subscription?",
        "What are the steps to cancel my subscription?",
    );
    let lexical = HashEmbedder::new(384);
    let (a, b) = (
        lexical.embed(asked).unwrap(),
        lexical.embed(paraphrase).unwrap(),
    );
    assert!(
        support::cos(&a, &b) < 0.85,
        "the lexical embedder would match these too"
    );
    let (on, off) = (
        model.embed("How do I enable dark mode?").unwrap(),
        model.embed("How do I disable dark mode?").unwrap(),
    );
    assert!(
        support::cos(&on, &off) >= 0.8,
        "only the negation guard should turn the opposite away"
    );
    let (url, fake) = start_with(model, 0.8, Duration::ZERO, Duration::from_secs(10)).await;
    let first = ask(&url, "k1", chat(asked)).await;
    let again = ask(&url, "k1", chat(paraphrase)).await;
    assert_eq!(
        (first.cache.as_str(), again.cache.as_str()),
        ("miss", "semantic")
    );
    assert_eq!(content(&again), content(&first));
    ask(&url, "k1", chat("How do I enable dark mode?")).await;
    let opposite = ask(&url, "k1", chat("How do I disable dark mode?")).await;
    assert_eq!(
        opposite.cache, "miss",
        "similarity {:?}",
        opposite.similarity
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rewording_is_a_semantic_hit() {
    let (url, fake) = start(Duration::ZERO).await;
    let first = ask(&url, "k1", chat("How do I reset my password?")).await;
    let reworded = ask(&url, "k1", chat("how do I reset my password")).await;
    assert_eq!(
        reworded.cache, "semantic",
        "similarity {:?}",
        reworded.similarity
    );
    assert!(reworded.similarity.unwrap() >= 0.85);
    assert_eq!(content(&reworded), content(&first));
    // The rewording is now an alias: answered by the exact tier, with its first similarity.
    let again = ask(&url, "k1", chat("how do I reset my password")).await;
    assert_eq!(
        (again.cache.as_str(), again.similarity),
        ("alias", reworded.similarity)
    );
    assert_eq!(content(&again), content(&first));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_tenant_another_system_prompt_or_another_history_misses() {
    let (url, fake) = start(Duration::ZERO).await;
    ask(&url, "k1", chat("What is our refund policy?")).await;
    let other_tenant = ask(&url, "k2", chat("What is our refund policy?")).await;
    assert_eq!(other_tenant.cache, "miss");
    let mut other_system = chat("What is our refund policy?");
    other_system["messages"][0]["content"] = json!("You are verbose.");
    assert_eq!(ask(&url, "k1", other_system).await.cache, "miss");
    let mut follow_up = chat("What is our refund policy?");
    let turns = follow_up["messages"].as_array_mut().unwrap();
    turns.insert(1, json!({"role": "user", "content": "I bought shoes."}));
    turns.insert(2, json!({"role": "assistant", "content": "Noted."}));
    assert_eq!(ask(&url, "k1", follow_up).await.cache, "miss");
    let mut hotter = chat("What is our refund policy?");
    hotter["temperature"] = json!(0.5);
    assert_eq!(
        ask(&url, "k1", hotter).await.cache,
        "miss",
        "sampling parameters scope too"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_miss_then_streamed_and_plain_hits() {
    let (url, fake) = start(Duration::ZERO).await;
    let body = streamed_chat("Summarize the plot of Hamlet");
    let first = ask(&url, "k1", body.clone()).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "miss"));
    let (text, done) = streamed_text(&first.body);
    assert!(done && text.starts_with("answer 1: "), "{}", first.body);
    let replay = ask(&url, "k1", body).await;
    assert_eq!(replay.cache, "exact");
    assert_eq!(
        streamed_text(&replay.body),
        (text.clone(), true),
        "same text, same shape"
    );
    let plain = ask(&url, "k1", chat("Summarize the plot of Hamlet")).await;
    assert_eq!(
        plain.cache, "exact",
        "stream and plain requests share answers"
    );
    assert_eq!(content(&plain), text);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_errors_are_passed_on_and_never_cached() {
    let (url, fake) = start(Duration::ZERO).await;
    for _ in 0..2 {
        let failed = ask(&url, "k1", chat("FAIL this one")).await;
        assert_eq!(failed.status, 500);
        assert!(failed.body.contains("boom"));
        let streamed = streamed_chat("FAIL this one");
        assert_eq!(ask(&url, "k1", streamed).await.status, 500);
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        4,
        "every attempt reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_timeout_is_a_504_and_never_cached() {
    let (url, fake) =
        start_with_timeout(Duration::from_millis(400), Duration::from_millis(100)).await;
    for _ in 0..2 {
        let slow = ask(&url, "k1", chat("Take your time")).await;
        assert_eq!((slow.status, slow.cache.as_str()), (504, "miss"));
        let streamed = streamed_chat("Take your time");
        assert_eq!(ask(&url, "k1", streamed).await.status, 504);
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        4,
        "one call per attempt, none cached"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_identical_requests_make_one_upstream_call() {
    let (url, fake) = start(Duration::from_millis(300)).await;
    let answers = futures_util::future::join_all(
        (0..10).map(|_| ask(&url, "k1", chat("Explain TCP slow start"))),
    )
    .await;
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(answers.iter().filter(|a| a.cache == "miss").count(), 1);
    let first = content(&answers[0]);
    assert!(answers.iter().all(|a| content(a) == first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_identical_streams_make_one_upstream_call() {
    let (url, fake) = start(Duration::from_millis(300)).await;
    let body = streamed_chat("Explain TCP slow start");
    let answers =
        futures_util::future::join_all((0..10).map(|_| ask(&url, "k1", body.clone()))).await;
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert_eq!(answers.iter().filter(|a| a.cache == "miss").count(), 1);
    let texts: Vec<(String, bool)> = answers.iter().map(|a| streamed_text(&a.body)).collect();
    assert!(texts.iter().all(|t| *t == texts[0] && t.1), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uncacheable_requests_bypass_the_cache() {
    let (url, fake) = start(Duration::ZERO).await;
    let mut hot = chat("Write a poem");
    hot["temperature"] = json!(1.5);
    let mut opted_out = chat("Write a poem");
    opted_out["cache"] = json!(false);
    for body in [hot.clone(), hot, opted_out.clone(), opted_out] {
        let a = ask(&url, "k1", body).await;
        assert_eq!((a.status, a.cache.as_str()), (200, "bypass"));
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
    let neither = ask_with(
        &url,
        "k1",
        &[("cache-control", "no-cache, no-store")],
        chat("Write a poem"),
    )
    .await;
    assert_eq!(neither.cache, "bypass");
    assert_eq!(neither.header("x-cache-bypass"), Some("no-cache, no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_requests_in_flight_and_saves_what_the_next_start_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.bin");
    let (router, fake) = fake::router(Duration::from_millis(300));
    let upstream_url = format!("{}/v1", serve(router).await);
    let gateway = |cache| {
        let upstream = upstream::Upstream::new(&upstream_url, Duration::from_secs(10)).unwrap();
        let policy = policy::Policy::default();
        Arc::new(app::Gateway::new(
            cache,
            Arc::new(HashEmbedder::new(384)),
            false,
            upstream,
            policy,
        ))
    };
    let builder = || Cache::builder(384).threshold(0.85);
    let (cache, loaded) = app::load_cache(builder, Some(&path)).unwrap();
    assert!(loaded.is_none(), "no snapshot yet");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(
        listener,
        gateway(cache),
        Some(path.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { ask(&url, "k1", chat("Remember me")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let answer = in_flight.await.unwrap();
    assert_eq!(
        (answer.status, answer.cache.as_str()),
        (200, "miss"),
        "finished, not cut"
    );
    let saved = server.await.unwrap().unwrap().unwrap();
    assert_eq!(saved.entries, 1);

    let (cache, loaded) = app::load_cache(builder, Some(&path)).unwrap();
    assert_eq!(loaded.unwrap().entries, 1);
    let restarted = serve(app::router(gateway(cache))).await;
    let again = ask(&restarted, "k1", chat("Remember me")).await;
    assert_eq!(again.cache, "exact");
    assert_eq!(content(&again), content(&answer));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_snapshot_of_an_older_gateway_is_not_loaded_and_the_gateway_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.bin");
    // An older gateway saved without the current completion schema.
    let old: Cache<completion::Completion> = Cache::builder(2).build().unwrap();
    let c = completion::Completion::from_response(
        &json!({"choices": [{"message": {"content": "a"}, "finish_reason": "stop"}]}),
        1,
    )
    .unwrap();
    old.insert(&paracache::Scope::global(), "q", vec![1.0, 0.0], c)
        .unwrap();
    old.save(&path).unwrap();
    let (cache, loaded) = app::load_cache(|| Cache::builder(2), Some(&path)).unwrap();
    assert!(loaded.is_none());
    assert_eq!(cache.stats().entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_metrics() {
    let (url, _) = start(Duration::ZERO).await;
    ask(&url, "k1", chat("ping")).await;
    ask(&url, "k1", chat("ping")).await;
    let get = |path: &'static str| {
        let url = url.clone();
        async move {
            reqwest::get(format!("{url}{path}"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("/health").await, "ok");
    let metrics = get("/metrics").await;
    for line in [
        "paracache_gateway_requests_total{outcome=\"miss\"} 1",
        "paracache_gateway_requests_total{outcome=\"exact\"} 1",
        "paracache_gateway_lookup_seconds_count 2",
        "paracache_gateway_upstream_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.contains("paracache_gateway_embed_seconds_count"));
    assert!(metrics.contains("paracache_gateway_upstream_saved_seconds_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_bodies_get_a_400_and_reach_nobody() {
    let (url, fake) = start(Duration::ZERO).await;
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stream_is_reassembled_from_any_split_and_only_when_complete() {
    let events = concat!(
        "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
        ": keep-alive comment\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo ü\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    )
    .as_bytes();
    for split in 1..events.len() {
        let mut a = completion::StreamAssembler::default();
        for piece in events.chunks(split) {
            a.push(piece);
        }
        let c = a.finish(7).expect("complete stream");
        assert_eq!(
            (
                c.content.as_str(),
                c.model.as_str(),
                c.finish_reason.as_str()
            ),
            ("Hello ü", "m", "stop")
        );
    }
    let mut cut = completion::StreamAssembler::default();
    cut.push(&events[..events.len() - 15]);
    assert!(cut.finish(7).is_none(), "no [DONE]: not stored");
    let mut tools = completion::StreamAssembler::default();
    tools.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"t\"}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n");
    assert!(tools.finish(7).is_none(), "tool calls are not cached");
}

#[test]
fn responses_with_tool_calls_or_several_choices_are_not_cached() {
    let one =
        json!({"model": "m", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]});
    assert_eq!(
        completion::Completion::from_response(&one, 3)
            .unwrap()
            .content,
        "hi"
    );
    let tools = json!({"choices": [{"message": {"content": null, "tool_calls": [{}]}}]});
    assert!(completion::Completion::from_response(&tools, 3).is_none());
    let two = json!({"choices": [{"message": {"content": "a"}}, {"message": {"content": "b"}}]});
    assert!(completion::Completion::from_response(&two, 3).is_none());
}

#[test]
fn the_policy_hashes_tenants_and_ignores_parameter_order() {
    use axum::http::HeaderMap;
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer sk-secret".parse().unwrap());
    let tenant = policy::tenant(&headers, false);
    assert!(!tenant.contains("secret") && tenant.len() == 32);
    headers.insert("x-tenant-id", "acme".parse().unwrap());
    assert_eq!(
        policy::tenant(&headers, false),
        tenant,
        "an untrusted tenant header is ignored"
    );
    assert_ne!(
        policy::tenant(&headers, true),
        tenant,
        "a trusted one narrows"
    );
    let p = policy::Policy::default();
    let scope_of = |body: &str| match p.decide(
        &HeaderMap::new(),
        &serde_json::from_str(body).unwrap(),
        None,
    ) {
        policy::Decision::Cache { scope, text } => (scope, text),
        policy::Decision::Bypass(r) => panic!("bypassed: {r}"),
    };
    let a = scope_of(
        r#"{"model":"m","top_p":0.5,"seed":1,"messages":[{"role":"user","content":"q"}]}"#,
    );
    let b = scope_of(
        r#"{"seed":1,"messages":[{"role":"user","content":"q"}],"top_p":0.5,"model":"m","user":"u"}"#,
    );
    assert_eq!(a, b, "key order and inert fields do not split scopes");
    let c = scope_of(
        r#"{"model":"m","top_p":0.6,"seed":1,"messages":[{"role":"user","content":"q"}]}"#,
    );
    assert_ne!(a.0, c.0);
    let parts = scope_of(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"q"}]}]}"#,
    );
    assert_eq!(parts.1, "q");
    for body in [
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#,
        r#"{"model":"m","n":2,"messages":[{"role":"user","content":"q"}]}"#,
        r#"{"model":"m","messages":[]}"#,
    ] {
        let decided = p.decide(
            &HeaderMap::new(),
            &serde_json::from_str(body).unwrap(),
            None,
        );
        assert!(matches!(decided, policy::Decision::Bypass(_)), "{body}");
    }
}
