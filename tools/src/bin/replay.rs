//! Replays a prompt stream through the cache, in the format of the dev data set (its README):
//! each step looks up its text with that text's row of the embeddings as the embedding; a miss
//! inserts the text with its id as the value.
//!
//! `cargo run --release -p paracache-tools --bin replay -- --data ../shared/data/dev
//!  [--threshold 0.9] [--capacity N] [--scopes K] [--brute-force] [--guards all|none|numbers,..]
//!  [--no-alias] [--verify-below S] [--out steps.jsonl] [--sweep 0.80,0.85,0.90]
//!  [--pair-check shipped|none|FILE] [--settings none,numbers,negation,entities,all,check]
//!  [--steps N] [--prefill K] [--inline-index]`
//!
//! Prints a JSON summary (stdout): counts and latency p50/p99 by result (and of the inserts that
//! follow misses), the prefill's seconds (graph build included), resident memory before the
//! cache and at the end (Linux); with the stream's
//! clusters, the scores of `reference-bruteforce.jsonl` (semantic_precision, paraphrase_served,
//! new_served_wrong), where an alias hit counts as the semantic hit it repeats; and, only when
//! `pairs.jsonl` exists, the precision of semantic hits whose (query, match) pair is labelled, and
//! the label-0 pairs served by category (the trap categories among them).
//! With `--sweep`, a markdown table instead. Progress goes to stderr.

use clap::Parser;
use paracache::{Cache, Guards, Lookup, PairCheck, Scope, Source};
use paracache_tools::cli::{Engine, List};
use paracache_tools::dev_data::{DataArg, DevDir};
use paracache_tools::embeddings::DIM;
use paracache_tools::latency::{Latencies, percentile_ns, timed};
use paracache_tools::memory;
use paracache_tools::pair_model;
use paracache_tools::progress::{Progress, stage};
use paracache_tools::stream::{self, Expect, Stream};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Replay the dev data's prompt stream through the cache and score its answers.
#[derive(Parser, Clone)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Similarity threshold of the semantic tier.
    #[arg(long, default_value_t = 0.9)]
    threshold: f32,
    /// The cache's entry capacity.
    #[arg(long, default_value_t = 1_000_000)]
    capacity: u64,
    /// Step i goes to scope text_id % K, so a text and its exact repeats always share a scope
    /// while different texts spread across K tenants.
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    scopes: u64,
    /// The semantic tier answers by exact scan (flat partitions only).
    #[arg(long)]
    brute_force: bool,
    /// The graph engine: links (the crate's own, default) or hnsw-rs.
    #[arg(long, default_value_t = Engine::default(), value_name = "links|hnsw-rs")]
    graph_engine: Engine,
    /// Which false-hit guards run: all, none, or a list of numbers, negation, entities.
    #[arg(long, default_value = "all", value_name = "all|none|LIST")]
    guards: Guards,
    /// Build graphs and link inserted vectors into them on the inserting thread instead of in
    /// the background (`CacheBuilder::background_rebuild(false)`).
    #[arg(long)]
    inline_index: bool,
    /// The learned pair check: `shipped` (the crate's default), `none`, or a JSON model written by
    /// `train_pair_check --json` (in a sweep, `{t}` in the name is replaced by the threshold, as
    /// `0.90`, so each threshold can have its own calibrated check).
    #[arg(long, default_value = "shipped", value_name = "shipped|none|FILE")]
    pair_check: String,
    /// The settings a sweep compares: none, numbers, negation, entities, all (guards without the
    /// pair check), check (all guards and the pair check).
    #[arg(
        long,
        default_value = "none,numbers,negation,entities,all,check",
        value_name = "S,S.."
    )]
    settings: List<String>,
    /// No hit aliases, so every repeat of a rephrasing is searched again.
    #[arg(long)]
    no_alias: bool,
    /// A verifier for candidates below similarity S that answers from the stream's clusters: a
    /// perfect judge standing in for a cross-encoder, to show how few lookups reach the band and
    /// what a judge there is worth.
    #[arg(long, value_name = "S")]
    verify_below: Option<f32>,
    /// Write one JSON line per step (result, matched id, similarity, latency, and for a miss
    /// what turned its best candidate away) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replay only the first N steps of the stream (to measure at a smaller size).
    #[arg(long, value_name = "N")]
    steps: Option<usize>,
    /// Before the stream, insert (untimed) the first K texts, by id, that no step of the stream
    /// uses, so that the stream runs against a larger cache (all of them with a huge K: dev-large
    /// then ends at its full 93k entries). `tools/peers.py --data` prefills its peers alike.
    #[arg(long, value_name = "K", default_value_t = 0)]
    prefill: usize,
    /// Instead of one replay, a markdown table of the scores at each of these thresholds for
    /// each guard setting (none, each guard alone, all).
    #[arg(long, value_name = "T,T..")]
    sweep: Option<List<f32>>,
}

