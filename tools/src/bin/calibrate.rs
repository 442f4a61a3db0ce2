//! Choose a similarity threshold from labelled pairs, and check it on pairs it never saw.
//!
//! `cargo run --release -p paracache-tools --bin calibrate -- [--data ../shared/data/dev]
//!  [--targets 0.8,0.85,0.9,0.95] [--guards all|none|numbers,negation,entities] [--curve]
//!  [--categories 0.8,0.85,0.9] [--at-recall 0.2,0.3,0.4,0.5] [--replay]`
//!
//! Reads `pairs.jsonl`, `texts.jsonl` and `embeddings.f32` (or `.f16`) in the dev data layout
//! (its README).
//! The pairs are split in two halves by connected component (a text never sits in both), the
//! threshold is fitted on one half for each target precision and checked on the other. With
//! `--guards`, a pair the guards turn away is never served, as in the cache. `--curve` prints the
//! fitted half's precision/recall curve; `--categories` prints, for each pair category, how many
//! pairs each guard setting would serve at the given thresholds; `--at-recall` compares guard
//! settings at equal recall: the best precision each reaches (over all pairs) at each recall.
//! `--replay` calibrates from `replay.jsonl` instead: each distinct text against its most similar
//! earlier one, labelled by cluster ([`Calibration::pairs_from_replay`]); even steps fit, odd
//! steps check.

use clap::Parser;
use paracache::{Calibration, Guards};
use paracache_tools::cli::List;
use paracache_tools::dev_data::{DataArg, DevDir};
use paracache_tools::dev_pairs::{self, DevPairs, Pair, dot};
use paracache_tools::progress::{Progress, stage};
use paracache_tools::stream;

/// Choose a similarity threshold from labelled pairs, and check it on pairs it never saw.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataArg,
    /// Target precisions to fit a threshold for, each checked on the held-out half.
    #[arg(long, default_value = "0.8,0.85,0.9,0.95", value_name = "P,P..")]
    targets: List<f64>,
    /// Guards applied to every pair (a pair they turn away is never served, as in the cache):
    /// all, none, or a list of numbers, negation, entities.
    #[arg(long, default_value = "none", value_name = "all|none|LIST")]
    guards: Guards,
    /// Also print the fitted half's precision/recall curve (for the first target).
    #[arg(long)]
    curve: bool,
    /// For each pair category, how many pairs each guard setting serves at these thresholds.
    #[arg(long, value_name = "T,T..")]
    categories: Option<List<f64>>,
    /// Compare guard settings at equal recall: the best precision each reaches (over all pairs)
    /// at each of these recalls.
    #[arg(long, value_name = "R,R..")]
    at_recall: Option<List<f64>>,
    /// Calibrate from replay.jsonl instead: each distinct text against its most similar earlier
    /// one, labelled by cluster; even steps fit, odd steps check.
    #[arg(long)]
    replay: bool,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("calibrate: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse();
    let (targets, guards) = (&args.targets.0, args.guards);
    let mut files = dev_pairs::FILES.to_vec();
    if args.replay {
        files.push("replay.jsonl");
    }
    let dir = DevDir::open(&args.data.dir, &files).map_err(|e| e.to_string())?;
    let st = stage(format!("loading {}", dir.path().display()));
    let dev = DevPairs::read(&dir).map_err(|e| e.to_string())?;
    st.done();
    let (texts, pairs) = (&dev.texts, &dev.pairs);
    if args.replay {
        return replay_calibration(&dir, &dev, guards, targets);
    }
    let served_similarity = |p: &Pair, g: Guards| -> f32 {
        match g.check(&texts[&p.a], &texts[&p.b]) {
            Ok(()) => p.similarity,
            Err(_) => f32::NEG_INFINITY,
        }
    };
    let halves = dev.halves();
    let (mut fit, mut check) = (Vec::new(), Vec::new());
    for (p, half) in pairs.iter().zip(&halves) {
        let labelled = (served_similarity(p, guards), p.same);
        if *half == 0 {
            fit.push(labelled)
        } else {
            check.push(labelled)
        }
    }
    println!(
        "pairs: {} (fit {}, check {}), guards: {guards:?}",
        pairs.len(),
        fit.len(),
        check.len()
    );
    target_table(&fit, &check, targets)?;
    if args.curve {
        let c = Calibration::fit(&fit, targets[0]).map_err(|e| e.to_string())?;
        println!("\nthreshold precision recall served");
        let step = (c.curve().len() / 40).max(1);
        for p in c.curve().iter().step_by(step) {
            println!(
                "{:.4} {:.4} {:.4} {}",
                p.threshold, p.precision, p.recall, p.served
            );
        }
    }
    if let Some(thresholds) = &args.categories {
        category_table(pairs, thresholds, &served_similarity);
    }
    if let Some(recalls) = &args.at_recall {
        recall_table(pairs, recalls, &served_similarity)?;
    }
    Ok(())
}

/// Fit on `fit` for each target and check on `check`, as a markdown table.
fn target_table(fit: &[(f32, bool)], check: &[(f32, bool)], targets: &[f64]) -> Result<(), String> {
    println!(
        "| target | threshold | fit precision | fit recall | held-out precision | held-out recall | held-out served |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &target in targets {
        let c = Calibration::fit(fit, target).map_err(|e| e.to_string())?;
        match c.chosen() {
            Some(p) => {
                let h = Calibration::evaluate(check, p.threshold);
                println!(
                    "| {target:.2} | {:.4} | {:.4} ({:.4}) | {:.4} | {:.4} | {:.4} | {} |",
                    p.threshold,
                    p.precision,
                    p.precision_lower,
                    p.recall,
                    h.precision,
                    h.recall,
                    h.served
                );
            }
            None => {
                let b = c.best();
                println!(
                    "| {target:.2} | unreachable | best {:.4} ({:.4}) at {:.4}, {} pairs | {:.4} | | | |",
                    b.precision, b.precision_lower, b.threshold, b.served, b.recall
                );
            }
        }
    }
    Ok(())
}

