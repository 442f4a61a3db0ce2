//! Choose a similarity threshold from labelled pairs, and check it on pairs it never saw.
//!
//! `cargo run --release --example calibrate -- [--data ../shared/data/dev]
//!  [--targets 0.8,0.85,0.9,0.95] [--guards all|none|numbers,negation,entities] [--curve]
//!  [--categories 0.8,0.85,0.9] [--at-recall 0.2,0.3,0.4,0.5] [--replay]`
//!
//! Reads `pairs.jsonl`, `texts.jsonl` and `embeddings.f32` in the dev data layout (its README).
//! The pairs are split in two halves by connected component (a text never sits in both), the
//! threshold is fitted on one half for each target precision and checked on the other. With
//! `--guards`, a pair the guards turn away is never served, as in the cache. `--curve` prints the
//! fitted half's precision/recall curve; `--categories` prints, for each pair category, how many
//! pairs each guard setting would serve at the given thresholds; `--at-recall` compares guard
//! settings at equal recall: the best precision each reaches (over all pairs) at each recall.
//! `--replay` calibrates from `replay.jsonl` instead: each distinct text against its most similar
//! earlier one, labelled by cluster ([`Calibration::pairs_from_replay`]); even steps fit, odd
//! steps check.

mod dev_pairs;

use dev_pairs::{DevPairs, Pair};
use paracache::{Calibration, Guards};
use std::path::{Path, PathBuf};

fn floats(spec: &str) -> Result<Vec<f64>, String> {
    spec.split(',')
        .map(|t| t.parse().map_err(|e| format!("{t}: {e}")))
        .collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("calibrate: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut data = PathBuf::from("../shared/data/dev");
    let mut targets = vec![0.80, 0.85, 0.90, 0.95];
    let mut guards = Guards::none();
    let mut show_curve = false;
    let mut categories: Vec<f64> = Vec::new();
    let mut at_recall: Vec<f64> = Vec::new();
    let mut from_replay = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = PathBuf::from(value()?),
            "--targets" => targets = floats(&value()?)?,
            "--guards" => guards = value()?.parse::<Guards>()?,
            "--curve" => show_curve = true,
            "--categories" => categories = floats(&value()?)?,
            "--at-recall" => at_recall = floats(&value()?)?,
            "--replay" => from_replay = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let dev = DevPairs::load(&data)?;
    let (texts, pairs) = (&dev.texts, &dev.pairs);
    if from_replay {
        return replay_calibration(&data, &dev, guards, &targets);
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
    target_table(&fit, &check, &targets)?;
    if show_curve {
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
    if !categories.is_empty() {
        category_table(pairs, &categories, &served_similarity);
    }
    if !at_recall.is_empty() {
        recall_table(pairs, &at_recall, &served_similarity)?;
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
    data: &Path,
    dev: &DevPairs,
    guards: Guards,
    targets: &[f64],
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut clusters = Vec::new();
    for step in dev_pairs::jsonl(&data.join("replay.jsonl"))? {
        let id = step["text_id"].as_u64().ok_or("step without text_id")? as usize;
        if seen.insert(id) {
            ids.push(id);
            clusters.push(step["cluster"].as_u64().unwrap_or(u64::MAX));
        }
    }
    let vectors: Vec<Vec<f32>> = ids.iter().map(|&i| dev.row(i)).collect();
    let steps: Vec<(&[f32], u64)> = vectors.iter().map(|v| v.as_slice()).zip(clusters).collect();
    let mut pairs = Calibration::pairs_from_replay(&steps).map_err(|e| e.to_string())?;
    if !guards.is_none() {
        // Each pair is a text and its nearest earlier text: find that text again for the guards.
        for (i, pair) in pairs.iter_mut().enumerate() {
            let q = &vectors[i + 1];
            let nearest = (0..=i)
                .max_by(|&a, &b| dot(q, &vectors[a]).total_cmp(&dot(q, &vectors[b])))
                .unwrap_or(0);
            if guards
                .check(&dev.texts[&ids[i + 1]], &dev.texts[&ids[nearest]])
                .is_err()
            {
                pair.0 = f32::NEG_INFINITY;
            }
        }
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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
