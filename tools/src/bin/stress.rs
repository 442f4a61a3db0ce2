//! Bench runner: T threads run a mixed workload on one cache (exact repeats, paraphrases, novel
//! prompts, inserts of new entries) while capacity eviction and TTL expiry go on, and it prints
//! throughput and p50/p99/p99.9 latency per outcome, for each T. Before the stress phase it checks,
//! on one thread, that the cache's hit/miss decisions equal an exact scan's and times that scan as
//! the baseline of the same run.
//!
//! ```text
//! cargo run --release --example stress -- --entries 10000 --threads 1,2 --seconds 10 \
//!     --mix 40,30,20,10 --ttl-secs 60 --time-scale 1
//! ```
//!
//! - `--entries N`: prefilled entries, clustered 384-d (see benches/support/workload.rs). The
//!   capacity is 1.1 N: all N are live for the decision check, and once the stress phase has
//!   inserted 0.1 N more, every insert evicts.
//! - `--mix E,S,M,I`: shares of exact repeats, paraphrases, novel prompts and inserts. Several
//!   mixes separated by `/` run one after another on the same cache (e.g.
//!   `100,0,0,0/0,100,0,0/0,0,100,0` times each lookup kind alone, as benches/peers.py does for
//!   the peers).
//! - `--ttl-secs S` with `--time-scale X`: entries live S seconds of cache time, and cache time runs
//!   X times faster than wall time during the stress phase (a mock clock). Prefilled entries get
//!   ages spread over one TTL, so expiries trickle in steadily. An exact repeat that finds its
//!   entry expired or evicted re-inserts it, as a gateway would.
//! - `--check Q`: queries of the decision check (a third near the threshold, a third clear
//!   paraphrases, a third novel).
//! - `--dump DIR`: write the workload (stored vectors, paraphrase and novel queries, as
//!   little-endian f32 rows) for benches/peers.py and exit, so peers index the same vectors.

#[path = "../benches/support/workload.rs"]
mod workload;

use paracache::{Cache, Lookup, MockClock, Scope, Source};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use workload::{CLEAR_PARAPHRASE, DIM, jitter, percentile_us, prompt, random_unit};

