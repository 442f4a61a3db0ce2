//! The embedding model's cost, beside onnxruntime's in the same run: one prompt at batch 1
//! (p50/p99), batches of 32 (texts/s), and 8 threads calling `embed` at once (texts/s through the
//! micro-batcher, per-call p50/p99, mean batch).
//!
//! ```text
//! bash .ci/fetch-model
//! bash tools/anchor/setup.sh        # once, for the anchor (PyPI's torch, onnxruntime)
//! cargo run --release -p paracache-tools --features bert --bin embed_bench -- \
//!     [--anchor-python target/venv-anchor/bin/python] [--seconds 10]
//! ```
//!
//! The anchor is tools/anchor/embed_anchor.py (onnxruntime from PyPI on an f32 ONNX export of the
//! same weights; tools/anchor/setup.sh makes its venv and the export). With it, the run also
//! checks that both engines return the same vectors (cosine ≥ 0.9999) for the 32 prompts, which
//! the anchor embeds as one padded batch.

use clap::Parser;
use paracache::{BertEmbedder, Embedder};
use paracache_tools::latency::{percentile_us, timed};
use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Embedding latency and throughput, beside onnxruntime in the same run")]
struct Args {
    /// The model directory (model.safetensors, config.json, tokenizer.json).
    #[arg(
        long,
        env = "PARACACHE_MODEL_DIR",
        default_value = "target/models/all-MiniLM-L6-v2"
    )]
    model: PathBuf,
    /// Python with onnxruntime and tokenizers, to run tools/anchor/embed_anchor.py.
    #[arg(long)]
    anchor_python: Option<PathBuf>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Rounds per engine, alternating (each `seconds / rounds` long).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent callers in the micro-batching measurement.
    #[arg(long, default_value_t = 8)]
    threads: usize,
}

/// 32 chat prompts of 11 to 14 words (about 12, the issue's "one prompt"), of the kinds a
/// gateway sees; written for the tools, not taken from the dev data. The gateway's load test
/// with the model (gateway/load/model.sh) asks the same ones.
const PROMPTS_FILE: &str = include_str!("../../../gateway/load/chat_prompts.txt");

static PROMPTS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| PROMPTS_FILE.lines().filter(|l| !l.is_empty()).collect());

/// One engine's samples, pooled over the rounds.
#[derive(Default)]
struct Samples {
    single_ns: Vec<u64>,
    batch_rates: Vec<f64>,
}

struct Figures {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    calls: usize,
    batch_texts_per_s: f64,
}

impl Samples {
    fn add(&mut self, single_ns: Vec<u64>, batch_texts_per_s: f64) {
        self.single_ns.extend(single_ns);
        self.batch_rates.push(batch_texts_per_s);
    }

    fn figures(&mut self) -> Figures {
        self.single_ns.sort_unstable();
        // The median round: one disturbed round does not move it.
        self.batch_rates.sort_by(f64::total_cmp);
        Figures {
            p50_us: percentile_us(&self.single_ns, 0.50),
            p90_us: percentile_us(&self.single_ns, 0.90),
            p99_us: percentile_us(&self.single_ns, 0.99),
            calls: self.single_ns.len(),
            batch_texts_per_s: self
                .batch_rates
                .get(self.batch_rates.len() / 2)
                .copied()
                .unwrap_or(0.0),
        }
    }
}

fn ours(e: &BertEmbedder, seconds: f64, into: &mut Samples) {
    for p in PROMPTS.iter().take(8) {
        e.embed(p).expect("embed"); // warm-up: pages in the weights, starts rayon's threads
    }
    let mut single = Vec::new();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until || single.len() < 50 {
        let (v, ns) = timed(|| e.embed(PROMPTS[single.len() % PROMPTS.len()]));
        assert_eq!(v.expect("embed").len(), e.dimension());
        single.push(ns);
    }
    e.embed_batch(&PROMPTS).expect("embed_batch");
    let (mut rounds, start) = (0usize, Instant::now());
    while start.elapsed().as_secs_f64() < seconds || rounds < 3 {
        assert_eq!(
            e.embed_batch(&PROMPTS).expect("embed_batch").len(),
            PROMPTS.len()
        );
        rounds += 1;
    }
    let per_s = (rounds * PROMPTS.len()) as f64 / start.elapsed().as_secs_f64();
    into.add(single, per_s);
}

