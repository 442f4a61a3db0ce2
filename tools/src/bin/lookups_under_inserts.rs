//! Lookup latency with and without a stream of inserts into the same scope, on real vectors: does
//! indexing new entries (the background indexer, its graph exports, rebuilds) slow the lookups
//! that run meanwhile?
//!
//! ```text
//! cargo run --release -p paracache-tools --bin lookups_under_inserts -- \
//!     --data ../shared/data/dev-large [--entries 15000] [--rates 100,1000,max] [--seconds 5] [--rounds 3]
//! ```
//!
//! The cache first stores the first `--entries` distinct texts of the replay, in stream order,
//! and settles its index (`Cache::compact`), untimed. The queries are the texts of the later
//! steps that it does not store: paraphrases of stored texts (semantic hits) and new texts
//! (misses), looked up in a loop on one thread and never inserted (aliases off, so every lookup
//! searches). Each round runs, for each rate, a quiet phase (lookups alone) and then a phase where
//! a second thread inserts texts no step uses at that rate (`max`: as fast as `insert` returns),
//! so each loaded phase has a quiet one beside it (before it, after `Cache::compact` settles what
//! the previous phase left). Latencies are pooled over the rounds. Default
//! configuration otherwise (threshold 0.90, guards and the pair check on, background indexing).

use clap::Parser;
use paracache::{Cache, Lookup, Scope, Source};
use paracache_tools::cli::Engine;
use paracache_tools::dev_data::{DataArg, DevDir};
use paracache_tools::embeddings::DIM;
use paracache_tools::latency::{Latencies, percentile_us, timed};
use paracache_tools::progress::stage;
use paracache_tools::stream::{self, Stream};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Lookup latency with and without a concurrent stream of inserts.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Distinct texts stored before measuring.
    #[arg(long, default_value_t = 15_000)]
    entries: usize,
    /// Insert rates per second of the loaded phases; `max` inserts back to back.
    #[arg(long, default_value = "100,1000,max", value_delimiter = ',')]
    rates: Vec<String>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds; each runs every rate's quiet and loaded phase.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The graph engine: links (the crate's own, default) or hnsw-rs.
    #[arg(long, default_value_t = Engine::default(), value_name = "links|hnsw-rs")]
    graph_engine: Engine,
}

/// What one rate's phases measured, pooled over the rounds.
#[derive(Default)]
struct Pair {
    quiet: Latencies,
    loaded: Latencies,
    inserted: usize,
    loaded_seconds: f64,
    /// Each insert's latency, in ns.
    insert_ns: Vec<u64>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("lookups_under_inserts: {e}");
        std::process::exit(2);
    }
}

