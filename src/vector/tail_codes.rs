//! 8-bit codes of the slots a graph segment's view does not cover yet (its tail).
//!
//! Every lookup scans the tail, and while inserts outrun the indexer that is hundreds of slots
//! (the indexed slots past the view, plus the backlog): ~400 on average in the 16k dev-large
//! replay, at ~50 ns each as a half-precision dot product over vectors scattered in memory, a
//! fifth of a lookup. Scanned as contiguous codes, a slot costs a fraction of that, and only the
//! few whose possible similarity reaches the floor are rescored with the stored vector. The
//! codes are dropped as the view comes to cover their slots, so they take memory only for the
//! tail.

use super::codes::Quantized;

/// Codes of consecutive slots `first..first + len()`.
#[derive(Default)]
pub(crate) struct TailCodes {
    first: usize,
    dim: usize,
    /// `dim` codes per slot, slot after slot.
    codes: Vec<i8>,
    /// One per slot.
    scales: Vec<f32>,
}

impl TailCodes {
    fn len(&self) -> usize {
        self.scales.len()
    }

    /// Record `slot`'s codes. A slot that does not follow the last one recorded (the slots
    /// before it have none) starts the run afresh there.
    pub(crate) fn push(&mut self, slot: usize, q: Quantized) {
        if slot != self.first + self.len() || (self.dim != q.codes.len() && self.len() > 0) {
            self.codes.clear();
            self.scales.clear();
            self.first = slot;
        }
        self.dim = q.codes.len();
        self.codes.extend_from_slice(&q.codes);
        self.scales.push(q.scale);
    }

    /// Forget the codes of the slots below `slot`: the view covers them now.
    pub(crate) fn drop_below(&mut self, slot: usize) {
        let gone = slot.saturating_sub(self.first).min(self.len());
        self.codes.drain(..gone * self.dim);
        self.scales.drain(..gone);
        self.first += gone;
        if self.scales.is_empty() {
            self.first = slot;
            // A tail that ran long (a bulk load) leaves no large buffer behind.
            self.codes.shrink_to(64 * self.dim);
            self.scales.shrink_to(64);
        }
    }

    /// `slot`'s codes and scale, if recorded.
    pub(crate) fn get(&self, slot: usize) -> Option<(&[i8], f32)> {
        let i = slot.checked_sub(self.first)?;
        let scale = *self.scales.get(i)?;
        Some((self.codes.get(i * self.dim..(i + 1) * self.dim)?, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: f32) -> Quantized {
        Quantized::new(&[x, 1.0 - x])
    }

    #[test]
    fn codes_follow_their_slots_through_drops_and_gaps() {
        let mut t = TailCodes::default();
        for slot in 10..14 {
            t.push(slot, q(slot as f32 / 20.0));
        }
        assert!(t.get(9).is_none() && t.get(14).is_none());
        assert_eq!(t.get(12).unwrap().0, &q(0.6).codes[..]);
        t.drop_below(12);
        assert!(t.get(11).is_none(), "covered by the view now");
        assert_eq!(t.get(13).unwrap().1, q(0.65).scale);
        // A gap (slots 14..20 have no codes) starts a new run.
        t.push(20, q(0.1));
        assert!(t.get(13).is_none());
        assert_eq!(t.get(20).unwrap().0, &q(0.1).codes[..]);
        t.drop_below(100);
        assert!(t.get(20).is_none());
        t.push(100, q(0.3));
        assert_eq!(t.get(100).unwrap().1, q(0.3).scale);
    }
}
