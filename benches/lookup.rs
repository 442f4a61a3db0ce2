//! Lookup costs at 10k entries (100k with `PARACACHE_BENCH_N=100000`) of 384-d clustered vectors,
//! beside a brute-force simsimd scan over the same vectors measured in the same run.
//!
//! `cargo bench --bench lookup`

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use paracache::{Cache, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simsimd::SpatialSimilarity;
use std::convert::Infallible;
use std::time::Duration;

const DIM: usize = 384;
const PER_CLUSTER: usize = 10;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    unit((0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

fn jitter(rng: &mut StdRng, v: &[f32], scale: f32) -> Vec<f32> {
    unit(
        v.iter()
            .map(|x| x + scale * rng.gen_range(-1.0f32..1.0))
            .collect(),
    )
}

/// A ~200-byte prompt, distinct per `i`.
fn prompt(i: usize) -> String {
    let mut p = format!("Question {i}: please explain, with examples, ");
    while p.len() < 200 {
        p.push_str("how the cache answers repeated and paraphrased prompts quickly; ");
    }
    p.truncate(200);
    p
}

struct Fixture {
    cache: Cache<u64>,
    data: Vec<Vec<f32>>,
    paraphrases: Vec<Vec<f32>>,
    novel: Vec<Vec<f32>>,
}

fn fixture(n: usize, flat_limit: usize) -> Fixture {
    let mut rng = StdRng::seed_from_u64(1);
    let centres: Vec<Vec<f32>> = (0..n / PER_CLUSTER)
        .map(|_| random_unit(&mut rng))
        .collect();
    let data: Vec<Vec<f32>> = centres
        .iter()
        .flat_map(|c| {
            (0..PER_CLUSTER)
                .map(|_| jitter(&mut rng, c, 0.02))
                .collect::<Vec<_>>()
        })
        .collect();
    let cache: Cache<u64> = Cache::builder(DIM)
        .max_entries(n as u64 * 2)
        .flat_limit(flat_limit)
        .background_rebuild(false)
        .build()
        .unwrap();
    let s = Scope::global();
    for (i, v) in data.iter().enumerate() {
        cache.insert(&s, &prompt(i), v.clone(), i as u64).unwrap();
    }
    cache.compact();
    let paraphrases = (0..1000)
        .map(|i| jitter(&mut rng, &data[(i * 7919) % data.len()], 0.01))
        .collect();
    let novel = (0..1000).map(|_| random_unit(&mut rng)).collect();
    Fixture {
        cache,
        data,
        paraphrases,
        novel,
    }
}

fn ok(v: &[f32]) -> impl FnOnce(&str) -> Result<Vec<f32>, Infallible> + '_ {
    move |_| Ok(v.to_vec())
}

fn sizes() -> Vec<usize> {
    match std::env::var("PARACACHE_BENCH_N") {
        Ok(n) => n.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000],
    }
}

fn tiers(c: &mut Criterion) {
    for n in sizes() {
        let f = fixture(n, 1024);
        let s = Scope::global();
        let prompts: Vec<String> = (0..1000).map(|i| prompt((i * 7919) % n)).collect();
        let mut g = c.benchmark_group(format!("lookup_{n}"));
        let mut i = 0;
        g.bench_function("exact_hit", |b| {
            b.iter(|| {
                i = (i + 1) % prompts.len();
                let r = f
                    .cache
                    .lookup(&s, &prompts[i], |_| -> Result<Vec<f32>, Infallible> {
                        unreachable!()
                    });
                assert!(r.unwrap().is_hit());
            })
        });
        g.bench_function("semantic_hit", |b| {
            b.iter(|| {
                i = (i + 1) % f.paraphrases.len();
                black_box(
                    f.cache
                        .lookup(
                            &s,
                            "a paraphrase not stored verbatim",
                            ok(&f.paraphrases[i]),
                        )
                        .unwrap(),
                )
            })
        });
        g.bench_function("miss", |b| {
            b.iter(|| {
                i = (i + 1) % f.novel.len();
                black_box(
                    f.cache
                        .lookup(&s, "something new", ok(&f.novel[i]))
                        .unwrap(),
                )
            })
        });
        g.bench_function("brute_force_scan", |b| {
            b.iter(|| {
                i = (i + 1) % f.paraphrases.len();
                let q = &f.paraphrases[i];
                let best = f
                    .data
                    .iter()
                    .map(|v| <f32 as SpatialSimilarity>::cos(q, v).unwrap_or(1.0))
                    .fold(f64::MAX, f64::min);
                black_box(best)
            })
        });
        g.bench_function("insert", |b| {
            b.iter(|| {
                i = (i + 1) % f.novel.len();
                // Re-inserting existing prompts keeps the size fixed (each replaces its entry).
                black_box(
                    f.cache
                        .insert(&s, &prompts[i], f.novel[i].clone(), i as u64)
                        .unwrap(),
                )
            })
        });
        g.finish();
    }
}

/// Where an exact scan stops paying: the same partition answered flat and by graph.
fn flat_vs_graph(c: &mut Criterion) {
    let mut g = c.benchmark_group("flat_vs_graph_miss");
    for n in [512usize, 1024, 2048, 4096] {
        for (name, limit) in [("flat", usize::MAX), ("graph", 0)] {
            let f = fixture(n, limit);
            let s = Scope::global();
            let mut i = 0;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) % f.novel.len();
                    black_box(f.cache.lookup(&s, "new", ok(&f.novel[i])).unwrap())
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = tiers, flat_vs_graph
}
criterion_main!(benches);
