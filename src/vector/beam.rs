//! The beam of a graph walk: the `ef` most similar slots seen so far, best first, each marked
//! expanded or not.
//!
//! hnswlib keeps two binary heaps (candidates to expand, and the best `ef` results). One sorted
//! array of at most `ef` entries does both jobs: the next slot to expand is the first unexpanded
//! one, and whatever falls off its end was worse than every kept slot, so it would never have
//! been expanded either. At ef 64 an insertion moves at most 64 small entries, which costs less
//! than the heaps' three sift operations per accepted neighbour and the sift on every expansion.

use super::frozen_graph::Best;

#[derive(Clone, Copy)]
struct Kept {
    best: Best,
    expanded: bool,
}

/// At most `ef` slots (the width given to each [`Beam::offer`]), most similar first.
#[derive(Default)]
pub(crate) struct Beam {
    kept: Vec<Kept>,
    /// Every entry before this one is expanded.
    next: usize,
}

impl Beam {
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
        self.next = 0;
    }

    /// Keep `b` if it ranks within a beam of width `ef`. Returns what the beam does not keep:
    /// `b` itself, or the entry it pushed off the end.
    #[inline]
    pub(crate) fn offer(&mut self, b: Best, ef: usize) -> Option<Best> {
        if self.kept.len() >= ef && self.kept.last().is_none_or(|w| b.0 <= w.best.0) {
            return Some(b);
        }
        // After every entry at least as similar: ties keep their arrival order.
        let at = self.kept.partition_point(|k| k.best.0 >= b.0);
        self.kept.insert(
            at,
            Kept {
                best: b,
                expanded: false,
            },
        );
        self.next = self.next.min(at);
        if self.kept.len() > ef {
            return self.kept.pop().map(|k| k.best);
        }
        None
    }

    /// The most similar slot not expanded yet, now marked expanded; `None` when every kept slot
    /// is.
    #[inline]
    pub(crate) fn expand_next(&mut self) -> Option<Best> {
        while let Some(k) = self.kept.get_mut(self.next) {
            self.next += 1;
            if !k.expanded {
                k.expanded = true;
                return Some(k.best);
            }
        }
        None
    }

    /// The kept slots, most similar first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Best> + '_ {
        self.kept.iter().map(|k| k.best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_ef_sorted_and_expands_best_first() {
        let mut beam = Beam::default();
        assert_eq!(beam.offer(Best(0.5, 1), 3), None);
        assert_eq!(beam.offer(Best(0.9, 2), 3), None);
        assert_eq!(beam.expand_next().map(|b| b.1), Some(2));
        assert_eq!(beam.offer(Best(0.7, 3), 3), None);
        // Full: a worse one is refused, a better one pushes the worst off the end.
        assert_eq!(beam.offer(Best(0.4, 4), 3).map(|b| b.1), Some(4));
        assert_eq!(
            beam.offer(Best(0.5, 9), 3).map(|b| b.1),
            Some(9),
            "ties lose"
        );
        assert_eq!(beam.offer(Best(0.8, 5), 3).map(|b| b.1), Some(1));
        assert_eq!(beam.iter().map(|b| b.1).collect::<Vec<_>>(), vec![2, 5, 3]);
        // 2 was expanded; then 5 and 3, in order, then nothing.
        assert_eq!(beam.expand_next().map(|b| b.1), Some(5));
        assert_eq!(beam.offer(Best(0.95, 6), 3).map(|b| b.1), Some(3));
        assert_eq!(
            beam.expand_next().map(|b| b.1),
            Some(6),
            "a better arrival is next"
        );
        assert_eq!(beam.expand_next().map(|b| b.1), None);
        assert_eq!(beam.iter().count(), 3);
        // A wider beam takes more without refusing.
        assert_eq!(beam.offer(Best(0.1, 7), 8), None);
        assert_eq!(beam.expand_next().map(|b| b.1), Some(7));
        beam.clear();
        assert_eq!((beam.iter().count(), beam.expand_next()), (0, None));
    }
}