/// Calibrate from the replay stream: fit on its first half, check on its second.
fn replay_calibration(
    dir: &DevDir,
    dev: &DevPairs,
    guards: Guards,
    targets: &[f64],
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut clusters = Vec::new();
    for step in stream::steps(dir).map_err(|e| e.to_string())? {
        if seen.insert(step.text_id) {
            ids.push(step.text_id);
            clusters.push(step.cluster.unwrap_or(u64::MAX));
        }
    }
    let vectors: Vec<&[f32]> = ids.iter().map(|&i| dev.row(i)).collect();
    let steps: Vec<(&[f32], u64)> = vectors.iter().copied().zip(clusters).collect();
    let st = stage(format!(
        "pairing each of {} texts with its nearest earlier one",
        ids.len()
    ));
    let mut pairs = Calibration::pairs_from_replay(&steps).map_err(|e| e.to_string())?;
    st.done();
    if !guards.is_none() {
        // Each pair is a text and its nearest earlier text: find that text again for the guards
        // (a scan over every earlier text: quadratic, minutes on dev-large, hence the progress).
        let progress = Progress::new("replay: guard checks", pairs.len());
        for (i, pair) in pairs.iter_mut().enumerate() {
            let q = vectors[i + 1];
            let nearest = (0..=i)
                .max_by(|&a, &b| dot(q, vectors[a]).total_cmp(&dot(q, vectors[b])))
                .unwrap_or(0);
            progress.add(1);
            if guards
                .check(&dev.texts[&ids[i + 1]], &dev.texts[&ids[nearest]])
                .is_err()
            {
                pair.0 = f32::NEG_INFINITY;
            }
        }
        progress.finish();
    }
    // Alternate steps, not the stream's two halves: later steps meet more stored prompts, so
    // the halves are not alike.
    let (fit, check): (Vec<_>, Vec<_>) = pairs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let fit: Vec<(f32, bool)> = fit.into_iter().map(|(_, p)| *p).collect();
    let check: Vec<(f32, bool)> = check.into_iter().map(|(_, p)| *p).collect();
    println!(
        "replay: {} distinct texts, fit on the even steps ({} pairs), check on the odd ({}); guards: {guards:?}",
        ids.len(),
        fit.len(),
        check.len()
    );
    target_table(&fit, &check, targets)
}

const SETTINGS: [(&str, Guards); 5] = [
    ("none", Guards::none()),
    ("numbers", Guards::none().numbers(true)),
    ("negation", Guards::none().negation(true)),
    ("entities", Guards::none().entities(true)),
    ("all", Guards::all()),
];

/// For each guard setting, the best precision (and its threshold) at recall at least R.
fn recall_table(
    pairs: &[Pair],
    recalls: &[f64],
    served: &dyn Fn(&Pair, Guards) -> f32,
) -> Result<(), String> {
    println!("\nbest precision at equal recall, all pairs (threshold in brackets)");
    print!("| recall ≥ |");
    for (name, _) in &SETTINGS {
        print!(" {name} |");
    }
    println!("\n| --- |{}", " --- |".repeat(SETTINGS.len()));
    let curves: Vec<Calibration> = SETTINGS
        .iter()
        .map(|(_, g)| {
            let labelled: Vec<(f32, bool)> =
                pairs.iter().map(|p| (served(p, *g), p.same)).collect();
            Calibration::fit(&labelled, 1.0).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for &r in recalls {
        print!("| {r:.2} |");
        for c in &curves {
            let best = c
                .curve()
                .iter()
                .filter(|p| p.recall >= r)
                .max_by(|a, b| a.precision.total_cmp(&b.precision));
            match best {
                Some(p) => print!(" {:.4} ({:.3}) |", p.precision, p.threshold),
                None => print!(" unreachable |"),
            }
        }
        println!();
    }
    Ok(())
}

/// For each category, how many pairs each guard setting serves at each threshold.
fn category_table(pairs: &[Pair], thresholds: &[f64], served: &dyn Fn(&Pair, Guards) -> f32) {
    let settings = SETTINGS;
    let mut cats: Vec<&str> = pairs.iter().map(|p| p.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    for &t in thresholds {
        println!("\nserved at threshold {t} (label-1 pairs served / label-0 pairs served, of n)");
        print!("| category | n |");
        for (name, _) in &settings {
            print!(" {name} |");
        }
        println!("\n| --- | --- |{}", " --- |".repeat(settings.len()));
        for cat in cats.iter().copied().chain(["all"]) {
            let in_cat: Vec<&Pair> = pairs
                .iter()
                .filter(|p| cat == "all" || p.category == cat)
                .collect();
            print!("| {cat} | {} |", in_cat.len());
            for (_, g) in &settings {
                let (mut pos, mut neg) = (0, 0);
                for p in &in_cat {
                    if f64::from(served(p, *g)) >= t {
                        if p.same { pos += 1 } else { neg += 1 }
                    }
                }
                print!(" {pos} / {neg} |");
            }
            println!();
        }
    }
}
