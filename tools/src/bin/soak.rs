//! Soak: T threads of heavy churn (inserts far beyond capacity, TTL expiry, invalidations, scope
//! purges, lookups) for a fixed time, printing RSS and index counts at intervals. RSS must level
//! off after warm-up; every hit is checked against what it matched.
//!
//! `cargo run --release -p paracache-tools --bin soak -- --threads 16 --seconds 600 --every 30 --scopes 8 --capacity 50000`
//!
//! With few scopes each holds thousands of entries, so graphs are built, churned and compacted.
//! The table (one row every `--every` seconds) goes to stdout; stage lines go to stderr.
//!
//! `--history` runs the concurrent history checker instead (`paracache_tools::history`): the
//! threads log every call between two tickets for `--every` seconds, then every hit of that
//! window is judged against the log (no stale, foreign or phantom answer), the log is dropped,
//! and the next window starts on the same cache; a row per window gives RSS, calls, hits judged
//! and violations. It exits non-zero if any window had a violation.

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
    /// Check every hit against the history of calls instead of churning (see above).
    #[arg(long)]
    history: bool,
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

/// `--history`: windows of logged calls, each judged by the history checker.
fn history_soak(args: &Args) -> bool {
    use paracache_tools::history::{Workload, check, run_for};
    let w = Workload {
        scopes: args.scopes.min(u64::from(u16::MAX)) as u16,
        prompts: 64,
        dim: 32,
    };
    let cache: Cache<u64> = Cache::builder(w.dim)
        .max_entries(args.capacity)
        .threshold(0.95)
        .exact_scan_limit(64)
        .build()
        .expect("valid configuration");
    println!(
        "soak --history: {} threads, {} s, windows of {} s, capacity {}, {} scopes x {} prompts, {}-d",
        args.threads, args.seconds, args.every, args.capacity, w.scopes, w.prompts, w.dim
    );
    println!(
        "{:>6} {:>9} {:>12} {:>12} {:>11} {:>10}",
        "t_s", "rss_mib", "calls", "hits_judged", "violations", "entries"
    );
    let start = Instant::now();
    let mut total_violations = 0usize;
    // One ticket counter for the whole run; each window's threads get fresh ids, so values stay
    // unique across windows. A window judges only its own calls, so it starts from an empty
    // cache: anything an earlier window stored and this one serves is a violation.
    let clock = AtomicU64::new(0);
    let mut window = 0u64;
    while start.elapsed().as_secs() < args.seconds {
        cache.clear();
        let events = run_for(
            &cache,
            w,
            args.threads,
            window * args.threads,
            &clock,
            Duration::from_secs(args.every),
        );
        let (checked, violations) = check(&events);
        // RSS of the cache, not of this window's log.
        drop(events);
        for v in violations.iter().take(5) {
            eprintln!("violation: {}", v.what);
        }
        total_violations += violations.len();
        window += 1;
        println!(
            "{:>6} {:>9.1} {:>12} {:>12} {:>11} {:>10}",
            start.elapsed().as_secs(),
            rss_mib(),
            checked.events,
            checked.hits,
            violations.len(),
            cache.stats().entries
        );
    }
    println!("done: {total_violations} violations; {:?}", cache.stats());
    total_violations == 0
}

fn main() {
    let args = Args::parse();
    if args.history {
        if !history_soak(&args) {
            std::process::exit(1);
        }
        return;
    }
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