/// The stream and what scoring needs beside it, read once.
struct Data {
    stream: Stream,
    /// Labels and categories of (query, match) pairs, both ways round, when the data has
    /// pairs.jsonl.
    pairs: Option<HashMap<(usize, usize), (u64, String)>>,
    cluster_of: Arc<HashMap<usize, u64>>,
    id_of: Arc<HashMap<String, usize>>,
}

impl Data {
    fn load(dir: &DevDir) -> Result<Data, String> {
        let stream = Stream::load(dir).map_err(|e| e.to_string())?;
        let pairs = if dir.has("pairs.jsonl") {
            let ps = dir.jsonl("pairs.jsonl").map_err(|e| e.to_string())?;
            Some(
                ps.into_iter()
                    .filter_map(|p| {
                        let (a, b) = (p["a"].as_u64()? as usize, p["b"].as_u64()? as usize);
                        let l = p["label"].as_u64()?;
                        let cat = match p["cat"].as_str() {
                            Some(cat) => format!("fow:{cat}"),
                            None => p["src"].as_str().unwrap_or("?").to_string(),
                        };
                        Some([((a, b), (l, cat.clone())), ((b, a), (l, cat))])
                    })
                    .flatten()
                    .collect(),
            )
        } else {
            None
        };
        let id_of = stream
            .texts
            .iter()
            .map(|(id, t)| (paracache::normalize(t).into_owned(), *id))
            .collect();
        Ok(Data {
            cluster_of: Arc::new(stream.clusters()),
            id_of: Arc::new(id_of),
            pairs,
            stream,
        })
    }
}

/// Scores of one replay.
#[derive(Default)]
struct Scores {
    sem_correct: usize,
    sem_total: usize,
    para_served: usize,
    para_total: usize,
    new_wrong: usize,
    new_total: usize,
    pair_correct: usize,
    pair_labelled: usize,
    /// Label-0 pairs served, by category.
    wrong_by_category: BTreeMap<String, usize>,
    latency: Latencies,
    stats: paracache::Stats,
    /// Steps replayed (`--steps`) and texts prefilled before them (`--prefill`).
    steps: usize,
    prefilled: usize,
    /// Seconds the prefill took, its graph build included.
    prefill_seconds: f64,
    /// Resident memory with the data loaded, before the cache exists, and at the end of the
    /// replay with the cache still alive.
    rss_before_cache: Option<u64>,
    rss_at_end: Option<u64>,
}

fn ratio(a: usize, b: usize) -> Value {
    if b == 0 {
        Value::Null
    } else {
        json!(a as f64 / b as f64)
    }
}