fn parse_rate(s: &str) -> Result<Option<f64>, String> {
    match s {
        "max" => Ok(None),
        r => r
            .parse::<f64>()
            .ok()
            .filter(|r| *r > 0.0)
            .map(Some)
            .ok_or_else(|| format!("--rates: {r:?} is neither a positive number nor `max`")),
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let rates = args
        .rates
        .iter()
        .map(|r| parse_rate(r))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = DevDir::open(&args.data.dir, &stream::FILES).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let data = Stream::load(&dir).map_err(|e| e.to_string())?;
    st.done();

    // Stored texts: the first `entries` distinct ones in stream order; queries: later steps'
    // texts that are not stored; the insert pool: texts no step uses.
    let (mut stored, mut seen_at) = (Vec::new(), 0);
    let mut stored_set = HashSet::new();
    for (i, s) in data.steps.iter().enumerate() {
        if stored.len() == args.entries {
            break;
        }
        if stored_set.insert(s.text_id) {
            stored.push(s.text_id);
        }
        seen_at = i + 1;
    }
    let mut queries: Vec<usize> = Vec::new();
    let mut queried = HashSet::new();
    for s in &data.steps[seen_at..] {
        if !stored_set.contains(&s.text_id) && queried.insert(s.text_id) {
            queries.push(s.text_id);
        }
    }
    let pool = data.unused_ids();
    if queries.is_empty() || pool.is_empty() {
        return Err(format!(
            "{} queries and {} texts to insert: the data is too small for --entries {}",
            queries.len(),
            pool.len(),
            args.entries
        ));
    }

    let cache: Cache<usize> = Cache::builder(DIM)
        .max_entries(10_000_000)
        .alias_hits(false)
        .graph_engine(args.graph_engine.0)
        .build()
        .map_err(|e| e.to_string())?;
    let scope = Scope::global();
    let st = stage(format!("storing {} texts", stored.len()));
    for &id in &stored {
        cache
            .insert(&scope, data.text(id), data.vector(id).to_vec(), id)
            .map_err(|e| format!("text {id}: {e}"))?;
    }
    cache.compact();
    st.done();

    let mut pairs: Vec<Pair> = rates.iter().map(|_| Pair::default()).collect();
    let next_query = AtomicUsize::new(0);
    let next_insert = AtomicUsize::new(0);
    let lookups = |seconds: f64, into: &mut Latencies| -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < until {
            let id = queries[next_query.fetch_add(1, Ordering::Relaxed) % queries.len()];
            let vector = data.vector(id).to_vec();
            let (r, ns) =
                timed(|| cache.lookup(&scope, data.text(id), |_| Ok::<_, std::io::Error>(vector)));
            let kind = match r.map_err(|e| format!("lookup of {id}: {e}"))? {
                Lookup::Hit(h) if h.source() == Source::Exact => "exact",
                Lookup::Hit(_) => "semantic",
                _ => "miss",
            };
            into.record(kind, ns);
        }
        Ok(())
    };
    for round in 0..args.rounds {
        for (rate, pair) in rates.iter().zip(pairs.iter_mut()) {
            let st = stage(format!(
                "round {}/{}: quiet, then {} inserts/s",
                round + 1,
                args.rounds,
                rate.map_or("max".into(), |r| r.to_string())
            ));
            // The last loaded phase's backlog and any rebuild it started settle first, untimed,
            // so the quiet phase is quiet.
            cache.compact();
            lookups(args.seconds, &mut pair.quiet)?;
            let stop = AtomicBool::new(false);
            let start = Instant::now();
            let inserted = std::thread::scope(|s| {
                let writer = s.spawn(|| {
                    let mut took = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(r) = rate {
                            let due = start + Duration::from_secs_f64(took.len() as f64 / r);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                                continue;
                            }
                        }
                        // Past the end of the pool, a text is inserted again: its old slot
                        // dies and a new one is indexed, the same work for the index.
                        let id = pool[next_insert.fetch_add(1, Ordering::Relaxed) % pool.len()];
                        let vector = data.vector(id).to_vec();
                        let (r, ns) = timed(|| cache.insert(&scope, data.text(id), vector, id));
                        if r.is_ok() {
                            took.push(ns);
                        }
                    }
                    took
                });
                let measured = lookups(args.seconds, &mut pair.loaded);
                stop.store(true, Ordering::Relaxed);
                let took = writer
                    .join()
                    .map_err(|_| "the writer panicked".to_string())?;
                measured.map(|()| took)
            })?;
            pair.inserted += inserted.len();
            pair.insert_ns.extend(inserted);
            pair.loaded_seconds += start.elapsed().as_secs_f64();
            st.done();
        }
    }

    let stats = cache.stats();
    println!(
        "{} texts stored first, {} queries, {} entries at the end (index pending {}); \
         {} s per phase, {} rounds; latencies in µs",
        stored.len(),
        queries.len(),
        stats.entries,
        stats.index_pending,
        args.seconds,
        args.rounds
    );
    println!();
    println!(
        "| inserts/s (achieved) | lookups | semantic hit p50 / p99 quiet | with inserts | miss p50 / p99 quiet | with inserts | p99 ratio hits / misses | insert p50 / p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (rate, pair) in rates.iter().zip(pairs.iter_mut()) {
        let cell = |l: &mut Latencies, kind: &str| {
            let s = l.sorted(kind);
            (percentile_us(s, 0.5), percentile_us(s, 0.99))
        };
        let (qh, lh) = (
            cell(&mut pair.quiet, "semantic"),
            cell(&mut pair.loaded, "semantic"),
        );
        let (qm, lm) = (
            cell(&mut pair.quiet, "miss"),
            cell(&mut pair.loaded, "miss"),
        );
        pair.insert_ns.sort_unstable();
        let ins = &pair.insert_ns;
        println!(
            "| {} ({:.0}) | {} / {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.0} / {:.0} |",
            rate.map_or("max".into(), |r| r.to_string()),
            pair.inserted as f64 / pair.loaded_seconds.max(1e-9),
            pair.quiet.total(),
            pair.loaded.total(),
            qh.0,
            qh.1,
            lh.0,
            lh.1,
            qm.0,
            qm.1,
            lm.0,
            lm.1,
            lh.1 / qh.1.max(1e-9),
            lm.1 / qm.1.max(1e-9),
            percentile_us(ins, 0.5),
            percentile_us(ins, 0.99),
        );
    }
    Ok(())
}