/// `threads` callers each embedding prompts one at a time, as concurrent cache misses do: their
/// texts per second and every call's latency.
fn concurrent(e: &BertEmbedder, threads: usize, seconds: f64) -> (f64, Vec<u64>) {
    let start = Instant::now();
    let all: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut i = t * 3;
                    while start.elapsed().as_secs_f64() < seconds {
                        let (v, ns) = timed(|| e.embed(PROMPTS[i % PROMPTS.len()]));
                        v.expect("embed");
                        mine.push(ns);
                        i += 1;
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

fn anchor(
    python: &PathBuf,
    seconds: f64,
    ours: &BertEmbedder,
    into: &mut Samples,
) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("paracache-embed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let texts = dir.join("prompts.jsonl");
    let lines: Vec<String> = PROMPTS
        .iter()
        .map(|p| serde_json::to_string(p).expect("json"))
        .collect();
    std::fs::write(&texts, lines.join("\n")).map_err(|e| e.to_string())?;
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/anchor/embed_anchor.py"
        ))
        .arg("--texts")
        .arg(&texts)
        .arg("--seconds")
        .arg(seconds.to_string())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let single: Vec<u64> = v["batch1_ns"]
        .as_array()
        .ok_or("no batch1_ns")?
        .iter()
        .filter_map(|x| x.as_u64())
        .collect();
    // Same function: the anchor's padded batch against this crate's vectors, text by text.
    let mine = ours.embed_batch(&PROMPTS).map_err(|e| e.to_string())?;
    let theirs = v["vectors"].as_array().ok_or("no vectors")?;
    let worst = mine
        .iter()
        .zip(theirs)
        .map(|(a, b)| {
            let b: Vec<f32> = b
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default();
            a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
        })
        .fold(f32::INFINITY, f32::min);
    if theirs.len() != mine.len() || worst < 0.9999 {
        return Err(format!(
            "the anchor computes another function: lowest cosine {worst} over {} texts",
            theirs.len()
        ));
    }
    into.add(single, v["batch_texts_per_s"].as_f64().unwrap_or(0.0));
    Ok(format!(
        "{} (lowest cosine to paracache's vectors {worst:.7})",
        v["engine"].as_str().unwrap_or("?")
    ))
}

fn main() {
    let args = Args::parse();
    let e = BertEmbedder::from_dir(&args.model).unwrap_or_else(|err| {
        eprintln!("{err} (run `bash .ci/fetch-model` first)");
        std::process::exit(2)
    });
    let words: Vec<usize> = PROMPTS
        .iter()
        .map(|p| p.split_whitespace().count())
        .collect();
    println!(
        "{} prompts of {}-{} words; {} s per measurement in {} alternating rounds; rayon threads {}",
        PROMPTS.len(),
        words.iter().min().unwrap_or(&0),
        words.iter().max().unwrap_or(&0),
        args.seconds,
        args.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Rounds alternate the engines, so that drift in the machine's speed (a shared VM's) lands on
    // both alike.
    let rounds = args.rounds.max(1);
    let slice = args.seconds / rounds as f64;
    let (mut mine, mut anchor_samples) = (Samples::default(), Samples::default());
    let mut theirs: Option<Result<String, String>> = None;
    for _ in 0..rounds {
        ours(&e, slice, &mut mine);
        if let Some(py) = &args.anchor_python
            && theirs.as_ref().is_none_or(Result::is_ok)
        {
            theirs = Some(anchor(py, slice, &e, &mut anchor_samples));
        }
    }
    let mine = mine.figures();
    let theirs = theirs.map(|t| t.map(|engine| (engine, anchor_samples.figures())));
    // The concurrent callers against the batched figure they are held to (embed_batch of as
    // many texts as there are callers, back to back, on one thread), in alternating rounds too.
    let batch: Vec<&str> = (0..args.threads)
        .map(|i| PROMPTS[i % PROMPTS.len()])
        .collect();
    let (mut conc_rates, mut batched_rates, mut conc_calls) = (Vec::new(), Vec::new(), Vec::new());
    let mut batches = (0u64, 0u64);
    for _ in 0..rounds {
        let before = e.batch_counts();
        let (rate, calls) = concurrent(&e, args.threads, slice);
        let after = e.batch_counts();
        batches.0 += after.batches - before.batches;
        batches.1 += after.texts - before.texts;
        conc_rates.push(rate);
        conc_calls.extend(calls);
        let (mut n, start) = (0usize, Instant::now());
        while start.elapsed().as_secs_f64() < slice || n < 3 {
            e.embed_batch(&batch).expect("embed_batch");
            n += 1;
        }
        batched_rates.push((n * batch.len()) as f64 / start.elapsed().as_secs_f64());
    }
    conc_calls.sort_unstable();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (conc_per_s, batched) = (mean(&conc_rates), mean(&batched_rates));
    let (conc_p50, conc_p99) = (
        percentile_us(&conc_calls, 0.5),
        percentile_us(&conc_calls, 0.99),
    );
    let mean_batch = batches.1 as f64 / batches.0.max(1) as f64;
    println!();
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>10} {:>14}",
        "engine", "b1 calls", "b1 p50 ms", "b1 p90 ms", "b1 p99 ms", "batch-32 t/s"
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{:<34} {:>8} {:>10.2} {:>10.2} {:>10.2} {:>14.0}",
            name,
            f.calls,
            f.p50_us / 1e3,
            f.p90_us / 1e3,
            f.p99_us / 1e3,
            f.batch_texts_per_s
        )
    };
    row("paracache BertEmbedder", &mine);
    match &theirs {
        Some(Ok((engine, f))) => {
            row("onnxruntime (anchor)", f);
            println!(
                "ratio paracache / onnxruntime: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x\nanchor: {engine}",
                mine.p50_us / f.p50_us,
                mine.p99_us / f.p99_us,
                mine.batch_texts_per_s / f.batch_texts_per_s
            );
        }
        Some(Err(err)) => println!("anchor failed: {err}"),
        None => println!("(no anchor: pass --anchor-python, see tools/anchor/embed_anchor.py)"),
    }
    println!(
        "\n{} concurrent embed() callers: {conc_per_s:.0} texts/s ({:.0}% of embed_batch of {} texts at {batched:.0} texts/s), \
         per call p50 {:.2} ms p99 {:.2} ms, mean batch {mean_batch:.1}",
        args.threads,
        100.0 * conc_per_s / batched,
        batch.len(),
        conc_p50 / 1e3,
        conc_p99 / 1e3
    );
}
