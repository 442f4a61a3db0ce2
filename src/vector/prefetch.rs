//! A hint to the CPU to start fetching memory a search will read soon.
//!
//! A graph walk at 100k entries is bound by fetching neighbours' codes from memory. Plain loads
//! of them (the crate's first way, `black_box` reads) each hold a load-buffer entry until the
//! line arrives, so the walk stalled on them: 58% of its samples sat on those loads (perf,
//! dev-large at 15k). A prefetch instruction retires at once. std has no safe prefetch, hence the
//! one `unsafe` call here.
#![allow(unsafe_code)]

/// How many items ahead of the one being worked on [`each_ahead`] hints: far enough for a fetch
/// from memory to finish behind a few comparisons, near enough that the lines are still in L1.
/// Walks (codes) and graph builds (vectors) measured no better at 2 or 8.
pub(crate) const AHEAD: usize = 4;

/// Call `visit` on each of `items` in order, `hint`ing (prefetching) the item [`AHEAD`] places
/// further on first, so the fetches overlap the work instead of queueing behind it.
#[inline]
pub(crate) fn each_ahead<T>(items: &[T], hint: impl Fn(&T), mut visit: impl FnMut(&T)) {
    items.iter().take(AHEAD).for_each(&hint);
    for (i, item) in items.iter().enumerate() {
        if let Some(ahead) = items.get(i + AHEAD) {
            hint(ahead);
        }
        visit(item);
    }
}

/// Ask for every cache line of `bytes` to be brought into the L1 cache. Does nothing where the
/// target has no prefetch intrinsic in stable Rust.
#[inline]
pub(crate) fn lines<T>(bytes: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = bytes.as_ptr().cast::<i8>();
        let len = std::mem::size_of_val(bytes);
        for offset in (0..len).step_by(64) {
            // SAFETY: `start + offset` lies inside `bytes` (offset < its byte length), so the
            // pointer arithmetic stays in one allocation; a prefetch never faults and reads
            // nothing the program can observe, so any address would be sound to hint at.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_ahead_visits_every_item_in_order_and_hints_each_once_before_its_visit() {
        for n in [0, 1, super::AHEAD, super::AHEAD + 1, 10] {
            let items: Vec<usize> = (0..n).collect();
            let log = std::cell::RefCell::new(Vec::new());
            super::each_ahead(
                &items,
                |&i| log.borrow_mut().push(('h', i)),
                |&i| log.borrow_mut().push(('v', i)),
            );
            let log = log.into_inner();
            let visits: Vec<usize> = log.iter().filter(|e| e.0 == 'v').map(|e| e.1).collect();
            assert_eq!(visits, items);
            for &i in &items {
                let hinted = log.iter().position(|&e| e == ('h', i));
                let visited = log.iter().position(|&e| e == ('v', i));
                assert!(hinted < visited, "{i} hinted before its visit");
                assert_eq!(log.iter().filter(|&&e| e == ('h', i)).count(), 1);
            }
        }
    }

    #[test]
    fn hinting_any_slice_is_harmless() {
        super::lines::<i8>(&[]);
        super::lines(&[1i8; 1000]);
        super::lines(&[0.5f32; 3]);
    }
}
