//! Measures graph search cost and hit/miss agreement with an exact scan across search parameters,
//! on clustered synthetic 384-d vectors. Evidence for the defaults of `CacheBuilder::hnsw` and
//! `adaptive_search`. The index is built once per M; beam widths are then set on the running
//! cache, so every row of one M searches the same graph.
//!
//! `cargo run --release -p paracache-tools --bin tune_search -- [N] [M,M..] [EF,EF..]`
//!
//! A build takes minutes at 100k entries (207 s at M 16 on 2 cores): progress goes to stderr,
//! the table to stdout.

use clap::Parser;
use paracache::Cache;
use paracache_tools::cli::List;
use paracache_tools::latency::percentile_us;
use paracache_tools::progress::{Progress, stage};
use paracache_tools::workload::{self, DIM};

/// Graph search cost and decision agreement with an exact scan, per HNSW M and beam width.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Entries in the index (clustered 384-d vectors).
    #[arg(default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(10..)
    )]
    n: u64,
    /// HNSW M values (links per node): one graph build each.
    #[arg(default_value = "8,16", value_name = "M,M..")]
    ms: List<usize>,
    /// Beam widths (ef) to search each graph with, each without and with adaptive search.
    #[arg(default_value = "8,16,32,64", value_name = "EF,EF..")]
    efs: List<usize>,
}

fn main() {
    let args = Args::parse();
    let n = args.n as usize;
    let threshold = 0.9f32;
    let data = workload::clustered(n, 3);
    // Queries: a third near-threshold paraphrases, a third clear paraphrases, a third novel.
    let st = stage("exact scan of the 1500 check queries");
    let check = workload::DecisionCheck::new(&data, 1500, 4, threshold);
    st.done();
    println!(
        "n={n} queries={} hits_expected={} near_threshold={}",
        check.len(),
        check.expected_hits(),
        check.near_threshold()
    );
    println!(
        "{:>3} {:>5} {:>8} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "M", "ef", "adaptive", "build_s", "mean_us", "p99_us", "agree", "R@1"
    );
    for &m in args.ms.iter() {
        // One build per M: the beam width changes on the running cache (`set_search`).
        let progress = Progress::new(format!("build M={m}: inserts"), data.len());
        let cache: Cache<usize> = Cache::builder(DIM)
            .max_entries(n as u64 * 2)
            .threshold(threshold)
            .alias_hits(false) // the check's queries share one text; only their vectors differ
            .hnsw(m, 200, 64)
            .exact_scan_limit(0)
            .background_rebuild(false)
            .build()
            .unwrap_or_else(|e| panic!("M={m}: {e}"));
        workload::fill(&cache, &data, &|| (), Some(&progress));
        let build = progress.finish();
        for &ef in args.efs.iter() {
            for adaptive in [false, true] {
                if let Err(e) = cache.set_search(ef, adaptive) {
                    eprintln!("tune_search: ef {ef}: {e}");
                    std::process::exit(2);
                }
                let report = check.run(&cache);
                let lat = &report.lookup_ns;
                let mean = lat.iter().sum::<u64>() as f64 / lat.len().max(1) as f64 / 1e3;
                println!(
                    "{m:>3} {ef:>5} {adaptive:>8} {build:>10.1} {mean:>10.1} {:>10.1} {:>9.4} {:>7.4}",
                    percentile_us(lat, 0.99),
                    report.agreement,
                    report.recall_at_1
                );
            }
        }
    }
}
