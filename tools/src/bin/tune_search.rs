//! Measures graph search cost and hit/miss agreement with an exact scan across search parameters,
//! on clustered synthetic 384-d vectors. Evidence for the defaults of `CacheBuilder::hnsw` and
//! `adaptive_search`. The index is built once per M; beam widths are then set on the running
//! cache, so every row of one M searches the same graph.
//!
//! `cargo run --release --example tune_search -- [N] [M,M..] [EF,EF..]`

#[path = "../benches/support/workload.rs"]
mod workload;

use paracache::Cache;
use std::time::Instant;
use workload::{DIM, percentile_us};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let list = |i: usize, d: &str| -> Vec<usize> {
        args.get(i)
            .map_or(d, |s| s.as_str())
            .split(',')
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    let ms = list(2, "8,16");
    let efs = list(3, "8,16,32,64");
    let threshold = 0.9f32;
    let data = workload::clustered(n, 3);
    // Queries: a third near-threshold paraphrases, a third clear paraphrases, a third novel.
    let check = workload::DecisionCheck::new(&data, 1500, 4, threshold);
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
    for &m in &ms {
        // One build per M: the beam width changes on the running cache (`set_search`).
        let t = Instant::now();
        let cache: Cache<usize> = Cache::builder(DIM)
            .max_entries(n as u64 * 2)
            .threshold(threshold)
            .alias_hits(false) // the check's queries share one text; only their vectors differ
            .hnsw(m, 200, 64)
            .flat_limit(0)
            .background_rebuild(false)
            .build()
            .unwrap();
        workload::fill(&cache, &data, &|| ());
        let build = t.elapsed().as_secs_f64();
        for &ef in &efs {
            for adaptive in [false, true] {
                cache.set_search(ef, adaptive).unwrap();
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
