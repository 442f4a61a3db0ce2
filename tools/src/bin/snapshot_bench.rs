//! Save and load time and file size for N entries of 384-d vectors (default 100 000).
//!
//! `cargo run --release --example snapshot_bench -- [N]`
//!
//! Load is measured into a flat-only configuration (decode and insert alone) and into the default
//! one: until it answers (graphs still building in the background) and until its graph is ready.

use paracache::{Cache, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const DIM: usize = 384;

fn main() -> Result<(), paracache::Error> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("paracache-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.snapshot");
    let mut rng = StdRng::seed_from_u64(5);
    let flat = || {
        Cache::<String>::builder(DIM)
            .max_entries(n as u64 * 2)
            .flat_limit(usize::MAX)
    };
    let cache = flat().build()?;
    let scope = Scope::builder().tenant("bench").model("m").build();
    for i in 0..n {
        let v: Vec<f32> = (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
        let prompt =
            format!("Question {i}: how does a semantic cache answer a paraphrased prompt quickly?");
        cache.insert(
            &scope,
            &prompt,
            v,
            format!("Answer {i}: {}", "lorem ipsum ".repeat(20)),
        )?;
    }
    let t = Instant::now();
    let saved = cache.save(&path)?;
    let save_s = t.elapsed().as_secs_f64();
    drop(cache);

    let t = Instant::now();
    let (_, flat_report) = flat().build_from_snapshot(&path)?;
    let load_flat_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (restored, report) = Cache::<String>::builder(DIM)
        .max_entries(n as u64 * 2)
        .build_from_snapshot(&path)?;
    let load_serving_s = t.elapsed().as_secs_f64();
    restored.compact(); // waits for the background graph build
    let load_graph_s = t.elapsed().as_secs_f64();
    restored.run_pending_tasks();
    let st = restored.stats();
    assert_eq!(
        (report.entries, flat_report.entries, st.index_live),
        (n as u64, n as u64, n as u64)
    );
    println!(
        "{{\"entries\":{n},\"dimension\":{DIM},\"file_bytes\":{},\"bytes_per_entry\":{:.0},\"save_s\":{save_s:.3},\"load_flat_s\":{load_flat_s:.3},\"load_serving_s\":{load_serving_s:.3},\"load_graph_ready_s\":{load_graph_s:.3}}}",
        saved.bytes,
        saved.bytes as f64 / n as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
