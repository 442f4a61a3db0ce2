//! The offline default embedder: lexical feature hashing, no model to download.

use super::Embedder;
use crate::error::BoxError;

/// An offline, dependency-free, *lexical* embedder: feature hashing of lower-cased words and their
/// character trigrams into a fixed-size vector, L2-normalized.
///
/// It is what the quickstart uses so that it runs with nothing to download. Two texts score high
/// when they share most words or word stems ("reset my password" / "resetting the password"); it
/// does **not** understand meaning, so true paraphrases with different words score low and
/// opposite statements with the same words ("is safe" / "is not safe") score high. Use a real
/// sentence-embedding model in production.
///
/// ```
/// use paracache::{Embedder, HashEmbedder};
/// let e = HashEmbedder::new(256);
/// let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
/// let a = e.embed("How do I reset my password?").unwrap();
/// let b = e.embed("how can I reset my password").unwrap();
/// let c = e.embed("Best pizza in Naples").unwrap();
/// assert!(cos(&a, &b) > 0.7 && cos(&a, &c) < 0.3);
/// ```
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimension: usize,
    id: String,
}

impl HashEmbedder {
    /// A hashing embedder producing vectors of `dimension` components (at least 1).
    ///
    /// ```
    /// assert_eq!(paracache::HashEmbedder::new(0).dimension(), 1);
    /// # use paracache::Embedder;
    /// ```
    pub fn new(dimension: usize) -> Self {
        let dimension = dimension.max(1);
        HashEmbedder {
            dimension,
            id: format!("paracache-hash-v1-{dimension}"),
        }
    }

    fn add(&self, v: &mut [f32], feature: &[u8], weight: f32) {
        let h = fnv1a(feature);
        let idx = (h % self.dimension as u64) as usize;
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[idx] += sign * weight;
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, BoxError> {
        let mut v = vec![0.0f32; self.dimension];
        let lower = text.to_lowercase();
        for word in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            self.add(&mut v, word.as_bytes(), 1.0);
            let padded: Vec<char> = std::iter::once('<')
                .chain(word.chars())
                .chain(Some('>'))
                .collect();
            let mut buf = String::new();
            for tri in padded.windows(3) {
                buf.clear();
                buf.extend(tri);
                self.add(&mut v, buf.as_bytes(), 0.5);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            // No word characters: a fixed direction, so the vector is still valid.
            v[0] = 1.0;
        } else {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(v)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn deterministic_unit_and_total() {
        let (a, b) = (HashEmbedder::new(64), HashEmbedder::new(64));
        assert_eq!(
            a.embed("Hello, world").unwrap(),
            b.embed("Hello, world").unwrap()
        );
        for text in [
            "",
            "   ",
            "!!!",
            "word",
            "日本語のテキスト",
            "x".repeat(10_000).as_str(),
        ] {
            let v = a.embed(text).unwrap();
            assert_eq!(v.len(), 64);
            assert!(
                (cos(&v, &v) - 1.0).abs() < 1e-5,
                "{text:?} is not unit length"
            );
        }
        assert_eq!(a.model_id(), "paracache-hash-v1-64");
    }

    #[test]
    fn case_and_punctuation_do_not_matter_but_words_do() {
        let e = HashEmbedder::new(384);
        let a = e.embed("Reset my password").unwrap();
        assert!(cos(&a, &e.embed("reset my password!").unwrap()) > 0.999);
        assert!(cos(&a, &e.embed("bake a chocolate cake").unwrap()) < 0.3);
    }
}
