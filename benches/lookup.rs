//! Lookup costs at 10k entries (100k with `PARACACHE_BENCH_N=100000`) of 384-d clustered vectors,
//! beside a brute-force simsimd scan over the same vectors measured in the same run.
//!
//! `cargo bench --bench lookup`

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

#[path = "support/workload.rs"]
mod workload;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use paracache::{Cache, Scope};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::convert::Infallible;
use std::time::Duration;
use workload::{CLEAR_PARAPHRASE, DIM, jitter, prompt, random_unit};

struct Fixture {
    cache: Cache<usize>,
    data: Vec<Vec<f32>>,
    paraphrases: Vec<Vec<f32>>,
    novel: Vec<Vec<f32>>,
}

fn fixture(n: usize, flat_limit: usize) -> Fixture {
    let data = workload::clustered(n, 1);
    let mut rng = StdRng::seed_from_u64(2);
    let cache: Cache<usize> = Cache::builder(DIM)
        .max_entries(n as u64 * 2)
        // The paraphrase lookups share one text and differ in their vectors: aliases would make
        // them exact hits, and these benches measure the semantic tier.
        .alias_hits(false)
        .flat_limit(flat_limit)
        .background_rebuild(false)
        .build()
        .unwrap();
    workload::fill(&cache, &data, &|| ());
    let paraphrases = (0..1000)
        .map(|i| jitter(&mut rng, &data[(i * 7919) % data.len()], CLEAR_PARAPHRASE))
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
                let best = workload::brute_force(&f.data, q);
                black_box(best)
            })
        });
        g.bench_function("insert", |b| {
            b.iter(|| {
                i = (i + 1) % f.novel.len();
                // Re-inserting existing prompts keeps the size fixed (each replaces its entry).
                black_box(
                    f.cache
                        .insert(&s, &prompts[i], f.novel[i].clone(), i)
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
