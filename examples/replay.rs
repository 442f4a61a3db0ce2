//! Replays a prompt stream through the cache, in the format of the dev data set (its README):
//! each step looks up its text with that text's row of `embeddings.f32` as the embedding; a miss
//! inserts the text with its id as the value.
//!
//! `cargo run --release --example replay -- --data ../shared/data/dev [--threshold 0.9]
//!  [--capacity N] [--scopes K] [--brute-force] [--out steps.jsonl]`
//!
//! - `--scopes K`: step `i` goes to scope `text_id % K`, so a text and its exact repeats always
//!   share a scope while different texts spread across K tenants (default 1).
//! - `--brute-force`: the semantic tier answers by exact scan (flat partitions only).
//! - Prints a JSON summary: counts and latency p50/p99 by result; with the stream's clusters, the
//!   scores of `reference-bruteforce.jsonl` (semantic_precision, paraphrase_served,
//!   new_served_wrong); and, only when `pairs.jsonl` exists, the precision of semantic hits whose
//!   (query, match) pair is labelled there.

use paracache::{Cache, Lookup, Scope, Source};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Args {
    data: PathBuf,
    threshold: f32,
    capacity: u64,
    scopes: u64,
    brute_force: bool,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from("../shared/data/dev"),
        threshold: 0.9,
        capacity: 1_000_000,
        scopes: 1,
        brute_force: false,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => a.data = PathBuf::from(value()?),
            "--threshold" => {
                a.threshold = value()?.parse().map_err(|e| format!("--threshold: {e}"))?
            }
            "--capacity" => {
                a.capacity = value()?.parse().map_err(|e| format!("--capacity: {e}"))?
            }
            "--scopes" => {
                a.scopes = value()?
                    .parse::<u64>()
                    .map_err(|e| format!("--scopes: {e}"))?
                    .max(1)
            }
            "--brute-force" => a.brute_force = true,
            "--out" => a.out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    BufReader::new(f)
        .lines()
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|l| {
            l.map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string()))
        })
        .collect()
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

fn main() {
    if let Err(e) = run() {
        eprintln!("replay: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let texts: HashMap<u64, String> = jsonl(&args.data.join("texts.jsonl"))?
        .into_iter()
        .filter_map(|t| Some((t["id"].as_u64()?, t["text"].as_str()?.to_string())))
        .collect();
    let raw = std::fs::read(args.data.join("embeddings.f32"))
        .map_err(|e| format!("embeddings.f32: {e}"))?;
    let dim = 384usize;
    let row = |id: u64| -> Option<Vec<f32>> {
        let start = id as usize * dim * 4;
        let bytes = raw.get(start..start + dim * 4)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    };
    let steps = jsonl(&args.data.join("replay.jsonl"))?;
    let pairs: Option<HashMap<(u64, u64), u64>> =
        jsonl(&args.data.join("pairs.jsonl")).ok().map(|ps| {
            ps.into_iter()
                .filter_map(|p| {
                    let (a, b, l) = (p["a"].as_u64()?, p["b"].as_u64()?, p["label"].as_u64()?);
                    Some([((a, b), l), ((b, a), l)])
                })
                .flatten()
                .collect()
        });
    let cluster_of: HashMap<u64, u64> = steps
        .iter()
        .filter_map(|s| Some((s["text_id"].as_u64()?, s["cluster"].as_u64()?)))
        .collect();

    let mut builder = Cache::<u64>::builder(dim)
        .max_entries(args.capacity)
        .threshold(args.threshold);
    if args.brute_force {
        builder = builder.flat_limit(usize::MAX);
    }
    let cache = builder.build().map_err(|e| e.to_string())?;
    let scopes: Vec<Scope> = (0..args.scopes)
        .map(|i| Scope::builder().tenant(format!("tenant-{i}")).build())
        .collect();
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let mut latency: HashMap<&str, Vec<u64>> = HashMap::new();
    let (
        mut sem_correct,
        mut sem_total,
        mut para_served,
        mut para_total,
        mut new_wrong,
        mut new_total,
    ) = (0, 0, 0, 0, 0, 0);
    let (mut pair_correct, mut pair_labelled) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        let id = step["text_id"]
            .as_u64()
            .ok_or(format!("step {i}: no text_id"))?;
        let text = texts
            .get(&id)
            .ok_or(format!("step {i}: unknown text {id}"))?;
        let vector = row(id).ok_or(format!("step {i}: no embedding row {id}"))?;
        let scope = &scopes[(id % args.scopes) as usize];
        let t = Instant::now();
        let r = cache
            .lookup(scope, text, |_| Ok::<_, std::io::Error>(vector))
            .map_err(|e| format!("step {i}: {e}"))?;
        let ns = t.elapsed().as_nanos() as u64;
        let (kind, matched, similarity) = match &r {
            Lookup::Hit(h) if h.source() == Source::Exact => {
                ("exact", Some(*h.value()), Some(h.similarity()))
            }
            Lookup::Hit(h) if h.source() == Source::Alias => {
                ("alias", Some(*h.value()), Some(h.similarity()))
            }
            Lookup::Hit(h) => ("semantic", Some(*h.value()), Some(h.similarity())),
            Lookup::Miss(_) => ("miss", None, None),
        };
        latency.entry(kind).or_default().push(ns);
        let expect = step["expect"].as_str().unwrap_or("");
        let correct =
            matched.is_some_and(|m| cluster_of.get(&m) == step["cluster"].as_u64().as_ref());
        if kind == "semantic" {
            sem_total += 1;
            sem_correct += usize::from(correct);
            if let (Some(p), Some(m)) = (&pairs, matched) {
                if let Some(&label) = p.get(&(id, m)) {
                    pair_labelled += 1;
                    pair_correct += usize::from(label == 1);
                }
            }
        }
        if expect.starts_with("paraphrase_of") {
            para_total += 1;
            para_served += usize::from(kind == "semantic" && correct);
        } else if expect == "new" {
            new_total += 1;
            new_wrong += usize::from(kind == "semantic" && !correct);
        }
        if let Lookup::Miss(miss) = r {
            cache
                .insert_miss(miss, id)
                .map_err(|e| format!("step {i}: {e}"))?;
        }
        if let Some(w) = out.as_mut() {
            let line = json!({"step": i, "text_id": id, "result": kind, "matched_id": matched, "similarity": similarity, "latency_ns": ns});
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
    }
    let mut by_result = serde_json::Map::new();
    for kind in ["exact", "semantic", "miss"] {
        let mut l = latency.remove(kind).unwrap_or_default();
        l.sort_unstable();
        by_result.insert(kind.into(), json!({"count": l.len(), "p50_ns": percentile(&l, 0.5), "p99_ns": percentile(&l, 0.99)}));
    }
    let ratio = |a: usize, b: usize| {
        if b == 0 {
            Value::Null
        } else {
            json!(a as f64 / b as f64)
        }
    };
    let mut summary = json!({
        "steps": steps.len(),
        "threshold": args.threshold,
        "scopes": args.scopes,
        "brute_force": args.brute_force,
        "results": by_result,
        "semantic_precision": ratio(sem_correct, sem_total),
        "paraphrase_served": ratio(para_served, para_total),
        "new_served_wrong": ratio(new_wrong, new_total),
    });
    if pairs.is_some() {
        summary["pair_labelled_semantic_hits"] = json!(pair_labelled);
        summary["pair_precision"] = ratio(pair_correct, pair_labelled);
    }
    println!("{summary}");
    Ok(())
}
