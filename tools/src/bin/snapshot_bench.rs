//! Save and load time and file size for N entries of 384-d vectors (default 100 000).
//!
//! `cargo run --release -p paracache-tools --bin snapshot_bench -- [N] [--data DIR]`
//!
//! Without `--data` the vectors are uniform random (the hardest case for a graph: no structure);
//! with it, the first N texts (by id) of a replay directory in the dev format and their real
//! embeddings (`../shared/data/dev-large`: 93 268 questions).
//!
//! The saved cache has its graph (the default configuration, `--graph-engine`), so the snapshot
//! carries the graph's links. Load is measured into a flat-only configuration (decode and insert
//! alone) and into the saved one: until it answers (the graph still being linked in the
//! background, lookups scanning meanwhile) and until its graph is ready.
//! The JSON result goes to stdout; stages go to stderr.

use clap::Parser;
use paracache::{Cache, Scope};
use paracache_tools::cli::Engine;
use paracache_tools::dev_data::DevDir;
use paracache_tools::progress::{Progress, stage};
use paracache_tools::stream::{self, Stream};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const DIM: usize = 384;

/// Snapshot save and load times and file size.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Entries to save and load (random 384-d vectors, ~250-byte values).
    #[arg(default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..)
    )]
    n: u64,
    /// Real vectors: the texts of this replay directory (dev format) instead of random ones.
    #[arg(long, value_name = "DIR")]
    data: Option<std::path::PathBuf>,
    /// The graph engine of the restored cache: links (the crate's own, default) or hnsw-rs.
    #[arg(long, default_value_t = Engine::default(), value_name = "links|hnsw-rs")]
    graph_engine: Engine,
}

fn main() -> Result<(), paracache::Error> {
    let args = Args::parse();
    let real = match &args.data {
        Some(dir) => {
            let dir = DevDir::open(dir, &stream::FILES)
                .map_err(|e| paracache::Error::InvalidConfig(e.to_string()))?;
            Some(Stream::load(&dir).map_err(|e| paracache::Error::InvalidConfig(e.to_string()))?)
        }
        None => None,
    };
    let mut ids: Vec<usize> = real
        .as_ref()
        .map_or(Vec::new(), |r| r.texts.keys().copied().collect());
    ids.sort_unstable();
    let n = match &real {
        Some(_) => (args.n as usize).min(ids.len()),
        None => args.n as usize,
    };
    let dir = std::env::temp_dir().join(format!("paracache-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.snapshot");
    let mut rng = StdRng::seed_from_u64(5);
    let flat = || {
        Cache::<String>::builder(DIM)
            .max_entries(n as u64 * 2)
            .exact_scan_limit(usize::MAX)
    };
    let graphed = || {
        Cache::<String>::builder(DIM)
            .max_entries(n as u64 * 2)
            .graph_engine(args.graph_engine.0)
    };
    // The saved cache has its graph, as a long-running one would: the snapshot carries its links.
    let cache = graphed().build()?;
    let scope = Scope::builder().tenant("bench").model("m").build();
    let progress = Progress::new("fill: inserts", n);
    for i in 0..n {
        let (v, prompt) = match (&real, ids.get(i)) {
            (Some(r), Some(&id)) => (r.vector(id).to_vec(), r.text(id).to_string()),
            _ => (
                (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
                format!(
                    "Question {i}: how does a semantic cache answer a paraphrased prompt quickly?"
                ),
            ),
        };
        cache.insert(
            &scope,
            &prompt,
            v,
            format!("Answer {i}: {}", "lorem ipsum ".repeat(20)),
        )?;
        progress.add(1);
    }
    progress.finish();
    let st = stage("fill: finish the graph");
    cache.compact();
    let fill_graph_s = st.done();
    // Texts that normalize alike (dev-large has one such pair) are one entry.
    cache.run_pending_tasks();
    let stored = cache.stats().entries;
    let st = stage("save");
    let saved = cache.save(&path)?;
    let save_s = st.done();
    drop(cache);

    let st = stage("load into a flat-only cache");
    let (_, flat_report) = flat().build_from_snapshot(&path)?;
    let load_flat_s = st.done();

    let st = stage("load into the default configuration, then wait for its graph");
    let t = Instant::now();
    let (restored, report) = graphed().build_from_snapshot(&path)?;
    let load_serving_s = t.elapsed().as_secs_f64();
    restored.compact(); // waits for the background graph build
    let load_graph_s = st.done();
    restored.run_pending_tasks();
    let stats = restored.stats();
    assert_eq!(
        (report.entries, flat_report.entries, stats.index_live),
        (stored, stored, stored)
    );
    println!(
        "{{\"entries\":{stored},\"dimension\":{DIM},\"file_bytes\":{},\"bytes_per_entry\":{:.0},\"save_s\":{save_s:.3},\"load_flat_s\":{load_flat_s:.3},\"load_serving_s\":{load_serving_s:.3},\"load_graph_ready_s\":{load_graph_s:.3},\"graphs_restored\":{},\"fill_graph_wait_s\":{fill_graph_s:.3},\"graph_engine\":\"{}\",\"vectors\":\"{}\"}}",
        saved.bytes,
        saved.bytes as f64 / stored as f64,
        stats.graphs_restored,
        args.graph_engine,
        if real.is_some() { "real" } else { "random" }
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
