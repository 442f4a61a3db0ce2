//! Train the cache's learned pair check ([`paracache::PairCheck`]): a logistic regression over
//! [`paracache::PairFeatures`], computed by the crate's own code, on the labelled pairs of a dev
//! data directory, with its probability threshold set by [`Calibration::fit_check`] for a target
//! precision on the candidates at the cache's threshold.
//!
//! `cargo run --release -p paracache-tools --bin train_pair_check -- --data ../shared/data/dev-large
//!  [--min-similarity 0.8] [--at 0.9] [--target 0.9] [--l2 1.0] [--rust src/relevance/pair_check_weights.rs]
//!  [--json model.json] [--eval ../shared/data/dev]`
//!
//! Prints the weights and, with `--eval`, what the check does on another directory's pairs (never
//! used to fit): precision and recall of the pairs served at 0.85 / 0.90 / 0.95 with no guards,
//! the guards, and the guards and the check, and the trap categories served.

use clap::Parser;
use paracache::{Calibration, Feature, Guards, PairCheck, PairFeatures};
use paracache_tools::cli::List;
use paracache_tools::dev_data::{DataArg, DevDir};
use paracache_tools::dev_pairs::{self, DevPairs};
use paracache_tools::pair_model::{FNV_START, PairModel, fnv1a};
use paracache_tools::progress::stage;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Train the learned pair check on labelled pairs.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Train on the pairs whose cosine is at least this (the region candidates come from).
    #[arg(long, default_value_t = 0.8)]
    min_similarity: f32,
    /// The cache threshold whose candidates the check's threshold is calibrated on.
    #[arg(long, default_value_t = 0.9)]
    at: f32,
    /// Target precision of the pairs served at `--at` (95% lower confidence bound).
    #[arg(long, default_value_t = 0.9)]
    target: f64,
    /// L2 penalties on the standardised weights to choose from: with more than one, each is
    /// fitted on one half of the training pairs (halves share no text) and scored on the other
    /// (AUC of the candidates at `--at` past the guards), both ways round; the best is then
    /// fitted on all of them.
    #[arg(long, default_value = "30,300,3000,30000", value_name = "L,L..")]
    l2: List<f64>,
    /// Write the weights as the crate's Rust constants to this file.
    #[arg(long, value_name = "FILE")]
    rust: Option<PathBuf>,
    /// Write the weights as JSON (for `replay --pair-check FILE`).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Report on the pairs of this other data directory (not used to fit).
    #[arg(long, value_name = "DIR")]
    eval: Option<PathBuf>,
    /// Write every training-region pair (similarity, label, guarded, score, features, texts) as
    /// tab-separated lines to this file, for reading by hand.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Use only the lexical features (no per-dimension vector weights).
    #[arg(long)]
    lexical: bool,
    /// Gradient steps (full-batch Adam).
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Thresholds of the `--eval` report.
    #[arg(long, default_value = "0.85,0.9,0.95", value_name = "T,T..")]
    thresholds: List<f32>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("train_pair_check: {e}");
        std::process::exit(2);
    }
}

/// Features and label of each pair, computed by the crate's code.
struct Rows {
    features: Vec<PairFeatures>,
    similarity: Vec<f32>,
    same: Vec<bool>,
    guarded: Vec<bool>,
    category: Vec<String>,
}

fn rows(dev: &DevPairs) -> Rows {
    let mut r = Rows {
        features: Vec::new(),
        similarity: Vec::new(),
        same: Vec::new(),
        guarded: Vec::new(),
        category: Vec::new(),
    };
    for p in &dev.pairs {
        let (a, b) = (&dev.texts[&p.a], &dev.texts[&p.b]);
        // The cache sees normalized prompts.
        let (a, b) = (paracache::normalize(a), paracache::normalize(b));
        r.features.push(PairFeatures::of(&a, &b, p.similarity));
        r.similarity.push(p.similarity);
        r.same.push(p.same);
        r.guarded.push(Guards::all().check(&a, &b).is_err());
        r.category.push(p.category.clone());
    }
    r
}

