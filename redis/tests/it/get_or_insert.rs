//! `SharedCache::get_or_insert_with(_async)`: one computation per prompt on a replica however
//! many callers miss at once, published for the other replicas, and a repeat another replica
//! computed is answered from Redis without a computation.

use crate::redis_server::RedisServer;
use paracache::{Cache, Embedder, HashEmbedder, Scope, Source};
use paracache_redis::{RedisOptions, SharedCache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const DIM: usize = 256;
const CALLERS: usize = 16;

fn replica(url: &str) -> SharedCache<String> {
    let local = Cache::builder(DIM)
        .threshold(0.85)
        .time_to_live(Duration::from_secs(60))
        .build()
        .unwrap();
    SharedCache::connect(local, RedisOptions::new(url)).unwrap()
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `CALLERS` threads ask `cache` for `prompt` at once; each computation sleeps long enough that
/// they all miss while it runs. Returns every caller's (source, value).
fn many_callers(
    cache: &SharedCache<String>,
    prompt: &str,
    computes: &Arc<AtomicUsize>,
) -> Vec<(Source, String)> {
    let barrier = Arc::new(Barrier::new(CALLERS));
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, barrier, computes) = (cache.clone(), barrier.clone(), computes.clone());
            let prompt = prompt.to_string();
            std::thread::spawn(move || {
                let e = HashEmbedder::new(DIM);
                barrier.wait();
                let hit = cache
                    .get_or_insert_with(&Scope::named("t1"), &prompt, e.embed_fn(), || {
                        computes.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        Ok::<_, std::io::Error>("computed once".to_string())
                    })
                    .unwrap();
                (hit.source(), hit.value().clone())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn without_redis_concurrent_callers_still_compute_once() {
    // Nothing listens on port 1: the replica works local-only, single-flight included.
    let cache = replica("redis://127.0.0.1:1/");
    let computes = Arc::new(AtomicUsize::new(0));
    let got = many_callers(&cache, "What is the refund window?", &computes);
    assert_eq!(computes.load(Ordering::SeqCst), 1);
    assert!(got.iter().all(|(_, v)| v == "computed once"));
    assert_eq!(
        got.iter().filter(|(s, _)| *s == Source::Computed).count(),
        1
    );
    assert_eq!(cache.local().stats().compute_calls, 1);
    assert_eq!(cache.shared_stats().published, 0);
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn concurrent_callers_on_a_replica_compute_once_and_other_replicas_reuse_it() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server.url()), replica(&server.url()));
    wait_until(|| a.shared_stats().resyncs >= 1 && b.shared_stats().resyncs >= 1);
    let computes = Arc::new(AtomicUsize::new(0));
    let got = many_callers(&a, "What is the refund window?", &computes);
    assert_eq!(computes.load(Ordering::SeqCst), 1, "{got:?}");
    assert!(got.iter().all(|(_, v)| v == "computed once"));
    assert_eq!(
        got.iter().filter(|(s, _)| *s == Source::Computed).count(),
        1
    );
    // Published once, by the caller that computed.
    assert_eq!(a.shared_stats().published, 1);
    // Another replica: answered from Redis (or its follower), never computed.
    let e = HashEmbedder::new(DIM);
    let hit = b
        .get_or_insert_with(
            &Scope::named("t1"),
            "What is the refund window?",
            e.embed_fn(),
            || Err::<String, _>(std::io::Error::other("must not compute")),
        )
        .unwrap();
    assert!(
        matches!(hit.source(), Source::Shared | Source::Exact),
        "{:?}",
        hit.source()
    );
    assert_eq!(hit.value(), "computed once");
    // Its many callers of a paraphrase, once B's follower has the entry: semantic hits, no compute.
    wait_until(|| b.shared_stats().applied_events >= 1);
    let computes_b = Arc::new(AtomicUsize::new(0));
    let got = many_callers(&b, "what is the refund window", &computes_b);
    assert_eq!(computes_b.load(Ordering::SeqCst), 0, "{got:?}");
    // A failing computation is shared by its waiters and publishes nothing.
    let before = a.shared_stats().published;
    let err = a
        .get_or_insert_with(
            &Scope::named("t1"),
            "A question the model fails on?",
            e.embed_fn(),
            || Err::<String, _>(std::io::Error::other("model down")),
        )
        .unwrap_err();
    assert!(err.to_string().contains("model down"), "{err}");
    assert_eq!(a.shared_stats().published, before);
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn async_callers_on_a_multi_threaded_runtime_compute_once() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server.url()), replica(&server.url()));
    wait_until(|| a.shared_stats().resyncs >= 1 && b.shared_stats().resyncs >= 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let computes = Arc::new(AtomicUsize::new(0));
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (a, computes) = (a.clone(), computes.clone());
                // tokio::spawn needs the future to be Send.
                tokio::spawn(async move {
                    let e = HashEmbedder::new(DIM);
                    let hit = a
                        .get_or_insert_with_async(
                            &Scope::named("t1"),
                            "Which regions are supported?",
                            e.embed_fn(),
                            || async move {
                                computes.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Ok::<_, std::io::Error>("EU and US".to_string())
                            },
                        )
                        .await
                        .unwrap();
                    (hit.source(), hit.value().clone())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(computes.load(Ordering::SeqCst), 1, "{results:?}");
    assert!(results.iter().all(|(_, v)| v == "EU and US"));
    assert_eq!(a.shared_stats().published, 1);
    let e = HashEmbedder::new(DIM);
    let hit = rt
        .block_on(b.get_or_insert_with_async(
            &Scope::named("t1"),
            "Which regions are supported?",
            e.embed_fn(),
            || async { Err::<String, _>(std::io::Error::other("must not compute")) },
        ))
        .unwrap();
    assert_eq!(hit.value(), "EU and US");
}
