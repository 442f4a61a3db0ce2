//! Soak: T threads of heavy churn (inserts far beyond capacity, TTL expiry, invalidations, scope
//! purges, lookups) for a fixed time, printing RSS and index counts at intervals. RSS must level
//! off after warm-up; every hit is checked against what it matched.
//!
//! `cargo run --release -p paracache-tools --bin soak -- --threads 16 --seconds 600 --every 30 --scopes 8 --capacity 50000`
//!
//! With few scopes each holds thousands of entries, so graphs are built, churned and compacted.
//! The table (one row every `--every` seconds) goes to stdout; stage lines go to stderr.

use clap::Parser;
use paracache::{Cache, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DIM: usize = 384;
const PROMPTS_PER_SCOPE: usize = 20_000;

/// Churn one cache from many threads for a fixed time; print RSS and index counts as it goes.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    threads: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds between table rows.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Scopes (tenants) the prompts spread over; fewer scopes hold more entries each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    scopes: u64,
    /// The cache's entry capacity.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    capacity: u64,
}

/// Resident set size in MiB, from /proc (Linux); 0 elsewhere.
fn rss_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// The vector of prompt `p` in scope `s`: deterministic, so lookups can ask for paraphrases.
fn vector(s: usize, p: usize, jitter: f32, rng: &mut StdRng) -> Vec<f32> {
    let mut r = StdRng::seed_from_u64((s * PROMPTS_PER_SCOPE + p) as u64);
    (0..DIM)
        .map(|_| r.gen_range(-1.0f32..1.0) + jitter * rng.gen_range(-1.0f32..1.0))
        .collect()
}

fn main() {
    let args = Args::parse();
    let (threads, seconds, every) = (args.threads as usize, args.seconds, args.every);
    let (n_scopes, capacity) = (args.scopes as usize, args.capacity);
    let cache: Cache<(u32, u32)> = Cache::builder(DIM)
        .max_entries(capacity)
        .time_to_live(Duration::from_secs(20))
        .threshold(0.95)
        .build()
        .expect("valid configuration");
    let scopes: Arc<Vec<Scope>> = Arc::new(
        (0..n_scopes)
            .map(|i| Scope::builder().tenant(format!("t{i}")).build())
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (cache, scopes, stop, ops) =
                (cache.clone(), scopes.clone(), stop.clone(), ops.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t as u64);
                while !stop.load(Ordering::Relaxed) {
                    let s = rng.gen_range(0..scopes.len());
                    let p = rng.gen_range(0..PROMPTS_PER_SCOPE);
                    let scope = &scopes[s];
                    match rng.gen_range(0..100) {
                        0..40 => {
                            cache
                                .insert(
                                    scope,
                                    &format!("prompt {p}"),
                                    vector(s, p, 0.0, &mut rng),
                                    (s as u32, p as u32),
                                )
                                .expect("insert");
                        }
                        40..45 => {
                            cache.invalidate(scope, &format!("prompt {p}"));
                        }
                        45 => {
                            if rng.gen_range(0..200) == 0 {
                                cache.invalidate_scope(scope);
                            }
                        }
                        _ => {
                            let text = if rng.gen_bool(0.5) {
                                format!("prompt {p}")
                            } else {
                                format!("rephrased {p}")
                            };
                            let v = vector(s, p, 0.01, &mut rng);
                            let r = cache
                                .lookup(scope, &text, |_| Ok::<_, std::io::Error>(v))
                                .expect("lookup");
                            if let Some(hit) = r.hit() {
                                let (hs, hp) = *hit.value();
                                assert_eq!(hs as usize, s, "foreign answer");
                                assert_eq!(
                                    hit.matched_prompt(),
                                    format!("prompt {hp}"),
                                    "answer of another prompt"
                                );
                            }
                        }
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    eprintln!("soak: running {threads} threads for {seconds} s; a row every {every} s");
    println!(
        "soak: {threads} threads, {seconds} s, capacity {capacity}, {n_scopes} scopes, {DIM}-d, TTL 20 s"
    );
    println!(
        "{:>6} {:>9} {:>12} {:>10} {:>10} {:>10} {:>8} {:>9}",
        "t_s", "rss_mib", "ops", "entries", "idx_live", "idx_dead", "scopes", "rebuilds"
    );
    let mut next = every;
    while start.elapsed().as_secs() < seconds {
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed().as_secs() >= next || start.elapsed().as_secs() >= seconds {
            let st = cache.stats();
            println!(
                "{:>6} {:>9.1} {:>12} {:>10} {:>10} {:>10} {:>8} {:>9}",
                start.elapsed().as_secs(),
                rss_mib(),
                ops.load(Ordering::Relaxed),
                st.entries,
                st.index_live,
                st.index_dead,
                cache.scope_count(),
                st.rebuilds
            );
            next += every;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let st = paracache_tools::progress::stage("soak: stopping the workers");
    for w in workers {
        w.join().expect("a worker found a wrong answer or panicked");
    }
    st.done();
    println!("done: {:?}", cache.stats());
}
