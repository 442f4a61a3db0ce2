//! Bench runner: T threads run a mixed workload on one cache (exact repeats, paraphrases, novel
//! prompts, inserts of new entries) while capacity eviction and TTL expiry go on, and it prints
//! throughput and p50/p99/p99.9 latency per outcome, for each T. Before the stress phase it checks,
//! on one thread, that the cache's hit/miss decisions equal an exact scan's and times that scan as
//! the baseline of the same run.
//!
//! ```text
//! cargo run --release -p paracache-tools --bin stress -- --entries 10000 --threads 1,2 \
//!     --seconds 10 --mix 40,30,20,10 --ttl-secs 60 --time-scale 1
//! ```
//!
//! Results go to stdout (tools/peers.py parses them); progress goes to stderr.

use clap::Parser;
use paracache::{Cache, Lookup, MockClock, Scope, Source};
use paracache_tools::cli::List;
use paracache_tools::latency::{Latencies, percentile_us, timed};
use paracache_tools::progress::{Progress, stage};
use paracache_tools::workload::{self, CLEAR_PARAPHRASE, DIM, jitter, prompt, random_unit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const THRESHOLD: f32 = 0.90;

/// Mixed-workload stress bench of one cache: throughput and latency per outcome.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Prefilled entries, clustered 384-d (see tools/src/workload.rs). The capacity is 1.1 N: all
    /// N are live for the decision check, and once the stress phase has inserted 0.1 N more,
    /// every insert evicts.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    entries: usize,
    /// Thread counts to run each mix at, one after another.
    #[arg(long, default_value = "1,2", value_name = "T,T..")]
    threads: List<usize>,
    /// Seconds of stress per thread count and mix.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Shares of exact repeats, paraphrases, novel prompts and inserts (E,S,M,I; missing shares
    /// are 0). Several mixes separated by `/` run one after another on the same cache (e.g.
    /// 100,0,0,0/0,100,0,0/0,0,100,0 times each lookup kind alone, as tools/peers.py does).
    #[arg(long, default_value = "40,30,20,10", value_name = "E,S,M,I[/..]")]
    mix: Mixes,
    /// Entries live this many seconds of cache time (0: no TTL). Prefilled entries get ages
    /// spread over one TTL, so expiries trickle in; an exact repeat that finds its entry expired
    /// or evicted re-inserts it, as a gateway would.
    #[arg(long, default_value_t = 60, value_name = "S")]
    ttl_secs: u64,
    /// Cache time runs this many times faster than wall time during the stress phase (a mock
    /// clock).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    time_scale: f64,
    /// Queries of the decision check (a third near the threshold, a third clear paraphrases, a
    /// third novel).
    #[arg(long, default_value_t = 1_500, value_name = "Q")]
    check: usize,
    /// Write the workload (stored vectors, paraphrase and novel queries, as little-endian f32
    /// rows) to DIR for tools/peers.py and exit, so peers index the same vectors.
    #[arg(long, value_name = "DIR")]
    dump: Option<std::path::PathBuf>,
}

/// `E,S,M,I` shares, `/`-separated mixes.
#[derive(Clone, Debug)]
struct Mixes(Vec<[u32; 4]>);

impl FromStr for Mixes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mixes = s
            .split('/')
            .map(|m| {
                let shares = List::<u32>::from_str(m)?.0;
                if shares.len() > 4 || shares.iter().sum::<u32>() == 0 {
                    return Err(format!(
                        "mix {m:?}: up to four shares E,S,M,I, not all zero"
                    ));
                }
                Ok([0, 1, 2, 3].map(|k| shares.get(k).copied().unwrap_or(0)))
            })
            .collect::<Result<_, String>>()?;
        Ok(Mixes(mixes))
    }
}

/// Outcome labels, in the order of the tables.
const OUTCOMES: [&str; 4] = ["exact hit", "semantic hit", "miss", "insert"];

