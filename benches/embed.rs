//! What an embedding costs next to what a lookup costs, in one run: the `bert` feature's
//! all-MiniLM-L6-v2 at batch 1 and batch 32 (texts/s), beside the cache's exact hit (which needs
//! no embedding) and semantic hit over 1 000 stored prompts.
//!
//! `bash .ci/fetch-model && cargo bench -p paracache --features bert --bench embed`
//!
//! Each case first checks, untimed, that it times what its name says (an embedding of the right
//! size, an exact hit, a semantic hit).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use paracache::{BertEmbedder, Cache, Embedder, Scope, Source};
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

/// 32 everyday questions of 6 to 16 words, the length of typical chat prompts.
fn texts() -> Vec<String> {
    let verbs = ["reset", "change", "recover", "delete"];
    let things = [
        "my password",
        "the billing address",
        "a shared folder",
        "two-factor login",
    ];
    let places = [
        "on the mobile app",
        "from the web dashboard after my account was locked last week",
    ];
    let mut out = Vec::new();
    for v in verbs {
        for t in things {
            for p in places {
                out.push(format!("How do I {v} {t} {p}?"));
            }
        }
    }
    out
}

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PARACACHE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models/all-MiniLM-L6-v2")
        });
    dir.join("model.safetensors").exists().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(dir) = model_dir() else {
        eprintln!("embed bench skipped: no model (run .ci/fetch-model)");
        return;
    };
    let embedder = BertEmbedder::from_dir(dir).expect("model loads");
    let texts = texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let one = embedder.embed(refs[0]).unwrap();
    assert_eq!(one.len(), embedder.dimension(), "batch_1: one vector");
    let all = embedder.embed_batch(&refs).unwrap();
    assert_eq!(all.len(), refs.len(), "batch_32: a vector per text");
    assert!(all.iter().all(|v| v.len() == embedder.dimension()));

    let mut g = c.benchmark_group("embed");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("batch_1", |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            black_box(embedder.embed(refs[i]).unwrap())
        })
    });
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("batch_32", |b| {
        b.iter(|| black_box(embedder.embed_batch(&refs).unwrap()))
    });
    g.finish();

    // The cache, in the same run, with the same model's vectors.
    let cache: Cache<usize> = Cache::builder(embedder.dimension())
        .threshold(0.8)
        .alias_hits(false) // the lookups below repeat; they must search every time
        .build()
        .unwrap();
    let scope = Scope::builder().embedder(&embedder).build();
    let vectors = embedder.embed_batch(&refs).unwrap();
    for k in 0..1000 {
        let mut v = vectors[k % vectors.len()].clone();
        let at = k % v.len();
        v[at] += 0.3 + k as f32 * 1e-3; // 1 000 distinct neighbours of the 32 texts
        cache
            .insert(&scope, &format!("stored prompt {k}"), v, k)
            .unwrap();
    }
    cache
        .insert(&scope, refs[0], vectors[0].clone(), 7)
        .unwrap();
    let exact = cache.lookup(&scope, refs[0], |_| -> Result<Vec<f32>, Infallible> {
        unreachable!("an exact hit never embeds")
    });
    assert_eq!(
        exact.unwrap().hit().map(|h| h.source()),
        Some(Source::Exact),
        "exact_hit"
    );
    let paraphrase_text = "how can I reset my password in the mobile app";
    let paraphrase = embedder.embed(paraphrase_text).unwrap();
    let semantic = cache.lookup(&scope, paraphrase_text, |_| {
        Ok::<_, Infallible>(paraphrase.clone())
    });
    assert_eq!(
        semantic.unwrap().hit().map(|h| h.source()),
        Some(Source::Semantic),
        "semantic_hit: the paraphrase must be served by the semantic tier (threshold, guards)"
    );
    let mut g = c.benchmark_group("cache_1k");
    g.throughput(Throughput::Elements(1));
    g.bench_function("exact_hit", |b| {
        b.iter(|| {
            let r = cache.lookup(&scope, refs[0], |_| -> Result<Vec<f32>, Infallible> {
                unreachable!("an exact hit never embeds")
            });
            black_box(r.unwrap())
        })
    });
    g.bench_function("semantic_hit", |b| {
        b.iter(|| {
            let r = cache.lookup(&scope, paraphrase_text, |_| {
                Ok::<_, Infallible>(paraphrase.clone())
            });
            black_box(r.unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
