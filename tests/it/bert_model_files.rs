//! `BertEmbedder::from_dir` on model directories that are wrong in one way each: every one is a
//! clear error naming the file and the problem, never a panic, and a model that loads computes
//! a unit vector for any text. The files are made here (a tiny BERT with a word-level tokenizer),
//! so these tests need no download.

use paracache::{BertEmbedder, Embedder};
use std::path::Path;

const HIDDEN: usize = 8;
const INTER: usize = 16;
const VOCAB: usize = 6;
const POSITIONS: usize = 16;

fn config(act: &str) -> String {
    format!(
        r#"{{"vocab_size": {VOCAB}, "hidden_size": {HIDDEN}, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": {INTER},
            "max_position_embeddings": {POSITIONS}, "type_vocab_size": 2,
            "layer_norm_eps": 1e-12, "hidden_act": "{act}"}}"#
    )
}

/// A word-level tokenizer over `vocab` words (ids in order), with BERT's [CLS]/[SEP] markers.
fn tokenizer(words: &[&str]) -> String {
    let vocab: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"{w}\": {i}"))
        .collect();
    format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": {{"type": "Lowercase"}}, "pre_tokenizer": {{"type": "Whitespace"}},
            "post_processor": {{"type": "TemplateProcessing",
                "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
                "pair": [{{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"Sequence": {{"id": "B", "type_id": 1}}}}],
                "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]}},
                                    "[SEP]": {{"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}}}}},
            "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab.join(", ")
    )
}

/// The tensors of a one-layer BERT, as (name, shape), with deterministic small values.
fn tensors() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![VOCAB, HIDDEN],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![POSITIONS, HIDDEN],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, HIDDEN],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    let l = "encoder.layer.0";
    for p in ["query", "key", "value"] {
        t.push((
            format!("{l}.attention.self.{p}.weight"),
            vec![HIDDEN, HIDDEN],
        ));
        t.push((format!("{l}.attention.self.{p}.bias"), vec![HIDDEN]));
    }
    for (name, shape) in [
        ("attention.output.dense.weight", vec![HIDDEN, HIDDEN]),
        ("attention.output.dense.bias", vec![HIDDEN]),
        ("attention.output.LayerNorm.weight", vec![HIDDEN]),
        ("attention.output.LayerNorm.bias", vec![HIDDEN]),
        ("intermediate.dense.weight", vec![INTER, HIDDEN]),
        ("intermediate.dense.bias", vec![INTER]),
        ("output.dense.weight", vec![HIDDEN, INTER]),
        ("output.dense.bias", vec![HIDDEN]),
        ("output.LayerNorm.weight", vec![HIDDEN]),
        ("output.LayerNorm.bias", vec![HIDDEN]),
    ] {
        t.push((format!("{l}.{name}"), shape));
    }
    t
}

/// The safetensors format: an 8-byte header length, a JSON header, then the data.
fn safetensors(tensors: &[(String, Vec<usize>)], dtype: &str) -> Vec<u8> {
    let mut header = Vec::new();
    let mut data = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        let start = data.len();
        for j in 0..n {
            data.extend_from_slice(&(((i * 31 + j * 7) % 13) as f32 * 0.05 - 0.3).to_le_bytes());
        }
        header.push(format!(
            r#""{name}": {{"dtype": "{dtype}", "shape": {shape:?}, "data_offsets": [{start}, {}]}}"#,
            data.len()
        ));
    }
    let header = format!("{{{}}}", header.join(", "));
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

fn write_model(dir: &Path, config_json: &str, tokenizer_json: &str, weights: &[u8]) {
    std::fs::write(dir.join("config.json"), config_json).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
}

const WORDS: [&str; VOCAB] = ["[UNK]", "[CLS]", "[SEP]", "hello", "world", "cache"];

fn load_err(config_json: &str, tokenizer_json: &str, weights: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), config_json, tokenizer_json, weights);
    BertEmbedder::from_dir(dir.path()).unwrap_err().to_string()
}

/// The tiny model with a tokenizer over `words`, loaded (the directory lives as long as the result).
fn tiny(words: &[&str]) -> (tempfile::TempDir, BertEmbedder) {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &config("gelu"),
        &tokenizer(words),
        &safetensors(&tensors(), "F32"),
    );
    let e = BertEmbedder::from_dir(dir.path()).unwrap();
    (dir, e)
}

