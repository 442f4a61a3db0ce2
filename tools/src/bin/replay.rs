//! Replays a prompt stream through the cache, in the format of the dev data set (its README):
//! each step looks up its text with that text's row of `embeddings.f32` as the embedding; a miss
//! inserts the text with its id as the value.
//!
//! `cargo run --release --example replay -- --data ../shared/data/dev [--threshold 0.9]
//!  [--capacity N] [--scopes K] [--brute-force] [--guards all|none|numbers,negation,entities]
//!  [--no-alias] [--verify-below S] [--out steps.jsonl] [--sweep 0.80,0.85,0.90]`
//!
//! - `--scopes K`: step `i` goes to scope `text_id % K`, so a text and its exact repeats always
//!   share a scope while different texts spread across K tenants (default 1).
//! - `--brute-force`: the semantic tier answers by exact scan (flat partitions only).
//! - `--guards`: which false-hit guards run (default: the cache's default, all).
//! - `--no-alias`: no hit aliases, so every repeat of a rephrasing is searched again.
//! - `--verify-below S`: a verifier for candidates below similarity S that answers from the
//!   stream's clusters: a perfect judge standing in for a cross-encoder, to show how few lookups
//!   reach the band and what a judge there is worth.
//! - Prints a JSON summary: counts and latency p50/p99 by result; with the stream's clusters, the
//!   scores of `reference-bruteforce.jsonl` (semantic_precision, paraphrase_served,
//!   new_served_wrong), where an alias hit counts as the semantic hit it repeats; and, only when
//!   `pairs.jsonl` exists, the precision of semantic hits whose (query, match) pair is labelled.
//! - `--sweep T1,T2,..`: instead, a markdown table of the scores at each threshold for each guard
//!   setting (none, each guard alone, all).

use paracache::{Cache, Guards, Lookup, Scope, Source};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
struct Args {
    data: PathBuf,
    threshold: f32,
    capacity: u64,
    scopes: u64,
    brute_force: bool,
    guards: Guards,
    alias: bool,
    verify_below: Option<f32>,
    out: Option<PathBuf>,
    sweep: Vec<f32>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from("../shared/data/dev"),
        threshold: 0.9,
        capacity: 1_000_000,
        scopes: 1,
        brute_force: false,
        guards: Guards::default(),
        alias: true,
        verify_below: None,
        out: None,
        sweep: Vec::new(),
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
            "--guards" => a.guards = value()?.parse::<Guards>()?,
            "--no-alias" => a.alias = false,
            "--verify-below" => {
                a.verify_below = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--verify-below: {e}"))?,
                )
            }
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--sweep" => {
                a.sweep = value()?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--sweep {t}: {e}")))
                    .collect::<Result<_, _>>()?
            }
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

/// The data set, read once.
struct Data {
    texts: HashMap<u64, String>,
    raw: Vec<u8>,
    steps: Vec<Value>,
    pairs: Option<HashMap<(u64, u64), u64>>,
    cluster_of: Arc<HashMap<u64, u64>>,
    id_of: Arc<HashMap<String, u64>>,
}

const DIM: usize = 384;

impl Data {
    fn load(dir: &Path) -> Result<Data, String> {
        let texts: HashMap<u64, String> = jsonl(&dir.join("texts.jsonl"))?
            .into_iter()
            .filter_map(|t| Some((t["id"].as_u64()?, t["text"].as_str()?.to_string())))
            .collect();
        let raw = std::fs::read(dir.join("embeddings.f32"))
            .map_err(|e| format!("embeddings.f32: {e}"))?;
        let steps = jsonl(&dir.join("replay.jsonl"))?;
        let pairs = jsonl(&dir.join("pairs.jsonl")).ok().map(|ps| {
            ps.into_iter()
                .filter_map(|p| {
                    let (a, b, l) = (p["a"].as_u64()?, p["b"].as_u64()?, p["label"].as_u64()?);
                    Some([((a, b), l), ((b, a), l)])
                })
                .flatten()
                .collect()
        });
        let cluster_of = steps
            .iter()
            .filter_map(|s| Some((s["text_id"].as_u64()?, s["cluster"].as_u64()?)))
            .collect();
        let id_of = texts
            .iter()
            .map(|(id, t)| (paracache::normalize(t).into_owned(), *id))
            .collect();
        Ok(Data {
            texts,
            raw,
            steps,
            pairs,
            cluster_of: Arc::new(cluster_of),
            id_of: Arc::new(id_of),
        })
    }

