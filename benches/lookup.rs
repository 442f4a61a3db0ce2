//! Lookup costs at 10k entries (100k with `PARACACHE_BENCH_N=100000`) of 384-d clustered vectors,
//! beside a brute-force simsimd scan over the same vectors measured in the same run.
//!
//! `cargo bench -p paracache --bench lookup` (`-- --test` runs each case once, with its checks).
//!
//! Every case first checks, untimed, that the operation it times is what its name says (a
//! "semantic_hit" that the guards turned away would time a miss and report it as a hit).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use paracache::{Cache, Lookup, Scope, Source};
use paracache_tools::workload::{self, CLEAR_PARAPHRASE, DIM, jitter, prompt, random_unit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::convert::Infallible;
use std::time::Duration;

/// The text of every paraphrase lookup. The default guards must accept it against the stored
/// prompts: no numbers, no negation, no names (a text with "not" in it is turned away by the
/// negation guard, and the bench would time a rejected miss).
const PARAPHRASE_TEXT: &str = "a paraphrase of a stored question, asked in other words";

struct Fixture {
    cache: Cache<usize>,
    data: Vec<Vec<f32>>,
    /// Paraphrase `k` rephrases `data[paraphrased(k, data.len())]`.
    paraphrases: Vec<Vec<f32>>,
    novel: Vec<Vec<f32>>,
}

/// The stored entry (of `n`; `clustered` rounds down to whole clusters, so pass the data's
/// length) that paraphrase `k` and exact prompt `k` are about.
fn paraphrased(k: usize, n: usize) -> usize {
    (k * 7919) % n
}

fn fixture(n: usize, exact_scan_limit: usize) -> Fixture {
    let data = workload::clustered(n, 1);
    let mut rng = StdRng::seed_from_u64(2);
    let cache: Cache<usize> = Cache::builder(DIM)
        .max_entries(n as u64 * 2)
        // The paraphrase lookups share one text and differ in their vectors: aliases would make
        // them exact hits, and these benches measure the semantic tier.
        .alias_hits(false)
        .exact_scan_limit(exact_scan_limit)
        .background_rebuild(false)
        .build()
        .unwrap();
    workload::fill(&cache, &data, &|| (), None);
    let paraphrases = (0..1000)
        .map(|k| {
            jitter(
                &mut rng,
                &data[paraphrased(k, data.len())],
                CLEAR_PARAPHRASE,
            )
        })
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

fn never(_: &str) -> Result<Vec<f32>, Infallible> {
    unreachable!("an exact hit never embeds")
}

/// The source of a lookup's hit, `None` for a miss.
fn source(r: &Lookup<usize>) -> Option<Source> {
    r.hit().map(|h| h.source())
}

fn sizes() -> Vec<usize> {
    match std::env::var("PARACACHE_BENCH_N") {
        Ok(n) => n.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000],
    }
}

/// Untimed: every input each case cycles through gives the outcome the case is named after.
fn check_tiers(f: &Fixture, s: &Scope, prompts: &[String]) {
    let n = f.data.len();
    for (k, p) in prompts.iter().enumerate() {
        let r = f.cache.lookup(s, p, never).unwrap();
        assert_eq!(source(&r), Some(Source::Exact), "exact_hit: prompt {k}");
        assert_eq!(r.hit().map(|h| *h.value()), Some(paraphrased(k, n)));
    }
    // The graph search is approximate (and the fill concurrent, so the graph differs per run):
    // allow 1% of paraphrases to miss their entry, but none to be turned away by a guard.
    let rejections = f.cache.stats().guard_rejections;
    let mut served = 0;
    for (k, q) in f.paraphrases.iter().enumerate() {
        let r = f.cache.lookup(s, PARAPHRASE_TEXT, ok(q)).unwrap();
        served += usize::from(
            source(&r) == Some(Source::Semantic)
                && r.hit().map(|h| *h.value()) == Some(paraphrased(k, n)),
        );
        assert_eq!(workload::brute_force(&f.data, q).0, paraphrased(k, n));
    }
    assert_eq!(
        f.cache.stats().guard_rejections,
        rejections,
        "semantic_hit: the guards turn the paraphrase text away"
    );
    assert!(
        served * 100 >= f.paraphrases.len() * 99,
        "semantic_hit: only {served} of {} paraphrases are semantic hits on their entry",
        f.paraphrases.len()
    );
    for (k, q) in f.novel.iter().enumerate() {
        let r = f.cache.lookup(s, "something new", ok(q)).unwrap();
        assert_eq!(source(&r), None, "miss: novel query {k} hit");
    }
}

/// Untimed: the insert case replaces an existing entry (so the size stays fixed).
fn check_insert(f: &Fixture, s: &Scope, prompts: &[String]) {
    f.cache.run_pending_tasks();
    let before = f.cache.stats().entries;
    f.cache
        .insert(s, &prompts[0], f.novel[0].clone(), 0)
        .unwrap();
    f.cache.run_pending_tasks();
    assert_eq!(
        f.cache.stats().entries,
        before,
        "insert: a replacement adds no entry"
    );
    let r = f.cache.lookup(s, &prompts[0], never).unwrap();
    assert_eq!(
        r.hit().map(|h| *h.value()),
        Some(0),
        "insert: the new value is served"
    );
}

fn tiers(c: &mut Criterion) {
    for n in sizes() {
        let f = fixture(n, 1024);
        let s = Scope::global();
        let prompts: Vec<String> = (0..1000)
            .map(|k| prompt(paraphrased(k, f.data.len())))
            .collect();
        check_tiers(&f, &s, &prompts);
        let mut g = c.benchmark_group(format!("lookup_{n}"));
        let mut i = 0;
        g.bench_function("exact_hit", |b| {
            b.iter(|| {
                i = (i + 1) % prompts.len();
                black_box(f.cache.lookup(&s, &prompts[i], never).unwrap())
            })
        });
        g.bench_function("semantic_hit", |b| {
            b.iter(|| {
                i = (i + 1) % f.paraphrases.len();
                black_box(
                    f.cache
                        .lookup(&s, PARAPHRASE_TEXT, ok(&f.paraphrases[i]))
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
                black_box(workload::brute_force(&f.data, &f.paraphrases[i]))
            })
        });
        // Last: it changes the stored vectors the cases above search.
        check_insert(&f, &s, &prompts);
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
            for (k, q) in f.novel.iter().enumerate() {
                let r = f.cache.lookup(&s, "new", ok(q)).unwrap();
                assert_eq!(source(&r), None, "{name} {n}: novel query {k} hit");
            }
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