#[test]
fn a_tiny_model_loads_and_gives_unit_vectors_alone_and_in_batches() {
    let (_dir, e) = tiny(&WORDS);
    assert_eq!(e.dimension(), HIDDEN);
    let texts = ["hello world", "cache", "", "unknown words everywhere hello"];
    let batch = e.embed_batch(&texts).unwrap();
    for (text, b) in texts.iter().zip(&batch) {
        let one = e.embed(text).unwrap();
        let norm: f32 = one.iter().map(|v| v * v).sum();
        assert!(
            (norm - 1.0).abs() < 1e-4 && one.iter().all(|v| v.is_finite()),
            "{text:?}"
        );
        let cos: f32 = one.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(
            cos > 0.99999,
            "{text:?}: its batch changed its vector ({cos})"
        );
    }
    assert_ne!(batch[0], batch[1]);
}

#[test]
fn an_activation_it_does_not_compute_is_refused() {
    let err = load_err(
        &config("relu"),
        &tokenizer(&WORDS),
        &safetensors(&tensors(), "F32"),
    );
    assert!(err.contains("hidden_act") && err.contains("relu"), "{err}");
}

#[test]
fn a_missing_tensor_is_named() {
    let mut t = tensors();
    t.retain(|(name, _)| name != "encoder.layer.0.intermediate.dense.weight");
    let err = load_err(&config("gelu"), &tokenizer(&WORDS), &safetensors(&t, "F32"));
    assert!(
        err.contains("model.safetensors") && err.contains("intermediate.dense.weight"),
        "{err}"
    );
}

#[test]
fn a_tensor_of_the_wrong_shape_or_type_is_named() {
    let mut t = tensors();
    t[0].1 = vec![VOCAB, HIDDEN + 1];
    let err = load_err(&config("gelu"), &tokenizer(&WORDS), &safetensors(&t, "F32"));
    assert!(
        err.contains("word_embeddings") && err.contains("shape"),
        "{err}"
    );
    // Same bytes read as 32-bit integers: right size, wrong type.
    let err = load_err(
        &config("gelu"),
        &tokenizer(&WORDS),
        &safetensors(&tensors(), "I32"),
    );
    assert!(err.contains("not F32"), "{err}");
}

#[test]
fn truncated_or_garbage_weights_are_an_error() {
    let good = safetensors(&tensors(), "F32");
    for bad in [
        &good[..good.len() - 5],
        &good[..20],
        b"not a safetensors file".as_slice(),
        &[],
    ] {
        let err = load_err(&config("gelu"), &tokenizer(&WORDS), bad);
        assert!(err.contains("model.safetensors"), "{err}");
    }
    let err = load_err("{\"hidden_size\": 8", &tokenizer(&WORDS), &good);
    assert!(err.contains("config.json"), "{err}");
    let err = load_err(&config("gelu"), "{}", &good);
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn a_tokenizer_with_more_words_than_the_model_is_an_error_at_embed_not_a_panic() {
    let mut words = WORDS.to_vec();
    words.push("extra");
    let (_dir, e) = tiny(&words);
    let err = e.embed("hello extra").unwrap_err().to_string();
    assert!(err.contains("vocabulary"), "{err}");
    assert!(
        e.embed("hello world").is_ok(),
        "in-vocabulary texts still embed"
    );
}

#[test]
fn max_tokens_is_checked_against_the_position_table() {
    let (dir, e) = tiny(&WORDS);
    assert!(
        e.model_id()
            .starts_with(&format!("bert-mean-l2-{POSITIONS}-")),
        "{}",
        e.model_id()
    );
    let err = BertEmbedder::from_dir(dir.path())
        .unwrap()
        .with_max_tokens(POSITIONS + 1)
        .unwrap_err();
    assert!(err.to_string().contains("positions"), "{err}");
    // Longer texts are truncated to the table, not refused.
    let long = vec!["hello"; 3 * POSITIONS].join(" ");
    assert_eq!(e.embed(&long).unwrap().len(), HIDDEN);
}