fn outcome<V>(r: &Lookup<V>) -> &'static str {
    match r.hit().map(|h| h.source()) {
        Some(Source::Semantic) => "semantic hit",
        // `lookup` never computes a value; only get_or_insert_with reports Computed.
        Some(Source::Computed) | None => "miss",
        Some(_) => "exact hit",
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

/// One worker's stress loop: its latencies by outcome.
fn worker(sh: &Shared, seed: u64, mix: [u32; 4], stop: &AtomicBool) -> Latencies {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut lat = Latencies::default();
    let s = Scope::global();
    let total: u32 = mix.iter().sum();
    let n = sh.data.len();
    let lookup = |lat: &mut Latencies, text: &str, v: &[f32]| {
        let (r, ns) = timed(|| sh.cache.lookup(&s, text, embed(v)).expect("valid query"));
        lat.record(outcome(&r), ns);
        r
    };
    while !stop.load(Ordering::Relaxed) {
        let pick = rng.gen_range(0..total);
        let i = rng.gen_range(0..n);
        if pick < mix[0] {
            let p = prompt(i);
            if !lookup(&mut lat, &p, &sh.data[i]).is_hit() {
                let ((), ns) = timed(|| {
                    sh.cache
                        .insert(&s, &p, sh.data[i].clone(), i)
                        .expect("valid entry");
                });
                lat.record("insert", ns);
            }
        } else if pick < mix[0] + mix[1] {
            let q = jitter(&mut rng, &sh.data[i], CLEAR_PARAPHRASE);
            lookup(&mut lat, "a paraphrase", &q);
        } else if pick < mix[0] + mix[1] + mix[2] {
            lookup(&mut lat, "something new", &sh.novel[i % sh.novel.len()]);
        } else {
            let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
            let v = jitter(&mut rng, &sh.data[i], workload::SPREAD);
            let ((), ns) = timed(|| {
                sh.cache
                    .insert(&s, &prompt(id), v, id)
                    .expect("valid entry");
            });
            lat.record("insert", ns);
        }
    }
    lat
}

/// Single-thread decision check against an exact scan over the prefilled (all live) entries, and
/// the scan's own latency as the run's baseline.
fn check(sh: &Shared, queries: usize) {
    let st = stage(format!(
        "check: exact scan of {queries} queries, then cache lookups"
    ));
    let check = workload::DecisionCheck::new(&sh.data, queries, 7, THRESHOLD);
    let report = check.run(&sh.cache);
    st.done();
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
fn dump(dir: &std::path::Path, data: &[Vec<f32>], queries: usize) -> std::io::Result<()> {
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
    let args = Args::parse();
    let invalid =
        |msg: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg + "\n").exit();
    if args.entries < workload::PER_CLUSTER {
        invalid(format!(
            "--entries must be at least {}",
            workload::PER_CLUSTER
        ));
    }
    if args.threads.contains(&0) {
        invalid("--threads: every thread count must be at least 1".into());
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        invalid(format!(
            "--seconds {}: must be a positive number",
            args.seconds
        ));
    }
    if !(args.time_scale.is_finite() && args.time_scale >= 0.0) {
        invalid(format!(
            "--time-scale {}: must be 0 or more",
            args.time_scale
        ));
    }
    let entries = args.entries;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(dir) = &args.dump {
        if let Err(e) = dump(dir, &workload::clustered(entries, 1), args.check) {
            eprintln!("stress: writing {}: {e}", dir.display());
            std::process::exit(1);
        }
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
    if args.ttl_secs > 0 {
        builder = builder.time_to_live(Duration::from_secs(args.ttl_secs));
    }
    let mut rng = StdRng::seed_from_u64(11);
    let sh = Arc::new(Shared {
        cache: builder.build().expect("valid configuration"),
        data: workload::clustered(entries, 1),
        novel: (0..4096).map(|_| random_unit(&mut rng)).collect(),
        next_id: AtomicUsize::new(entries),
    });
    // Entries arrive spread over one TTL of cache time (the oldest is one step short of expiring
    // when the check runs), so they also expire spread out: the stress phase sees a steady
    // trickle of expiries, which exact repeats then re-insert, rather than all at once.
    let step = Duration::from_secs(args.ttl_secs) / (entries + 1) as u32;
    let progress = Progress::new("prefill: inserts", sh.data.len());
    workload::fill(
        &sh.cache,
        &sh.data,
        &|| clock.advance(step),
        Some(&progress),
    );
    let prefill_s = progress.finish();
    println!(
        "prefill: {} entries, {DIM}-d, default configuration, {prefill_s:.1} s on {cores} threads; cores here: {cores}",
        sh.cache.stats().entries,
    );
    check(&sh, args.check);
    for &mix in &args.mix.0 {
        println!(
            "stress: mix exact/paraphrase/novel/insert = {mix:?}, capacity {}, ttl {} s, cache time x{}",
            entries * 11 / 10,
            args.ttl_secs,
            args.time_scale
        );
        run_mix(&sh, &clock, &args, mix);
    }
}

/// One stress table: the mix at each thread count.
fn run_mix(sh: &Arc<Shared>, clock: &MockClock, args: &Args, mix: [u32; 4]) {
    println!(
        "{:>3} {:>13} {:>9} {:>11} {:>9} {:>9} {:>9}",
        "T", "outcome", "ops", "ops/s", "p50 us", "p99 us", "p99.9 us"
    );
    for &t_count in args.threads.iter() {
        let st = stage(format!(
            "stress: mix {mix:?} on {t_count} threads for {} s",
            args.seconds
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (stop, clock, scale) = (stop.clone(), clock.clone(), args.time_scale);
            std::thread::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    let now = Instant::now();
                    clock.advance((now - last).mul_f64(scale));
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
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        stop.store(true, Ordering::Relaxed);
        let mut all = Latencies::default();
        for h in handles {
            all.merge(h.join().expect("worker"));
        }
        ticker.join().expect("clock ticker");
        st.done();
        let elapsed = start.elapsed().as_secs_f64();
        let total = all.total();
        for name in OUTCOMES {
            let lat = all.sorted(name);
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
