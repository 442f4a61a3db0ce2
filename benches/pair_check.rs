//! What the relevance checks cost per semantic candidate: the guards alone, and the learned pair
//! check (all three guards' analyses, the word and character sets, the features, and the 384-d
//! vector terms), each on two prompts of 13 words as the cache reads them (the candidate read
//! afresh, the query read once per lookup and reused).
//!
//! `cargo bench -p paracache --bench pair_check` (`-- --test` runs each case once).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use paracache::{Guards, PairCheck, PairFeatures};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const QUERY: &str = "What is the best way to learn the Rust programming language quickly at home?";
const MATCHED: &str = "How can I learn the Rust programming language fast and well from home?";

fn unit(rng: &mut StdRng) -> Vec<f32> {
    let v: Vec<f32> = (0..384).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let (qv, mut mv) = (unit(&mut rng), unit(&mut rng));
    // A close candidate: cosine about 0.9.
    for (m, q) in mv.iter_mut().zip(&qv) {
        *m = 0.45 * *m + q;
    }
    let n = mv.iter().map(|x| x * x).sum::<f32>().sqrt();
    mv.iter_mut().for_each(|x| *x /= n);
    let check = PairCheck::default();
    let guards = Guards::all();
    assert!(guards.check(QUERY, MATCHED).is_ok());
    let mut g = c.benchmark_group("relevance_per_candidate");
    g.bench_function("guards_all", |b| {
        b.iter(|| guards.check(black_box(QUERY), black_box(MATCHED)))
    });
    g.bench_function("pair_check_features", |b| {
        b.iter(|| PairFeatures::of(black_box(QUERY), black_box(MATCHED), 0.9))
    });
    g.bench_function("pair_check_full", |b| {
        b.iter(|| {
            check
                .check(black_box(QUERY), &qv, black_box(MATCHED), &mv)
                .is_ok()
        })
    });
    let features = PairFeatures::of(QUERY, MATCHED, 0.9);
    g.bench_function("pair_check_score_only", |b| {
        b.iter(|| check.score(black_box(&features), &qv, &mv))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
