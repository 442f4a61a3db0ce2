//! Measures graph search cost and hit/miss agreement with an exact scan across search parameters,
//! on real sentence embeddings (`--data ../shared/data/dev-large`) or clustered synthetic 384-d
//! vectors. Evidence for the defaults of `CacheBuilder::hnsw` and `adaptive_search`.
//!
//! With `--data`, the index holds N texts of the data set and the 1500 queries are real: half
//! are paraphrases (from the replay) of stored texts, half are texts not stored. The index is built once per M; beam widths are then set on the running
//! cache, so every row of one M searches the same graph.
//!
//! `cargo run --release -p paracache-tools --bin tune_search -- [N] [M,M..] [EF,EF..] [--data DIR]`
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
    /// Adaptive miss margins to try with each adaptive beam (2 widens every miss probe).
    #[arg(long, default_value = "2", value_name = "D,D..")]
    margins: List<f32>,
    /// Real vectors: a directory in the dev format (texts, embeddings, replay.jsonl).
    #[arg(long, value_name = "DIR")]
    data: Option<std::path::PathBuf>,
}

/// N stored vectors and 1500 real queries from a dev-format directory: the stored texts are
/// every text that is not a replay paraphrase, in a seeded order; the queries are paraphrases of
/// stored texts and texts left unstored, half each.
fn real_vectors(dir: &std::path::Path, n: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    use paracache_tools::dev_data::DevDir;
    use paracache_tools::stream::{self, Expect, Stream};
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let fail = |e: String| -> ! {
        eprintln!("tune_search: {e}");
        std::process::exit(2)
    };
    let dir = DevDir::open(dir, &stream::FILES).unwrap_or_else(|e| fail(e.to_string()));
    let s = Stream::load(&dir).unwrap_or_else(|e| fail(e.to_string()));
    let paraphrases: Vec<(usize, usize)> = s
        .steps
        .iter()
        .filter_map(|st| match st.expect {
            Expect::ParaphraseOf(of) => Some((st.text_id, of)),
            _ => None,
        })
        .collect();
    let is_paraphrase: std::collections::HashSet<usize> = paraphrases.iter().map(|p| p.0).collect();
    let mut ids: Vec<usize> = (0..s.embeddings.len())
        .filter(|i| !is_paraphrase.contains(i))
        .collect();
    ids.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    if ids.len() < n + 750 {
        fail(format!(
            "{} texts: too few for {n} stored and 750 unstored",
            ids.len()
        ));
    }
    let stored: std::collections::HashSet<usize> = ids[..n].iter().copied().collect();
    let row = |i: usize| s.embeddings.row(i).unwrap_or_default().to_vec();
    let mut queries: Vec<Vec<f32>> = paraphrases
        .iter()
        .filter(|(_, of)| stored.contains(of))
        .take(750)
        .map(|&(p, _)| row(p))
        .collect();
    queries.extend(ids[n..n + 750].iter().map(|&i| row(i)));
    (ids[..n].iter().map(|&i| row(i)).collect(), queries)
}

fn main() {
    let args = Args::parse();
    let n = args.n as usize;
    let threshold = 0.9f32;
    let st = stage("exact scan of the 1500 check queries");
    let (data, check) = match &args.data {
        Some(dir) => {
            let (data, queries) = real_vectors(dir, n);
            let check = workload::DecisionCheck::with_queries(&data, queries, threshold);
            (data, check)
        }
        None => {
            let data = workload::clustered(n, 3);
            // Queries: a third near-threshold paraphrases, a third clear paraphrases, a third novel.
            let check = workload::DecisionCheck::new(&data, 1500, 4, threshold);
            (data, check)
        }
    };
    st.done();
    println!(
        "n={n} queries={} hits_expected={} near_threshold={}",
        check.len(),
        check.expected_hits(),
        check.near_threshold()
    );
    println!(
        "exact scan of all {n}: p50 {:.1} us, p99 {:.1} us",
        percentile_us(&check.scan_ns, 0.5),
        percentile_us(&check.scan_ns, 0.99)
    );
    println!(
        "{:>3} {:>5} {:>8} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "M", "ef", "adaptive", "margin", "build_s", "mean_us", "p50_us", "p99_us", "agree", "R@1"
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
            .build()
            .unwrap_or_else(|e| panic!("M={m}: {e}"));
        workload::fill(&cache, &data, &|| (), Some(&progress));
        // The background indexer may still hold a backlog: searches are measured on the graph.
        cache.compact();
        let build = progress.finish();
        for &ef in args.efs.iter() {
            let runs = std::iter::once((false, 2.0))
                .chain(args.margins.iter().map(|&margin| (true, margin)));
            for (adaptive, margin) in runs {
                if let Err(e) = cache
                    .set_search(ef, adaptive)
                    .and_then(|()| cache.set_adaptive_miss_margin(margin))
                {
                    eprintln!("tune_search: ef {ef}, margin {margin}: {e}");
                    std::process::exit(2);
                }
                let report = check.run(&cache);
                let lat = &report.lookup_ns;
                let mean = lat.iter().sum::<u64>() as f64 / lat.len().max(1) as f64 / 1e3;
                println!(
                    "{m:>3} {ef:>5} {adaptive:>8} {margin:>6} {build:>10.1} {mean:>10.1} {:>10.1} {:>10.1} {:>9.4} {:>7.4}",
                    percentile_us(lat, 0.5),
                    percentile_us(lat, 0.99),
                    report.agreement,
                    report.recall_at_1
                );
            }
        }
    }
}
