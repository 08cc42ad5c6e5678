//! A cache prefetch hint, the one use of `unsafe` in this crate.
//!
//! Written here rather than taken from a crate because it is one instruction: the
//! standard library's `_mm_prefetch` is a `#[target_feature(enable = "sse")]` function,
//! which safe code may only call from a function carrying that attribute, even though
//! SSE is part of the x86_64 baseline.

/// Asks the CPU to start loading every cache line of `*v` and returns at once.
#[inline(always)]
pub(crate) fn read<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let first = std::ptr::from_ref(v).cast::<i8>();
        let size = size_of::<T>();
        let mut at = 0;
        while at < size {
            #[allow(unsafe_code)]
            // SAFETY: a prefetch never faults and never changes memory, whatever the
            // address; SSE is part of the x86_64 baseline, so the feature is always there.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(at));
            }
            at += 64;
        }
        // The last line, which the steps above miss when `*v` does not start a line.
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(size.saturating_sub(1)));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}
