//! The `bert` feature's embedder against the vectors sentence-transformers made for the dev set.

use crate::support;
use paracache::{BertEmbedder, Embedder, Scope};
use std::sync::OnceLock;

/// The model, loaded once for all the tests here.
fn embedder() -> &'static BertEmbedder {
    static E: OnceLock<BertEmbedder> = OnceLock::new();
    E.get_or_init(|| BertEmbedder::from_dir(support::model_dir()).unwrap())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
#[ignore = "needs the model and the dev data set: run `bash .ci/fetch-model`; the internal dev data at ../shared/data/dev or $PARACACHE_DEV_DATA"]
fn every_dev_text_matches_sentence_transformers_to_cosine_0_9999() {
    let (e, data) = (embedder(), support::dev_data());
    let texts: Vec<(usize, String)> = std::fs::read_to_string(data.join("texts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_u64().unwrap() as usize,
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let raw = std::fs::read(data.join("embeddings.f32")).unwrap();
    let reference: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let dim = e.dimension();
    assert_eq!(reference.len(), texts.len() * dim);
    let mut worst = (1.0f32, String::new());
    for batch in texts.chunks(32) {
        let strs: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        for ((id, text), v) in batch.iter().zip(e.embed_batch(&strs).unwrap()) {
            let cos = dot(&v, &reference[id * dim..(id + 1) * dim]);
            if cos < worst.0 {
                worst = (cos, text.clone());
            }
        }
    }
    eprintln!(
        "{} texts, lowest cosine {} ({:?})",
        texts.len(),
        worst.0,
        worst.1
    );
    assert!(worst.0 >= 0.9999, "cosine {} for {:?}", worst.0, worst.1);
}

#[test]
#[ignore = "needs the all-MiniLM-L6-v2 model: run `bash .ci/fetch-model` (into target/models) or set $PARACACHE_MODEL_DIR"]
fn one_text_alone_or_in_a_batch_gives_the_same_unit_vector() {
    let e = embedder();
    let texts = [
        "short",
        "a much longer question about the many ways to cache answers",
        "",
    ];
    let batch = e.embed_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, b) in texts.iter().zip(&batch) {
        let single = e.embed(text).unwrap();
        assert_eq!(single.len(), 384);
        assert!(
            (dot(&single, &single) - 1.0).abs() < 1e-4,
            "{text:?} not unit"
        );
        assert!(
            dot(&single, b) > 0.9999,
            "{text:?}: its batch changed the vector"
        );
    }
    assert!(e.embed_batch(&[]).unwrap().is_empty());
}

#[test]
#[ignore = "needs the all-MiniLM-L6-v2 model: run `bash .ci/fetch-model` (into target/models) or set $PARACACHE_MODEL_DIR"]
fn paraphrases_score_above_unrelated_texts() {
    let e = embedder();
    let v = e
        .embed_batch(&[
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "What is the capital of France?",
        ])
        .unwrap();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.3);
}

#[test]
#[ignore = "needs the all-MiniLM-L6-v2 model: run `bash .ci/fetch-model` (into target/models) or set $PARACACHE_MODEL_DIR"]
fn the_model_id_names_weights_and_truncation_and_separates_scopes() {
    let e = embedder();
    let id = e.model_id().to_string();
    assert!(id.starts_with("bert-mean-l2-256-"), "{id}");
    let dir = support::model_dir();
    let shorter = BertEmbedder::from_dir(&dir)
        .unwrap()
        .with_max_tokens(128)
        .unwrap();
    assert_ne!(shorter.model_id(), id);
    assert_eq!(
        BertEmbedder::from_dir(&dir).unwrap().model_id(),
        id,
        "not stable"
    );
    let scope = |e: &dyn Embedder| Scope::builder().tenant("t").embedder(e).build();
    assert_ne!(scope(e), scope(&shorter));
    assert!(shorter.with_max_tokens(1).is_err());
}

#[test]
#[ignore = "needs the all-MiniLM-L6-v2 model: run `bash .ci/fetch-model` (into target/models) or set $PARACACHE_MODEL_DIR"]
fn concurrent_callers_are_batched_and_each_gets_its_own_texts_vector() {
    let e = BertEmbedder::from_dir(support::model_dir()).unwrap();
    let texts: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "question number {i} about caching answers for {} users",
                i * 7
            )
        })
        .collect();
    let expected = e
        .embed_batch(&texts.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let before = e.batch_counts();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (e, texts, expected) = (&e, &texts, &expected);
            s.spawn(move || {
                for i in (t..texts.len()).step_by(8) {
                    let v = e.embed(&texts[i]).unwrap();
                    assert!(
                        dot(&v, &expected[i]) > 0.9999,
                        "text {i} got another vector"
                    );
                }
            });
        }
    });
    let after = e.batch_counts();
    assert_eq!(after.texts - before.texts, 64);
    assert!(
        after.batches - before.batches < 64,
        "8 concurrent callers never shared a batch ({} batches)",
        after.batches - before.batches
    );
}
