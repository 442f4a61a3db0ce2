//! Concurrent misses compute once; errors are shared and never cached; no lock is held while user
//! code runs, so embed and compute may call back into the cache.

use crate::support;
use paracache::{Cache, Error, Scope, Source};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn embed(v: [f32; 2]) -> impl FnOnce(&str) -> Result<Vec<f32>, std::io::Error> {
    move |_| Ok(v.to_vec())
}

fn run_concurrently<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (f, b) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                f(i)
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sixteen_identical_misses_compute_once() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cache.clone(), calls.clone());
    let results = run_concurrently(16, move |_| {
        c.get_or_insert_with(&Scope::global(), "same prompt", embed([1.0, 0.0]), || {
            k.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            Ok::<_, std::io::Error>("answer".to_string())
        })
        .unwrap()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|h| h.value() == "answer"));
    assert_eq!(
        results
            .iter()
            .filter(|h| h.source() == Source::Computed)
            .count(),
        1
    );
    assert_eq!(cache.stats().compute_calls, 1);
}

#[test]
fn a_paraphrase_waits_for_its_neighbours_computation() {
    let cache: Cache<String> = Cache::builder(2).threshold(0.9).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cache.clone(), calls.clone());
    let results = run_concurrently(8, move |i| {
        let v = [1.0, 0.01 * i as f32]; // all within cos 0.997 of each other
        c.get_or_insert_with(
            &Scope::global(),
            &format!("phrasing {}", char::from(b'a' + i as u8)),
            embed(v),
            || {
                k.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                Ok::<_, std::io::Error>("shared".to_string())
            },
        )
        .unwrap()
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "paraphrases in flight should coalesce"
    );
    assert!(results.iter().all(|h| h.value() == "shared"));
}

#[test]
fn other_scopes_never_coalesce() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cache.clone(), calls.clone());
    let results = run_concurrently(4, move |i| {
        c.get_or_insert_with(
            &Scope::named(format!("tenant{i}")),
            "same prompt",
            embed([1.0, 0.0]),
            || {
                k.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                Ok::<_, std::io::Error>(format!("for tenant{i}"))
            },
        )
        .unwrap()
    });
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    for (i, h) in results.iter().enumerate() {
        assert_eq!(h.value(), &format!("for tenant{i}"));
    }
}

#[test]
fn errors_reach_every_waiter_and_are_not_cached() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cache.clone(), calls.clone());
    let results = run_concurrently(8, move |_| {
        c.get_or_insert_with(&Scope::global(), "q", embed([1.0, 0.0]), || {
            k.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            Err::<String, _>(std::io::Error::other("upstream 500"))
        })
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, Error::Compute(_)) && e.to_string().contains("upstream 500"));
    }
    assert!(
        !cache
            .lookup(&Scope::global(), "q", embed([1.0, 0.0]))
            .unwrap()
            .is_hit()
    );
    let ok = cache
        .get_or_insert_with(&Scope::global(), "q", embed([1.0, 0.0]), || {
            Ok::<_, std::io::Error>("now".into())
        })
        .unwrap();
    assert_eq!(
        (ok.source(), ok.value().as_str()),
        (Source::Computed, "now")
    );
}

#[test]
fn a_panicking_leader_releases_its_followers() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, k) = (cache.clone(), calls.clone());
    let results = run_concurrently(4, move |_| {
        let (c, k) = (c.clone(), k.clone());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            c.get_or_insert_with(&Scope::global(), "q", embed([1.0, 0.0]), || {
                let n = k.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                if n == 0 {
                    panic!("first compute panics");
                }
                Ok::<_, std::io::Error>("recovered".to_string())
            })
        }))
    });
    let ok: Vec<_> = results
        .into_iter()
        .filter_map(|r| r.ok())
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ok.len(), 3, "the three followers got an answer");
    assert!(ok.iter().all(|h| h.value() == "recovered"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one retry after the panic, shared by the rest"
    );
}

#[test]
fn embed_and_compute_may_call_back_into_the_cache() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let s = Scope::global();
    let inner = cache.clone();
    let hit = cache
        .get_or_insert_with(
            &s,
            "outer",
            |_| {
                // Re-entrant lookup and insert from inside embed.
                let _ = inner.lookup(&Scope::named("x"), "other", embed([0.0, 1.0]));
                inner
                    .insert(&Scope::named("x"), "side", vec![0.0, 1.0], "side".into())
                    .unwrap();
                Ok::<_, std::io::Error>(vec![1.0, 0.0])
            },
            || {
                // ...and a nested get_or_insert_with of another key from inside compute.
                let nested = inner
                    .get_or_insert_with(&s, "nested", embed([0.0, 1.0]), || {
                        Ok::<_, std::io::Error>("n".into())
                    })
                    .unwrap();
                inner.invalidate(&Scope::named("x"), "side");
                Ok::<_, std::io::Error>(format!("outer+{}", nested.value()))
            },
        )
        .unwrap();
    assert_eq!(hit.value(), "outer+n");
    assert!(cache.lookup(&s, "nested", support::never).unwrap().is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_misses_compute_once_on_a_multithreaded_runtime() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (c, k) = (cache.clone(), calls.clone());
            // tokio::spawn requires the future to be Send.
            tokio::spawn(async move {
                c.get_or_insert_with_async(
                    &Scope::global(),
                    "q",
                    embed([1.0, 0.0]),
                    || async move {
                        k.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, std::io::Error>("model says hi".to_string())
                    },
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().value(), "model says hi");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_async_leader_hands_over() {
    let cache: Cache<String> = Cache::builder(2).build().unwrap();
    let c = cache.clone();
    let leader = tokio::spawn(async move {
        c.get_or_insert_with_async(&Scope::global(), "q", embed([1.0, 0.0]), || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, std::io::Error>("never".to_string())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = cache.clone();
    let follower = tokio::spawn(async move {
        c.get_or_insert_with_async(&Scope::global(), "q", embed([1.0, 0.0]), || async {
            Ok::<_, std::io::Error>("second".to_string())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let got = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follower hung")
        .unwrap();
    assert_eq!(got.unwrap().value(), "second");
}
