//! Three replicas share one cache through Redis, replaying the dev stream split across them
//! (step `i` goes to replica `i % N`, each replica on its own thread), against the same replicas
//! unshared. Needs a running `redis-server` and feature `redis`.
//!
//! `cargo run --release -p paracache-tools --features redis --bin shared_replay -- --data ../shared/data/dev
//!  [--url redis://127.0.0.1:6379/] [--replicas 3] [--threshold 0.9]`
//!
//! Prints, for each deployment: hits by source and the hit rate; lookup latency p50/p99 for
//! local hits, hits answered by Redis, and misses (which include the Redis check); the stream lag
//! each replica measured; and Redis memory per shared entry.

use clap::Parser;
use paracache::{Cache, Lookup, Scope, Source};
use paracache_redis::{RedisOptions, SharedCache};
use paracache_tools::dev_data::{DataArg, DevDir};
use paracache_tools::embeddings::DIM;
use paracache_tools::latency::{Latencies, percentile_us, timed};
use paracache_tools::progress::stage;
use paracache_tools::stream::{self, Stream};
use std::collections::HashMap;
use std::time::Duration;

/// Replicas sharing one cache through Redis against the same replicas unshared, on the dev stream.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataArg,
    /// The Redis server the shared replicas connect to.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    url: String,
    /// Replicas, each on its own thread; step i goes to replica i % N.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    replicas: u64,
    /// Similarity threshold of every replica's semantic tier.
    #[arg(long, default_value_t = paracache::DEFAULT_THRESHOLD)]
    threshold: f32,
}

/// One replica's view, either shared or plain.
enum Replica {
    Plain(Cache<usize>),
    Shared(SharedCache<usize>),
}

impl Replica {
    fn lookup(&self, text: &str, v: Vec<f32>) -> Lookup<usize> {
        let embed = |_: &str| Ok::<_, std::io::Error>(v);
        let scope = Scope::global();
        match self {
            Replica::Plain(c) => c.lookup(&scope, text, embed),
            Replica::Shared(c) => c.lookup(&scope, text, embed),
        }
        .expect("valid input")
    }

    fn insert_miss(&self, miss: paracache::Miss, value: usize) {
        match self {
            Replica::Plain(c) => c.insert_miss(miss, value),
            Replica::Shared(c) => c.insert_miss(miss, value),
        }
        .expect("valid input");
    }
}

#[derive(Default)]
struct Tally {
    by_source: HashMap<&'static str, u64>,
    latency: Latencies,
}

fn run_replica(replica: &Replica, data: &Stream, me: usize, of: usize) -> Tally {
    let mut t = Tally::default();
    for (i, step) in data.steps.iter().enumerate().filter(|(i, _)| i % of == me) {
        let id = step.text_id;
        let v = data.vector(id).to_vec();
        let (r, ns) = timed(|| replica.lookup(data.text(id), v));
        let kind = match &r {
            Lookup::Hit(h) => match h.source() {
                Source::Shared => "redis",
                Source::Semantic => "semantic",
                _ => "exact",
            },
            _ => "miss",
        };
        *t.by_source.entry(kind).or_default() += 1;
        let class = match kind {
            "redis" => "hit via Redis",
            "miss" => "miss",
            _ => "local hit",
        };
        t.latency.record(class, ns);
        if let Lookup::Miss(m) = r {
            replica.insert_miss(m, i);
        }
    }
    t
}

fn deploy(replicas: &[Replica], data: &Stream, label: &str) {
    let n = replicas.len();
    let st = stage(format!(
        "{label}: {} steps on {n} threads",
        data.steps.len()
    ));
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(me, r)| s.spawn(move || run_replica(r, data, me, n)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    st.done();
    let mut total = Tally::default();
    for t in tallies {
        for (k, v) in t.by_source {
            *total.by_source.entry(k).or_default() += v;
        }
        total.latency.merge(t.latency);
    }
    let steps = data.steps.len() as f64;
    let get = |k: &str| *total.by_source.get(k).unwrap_or(&0);
    let hits = get("exact") + get("semantic") + get("redis");
    println!("## {label}");
    println!(
        "lookups {} | local exact {} | local semantic {} | via Redis {} | misses {} | hit rate {:.1}%",
        steps,
        get("exact"),
        get("semantic"),
        get("redis"),
        get("miss"),
        100.0 * hits as f64 / steps
    );
    for class in ["local hit", "hit via Redis", "miss"] {
        let v = total.latency.sorted(class);
        if !v.is_empty() {
            println!(
                "  {class:>13}: n {:>5}  p50 {:>8.1} us  p99 {:>8.1} us",
                v.len(),
                percentile_us(v, 0.5),
                percentile_us(v, 0.99)
            );
        }
    }
}

fn redis_used_memory(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("shared_replay: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let (url, replicas, threshold) = (args.url.as_str(), args.replicas as usize, args.threshold);
    let dir = DevDir::open(&args.data.dir, &stream::FILES).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let data = Stream::load(&dir).map_err(|e| e.to_string())?;
    st.done();
    let local = || {
        Cache::<usize>::builder(DIM)
            .threshold(threshold)
            .time_to_live(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    println!(
        "{} steps over {replicas} replicas, threshold {threshold}",
        data.steps.len()
    );
    let plain: Vec<Replica> = (0..replicas).map(|_| Replica::Plain(local())).collect();
    deploy(&plain, &data, "unshared: each replica learns alone");

    let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
    let mut conn = client.get_connection().map_err(|e| format!("redis: {e}"))?;
    let namespace = format!("bench{}", std::process::id());
    let before = redis_used_memory(&mut conn);
    let shared: Vec<SharedCache<usize>> = (0..replicas)
        .map(|_| {
            SharedCache::connect(local(), RedisOptions::new(url).namespace(&namespace)).unwrap()
        })
        .collect();
    let st = stage("waiting for every replica's first sync with Redis");
    while shared.iter().any(|c| c.shared_stats().resyncs == 0) {
        std::thread::sleep(Duration::from_millis(10));
    }
    st.done();
    let as_replicas: Vec<Replica> = shared.iter().cloned().map(Replica::Shared).collect();
    deploy(&as_replicas, &data, "shared through Redis");
    std::thread::sleep(Duration::from_millis(200));
    for (i, c) in shared.iter().enumerate() {
        let s = c.shared_stats();
        println!(
            "  replica {i}: stream lag p50 {} us, p99 {} us over {} applied events; redis errors {}",
            s.lag_p50_us, s.lag_p99_us, s.applied_events, s.redis_errors
        );
    }
    let pattern = format!("{namespace}:*:e:*");
    let entries: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query(&mut conn)
        .map_err(|e| e.to_string())?;
    let after = redis_used_memory(&mut conn);
    let one: u64 = entries
        .first()
        .map(|k| {
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(k)
                .query(&mut conn)
                .unwrap_or(0)
        })
        .unwrap_or(0);
    println!(
        "Redis: {} entries, used_memory +{} bytes = {} bytes per entry (entry hash alone: {} bytes; the rest is its stream event, key-set member and counters)",
        entries.len(),
        after.saturating_sub(before),
        after.saturating_sub(before) / entries.len().max(1) as u64,
        one
    );
    // Leave nothing behind.
    let all: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query(&mut conn)
        .map_err(|e| e.to_string())?;
    for k in all {
        let _: () = redis::cmd("DEL").arg(k).query(&mut conn).unwrap_or(());
    }
    Ok(())
}