fn build(args: &Args, data: &Data) -> Result<Cache<usize>, String> {
    let mut builder = Cache::<usize>::builder(DIM)
        .max_entries(args.capacity)
        .threshold(args.threshold)
        .guards(args.guards)
        .pair_check(check_for(args)?)
        .alias_hits(!args.no_alias)
        .background_rebuild(!args.inline_index)
        .graph_engine(args.graph_engine.0);
    if args.brute_force {
        builder = builder.exact_scan_limit(usize::MAX);
    }
    if let Some(below) = args.verify_below {
        let (clusters, ids) = (data.cluster_of.clone(), data.id_of.clone());
        let judge = move |query: &str, matched: &str, _: f32| {
            let cluster = |t: &str| ids.get(t).and_then(|id| clusters.get(id));
            cluster(query).is_some() && cluster(query) == cluster(matched)
        };
        builder = builder.verifier(below, judge);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The pair check of `--pair-check`, with `{t}` read as the threshold.
fn check_for(args: &Args) -> Result<Option<PairCheck>, String> {
    pair_model::parse_flag(
        &args
            .pair_check
            .replace("{t}", &format!("{:.2}", args.threshold)),
    )
}

fn replay(args: &Args, data: &Data, label: &str) -> Result<Scores, String> {
    let rss_before_cache = memory::rss_bytes();
    let cache = build(args, data)?;
    let scopes: Vec<Scope> = (0..args.scopes)
        .map(|i| Scope::builder().tenant(format!("tenant-{i}")).build())
        .collect();
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => None,
    };
    let steps = &data.stream.steps[..args
        .steps
        .unwrap_or(usize::MAX)
        .min(data.stream.steps.len())];
    let started = std::time::Instant::now();
    let mut s = Scores {
        steps: steps.len(),
        prefilled: prefill(args, data, &cache, &scopes)?,
        prefill_seconds: started.elapsed().as_secs_f64(),
        rss_before_cache,
        ..Scores::default()
    };
    let progress = Progress::new(format!("{label}: steps"), steps.len());
    for (i, step) in steps.iter().enumerate() {
        let id = step.text_id;
        let vector = data.stream.vector(id).to_vec();
        let scope = &scopes[(id as u64 % args.scopes) as usize];
        let (r, ns) = timed(|| {
            cache.lookup(scope, data.stream.text(id), |_| {
                Ok::<_, std::io::Error>(vector)
            })
        });
        let r = r.map_err(|e| format!("step {i}: {e}"))?;
        let (kind, matched, similarity) = match &r {
            Lookup::Hit(h) => {
                let kind = match h.source() {
                    Source::Exact => "exact",
                    Source::Alias => "alias",
                    _ => "semantic",
                };
                (kind, Some(*h.value()), Some(h.similarity()))
            }
            _ => ("miss", None, None),
        };
        s.latency.record(kind, ns);
        // An alias hit repeats the semantic hit that made it: it is scored as one.
        let semantic = kind == "semantic" || kind == "alias";
        let correct = matched.is_some_and(|m| data.cluster_of.get(&m) == step.cluster.as_ref());
        if semantic {
            s.sem_total += 1;
            s.sem_correct += usize::from(correct);
            if let Some((label, cat)) = data
                .pairs
                .as_ref()
                .zip(matched)
                .and_then(|(p, m)| p.get(&(id, m)))
            {
                s.pair_labelled += 1;
                s.pair_correct += usize::from(*label == 1);
                if *label == 0 {
                    *s.wrong_by_category.entry(cat.clone()).or_default() += 1;
                }
            }
        }
        match step.expect {
            Expect::ParaphraseOf(_) => {
                s.para_total += 1;
                s.para_served += usize::from(semantic && correct);
            }
            Expect::New => {
                s.new_total += 1;
                s.new_wrong += usize::from(semantic && !correct);
            }
            _ => {}
        }
        let rejected_by = match &r {
            Lookup::Miss(m) => m.rejected_by().map(|why| why.to_string()),
            _ => None,
        };
        if let Lookup::Miss(miss) = r {
            let (inserted, ns) = timed(|| cache.insert_miss(miss, id));
            inserted.map_err(|e| format!("step {i}: {e}"))?;
            s.latency.record("insert", ns);
        }
        if let Some(w) = out.as_mut() {
            let line = json!({"step": i, "text_id": id, "result": kind, "matched_id": matched, "similarity": similarity, "latency_ns": ns, "rejected_by": rejected_by});
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
        progress.add(1);
    }
    progress.finish();
    s.stats = cache.stats();
    s.rss_at_end = memory::rss_bytes();
    Ok(s)
}

/// The texts `--prefill` inserts: the first K ids, in order, that no step uses.
fn prefill_ids(data: &Data, k: usize) -> Vec<usize> {
    let mut ids = data.stream.unused_ids();
    ids.truncate(k);
    ids
}

/// Insert the `--prefill` texts and settle the index; how many were inserted.
fn prefill(
    args: &Args,
    data: &Data,
    cache: &Cache<usize>,
    scopes: &[Scope],
) -> Result<usize, String> {
    let ids = prefill_ids(data, args.prefill);
    if ids.is_empty() {
        return Ok(0);
    }
    let count = ids.len();
    let progress = Progress::new("prefill: texts", ids.len());
    for id in ids {
        let scope = &scopes[(id as u64 % args.scopes) as usize];
        cache
            .insert(
                scope,
                data.stream.text(id),
                data.stream.vector(id).to_vec(),
                id,
            )
            .map_err(|e| format!("prefill {id}: {e}"))?;
        progress.add(1);
    }
    progress.finish();
    // Warm-up ends when the graph is built, as the peers' bulk imports end with theirs.
    cache.compact();
    Ok(count)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("replay: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let dir = DevDir::open(&args.data.dir, &stream::FILES).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let data = Data::load(&dir)?;
    st.done();
    if let Some(thresholds) = &args.sweep {
        return sweep(&args, &data, thresholds);
    }
    let mut s = replay(&args, &data, "replay")?;
    let mut by_result = serde_json::Map::new();
    for kind in ["exact", "alias", "semantic", "miss", "insert"] {
        let l = s.latency.sorted(kind);
        by_result.insert(
            kind.into(),
            json!({"count": l.len(), "p50_ns": percentile_ns(l, 0.5), "p99_ns": percentile_ns(l, 0.99)}),
        );
    }
    let stats = &s.stats;
    let mut summary = json!({
        "steps": s.steps,
        "prefilled": s.prefilled,
        "prefill_seconds": s.prefill_seconds,
        "rss_before_cache_bytes": s.rss_before_cache,
        "rss_at_end_bytes": s.rss_at_end,
        "entries_at_end": s.stats.entries,
        "threshold": args.threshold,
        "scopes": args.scopes,
        "brute_force": args.brute_force,
        "graph_engine": args.graph_engine.to_string(),
        "guards": format!("{:?}", args.guards),
        "pair_check": check_for(&args)?.map(|c| c.threshold()),
        "alias": !args.no_alias,
        "results": by_result,
        "semantic_precision": ratio(s.sem_correct, s.sem_total),
        "paraphrase_served": ratio(s.para_served, s.para_total),
        "new_served_wrong": ratio(s.new_wrong, s.new_total),
        "embed_calls": stats.embed_calls,
        "rebuilds": stats.rebuilds,
        "index_pending_at_end": stats.index_pending,
        "guard_rejections": stats.guard_rejections,
        "pair_check_rejections": stats.pair_check_rejections,
        "verifier_calls": stats.verifier_calls,
        "verifier_rejections": stats.verifier_rejections,
    });
    if data.pairs.is_some() {
        summary["pair_labelled_semantic_hits"] = json!(s.pair_labelled);
        summary["pair_precision"] = ratio(s.pair_correct, s.pair_labelled);
        summary["label0_served_by_category"] = json!(s.wrong_by_category);
    }
    println!("{summary}");
    Ok(())
}

fn sweep(args: &Args, data: &Data, thresholds: &[f32]) -> Result<(), String> {
    let setting = |name: &str| -> Result<(Guards, bool), String> {
        Ok(match name {
            "check" => (Guards::all(), true),
            other => (other.parse::<Guards>()?, false),
        })
    };
    println!(
        "| threshold | setting | semantic hits | precision | labelled-pair precision (hits) | paraphrase served | new served wrong | guard rejections | check rejections | label-0 pairs served | embed calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let pct = |v: Value| {
        v.as_f64()
            .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
    };
    for &t in thresholds {
        for name in &args.settings.0 {
            let (guards, check) = setting(name)?;
            let run = Args {
                threshold: t,
                guards,
                pair_check: if check {
                    args.pair_check.clone()
                } else {
                    "none".into()
                },
                out: None,
                ..args.clone()
            };
            let s = replay(&run, data, &format!("sweep {t:.2} {name}"))?;
            let wrong: Vec<String> = s
                .wrong_by_category
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            println!(
                "| {t:.2} | {name} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
                s.sem_total,
                pct(ratio(s.sem_correct, s.sem_total)),
                ratio(s.pair_correct, s.pair_labelled)
                    .as_f64()
                    .map_or("-".into(), |x| format!("{:.2}%", 100.0 * x)),
                s.pair_labelled,
                pct(ratio(s.para_served, s.para_total)),
                pct(ratio(s.new_wrong, s.new_total)),
                s.stats.guard_rejections,
                s.stats.pair_check_rejections,
                if wrong.is_empty() {
                    "0".into()
                } else {
                    wrong.join(", ")
                },
                s.stats.embed_calls,
            );
        }
    }
    Ok(())
}
