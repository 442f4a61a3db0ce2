//! The dev data set's labelled pairs with their cosine similarities, and the split of those pairs
//! into two halves that share no text. Used by calibrate and by the core's calibration test.

use crate::dev_data::{DevDir, Error};
use crate::embeddings::Embeddings;
use std::collections::HashMap;
use std::path::Path;

/// One labelled pair.
pub struct Pair {
    /// One text's id.
    pub a: usize,
    /// The other text's id.
    pub b: usize,
    /// Labelled as the same meaning.
    pub same: bool,
    /// `fow:<category>` for the trap set, else the source (`qqp`, `mqp`).
    pub category: String,
    /// Cosine of the two texts' vectors.
    pub similarity: f32,
}

/// `pairs.jsonl` with the texts and vectors it refers to.
pub struct DevPairs {
    /// Text id to text.
    pub texts: HashMap<usize, String>,
    /// The labelled pairs, in file order.
    pub pairs: Vec<Pair>,
    embeddings: Embeddings,
}

/// The files [`DevPairs::load`] reads, for [`DevDir::open`].
pub const FILES: [&str; 2] = ["pairs.jsonl", "texts.jsonl"];

impl DevPairs {
    /// Read the pairs of the dev data in `dir`; a missing directory or file is an error that says
    /// what the data is and how to point at it.
    pub fn load(dir: &Path) -> Result<DevPairs, Error> {
        Self::read(&DevDir::open(dir, &FILES)?)
    }

    /// Read the pairs of a checked directory.
    pub fn read(dir: &DevDir) -> Result<DevPairs, Error> {
        let texts = dir.texts()?;
        let embeddings = Embeddings::load(dir)?;
        let mut pairs = Vec::new();
        for (i, p) in dir.jsonl("pairs.jsonl")?.iter().enumerate() {
            let id = |k: &str| {
                p[k].as_u64()
                    .map(|v| v as usize)
                    .filter(|&v| embeddings.row(v).is_some() && texts.contains_key(&v))
                    .ok_or_else(|| dir.bad("pairs.jsonl", format!("pair {i}: bad or unknown {k}")))
            };
            let (a, b) = (id("a")?, id("b")?);
            let category = match p["cat"].as_str() {
                Some(cat) => format!("fow:{cat}"),
                None => p["src"].as_str().unwrap_or("?").to_string(),
            };
            pairs.push(Pair {
                a,
                b,
                same: p["label"].as_u64() == Some(1),
                category,
                similarity: dot(row(&embeddings, a), row(&embeddings, b)),
            });
        }
        Ok(DevPairs {
            texts,
            pairs,
            embeddings,
        })
    }

    /// Text `i`'s embedding (empty when the file has no such row).
    pub fn row(&self, i: usize) -> &[f32] {
        row(&self.embeddings, i)
    }

    /// For each pair, half 0 or 1: whole connected components (texts linked by pairs) go to one
    /// half, alternating in order of their smallest text id, so no text is in both halves.
    pub fn halves(&self) -> Vec<usize> {
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

fn row(e: &Embeddings, i: usize) -> &[f32] {
    e.row(i).unwrap_or_default()
}

/// Dot product: the cosine of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Union-find root with path halving.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}
