//! The dev data set's labelled pairs with their cosine similarities, and the split of those pairs
//! into two halves that share no text. Also used by `tests/calibration.rs`.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// One labelled pair.
pub(crate) struct Pair {
    pub(crate) a: usize,
    pub(crate) b: usize,
    /// Labelled as the same meaning.
    pub(crate) same: bool,
    /// `fow:<category>` for the trap set, else the source (`qqp`, `mqp`).
    pub(crate) category: String,
    pub(crate) similarity: f32,
}

pub(crate) struct DevPairs {
    pub(crate) texts: HashMap<usize, String>,
    pub(crate) pairs: Vec<Pair>,
    raw: Vec<u8>,
}

const DIM: usize = 384;

pub(crate) fn jsonl(path: &Path) -> Result<Vec<Value>, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
        .collect()
}

impl DevPairs {
    pub(crate) fn load(dir: &Path) -> Result<DevPairs, String> {
        let texts: HashMap<usize, String> = jsonl(&dir.join("texts.jsonl"))?
            .iter()
            .filter_map(|t| Some((t["id"].as_u64()? as usize, t["text"].as_str()?.to_string())))
            .collect();
        let raw = std::fs::read(dir.join("embeddings.f32")).map_err(|e| e.to_string())?;
        let mut dev = DevPairs {
            texts,
            pairs: Vec::new(),
            raw,
        };
        for p in jsonl(&dir.join("pairs.jsonl"))? {
            let id = |k: &str| {
                p[k].as_u64()
                    .map(|v| v as usize)
                    .ok_or(format!("pair without {k}"))
            };
            let (a, b) = (id("a")?, id("b")?);
            let category = match p["cat"].as_str() {
                Some(cat) => format!("fow:{cat}"),
                None => p["src"].as_str().unwrap_or("?").to_string(),
            };
            let similarity = dev.row(a).iter().zip(dev.row(b)).map(|(x, y)| x * y).sum();
            dev.pairs.push(Pair {
                a,
                b,
                same: p["label"].as_u64() == Some(1),
                category,
                similarity,
            });
        }
        Ok(dev)
    }

    /// Text `i`'s embedding (empty when the file has no such row).
    pub(crate) fn row(&self, i: usize) -> Vec<f32> {
        self.raw
            .get(i * DIM * 4..(i + 1) * DIM * 4)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// For each pair, half 0 or 1: whole connected components (texts linked by pairs) go to one
    /// half, alternating in order of their smallest text id, so no text is in both halves.
    pub(crate) fn halves(&self) -> Vec<usize> {
        let n = self
            .pairs
            .iter()
            .map(|p| p.a.max(p.b) + 1)
            .max()
            .unwrap_or(0);
        let mut parent: Vec<usize> = (0..n).collect();
        for p in &self.pairs {
            let (ra, rb) = (root(&mut parent, p.a), root(&mut parent, p.b));
            parent[ra.max(rb)] = ra.min(rb);
        }
        let mut roots: Vec<usize> = self.pairs.iter().map(|p| root(&mut parent, p.a)).collect();
        roots.sort_unstable();
        roots.dedup();
        let half: HashMap<usize, usize> =
            roots.iter().enumerate().map(|(i, r)| (*r, i % 2)).collect();
        self.pairs
            .iter()
            .map(|p| half[&root(&mut parent, p.a)])
            .collect()
    }
}

/// Union-find root with path halving.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}