const THRESHOLD: f32 = 0.90;

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> T {
    flag(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn list(name: &str, default: &str) -> Vec<usize> {
    flag(name)
        .unwrap_or_else(|| default.to_string())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

/// What one timed operation turned out to be.
#[derive(Clone, Copy)]
enum Outcome {
    Exact,
    Semantic,
    Miss,
    Insert,
}

const OUTCOMES: [(Outcome, &str); 4] = [
    (Outcome::Exact, "exact hit"),
    (Outcome::Semantic, "semantic hit"),
    (Outcome::Miss, "miss"),
    (Outcome::Insert, "insert"),
];

fn outcome<V>(r: &Lookup<V>) -> Outcome {
    match r.hit().map(|h| h.source()) {
        Some(Source::Exact | Source::Alias | Source::Shared) => Outcome::Exact,
        Some(Source::Semantic) => Outcome::Semantic,
        // `lookup` never computes a value; only get_or_insert_with reports Computed.
        Some(Source::Computed) | None => Outcome::Miss,
    }
}

struct Shared {
    cache: Cache<usize>,
    data: Vec<Vec<f32>>,
    novel: Vec<Vec<f32>>,
    next_id: AtomicUsize,
}

fn embed(v: &[f32]) -> impl FnOnce(&str) -> Result<Vec<f32>, Infallible> + '_ {
    move |_| Ok(v.to_vec())
}

/// One worker's stress loop: latencies (ns) per outcome.
fn worker(sh: &Shared, seed: u64, mix: [u32; 4], stop: &AtomicBool) -> [Vec<u64>; 4] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut lat: [Vec<u64>; 4] = Default::default();
    let s = Scope::global();
    let total: u32 = mix.iter().sum();
    let n = sh.data.len();
    while !stop.load(Ordering::Relaxed) {
        let pick = rng.gen_range(0..total.max(1));
        let i = rng.gen_range(0..n);
        if pick < mix[0] {
            let p = prompt(i);
            let t = Instant::now();
            let r = sh.cache.lookup(&s, &p, embed(&sh.data[i])).unwrap();
            lat[outcome(&r) as usize].push(t.elapsed().as_nanos() as u64);
            if !r.is_hit() {
                let t = Instant::now();
                sh.cache.insert(&s, &p, sh.data[i].clone(), i).unwrap();
                lat[Outcome::Insert as usize].push(t.elapsed().as_nanos() as u64);
            }
        } else if pick < mix[0] + mix[1] {
            let q = jitter(&mut rng, &sh.data[i], CLEAR_PARAPHRASE);
            let t = Instant::now();
            let r = sh.cache.lookup(&s, "a paraphrase", embed(&q)).unwrap();
            lat[outcome(&r) as usize].push(t.elapsed().as_nanos() as u64);
        } else if pick < mix[0] + mix[1] + mix[2] {
            let q = &sh.novel[i % sh.novel.len()];
            let t = Instant::now();
            let r = sh.cache.lookup(&s, "something new", embed(q)).unwrap();
            lat[outcome(&r) as usize].push(t.elapsed().as_nanos() as u64);
        } else {
            let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
            let v = jitter(&mut rng, &sh.data[i], workload::SPREAD);
            let t = Instant::now();
            sh.cache.insert(&s, &prompt(id), v, id).unwrap();
            lat[Outcome::Insert as usize].push(t.elapsed().as_nanos() as u64);
        }
    }
    lat
}

/// Single-thread decision check against an exact scan over the prefilled (all live) entries, and
/// the scan's own latency as the run's baseline.
fn check(sh: &Shared, queries: usize) {
    let check = workload::DecisionCheck::new(&sh.data, queries, 7, THRESHOLD);
    let report = check.run(&sh.cache);
    let (c50, s50) = (
        percentile_us(&report.lookup_ns, 0.5),
        percentile_us(&check.scan_ns, 0.5),
    );
    println!(
        "check: {queries} queries ({} within 0.02 of the threshold): decision agreement {:.4}, recall@1 on hits {:.4}",
        check.near_threshold(),
        report.agreement,
        report.recall_at_1
    );
    println!(
        "check: semantic lookup p50 {c50:.1} us p99 {:.1} us | exact scan p50 {s50:.1} us p99 {:.1} us | scan / lookup at p50 = {:.1}x",
        percentile_us(&report.lookup_ns, 0.99),
        percentile_us(&check.scan_ns, 0.99),
        s50 / c50
    );
}

/// Rows of `DIM` little-endian f32.
fn write_rows(path: &std::path::Path, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let bytes: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(path, bytes)
}

/// The stored vectors and query sets the runner itself uses, for peers to replay.
fn dump(dir: &str, data: &[Vec<f32>], queries: usize) -> std::io::Result<()> {
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(5);
    let paraphrases: Vec<Vec<f32>> = (0..queries)
        .map(|_| {
            let i = rng.gen_range(0..data.len());
            jitter(&mut rng, &data[i], CLEAR_PARAPHRASE)
        })
        .collect();
    let novel: Vec<Vec<f32>> = (0..queries).map(|_| random_unit(&mut rng)).collect();
    write_rows(&dir.join("data.f32"), data)?;
    write_rows(&dir.join("paraphrase.f32"), &paraphrases)?;
    write_rows(&dir.join("novel.f32"), &novel)?;
    println!(
        "dumped {} stored vectors and {queries}+{queries} queries to {}",
        data.len(),
        dir.display()
    );
    Ok(())
}

fn main() {
    let entries: usize = num("--entries", 10_000);
    let threads = list("--threads", "1,2");
    let seconds: f64 = num("--seconds", 10.0);
    let mixes: Vec<[u32; 4]> = flag("--mix")
        .unwrap_or_else(|| "40,30,20,10".into())
        .split('/')
        .map(|m| {
            let shares: Vec<u32> = m.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            [0, 1, 2, 3].map(|k| shares.get(k).copied().unwrap_or(0))
        })
        .collect();
    let ttl: u64 = num("--ttl-secs", 60);
    let time_scale: f64 = num("--time-scale", 1.0);
    let queries: usize = num("--check", 1_500);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    if let Some(dir) = flag("--dump") {
        dump(&dir, &workload::clustered(entries, 1), queries).expect("dump written");
        return;
    }
    let clock = MockClock::new();
    let mut builder = Cache::builder(DIM)
        .max_entries(entries as u64 * 11 / 10)
        .threshold(THRESHOLD)
        // Every paraphrase lookup shares one text and differs in its vector: aliases would turn
        // them into exact hits, and this runner measures the semantic tier.
        .alias_hits(false)
        .clock(clock.clone());
    if ttl > 0 {
        builder = builder.time_to_live(Duration::from_secs(ttl));
    }
    let mut rng = StdRng::seed_from_u64(11);
    let sh = Arc::new(Shared {
        cache: builder.build().expect("valid configuration"),
        data: workload::clustered(entries, 1),
        novel: (0..4096).map(|_| random_unit(&mut rng)).collect(),
        next_id: AtomicUsize::new(entries),
    });
    let t = Instant::now();
    // Entries arrive spread over one TTL of cache time (the oldest is one step short of expiring
    // when the check runs), so they also expire spread out: the stress phase sees a steady
    // trickle of expiries, which exact repeats then re-insert, rather than all at once.
    let step = Duration::from_secs(ttl) / (entries + 1) as u32;
    workload::fill(&sh.cache, &sh.data, &|| clock.advance(step));
    println!(
        "prefill: {} entries, {DIM}-d, default configuration, {:.1} s on {cores} threads; cores here: {cores}",
        sh.cache.stats().entries,
        t.elapsed().as_secs_f64()
    );
    check(&sh, queries);
    for mix in mixes {
        println!(
            "stress: mix exact/paraphrase/novel/insert = {mix:?}, capacity {}, ttl {ttl} s, cache time x{time_scale}",
            entries * 11 / 10
        );
        run_mix(&sh, &clock, &threads, mix, seconds, time_scale);
    }
}

/// One stress table: the mix at each thread count.
fn run_mix(
    sh: &Arc<Shared>,
    clock: &MockClock,
    threads: &[usize],
    mix: [u32; 4],
    seconds: f64,
    time_scale: f64,
) {
    println!(
        "{:>3} {:>13} {:>9} {:>11} {:>9} {:>9} {:>9}",
        "T", "outcome", "ops", "ops/s", "p50 us", "p99 us", "p99.9 us"
    );
    for &t_count in threads {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (stop, clock) = (stop.clone(), clock.clone());
            std::thread::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    clock.advance((now - last).mul_f64(time_scale));
                    last = now;
                }
            })
        };
        let start = Instant::now();
        let handles: Vec<_> = (0..t_count)
            .map(|w| {
                let (sh, stop) = (sh.clone(), stop.clone());
                std::thread::spawn(move || worker(&sh, 100 + w as u64, mix, &stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        let mut all: [Vec<u64>; 4] = Default::default();
        for h in handles {
            for (acc, part) in all.iter_mut().zip(h.join().unwrap()) {
                acc.extend(part);
            }
        }
        ticker.join().unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        let total: usize = all.iter().map(Vec::len).sum();
        for ((_, name), lat) in OUTCOMES.iter().zip(all.iter_mut()) {
            lat.sort_unstable();
            println!(
                "{t_count:>3} {name:>13} {:>9} {:>11.0} {:>9.1} {:>9.1} {:>9.1}",
                lat.len(),
                lat.len() as f64 / elapsed,
                percentile_us(lat, 0.5),
                percentile_us(lat, 0.99),
                percentile_us(lat, 0.999)
            );
        }
        let st = sh.cache.stats();
        println!(
            "{t_count:>3} {:>13} {total:>9} {:>11.0}   entries {} evicted(size) {} expired {}",
            "all",
            total as f64 / elapsed,
            st.entries,
            st.evicted_size,
            st.evicted_expired
        );
    }
}