/// The L2 penalty: the only one given, or the one whose fits on each half of the training pairs
/// rank the other half's candidates best.
fn choose_l2(
    args: &Args,
    dev: &DevPairs,
    all: &Rows,
    train: &[usize],
    x: &[Vec<f32>],
) -> Result<f64, String> {
    let grid = &args.l2.0;
    if grid.len() == 1 {
        return Ok(grid[0]);
    }
    let halves = dev.halves();
    let mut best = (f64::NEG_INFINITY, grid[0]);
    for &l2 in grid {
        let mut aucs = Vec::new();
        for fit_half in [0, 1] {
            let (xs, ys): (Vec<Vec<f32>>, Vec<bool>) = train
                .iter()
                .zip(x)
                .filter(|(i, _)| halves[**i] == fit_half)
                .map(|(&i, r)| (r.clone(), all.same[i]))
                .unzip();
            let (w, mean, sd) = fit_adam(&xs, &ys, l2, args.steps);
            let held: Vec<usize> = train
                .iter()
                .enumerate()
                .filter(|(_, i)| {
                    halves[**i] != fit_half && all.similarity[**i] >= args.at && !all.guarded[**i]
                })
                .map(|(k, _)| k)
                .collect();
            let d = mean.len();
            let scores: Vec<f32> = held
                .iter()
                .map(|&k| {
                    let z: f64 = (0..d)
                        .map(|j| w[j] * (f64::from(x[k][j]) - mean[j]) / sd[j])
                        .sum();
                    z as f32
                })
                .collect();
            let labels: Vec<bool> = held.iter().map(|&k| all.same[train[k]]).collect();
            aucs.push(auc(&scores, &labels));
        }
        let mean_auc = (aucs[0] + aucs[1]) / 2.0;
        eprintln!("l2 {l2}: held-out half AUC {:.4} / {:.4}", aucs[0], aucs[1]);
        if mean_auc > best.0 {
            best = (mean_auc, l2);
        }
    }
    eprintln!("l2 chosen: {}", best.1);
    Ok(best.1)
}

/// One pair's inputs: the lexical features, then (unless lexical-only) the vectors'
/// element-wise product and absolute difference.
fn inputs(dev: &DevPairs, all: &Rows, k: usize, lexical: bool) -> Vec<f32> {
    let mut v = all.features[k].values().to_vec();
    if !lexical {
        let p = &dev.pairs[k];
        let (a, b) = (dev.row(p.a), dev.row(p.b));
        v.extend(a.iter().zip(b).map(|(x, y)| x * y));
        v.extend(a.iter().zip(b).map(|(x, y)| (x - y).abs()));
    }
    v
}

