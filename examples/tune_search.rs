//! Measures graph search cost and hit/miss agreement with an exact scan across search parameters,
//! on clustered synthetic 384-d vectors. Evidence for the defaults of `CacheBuilder::hnsw` and
//! `adaptive_search`.
//!
//! `cargo run --release --example tune_search -- [N] [M,M..] [EF,EF..]`

use paracache::{Cache, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::convert::Infallible;
use std::time::Instant;

const DIM: usize = 384;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

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
    let mut rng = StdRng::seed_from_u64(3);
    let rand_unit =
        |rng: &mut StdRng| unit((0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect());
    let centres: Vec<Vec<f32>> = (0..n / 10).map(|_| rand_unit(&mut rng)).collect();
    let data: Vec<Vec<f32>> = centres
        .iter()
        .flat_map(|c| {
            (0..10)
                .map(|_| {
                    unit(
                        c.iter()
                            .map(|x| x + 0.02 * rng.gen_range(-1.0f32..1.0))
                            .collect(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // Queries: a third near-threshold paraphrases, a third clear paraphrases, a third novel.
    let queries: Vec<Vec<f32>> = (0..1500)
        .map(|i| match i % 3 {
            0 => unit(
                data[(i * 7919) % data.len()]
                    .iter()
                    .map(|x| x + 0.027 * rng.gen_range(-1.0f32..1.0))
                    .collect(),
            ),
            1 => unit(
                data[(i * 104729) % data.len()]
                    .iter()
                    .map(|x| x + 0.01 * rng.gen_range(-1.0f32..1.0))
                    .collect(),
            ),
            _ => rand_unit(&mut rng),
        })
        .collect();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let truth: Vec<Option<usize>> = queries
        .iter()
        .map(|q| {
            let (i, s) = data
                .iter()
                .enumerate()
                .map(|(i, v)| (i, dot(q, v)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
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
                let s = Scope::global();
                for (i, v) in data.iter().enumerate() {
                    cache.insert(&s, &format!("p{i}"), v.clone(), i).unwrap();
                }
                cache.compact();
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
