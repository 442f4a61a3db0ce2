//! Item 8 of issue 19: gateways started with `--redis` share one cache (paracache-redis's
//! `SharedCache`), here two of them on one real `redis-server`.

use super::*;
use paracache_redis::{RedisOptions, SharedCache};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};

/// A `redis-server` on a free port, killed on drop.
struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: apt-get install redis-server (Debian)");
        let redis = Redis(child, port);
        for _ in 0..500 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() {
                    return redis;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer");
    }
}

/// A gateway in front of `upstream` whose cache is shared through the Redis at `redis`.
async fn replica(upstream: &str, redis: &str) -> String {
    let local = Cache::builder(384)
        .threshold(0.85)
        .time_to_live(Duration::from_secs(3600))
        .build()
        .unwrap();
    let shared =
        SharedCache::connect(local, RedisOptions::new(redis).namespace("gw-test")).unwrap();
    let upstream = upstream::Upstream::new(upstream, Duration::from_secs(10)).unwrap();
    let embedder = Arc::new(HashEmbedder::new(384));
    let gateway = app::Gateway::new(shared, embedder, false, upstream, policy::Policy::default());
    serve(app::router(Arc::new(gateway))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
async fn two_gateways_on_one_redis_share_their_answers() {
    let redis = Redis::start();
    let redis_url = format!("redis://127.0.0.1:{}/", redis.1);
    let (router, fake) = fake::router(Duration::ZERO);
    let upstream = format!("{}/v1", serve(router).await);
    let (a, b) = (
        replica(&upstream, &redis_url).await,
        replica(&upstream, &redis_url).await,
    );
    // Give both followers time to connect.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let q = "How do I rotate my API key?";
    let first = ask(&a, "k1", chat(q)).await;
    assert_eq!(first.cache, "miss");
    let on_b = ask(&b, "k1", chat(q)).await;
    // From Redis (`shared`), or from B's own tiers once its follower has applied A's entry.
    assert!(
        ["shared", "exact"].contains(&on_b.cache.as_str()),
        "{}",
        on_b.cache
    );
    assert_eq!(content(&on_b), content(&first));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "B made no call");
    assert!(on_b.header("age").is_some());
    assert_eq!(on_b.header("x-cache-key"), first.header("x-cache-key"));
    // A rewording is a semantic hit on B once its follower has applied A's entry.
    ask(&a, "k1", chat("What are the opening hours?")).await;
    let mut reworded = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = ask(&b, "k1", chat("what are the opening hours")).await;
        if r.cache != "miss" {
            reworded = Some(r);
            break;
        }
    }
    let reworded = reworded.expect("B never matched A's entry semantically");
    assert_eq!(reworded.cache, "semantic");
    // Another key is another tenant on every replica.
    assert_eq!(ask(&b, "k2", chat(q)).await.cache, "miss");
    // A refresh on B replaces the answer for A too.
    let refreshed = ask_with(&b, "k1", &[("cache-control", "no-cache")], chat(q)).await;
    assert_eq!(refreshed.cache, "refresh");
    let mut seen = String::new();
    for _ in 0..50 {
        seen = content(&ask(&a, "k1", chat(q)).await);
        if seen == content(&refreshed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, content(&refreshed), "A serves B's refreshed answer");
    let calls = fake.calls.load(Ordering::SeqCst);
    assert!(calls <= 5, "{calls} upstream calls");
}