fn data_hash(dir: &DevDir) -> Result<String, String> {
    let mut h = FNV_START;
    let mut names = Vec::new();
    for name in [
        "pairs.jsonl",
        "texts.jsonl",
        "embeddings.f32",
        "embeddings.f16",
    ] {
        if dir.has(name) {
            let bytes = std::fs::read(dir.file(name)).map_err(|e| format!("{name}: {e}"))?;
            h = fnv1a(h, &bytes);
            names.push(name);
        }
    }
    Ok(format!("fnv1a64:{h:016x} over {}", names.join(" + ")))
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let dir = DevDir::open(&args.data.dir, &dev_pairs::FILES).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let dev = DevPairs::read(&dir).map_err(|e| e.to_string())?;
    let hash = data_hash(&dir)?;
    st.done();
    let st = stage("features");
    let all = rows(&dev);
    st.done();
    let train: Vec<usize> = (0..all.same.len())
        .filter(|&i| all.similarity[i] >= args.min_similarity)
        .collect();
    let x: Vec<Vec<f32>> = train
        .iter()
        .map(|&i| inputs(&dev, &all, i, args.lexical))
        .collect();
    let y: Vec<bool> = train.iter().map(|&i| all.same[i]).collect();
    let l2 = choose_l2(&args, &dev, &all, &train, &x)?;
    let st = stage(format!(
        "fitting on {} pairs, {} inputs",
        x.len(),
        x[0].len()
    ));
    let (ws, mean, sd) = fit_adam(&x, &y, l2, args.steps);
    st.done();
    // Back to the raw scale: w / sd, and the means folded into the bias.
    let d = mean.len();
    let w: Vec<f64> = (0..d).map(|j| ws[j] / sd[j]).collect();
    let bias = ws[d] - (0..d).map(|j| w[j] * mean[j]).sum::<f64>();
    let to32 = |v: &[f64]| -> Vec<f32> { v.iter().map(|x| *x as f32).collect() };
    let lex = |v: &[f64]| -> [f32; PairFeatures::LEN] {
        let mut a = [0.0f32; PairFeatures::LEN];
        for (dst, src) in a.iter_mut().zip(v) {
            *dst = *src as f32;
        }
        a
    };
    let n = PairFeatures::LEN;
    let model = |threshold: f32| {
        PairCheck::new(
            lex(&w),
            to32(&w[n..]),
            bias as f32,
            lex(&mean),
            to32(&mean[n..]),
            threshold,
        )
    };
    let unthresholded = model(0.0);
    let score_of = |k: usize| {
        let p = &dev.pairs[k];
        unthresholded.score(&all.features[k], dev.row(p.a), dev.row(p.b))
    };
    // The check sees only candidates the guards pass: a pair a guard turns away is never served.
    let scored: Vec<(f32, f32, bool)> = (0..all.same.len())
        .map(|i| {
            let score = if all.guarded[i] {
                f32::NEG_INFINITY
            } else {
                score_of(i)
            };
            (all.similarity[i], score, all.same[i])
        })
        .collect();
    let cal = Calibration::fit_check(&scored, args.at, args.target).map_err(|e| e.to_string())?;
    let base = Calibration::evaluate(
        &scored
            .iter()
            .filter(|p| p.0 >= args.at)
            .map(|p| (p.1, p.2))
            .collect::<Vec<_>>(),
        f32::NEG_INFINITY + f32::MIN_POSITIVE,
    );
    eprintln!(
        "candidates at cosine >= {} passing the guards: {} served, precision {:.4}",
        args.at, base.served, base.precision
    );
    let curve = cal.curve();
    for k in (0..curve.len()).step_by((curve.len() / 25).max(1)) {
        let p = curve[k];
        eprintln!(
            "  score >= {:.4}: served {} precision {:.4} (lower {:.4}) recall {:.4}",
            p.threshold, p.served, p.precision, p.precision_lower, p.recall
        );
    }
    let threshold = match cal.threshold() {
        Some(t) => t,
        None => {
            let b = cal.best();
            return Err(format!(
                "target {} unreachable at {}: best {:.4} (lower bound {:.4}) at score {}",
                args.target, args.at, b.precision, b.precision_lower, b.threshold
            ));
        }
    };
    let chosen = cal.chosen().unwrap_or(cal.best());
    let check = model(threshold);
    let train_auc = {
        let r: Vec<usize> = (0..all.same.len())
            .filter(|&i| all.similarity[i] >= args.at && !all.guarded[i])
            .collect();
        let sc: Vec<f32> = r.iter().map(|&i| score_of(i)).collect();
        let cos: Vec<f32> = r.iter().map(|&i| all.similarity[i]).collect();
        let y: Vec<bool> = r.iter().map(|&i| all.same[i]).collect();
        (auc(&cos, &y), auc(&sc, &y))
    };
    println!(
        "trained on {} pairs (cosine >= {}) of {}",
        x.len(),
        args.min_similarity,
        dir.path().display()
    );
    println!("data: {hash}");
    println!("| feature | weight | training mean |");
    println!("| --- | --- | --- |");
    for (i, f) in Feature::ALL.iter().enumerate() {
        println!("| {f} | {:+.4} | {:.4} |", w[i], mean[i]);
    }
    println!("| bias | {bias:+.4} | |");
    if !args.lexical {
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        println!(
            "vector weights: product norm {:.3}, difference norm {:.3} (standardised: {:.3}, {:.3})",
            norm(&w[n..n + (d - n) / 2]),
            norm(&w[n + (d - n) / 2..]),
            norm(&ws[n..n + (d - n) / 2]),
            norm(&ws[n + (d - n) / 2..d]),
        );
    }
    println!(
        "AUC at cosine >= {} past the guards (training pairs): cosine {:.4}, check {:.4}",
        args.at, train_auc.0, train_auc.1
    );
    println!(
        "check threshold {threshold:.4}: target {} at cosine >= {}, fit precision {:.4} (lower bound {:.4}), recall {:.4}, {} served",
        args.target,
        args.at,
        chosen.precision,
        chosen.precision_lower,
        chosen.recall,
        chosen.served
    );
    let command = format!(
        "cargo run --release -p paracache-tools --bin train_pair_check -- --data {} --min-similarity {} --at {} --target {} --l2 {} --steps {}{} --rust src/relevance/pair_check_weights.rs",
        dir.path().display(),
        args.min_similarity,
        args.at,
        args.target,
        l2,
        args.steps,
        if args.lexical { " --lexical" } else { "" },
    );
    let file = PairModel {
        weights: to32(&w[..n]),
        vector_weights: to32(&w[n..]),
        vector_means: to32(&mean[n..]),
        bias: bias as f32,
        means: to32(&mean[..n]),
        threshold,
        data: dir.path().display().to_string(),
        data_hash: hash.clone(),
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.rust {
        std::fs::write(path, rust_file(&file, &command, x.len(), chosen.precision))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.dump {
        let mut out = String::new();
        for (k, p) in dev.pairs.iter().enumerate() {
            if all.similarity[k] < args.min_similarity {
                continue;
            }
            let f: Vec<String> = all.features[k]
                .values()
                .iter()
                .map(|x| format!("{x}"))
                .collect();
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                all.similarity[k],
                u8::from(all.same[k]),
                u8::from(all.guarded[k]),
                check.score(&all.features[k], dev.row(p.a), dev.row(p.b)),
                f.join(","),
                dev.texts[&p.a].replace('\t', " "),
                dev.texts[&p.b].replace('\t', " ")
            );
        }
        std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(eval) = &args.eval {
        report(eval, &check, &args.thresholds.0)?;
    }
    Ok(())
}

/// Values eight to a line, as rustfmt leaves them.
fn rows8(v: &[f32]) -> String {
    v.chunks(8)
        .map(|c| {
            let items: Vec<String> = c.iter().map(|x| format!("{x:?}")).collect();
            format!("    {},\n", items.join(", "))
        })
        .collect()
}

fn rust_file(m: &PairModel, command: &str, n: usize, precision: f64) -> String {
    let list = |v: &[f32]| {
        v.iter()
            .zip(Feature::ALL)
            .map(|(x, f)| format!("    {x:?}, // {f}\n"))
            .collect::<String>()
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "//! The shipped [`PairCheck`](super::PairCheck)'s weights. Generated; do not edit. Made by\n\
         //!\n\
         //! ```text\n\
         //! {command}\n\
         //! ```\n\
         //!\n\
         //! from {n} labelled pairs; data {}.\n\
         //! Threshold fitted by `Calibration::fit_check` (sample precision {precision:.4}).\n\n\
         use super::pair_check::PairFeatures;\n\n\
         /// Weights, in the order of `Feature::ALL`.\n\
         pub(super) const WEIGHTS: [f32; PairFeatures::LEN] = [\n{}];\n\
         /// Weights of the vectors' element-wise product, then of their absolute difference.\n\
         pub(super) const VECTOR_WEIGHTS: [f32; {}] = [\n{}];\n\
         /// The intercept.\n\
         pub(super) const BIAS: f32 = {:?};\n\
         /// Each feature's mean on the training pairs.\n\
         pub(super) const MEANS: [f32; PairFeatures::LEN] = [\n{}];\n\
         /// Each vector feature's mean on the training pairs.\n\
         pub(super) const VECTOR_MEANS: [f32; {}] = [\n{}];\n\
         /// The probability at or above which a candidate is served.\n\
         pub(super) const THRESHOLD: f32 = {:?};\n",
        m.data_hash,
        list(&m.weights),
        m.vector_weights.len(),
        rows8(&m.vector_weights),
        m.bias,
        list(&m.means),
        m.vector_means.len(),
        rows8(&m.vector_means),
        m.threshold,
    );
    s
}

/// Pair-level report on another directory: what each setting serves at each threshold.
fn report(eval: &std::path::Path, check: &PairCheck, thresholds: &[f32]) -> Result<(), String> {
    let dir = DevDir::open(eval, &dev_pairs::FILES).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let dev = DevPairs::read(&dir).map_err(|e| e.to_string())?;
    let all = rows(&dev);
    st.done();
    let passes = |i: usize| {
        let p = &dev.pairs[i];
        check
            .check_features(&all.features[i], dev.row(p.a), dev.row(p.b))
            .is_ok()
    };
    println!("\nout of sample, on the pairs of {}:", dir.path().display());
    for &t in thresholds {
        let r: Vec<usize> = (0..all.same.len())
            .filter(|&i| all.similarity[i] >= t && !all.guarded[i])
            .collect();
        let score = |i: usize| {
            let p = &dev.pairs[i];
            check.score(&all.features[i], dev.row(p.a), dev.row(p.b))
        };
        let sc: Vec<f32> = r.iter().map(|&i| score(i)).collect();
        let cos: Vec<f32> = r.iter().map(|&i| all.similarity[i]).collect();
        let y: Vec<bool> = r.iter().map(|&i| all.same[i]).collect();
        println!(
            "AUC at cosine >= {t} past the guards ({} pairs): cosine {:.4}, check {:.4}",
            r.len(),
            auc(&cos, &y),
            auc(&sc, &y)
        );
    }
    println!("| threshold | setting | served | precision | recall |");
    println!("| --- | --- | --- | --- | --- |");
    let positives = all.same.iter().filter(|s| **s).count();
    for &t in thresholds {
        for (name, mode) in [("no guards", 0), ("guards", 1), ("guards + check", 2)] {
            let served: Vec<usize> = (0..all.same.len())
                .filter(|&i| all.similarity[i] >= t)
                .filter(|&i| mode == 0 || !all.guarded[i])
                .filter(|&i| mode < 2 || passes(i))
                .collect();
            let correct = served.iter().filter(|&&i| all.same[i]).count();
            println!(
                "| {t:.2} | {name} | {} | {:.4} | {:.4} |",
                served.len(),
                correct as f64 / served.len().max(1) as f64,
                correct as f64 / positives.max(1) as f64
            );
        }
    }
    let mut cats: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let t = 0.9;
    for i in 0..all.same.len() {
        if all.same[i] || all.similarity[i] < t {
            continue;
        }
        let c = cats.entry(&all.category[i]).or_default();
        c[0] += 1;
        c[1] += usize::from(!all.guarded[i]);
        c[2] += usize::from(passes(i));
        c[3] += usize::from(!all.guarded[i] && passes(i));
    }
    println!(
        "\nlabel-0 pairs at cosine >= {t} served (no guards / guards / check alone / guards + check):"
    );
    for (c, n) in cats {
        println!("{c}: {} / {} / {} / {}", n[0], n[1], n[2], n[3]);
    }
    Ok(())
}

/// Area under the ROC curve of `score` for `same`.
fn auc(score: &[f32], same: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let npos = same.iter().filter(|s| **s).count() as f64;
    let nneg = same.len() as f64 - npos;
    let (mut pos, mut acc) = (0.0, 0.0);
    for i in idx {
        if same[i] {
            pos += 1.0;
        } else {
            acc += npos - pos;
        }
    }
    acc / (npos * nneg)
}

/// Full-batch Adam on standardised features with an L2 penalty: weights on the standardised
/// scale, with the means and deviations.
fn fit_adam(x: &[Vec<f32>], y: &[bool], l2: f64, steps: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let d = x[0].len();
    let n = x.len() as f64;
    let mut mean = vec![0.0; d];
    let mut sd = vec![0.0; d];
    for r in x {
        for j in 0..d {
            mean[j] += f64::from(r[j]) / n;
        }
    }
    for r in x {
        for j in 0..d {
            sd[j] += (f64::from(r[j]) - mean[j]).powi(2) / n;
        }
    }
    for v in &mut sd {
        *v = if *v > 1e-12 { v.sqrt() } else { 1.0 };
    }
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            let mut v: Vec<f64> = (0..d)
                .map(|j| (f64::from(r[j]) - mean[j]) / sd[j])
                .collect();
            v.push(1.0);
            v
        })
        .collect();
    let mut w = vec![0.0; d + 1];
    let (mut m, mut v) = (vec![0.0; d + 1], vec![0.0; d + 1]);
    let lr = 0.05;
    for t in 1..=steps {
        let mut g = vec![0.0; d + 1];
        for (zi, &yi) in z.iter().zip(y) {
            let s: f64 = zi.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-s).exp());
            let r = (p - f64::from(u8::from(yi))) / n;
            for (gj, zj) in g.iter_mut().zip(zi) {
                *gj += r * zj;
            }
        }
        for j in 0..d {
            g[j] += l2 / n * w[j];
        }
        for j in 0..=d {
            m[j] = 0.9 * m[j] + 0.1 * g[j];
            v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
            let mh = m[j] / (1.0 - 0.9f64.powi(t as i32));
            let vh = v[j] / (1.0 - 0.999f64.powi(t as i32));
            w[j] -= lr * mh / (vh.sqrt() + 1e-8);
        }
    }
    (w, mean, sd)
}
