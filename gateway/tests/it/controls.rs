//! Item 2 of issue 19: per-request cache controls, `Age`, and the cache-key id.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_no_cache_form_refreshes_and_the_next_plain_request_gets_the_new_answer() {
    let (url, fake) = start(Duration::ZERO).await;
    let q = "What is the status of order 7?";
    let first = ask(&url, "k1", chat(q)).await;
    assert_eq!(first.cache, "miss");
    let mut in_body = chat(q);
    in_body["cache"] = json!({"no-cache": true});
    let forms: Vec<(Vec<(&str, &str)>, Value)> = vec![
        (vec![("cache-control", "no-cache")], chat(q)),
        (vec![("cache-control", "max-age=0")], chat(q)),
        (vec![("x-portkey-cache-force-refresh", "true")], chat(q)),
        (vec![], in_body),
        (vec![("cache-control", "no-cache")], streamed_chat(q)),
    ];
    for (n, (headers, body)) in forms.into_iter().enumerate() {
        let refreshed = ask_with(&url, "k1", &headers, body.clone()).await;
        assert_eq!(refreshed.cache, "refresh", "{headers:?} {body}");
        let fresh = format!("answer {}: {q}", n + 2);
        let text = if body["stream"] == json!(true) {
            streamed_text(&refreshed.body).0
        } else {
            content(&refreshed)
        };
        assert_eq!(text, fresh);
        let next = ask(&url, "k1", chat(q)).await;
        assert_eq!((next.cache.as_str(), content(&next)), ("exact", fresh));
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_store_reads_but_does_not_store() {
    let (url, fake) = start(Duration::ZERO).await;
    let no_store = [("cache-control", "no-store")];
    let a = ask_with(&url, "k1", &no_store, chat("Not to be kept")).await;
    assert_eq!(a.cache, "miss");
    let mut in_body = chat("Not to be kept");
    in_body["cache"] = json!({"no-store": true});
    assert_eq!(ask(&url, "k1", in_body).await.cache, "miss");
    assert_eq!(ask(&url, "k1", chat("Not to be kept")).await.cache, "miss");
    // What is stored is still read.
    let b = ask_with(&url, "k1", &no_store, chat("Not to be kept")).await;
    assert_eq!(b.cache, "exact");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_age_serves_only_younger_answers_and_replaces_older_ones() {
    let (url, fake) = start(Duration::ZERO).await;
    let q = "What is the exchange rate?";
    ask(&url, "k1", chat(q)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let young_enough = ask_with(&url, "k1", &[("cache-control", "max-age=60")], chat(q)).await;
    assert_eq!(young_enough.cache, "exact");
    assert_eq!(young_enough.header("age"), Some("1"));
    let too_old = ask_with(&url, "k1", &[("cache-control", "max-age=1")], chat(q)).await;
    assert_eq!(too_old.cache, "miss");
    assert_eq!(content(&too_old), format!("answer 2: {q}"));
    let next = ask(&url, "k1", chat(q)).await;
    assert_eq!(
        (next.cache.as_str(), next.header("age")),
        ("exact", Some("0"))
    );
    assert_eq!(content(&next), format!("answer 2: {q}"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut s_maxage = chat(q);
    s_maxage["cache"] = json!({"s-maxage": 1});
    let body_form = ask(&url, "k1", s_maxage).await;
    assert_eq!(content(&body_form), format!("answer 3: {q}"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ttl_ends_the_answer_it_stored_which_is_then_replaced() {
    let (url, fake) = start(Duration::ZERO).await;
    let q = "What is the weather like?";
    let mut short = chat(q);
    short["cache"] = json!({"ttl": 1});
    assert_eq!(ask(&url, "k1", short).await.cache, "miss");
    assert_eq!(ask(&url, "k1", chat(q)).await.cache, "exact");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = ask(&url, "k1", chat(q)).await;
    assert_eq!(expired.cache, "miss");
    assert_eq!(content(&expired), format!("answer 2: {q}"));
    // Stored again without a ttl: it stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kept = ask(&url, "k1", chat(q)).await;
    assert_eq!(
        (kept.cache.as_str(), content(&kept)),
        ("exact", expired_text(q))
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

fn expired_text(q: &str) -> String {
    format!("answer 2: {q}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_is_a_partition_of_its_own() {
    let (url, fake) = start(Duration::ZERO).await;
    let with_ns = |ns: &str| {
        let mut b = chat("Which plan fits me?");
        b["cache"] = json!({"namespace": ns});
        b
    };
    assert_eq!(ask(&url, "k1", with_ns("eu")).await.cache, "miss");
    assert_eq!(ask(&url, "k1", with_ns("eu")).await.cache, "exact");
    assert_eq!(ask(&url, "k1", with_ns("us")).await.cache, "miss");
    assert_eq!(
        ask(&url, "k1", chat("Which plan fits me?")).await.cache,
        "miss"
    );
    assert_eq!(
        ask(&url, "k2", with_ns("eu")).await.cache,
        "miss",
        "inside the tenant"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_or_ill_typed_cache_controls_are_a_400() {
    let (url, fake) = start(Duration::ZERO).await;
    for cache in [
        json!({"nocache": true}),
        json!({"ttl": "600"}),
        json!({"no-store": 1}),
        json!("yes"),
    ] {
        let mut body = chat("Anything");
        body["cache"] = cache.clone();
        let a = ask(&url, "k1", body).await;
        assert_eq!(a.status, 400, "{cache}");
        let e: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(e["error"]["param"], "cache");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(e["error"]["message"].as_str().unwrap().contains("cache"));
    }
    let bad_header = ask_with(&url, "k1", &[("cache-control", "max-age=soon")], chat("x")).await;
    assert_eq!(bad_header.status, 400);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hits_carry_age_usage_and_the_same_cache_key() {
    let (url, _) = start(Duration::ZERO).await;
    let q = "How many tokens is this?";
    let miss = ask(&url, "k1", chat(q)).await;
    let key = miss.header("x-cache-key").unwrap().to_string();
    assert_eq!(key.len(), 32);
    assert!(miss.header("age").is_none());
    let hit = ask(&url, "k1", chat(q)).await;
    assert_eq!(hit.cache, "exact");
    assert_eq!(hit.header("x-cache-key"), Some(key.as_str()));
    assert_eq!(hit.header("age"), Some("0"));
    let usage = |a: &Answer| serde_json::from_str::<Value>(&a.body).unwrap()["usage"].clone();
    assert!(usage(&miss)["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage(&hit), usage(&miss));
    let other = ask(&url, "k2", chat(q)).await;
    assert_ne!(
        other.header("x-cache-key"),
        Some(key.as_str()),
        "per tenant"
    );

    // A stream stored with its usage replays the usage chunk when asked for.
    let mut body = streamed_chat("Count my tokens");
    body["stream_options"] = json!({"include_usage": true});
    let first = ask(&url, "k1", body.clone()).await;
    let replay = ask(&url, "k1", body).await;
    assert_eq!(replay.cache, "exact");
    let last_usage = |a: &Answer| {
        a.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap()["usage"].clone())
            .rfind(|u| !u.is_null())
    };
    assert!(last_usage(&first).is_some());
    assert_eq!(last_usage(&replay), last_usage(&first));
    let plain = ask(&url, "k1", chat("Count my tokens")).await;
    assert_eq!(Some(usage(&plain)), last_usage(&first));
}
