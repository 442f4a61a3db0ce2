//! Measures graph search cost and hit/miss agreement with an exact scan across search parameters,
//! on clustered synthetic 384-d vectors. Evidence for the defaults of `CacheBuilder::hnsw` and
//! `adaptive_search`.
//!
//! `cargo run --release --example tune_search -- [N] [M,M..] [EF,EF..]`

#[path = "../benches/support/workload.rs"]
mod workload;

use paracache::{Cache, Scope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::convert::Infallible;
use std::time::Instant;
use workload::{CLEAR_PARAPHRASE, DIM, NEAR_THRESHOLD, jitter, random_unit};

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
    let mut rng = StdRng::seed_from_u64(4);
    // Queries: a third near-threshold paraphrases, a third clear paraphrases, a third novel.
    let queries: Vec<Vec<f32>> = (0..1500)
        .map(|i| match i % 3 {
            0 => jitter(&mut rng, &data[(i * 7919) % data.len()], NEAR_THRESHOLD),
            1 => jitter(&mut rng, &data[(i * 104729) % data.len()], CLEAR_PARAPHRASE),
            _ => random_unit(&mut rng),
        })
        .collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let truth: Vec<Option<usize>> = queries
        .iter()
        .map(|q| {
            let (i, s) = workload::brute_force(&data, q);
            (s >= threshold).then_some(i)
        })
        .collect();
    let close = queries
        .iter()
        .zip(&truth)
        .filter(|(q, _)| data.iter().any(|v| (dot(q, v) - threshold).abs() < 0.02))
        .count();
    println!(
        "n={n} queries={} hits_expected={} near_threshold={close}",
        queries.len(),
        truth.iter().filter(|t| t.is_some()).count()
    );
    println!(
        "{:>3} {:>5} {:>8} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "M", "ef", "adaptive", "build_s", "mean_us", "p99_us", "agree", "R@1"
    );
    for &m in &ms {
        for &ef in &efs {
            for adaptive in [false, true] {
                let t = Instant::now();
                let cache: Cache<usize> = Cache::builder(DIM)
                    .max_entries(n as u64 * 2)
                    .threshold(threshold)
                    .hnsw(m, 200, ef)
                    .adaptive_search(adaptive)
                    .flat_limit(0)
                    .background_rebuild(false)
                    .build()
                    .unwrap();
                workload::fill(&cache, &data, &|| ());
                let s = Scope::global();
                let build = t.elapsed().as_secs_f64();
                let mut lat = Vec::new();
                let (mut agree, mut r1, mut hits) = (0, 0, 0);
                for (q, t) in queries.iter().zip(&truth) {
                    let st = Instant::now();
                    let r = cache
                        .lookup(&s, "q", |_| Ok::<_, Infallible>(q.clone()))
                        .unwrap();
                    lat.push(st.elapsed().as_nanos() as f64 / 1e3);
                    agree += usize::from(r.is_hit() == t.is_some());
                    if let (Some(h), Some(b)) = (r.hit(), t) {
                        hits += 1;
                        r1 += usize::from(h.value() == b);
                    }
                }
                lat.sort_by(f64::total_cmp);
                let mean = lat.iter().sum::<f64>() / lat.len() as f64;
                println!(
                    "{m:>3} {ef:>5} {adaptive:>8} {build:>10.1} {mean:>10.1} {:>10.1} {:>9.4} {:>7.4}",
                    lat[lat.len() * 99 / 100],
                    agree as f64 / queries.len() as f64,
                    r1 as f64 / hits.max(1) as f64
                );
            }
        }
    }
}
