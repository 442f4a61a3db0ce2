//! The dev data's prompt stream (`replay.jsonl`) with the texts and vectors it refers to: what
//! replay, shared_replay and calibrate `--replay` read.

use crate::dev_data::{DevDir, Error};
use crate::embeddings::Embeddings;
use std::collections::HashMap;

/// What a step of the stream is, as the data set labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A text the stream has not seen in any phrasing.
    New,
    /// The same text again.
    Exact,
    /// A rephrasing of an earlier text (its id).
    ParaphraseOf(usize),
    /// A label this reader does not know.
    Other,
}

/// One step of the stream.
#[derive(Debug, Clone)]
pub struct Step {
    /// The text looked up.
    pub text_id: usize,
    /// Texts of the same meaning share a cluster.
    pub cluster: Option<u64>,
    /// What the step is.
    pub expect: Expect,
}

/// The stream, its texts and their vectors, read once and checked: every step's text has a text
/// and a vector.
pub struct Stream {
    /// The steps in order.
    pub steps: Vec<Step>,
    /// Text id to text.
    pub texts: HashMap<usize, String>,
    /// Text id to vector.
    pub embeddings: Embeddings,
}

/// The files [`Stream::load`] reads, for [`DevDir::open`].
pub const FILES: [&str; 2] = ["replay.jsonl", "texts.jsonl"];

impl Stream {
    /// Read `replay.jsonl`, `texts.jsonl` and the embeddings.
    pub fn load(dir: &DevDir) -> Result<Stream, Error> {
        let steps = steps(dir)?;
        let texts = dir.texts()?;
        let embeddings = Embeddings::load(dir)?;
        for (i, s) in steps.iter().enumerate() {
            if !texts.contains_key(&s.text_id) || embeddings.row(s.text_id).is_none() {
                return Err(dir.bad(
                    "replay.jsonl",
                    format!("step {i}: text {} has no text or no vector", s.text_id),
                ));
            }
        }
        Ok(Stream {
            steps,
            texts,
            embeddings,
        })
    }

    /// Text `id` (every step's text is there: checked on load).
    pub fn text(&self, id: usize) -> &str {
        &self.texts[&id]
    }

    /// Text `id`'s vector (every step's is there: checked on load).
    pub fn vector(&self, id: usize) -> &[f32] {
        self.embeddings.row(id).unwrap_or_default()
    }

    /// The ids, in order, of the texts with a vector that no step uses: what `replay --prefill`
    /// stores before the stream, and what lookups_under_inserts inserts beside it.
    pub fn unused_ids(&self) -> Vec<usize> {
        let used: std::collections::HashSet<usize> = self.steps.iter().map(|s| s.text_id).collect();
        let mut ids: Vec<usize> = self
            .texts
            .keys()
            .copied()
            .filter(|id| !used.contains(id) && self.embeddings.row(*id).is_some())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Text id to cluster, for every text the stream uses.
    pub fn clusters(&self) -> HashMap<usize, u64> {
        self.steps
            .iter()
            .filter_map(|s| Some((s.text_id, s.cluster?)))
            .collect()
    }
}

/// `replay.jsonl` alone.
pub fn steps(dir: &DevDir) -> Result<Vec<Step>, Error> {
    dir.jsonl("replay.jsonl")?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text_id = s["text_id"]
                .as_u64()
                .ok_or_else(|| dir.bad("replay.jsonl", format!("step {i}: no text_id")))?
                as usize;
            let expect = match s["expect"].as_str().unwrap_or("") {
                "new" => Expect::New,
                "exact" => Expect::Exact,
                e => match e.strip_prefix("paraphrase_of:").map(str::parse) {
                    Some(Ok(of)) => Expect::ParaphraseOf(of),
                    _ => Expect::Other,
                },
            };
            Ok(Step {
                text_id,
                cluster: s["cluster"].as_u64(),
                expect,
            })
        })
        .collect()
}
