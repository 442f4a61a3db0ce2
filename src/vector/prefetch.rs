//! A hint to the CPU to start fetching memory a search will read soon.
//!
//! A graph walk at 100k entries is bound by fetching neighbours' codes from memory. Plain loads
//! of them (the crate's first way, `black_box` reads) each hold a load-buffer entry until the
//! line arrives, so the walk stalled on them: 58% of its samples sat on those loads (perf,
//! dev-large at 15k). A prefetch instruction retires at once. std has no safe prefetch, hence the
//! one `unsafe` call here.
#![allow(unsafe_code)]

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
    fn hinting_any_slice_is_harmless() {
        super::lines::<i8>(&[]);
        super::lines(&[1i8; 1000]);
        super::lines(&[0.5f32; 3]);
    }
}
