//! Three replicas share one cache through Redis, replaying the dev stream split across them
//! (step `i` goes to replica `i % N`, each replica on its own thread), against the same replicas
//! unshared. Needs a running `redis-server` and feature `redis`.
//!
//! `cargo run --release --features redis --example shared_replay -- --data ../shared/data/dev
//!  [--url redis://127.0.0.1:6379/] [--replicas 3] [--threshold 0.9]`
//!
//! Prints, for each deployment: hits by source and the hit rate; lookup latency p50/p99 for
//! local hits, hits answered by Redis, and misses (which include the Redis check); the stream lag
//! each replica measured; and Redis memory per shared entry.

use paracache::{Cache, Lookup, RedisOptions, Scope, SharedCache, Source};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DIM: usize = 384;

struct Data {
    texts: HashMap<u64, String>,
    raw: Vec<u8>,
    steps: Vec<u64>,
}

impl Data {
    fn load(dir: &std::path::Path) -> Result<Data, String> {
        let lines = |name: &str| -> Result<Vec<serde_json::Value>, String> {
            let f = std::fs::File::open(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
            BufReader::new(f)
                .lines()
                .map(|l| {
                    l.map_err(|e| e.to_string())
                        .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()))
                })
                .collect()
        };
        let texts = lines("texts.jsonl")?
            .into_iter()
            .filter_map(|t| Some((t["id"].as_u64()?, t["text"].as_str()?.to_string())))
            .collect();
        let steps = lines("replay.jsonl")?
            .into_iter()
            .filter_map(|s| s["text_id"].as_u64())
            .collect();
        let raw = std::fs::read(dir.join("embeddings.f32")).map_err(|e| e.to_string())?;
        Ok(Data { texts, raw, steps })
    }

    fn row(&self, id: u64) -> Vec<f32> {
        let start = id as usize * DIM * 4;
        self.raw[start..start + DIM * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// One replica's view, either shared or plain.
enum Replica {
    Plain(Cache<u64>),
    Shared(SharedCache<u64>),
}

impl Replica {
    fn lookup(&self, text: &str, v: Vec<f32>) -> Lookup<u64> {
        let embed = |_: &str| Ok::<_, std::io::Error>(v);
        let scope = Scope::global();
        match self {
            Replica::Plain(c) => c.lookup(&scope, text, embed),
            Replica::Shared(c) => c.lookup(&scope, text, embed),
        }
        .expect("valid input")
    }

    fn insert_miss(&self, miss: paracache::Miss, value: u64) {
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
    latency_ns: HashMap<&'static str, Vec<u64>>,
}

fn run_replica(replica: &Replica, data: &Data, me: usize, of: usize) -> Tally {
    let mut t = Tally::default();
    for (i, id) in data.steps.iter().enumerate().filter(|(i, _)| i % of == me) {
        let text = &data.texts[id];
        let v = data.row(*id);
        let start = Instant::now();
        let r = replica.lookup(text, v);
        let ns = start.elapsed().as_nanos() as u64;
        let kind = match &r {
            Lookup::Hit(h) => match h.source() {
                Source::Shared => "redis",
                Source::Semantic => "semantic",
                _ => "exact",
            },
            Lookup::Miss(_) => "miss",
        };
        *t.by_source.entry(kind).or_default() += 1;
        let class = match kind {
            "redis" => "hit via Redis",
            "miss" => "miss",
            _ => "local hit",
        };
        t.latency_ns.entry(class).or_default().push(ns);
        if let Lookup::Miss(m) = r {
            replica.insert_miss(m, i as u64);
        }
    }
    t
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
}

fn deploy(replicas: &[Replica], data: &Data, label: &str) {
    let n = replicas.len();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .iter()
            .enumerate()
            .map(|(me, r)| s.spawn(move || run_replica(r, data, me, n)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Tally::default();
    for t in tallies {
        for (k, v) in t.by_source {
            *total.by_source.entry(k).or_default() += v;
        }
        for (k, v) in t.latency_ns {
            total.latency_ns.entry(k).or_default().extend(v);
        }
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
        if let Some(v) = total.latency_ns.get_mut(class) {
            v.sort_unstable();
            println!(
                "  {class:>13}: n {:>5}  p50 {:>8.1} us  p99 {:>8.1} us",
                v.len(),
                pct(v, 0.5),
                pct(v, 0.99)
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

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut data_dir, mut url) = (
        PathBuf::from("../shared/data/dev"),
        "redis://127.0.0.1:6379/".to_string(),
    );
    let (mut replicas, mut threshold) = (3usize, paracache::DEFAULT_THRESHOLD);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => data_dir = PathBuf::from(val()?),
            "--url" => url = val()?,
            "--replicas" => replicas = val()?.parse().map_err(|e| format!("{e}"))?,
            "--threshold" => threshold = val()?.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let data = Data::load(&data_dir)?;
    let local = || {
        Cache::<u64>::builder(DIM)
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

    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client.get_connection().map_err(|e| format!("redis: {e}"))?;
    let namespace = format!("bench{}", std::process::id());
    let before = redis_used_memory(&mut conn);
    let shared: Vec<SharedCache<u64>> = (0..replicas)
        .map(|_| {
            SharedCache::connect(
                local(),
                RedisOptions::new(url.as_str()).namespace(&namespace),
            )
            .unwrap()
        })
        .collect();
    while shared.iter().any(|c| c.shared_stats().resyncs == 0) {
        std::thread::sleep(Duration::from_millis(10));
    }
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
