//! The shared tier's consistency windows at DEFAULT options against a stock `redis-server`
//! (`hz 10`): an idle stream, a frozen (`SIGSTOP`) server, and a server that restarts from an
//! older RDB (a rewind). Each test prints what it measured; the README's consistency table
//! quotes them (`cargo test --release -p paracache-redis -- --ignored windows --nocapture`).

use crate::redis_server::RedisServer;
use paracache::{Cache, Embedder, HashEmbedder, Lookup, Scope};
use paracache_redis::{RedisOptions, SharedCache};
use std::time::{Duration, Instant};

const DIM: usize = 256;
/// `RedisOptions::timeout`'s default: the documented bound on one call.
const TIMEOUT: Duration = Duration::from_millis(50);

/// A replica with the default options, the way an operator who reads no further would run it.
fn replica(server: &RedisServer) -> SharedCache<String> {
    let local = Cache::builder(DIM)
        .threshold(0.85)
        .time_to_live(Duration::from_secs(3600))
        .build()
        .unwrap();
    let cache = SharedCache::connect(local, RedisOptions::new(server.url())).unwrap();
    wait_until(Duration::from_secs(10), || {
        cache.shared_stats().resyncs >= 1
    });
    cache
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "condition not reached in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}

fn embed(prompt: &str) -> Vec<f32> {
    HashEmbedder::new(DIM).embed(prompt).unwrap()
}

fn put(c: &SharedCache<String>, scope: &Scope, prompt: &str, value: &str) {
    c.insert(scope, prompt, embed(prompt), value.into())
        .unwrap();
}

/// What the replica answers (its local tiers, then Redis), as a value.
fn get(c: &SharedCache<String>, scope: &Scope, prompt: &str) -> Option<String> {
    let e = HashEmbedder::new(DIM);
    match c.lookup(scope, prompt, |p| e.embed(p)).unwrap() {
        Lookup::Hit(h) => Some(h.value().clone()),
        _ => None,
    }
}

/// Whether the replica's local tiers hold the prompt (no Redis round trip).
fn held_locally(c: &SharedCache<String>, scope: &Scope, prompt: &str) -> bool {
    let e = HashEmbedder::new(DIM);
    c.local()
        .lookup(scope, prompt, |p| e.embed(p))
        .unwrap()
        .is_hit()
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn idle_replicas_at_default_options_stay_connected_and_apply_invalidations_at_once() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server), replica(&server));
    let s = Scope::named("t1");
    let prompts: Vec<String> = (0..4)
        .map(|i| format!("What does error code {i} mean?"))
        .collect();
    for p in &prompts {
        put(&a, &s, p, "an answer");
    }
    for p in &prompts {
        wait_until(Duration::from_secs(5), || held_locally(&b, &s, p));
    }
    let errors = |c: &SharedCache<String>| c.shared_stats().redis_errors;
    let (ea, eb) = (errors(&a), errors(&b));
    // Idle: every follower sits in XREAD BLOCK, which a server at hz 10 answers up to 100 ms
    // after the block ends.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(
        (errors(&a) - ea, errors(&b) - eb),
        (0, 0),
        "followers disconnected while idle: {:?} {:?}",
        a.shared_stats(),
        b.shared_stats()
    );
    assert!(a.shared_stats().connected && b.shared_stats().connected);
    // After each idle spell an invalidation on A is applied on B within 50 ms.
    let mut slowest = Duration::ZERO;
    for p in &prompts {
        std::thread::sleep(Duration::from_millis(700));
        assert!(a.invalidate(&s, p));
        let took = wait_until(Duration::from_secs(5), || !held_locally(&b, &s, p));
        slowest = slowest.max(took);
    }
    eprintln!(
        "idle: 0 follower errors in 5.5 s; invalidation applied on the other replica within {slowest:?} (slowest of {})",
        prompts.len()
    );
    assert!(
        slowest <= Duration::from_millis(50),
        "an invalidation took {slowest:?}"
    );
    assert_eq!((errors(&a) - ea, errors(&b) - eb), (0, 0));
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn calls_against_a_frozen_server_return_within_the_timeout() {
    let server = RedisServer::start();
    let (a, b) = (replica(&server), replica(&server));
    let s = Scope::named("t1");
    let stale = "Which regions are supported?";
    put(&a, &s, stale, "EU and US");
    wait_until(Duration::from_secs(5), || held_locally(&b, &s, stale));
    server.signal("STOP");
    let frozen = Instant::now();
    // Removed on A while frozen: gone there at once, kept to publish.
    let t = Instant::now();
    assert!(a.invalidate(&s, stale));
    let mut times = vec![t.elapsed()];
    assert!(!held_locally(&a, &s, stale));
    // Lookups of new prompts (each asks Redis), inserts and invalidations, for long enough to
    // span several retry_after periods (500 ms), so calls meet the server both with a pooled
    // connection and with none (where connecting alone used to take twice the timeout).
    let mut i = 0;
    while frozen.elapsed() < Duration::from_millis(3000) {
        let q = format!("A question never asked before, number {i}?");
        let t = Instant::now();
        assert_eq!(get(&b, &s, &q), None);
        times.push(t.elapsed());
        let t = Instant::now();
        put(&a, &s, &q, "local only");
        times.push(t.elapsed());
        let t = Instant::now();
        a.invalidate(&s, &q);
        times.push(t.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    // B cannot hear of it while the server is frozen: the stall's window.
    assert!(held_locally(&b, &s, stale));
    server.signal("CONT");
    let thawed = Instant::now();
    let applied = wait_until(Duration::from_secs(10), || !held_locally(&b, &s, stale));
    eprintln!(
        "frozen server: B served the entry A removed for the whole freeze ({:?}) and {applied:?} \
         after it",
        thawed - frozen
    );
    times.sort();
    let slowest = *times.last().unwrap();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "frozen server: {} calls, slowest {slowest:?}, p99 {p99:?} (timeout {TIMEOUT:?})",
        times.len()
    );
    // The bound is the timeout; twice it leaves room for a loaded 2-core machine's scheduling
    // (a call that waits out the timeout wakes late) and still fails a call that connects on
    // the call path, which takes at least two timeouts against a frozen server.
    assert!(slowest < 2 * TIMEOUT, "slowest call {slowest:?}");
    assert!(b.shared_stats().redis_errors > 0);
    // Awake again: sharing resumes.
    wait_until(Duration::from_secs(10), || {
        a.shared_stats().connected && b.shared_stats().connected
    });
    wait_until(Duration::from_secs(10), || {
        put(&a, &s, "After the freeze?", "shared again");
        get(&b, &s, "After the freeze?").is_some()
    });
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn after_an_empty_restart_an_invalidation_made_during_the_outage_reaches_every_replica() {
    let mut server = RedisServer::start();
    let (a, b) = (replica(&server), replica(&server));
    let s = Scope::named("t1");
    let stale = "What is the refund window?";
    put(&a, &s, stale, "30 days");
    wait_until(Duration::from_secs(5), || held_locally(&b, &s, stale));
    server.stop();
    let down = Instant::now();
    assert!(a.invalidate(&s, stale));
    std::thread::sleep(Duration::from_millis(1000));
    // B works local-only meanwhile, and still answers the entry A removed.
    assert_eq!(get(&b, &s, stale).as_deref(), Some("30 days"));
    server.restart();
    let restarted = Instant::now();
    let applied = wait_until(Duration::from_secs(10), || get(&b, &s, stale).is_none());
    // B reloads from the empty server (which alone drops the entry); A publishes its removal.
    wait_until(Duration::from_secs(10), || {
        a.shared_stats().pending_invalidations == 0
    });
    eprintln!(
        "restart (empty): B served the entry A removed during the outage ({:?}) and {applied:?} \
         after the restart",
        restarted - down
    );
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn after_a_rewind_no_replica_serves_an_invalidated_entry() {
    let mut server = RedisServer::start();
    let (a, b, c) = (replica(&server), replica(&server), replica(&server));
    let s = Scope::named("t1");
    let (gone, kept) = ("What is the refund window?", "Which regions are supported?");
    put(&a, &s, gone, "30 days");
    put(&a, &s, kept, "EU and US");
    for r in [&b, &c] {
        wait_until(Duration::from_secs(5), || {
            held_locally(r, &s, gone) && held_locally(r, &s, kept)
        });
    }
    server.save();
    assert!(a.invalidate(&s, gone));
    for r in [&b, &c] {
        wait_until(Duration::from_secs(5), || !held_locally(r, &s, gone));
    }
    // The server dies and comes back from the RDB saved before the invalidation.
    server.stop();
    server.restart();
    let restarted = Instant::now();
    // D starts at once, knowing nothing, and is asked from its first moment on; the live
    // replicas re-assert the removal when they reconnect, and D trusts the restarted server only
    // after a grace that covers their reconnection.
    let local = Cache::builder(DIM)
        .threshold(0.85)
        .time_to_live(Duration::from_secs(3600))
        .build()
        .unwrap();
    let d = SharedCache::connect(local, RedisOptions::new(server.url())).unwrap();
    let mut asked = 0;
    let mut reasserted_after = None;
    let mut d_loaded_at = None;
    while d.shared_stats().resyncs == 0 || restarted.elapsed() < Duration::from_secs(3) {
        assert_eq!(get(&d, &s, gone), None, "D served the removed entry");
        asked += 1;
        if d_loaded_at.is_none() && d.shared_stats().resyncs >= 1 {
            d_loaded_at = Some(restarted.elapsed());
        }
        let reasserted = [&a, &b, &c].map(|r| r.shared_stats().reasserted);
        if reasserted_after.is_none() && reasserted.iter().sum::<u64>() >= 1 {
            reasserted_after = Some(restarted.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let d_loaded = d.shared_stats();
    assert!(d_loaded.resyncs >= 1, "{d_loaded:?}");
    let reasserted_after = reasserted_after.expect("a live replica re-asserted the removal");
    // Every replica misses it, and still has the entry that was not removed.
    wait_until(Duration::from_secs(10), || {
        [&a, &b, &c].iter().all(|r| r.shared_stats().connected)
    });
    let e = replica(&server);
    for r in [&a, &b, &c, &d, &e] {
        assert_eq!(get(r, &s, gone), None);
        assert_eq!(get(r, &s, kept).as_deref(), Some("EU and US"));
    }
    // Each live replica found the rewind, whichever re-asserted first.
    let live = [&a, &b, &c].map(|r| r.shared_stats());
    assert!(live.iter().all(|s| s.rewinds >= 1), "{live:?}");
    let reasserted: u64 = live.iter().map(|s| s.reasserted).sum();
    eprintln!(
        "rewind: D (started at once) asked {asked} times over {:?}, never served the removed \
         entry; the first re-assertion came {reasserted_after:?} after the restart ({reasserted} \
         in all from A, B and C); D loaded {:?} after the restart",
        restarted.elapsed(),
        d_loaded_at
    );
}

#[test]
#[ignore = "needs redis-server (Debian package redis-server); run with --ignored"]
fn a_rewind_is_found_even_when_later_writes_carry_the_counter_past_it() {
    let mut server = RedisServer::start();
    let a = replica(&server);
    let s = Scope::named("t1");
    let gone = "What is the refund window?";
    put(&a, &s, gone, "30 days");
    server.save();
    assert!(a.invalidate(&s, gone));
    server.stop();
    server.restart();
    // Before A's follower is back (it retries every 500 ms), the bucket's counter is carried far
    // past A's count, as writes from replicas that knew nothing of the lost removal would.
    let counters: Vec<String> = server
        .keys()
        .into_iter()
        .filter(|k| k.ends_with(":n"))
        .collect();
    assert_eq!(counters.len(), 1, "{counters:?}");
    assert_eq!(
        server.command(&["INCRBY", &counters[0], "1000"]).as_deref(),
        Some(":1001")
    );
    wait_until(Duration::from_secs(10), || a.shared_stats().reasserted >= 1);
    assert!(a.shared_stats().rewinds >= 1);
    let e = replica(&server);
    assert_eq!(get(&e, &s, gone), None);
    assert_eq!(get(&a, &s, gone), None);
}