    fn row(&self, id: u64) -> Option<Vec<f32>> {
        let start = id as usize * DIM * 4;
        let bytes = self.raw.get(start..start + DIM * 4)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// Scores of one replay.
#[derive(Default)]
struct Scores {
    counts: HashMap<&'static str, usize>,
    sem_correct: usize,
    sem_total: usize,
    para_served: usize,
    para_total: usize,
    new_wrong: usize,
    new_total: usize,
    pair_correct: usize,
    pair_labelled: usize,
    latency: HashMap<&'static str, Vec<u64>>,
    stats: Option<paracache::Stats>,
}

fn ratio(a: usize, b: usize) -> Value {
    if b == 0 {
        Value::Null
    } else {
        json!(a as f64 / b as f64)
    }
}

fn replay(args: &Args, data: &Data) -> Result<Scores, String> {
    let mut builder = Cache::<u64>::builder(DIM)
        .max_entries(args.capacity)
        .threshold(args.threshold)
        .guards(args.guards)
        .alias_hits(args.alias);
    if args.brute_force {
        builder = builder.flat_limit(usize::MAX);
    }
    if let Some(below) = args.verify_below {
        let (clusters, ids) = (data.cluster_of.clone(), data.id_of.clone());
        let judge = move |query: &str, matched: &str, _: f32| {
            let cluster = |t: &str| ids.get(t).and_then(|id| clusters.get(id));
            cluster(query).is_some() && cluster(query) == cluster(matched)
        };
        builder = builder.verifier(below, judge);
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
    let mut s = Scores::default();
    for (i, step) in data.steps.iter().enumerate() {
        let id = step["text_id"]
            .as_u64()
            .ok_or(format!("step {i}: no text_id"))?;
        let text = data
            .texts
            .get(&id)
            .ok_or(format!("step {i}: unknown text {id}"))?;
        let vector = data
            .row(id)
            .ok_or(format!("step {i}: no embedding row {id}"))?;
        let scope = &scopes[(id % args.scopes) as usize];
        let t = Instant::now();
        let r = cache
            .lookup(scope, text, |_| Ok::<_, std::io::Error>(vector))
            .map_err(|e| format!("step {i}: {e}"))?;
        let ns = t.elapsed().as_nanos() as u64;
        let (kind, matched, similarity) = match &r {
            Lookup::Hit(h) => {
                let kind = match h.source() {
                    Source::Exact => "exact",
                    Source::Alias => "alias",
                    _ => "semantic",
                };
                (kind, Some(*h.value()), Some(h.similarity()))
            }
            Lookup::Miss(_) => ("miss", None, None),
        };
        *s.counts.entry(kind).or_default() += 1;
        s.latency.entry(kind).or_default().push(ns);
        // An alias hit repeats the semantic hit that made it: it is scored as one.
        let semantic = kind == "semantic" || kind == "alias";
        let expect = step["expect"].as_str().unwrap_or("");
        let correct =
            matched.is_some_and(|m| data.cluster_of.get(&m) == step["cluster"].as_u64().as_ref());
        if semantic {
            s.sem_total += 1;
            s.sem_correct += usize::from(correct);
            if let (Some(p), Some(m)) = (&data.pairs, matched) {
                if let Some(&label) = p.get(&(id, m)) {
                    s.pair_labelled += 1;
                    s.pair_correct += usize::from(label == 1);
                }
            }
        }
        if expect.starts_with("paraphrase_of") {
            s.para_total += 1;
            s.para_served += usize::from(semantic && correct);
        } else if expect == "new" {
            s.new_total += 1;
            s.new_wrong += usize::from(semantic && !correct);
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
    s.stats = Some(cache.stats());
    Ok(s)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("replay: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let data = Data::load(&args.data)?;
    if !args.sweep.is_empty() {
        return sweep(&args, &data);
    }
    let mut s = replay(&args, &data)?;
    let mut by_result = serde_json::Map::new();
    for kind in ["exact", "alias", "semantic", "miss"] {
        let mut l = s.latency.remove(kind).unwrap_or_default();
        l.sort_unstable();
        by_result.insert(kind.into(), json!({"count": l.len(), "p50_ns": percentile(&l, 0.5), "p99_ns": percentile(&l, 0.99)}));
    }
    let stats = s.stats.unwrap_or_default();
    let mut summary = json!({
        "steps": data.steps.len(),
        "threshold": args.threshold,
        "scopes": args.scopes,
        "brute_force": args.brute_force,
        "guards": format!("{:?}", args.guards),
        "alias": args.alias,
        "results": by_result,
        "semantic_precision": ratio(s.sem_correct, s.sem_total),
        "paraphrase_served": ratio(s.para_served, s.para_total),
        "new_served_wrong": ratio(s.new_wrong, s.new_total),
        "embed_calls": stats.embed_calls,
        "guard_rejections": stats.guard_rejections,
        "verifier_calls": stats.verifier_calls,
        "verifier_rejections": stats.verifier_rejections,
    });
    if data.pairs.is_some() {
        summary["pair_labelled_semantic_hits"] = json!(s.pair_labelled);
        summary["pair_precision"] = ratio(s.pair_correct, s.pair_labelled);
    }
    println!("{summary}");
    Ok(())
}

fn sweep(args: &Args, data: &Data) -> Result<(), String> {
    let settings = [
        ("none", Guards::none()),
        ("numbers", Guards::none().numbers(true)),
        ("negation", Guards::none().negation(true)),
        ("entities", Guards::none().entities(true)),
        ("all", Guards::all()),
    ];
    println!(
        "| threshold | guards | semantic hits | precision | paraphrase served | new served wrong | guard rejections | embed calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let pct = |v: Value| {
        v.as_f64()
            .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
    };
    for &t in &args.sweep {
        for (name, guards) in settings {
            let run = Args {
                threshold: t,
                guards,
                out: None,
                ..args.clone()
            };
            let s = replay(&run, data)?;
            let stats = s.stats.unwrap_or_default();
            println!(
                "| {t:.2} | {name} | {} | {} | {} | {} | {} | {} |",
                s.sem_total,
                pct(ratio(s.sem_correct, s.sem_total)),
                pct(ratio(s.para_served, s.para_total)),
                pct(ratio(s.new_wrong, s.new_total)),
                stats.guard_rejections,
                stats.embed_calls,
            );
        }
    }
    Ok(())
}
