//! The process's allocator: mimalloc, its settings, and what it holds.
//!
//! [`Heap`] is the global allocator of the `shardcast` binary. It is mimalloc; with the
//! `heap-stats` feature it also counts the bytes the program holds ([`live_bytes`]), so a soak
//! can tell memory the program keeps (its own tables and buffers) from memory the allocator
//! keeps (freed pages not yet returned, fragmentation). The count costs one uncontended atomic
//! add per allocation and per free, which is why it is a feature and not the default.
//!
//! [`committed_bytes`] is always available: the memory mimalloc has committed from the OS.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::os::raw::c_long;

/// mimalloc, counted under the `heap-stats` feature.
pub struct Heap;

// SAFETY: every call is forwarded unchanged to MiMalloc, which upholds GlobalAlloc's contract;
// the counting beside it does not allocate and touches no memory the caller owns.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for this method is MiMalloc's.
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            count::add(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for this method is MiMalloc's.
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count::add(layout.size() as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for this method is MiMalloc's.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        count::add(-(layout.size() as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for this method is MiMalloc's.
        let p = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count::add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Bytes the program holds through [`Heap`] (requested sizes, not the allocator's rounding),
/// or `None` when the binary was built without the `heap-stats` feature.
pub fn live_bytes() -> Option<i64> {
    count::total()
}

#[cfg(feature = "heap-stats")]
mod count {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    /// Counters, one cache line each; a thread adds to the slot it was given, so threads
    /// rarely share a line. More threads than slots share slots, which stays correct.
    const SLOTS: usize = 64;

    #[repr(align(64))]
    struct Slot(AtomicI64);

    static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        // Const-initialised and without Drop: usable from inside the allocator at any time,
        // thread exit included.
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    #[inline]
    pub fn add(bytes: i64) {
        let slot = MINE.with(|mine| {
            let mut slot = mine.get();
            if slot == usize::MAX {
                slot = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
                mine.set(slot);
            }
            slot
        });
        COUNTS[slot].0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn total() -> Option<i64> {
        Some(COUNTS.iter().map(|s| s.0.load(Ordering::Relaxed)).sum())
    }
}

#[cfg(not(feature = "heap-stats"))]
mod count {
    #[inline(always)]
    pub fn add(_bytes: i64) {}

    pub fn total() -> Option<i64> {
        None
    }
}

/// Bytes mimalloc has committed from the OS right now (live blocks, free blocks in its pages,
/// and pages freed but not yet purged).
pub fn committed_bytes() -> usize {
    let mut commit = 0usize;
    // The other seven figures mi_process_info reports (times, RSS, peaks, page faults).
    let mut rest = [0usize; 7];
    let [elapsed, user, system, rss, peak_rss, peak_commit, faults] = &mut rest;
    // SAFETY: mi_process_info writes one size_t through each pointer; all eight are valid.
    unsafe {
        mi_process_info(
            elapsed,
            user,
            system,
            rss,
            peak_rss,
            &mut commit,
            peak_commit,
            faults,
        )
    };
    commit
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (include/mimalloc.h); the
/// `libmimalloc-sys` bindings predate it. [`tests`] check the index against its default.
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// Milliseconds freed memory stays committed before it goes back to the OS.
///
/// mimalloc 3 keeps memory that was freed committed for `purge_delay` (1 s by default) before
/// giving it back to the OS. Under churn (segments, batches and connections allocated on one
/// shard and freed on another) that holds a second of garbage in the resident set, which moves
/// RSS by megabytes from one sample to the next and hides what the server really holds. 10 ms
/// still batches the returns (one `madvise` per run of free pages, not one per free) and keeps
/// RSS within a few pages of the live memory.
pub const PURGE_DELAY_MS: c_long = 10;

/// `mi_option_allow_thp` in mimalloc 3's `mi_option_t`; [`tests`] check it as above.
const MI_OPTION_ALLOW_THP: i32 = 43;

extern "C" {
    fn mi_option_set(option: i32, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: i32) -> c_long;
    #[allow(clippy::too_many_arguments)]
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
}

/// Applies the allocator's settings; the binary calls it first thing in `main`.
///
/// Transparent huge pages are turned off for the process. mimalloc 3 asks for them on its
/// arenas (`MADV_HUGEPAGE`), and then RSS stops following the heap: a first touch faults in a
/// whole 2 MiB page, a purge of free memory inside one splits it, and khugepaged later
/// collapses the range back into a huge page, zero-filling the freed parts (up to 511 of 512
/// empty 4 KiB pages with the kernel's default `max_ptes_none`). Under churn the resident set
/// then creeps towards the span of every 2 MiB range the heap ever touched, not what it holds:
/// in a soak, 55 MiB of the arena's 60 MiB resident were huge pages, with 41 MiB live. The
/// option stops mimalloc's `madvise`, and `PR_SET_THP_DISABLE`
/// (what mimalloc itself does when the option is set before its start, which is before
/// `main`) stops huge page faults and khugepaged for the arena already reserved.
pub fn configure() {
    // SAFETY: mi_option_set only stores the value in mimalloc's option table; the option
    // indexes are checked by the tests below against the linked library.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches only this process's flags.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        log::warn!(
            "could not turn transparent huge pages off (prctl: {}); RSS may overstate the heap",
            std::io::Error::last_os_error()
        );
    }
}

/// Whether transparent huge pages are off for this process (`PR_GET_THP_DISABLE`).
pub fn thp_disabled() -> bool {
    // SAFETY: PR_GET_THP_DISABLE takes plain integers and only reads this process's flags.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The tests that allocate through [`Heap`] run one at a time, so neither sees the
    /// other's block.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// The index names the purge delay: its default is mimalloc 3's 1,000 ms, and the option
    /// after it (use_numa_nodes, index 16 in the bindings) defaults to 0. A mimalloc whose
    /// options moved fails here instead of silently setting another option.
    #[test]
    fn the_purge_delay_index_matches_the_linked_mimalloc() {
        // SAFETY: reads mimalloc's option table.
        let (delay, numa) = unsafe {
            (
                mi_option_get(MI_OPTION_PURGE_DELAY),
                mi_option_get(MI_OPTION_PURGE_DELAY + 1),
            )
        };
        assert!(
            delay == 1000 || delay == PURGE_DELAY_MS,
            "purge_delay {delay}"
        );
        assert_eq!(numa, 0);
        configure();
        // SAFETY: as above.
        assert_eq!(
            unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }

    /// allow_thp sits between page_cross_thread_max_reclaim (default 32) and
    /// minimal_purge_size (default 0); configure turns it and the process's THP off.
    #[test]
    fn the_thp_index_matches_the_linked_mimalloc_and_configure_turns_thp_off() {
        // SAFETY: reads mimalloc's option table.
        let (before, after) = unsafe {
            (
                mi_option_get(MI_OPTION_ALLOW_THP - 1),
                mi_option_get(MI_OPTION_ALLOW_THP + 1),
            )
        };
        assert_eq!((before, after), (32, 0));
        configure();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_ALLOW_THP) }, 0);
        assert!(thp_disabled());
    }

    /// The committed figure moves with what mimalloc holds: 64 MiB allocated through mimalloc
    /// and touched shows up in it, and most of it leaves once freed.
    #[test]
    fn committed_bytes_follow_a_large_allocation() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let before = committed_bytes();
        let layout = Layout::from_size_align(64 << 20, 4096).unwrap();
        // SAFETY: a non-zero layout; the block is written within bounds and freed with it.
        let held = unsafe {
            let p = Heap.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 1, layout.size());
            let held = committed_bytes();
            Heap.dealloc(p, layout);
            held
        };
        assert!(
            held >= before + (60 << 20),
            "committed {before} -> {held} with 64 MiB held"
        );
    }

    /// With the feature, the count follows an allocation exactly (in this test binary only
    /// direct calls go through [`Heap`]); without it there is no figure.
    #[test]
    fn live_bytes_count_only_with_the_feature() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let layout = Layout::from_size_align(1 << 20, 8).unwrap();
        let before = live_bytes();
        // SAFETY: a non-zero layout, freed with the same layout.
        let during = unsafe {
            let p = Heap.alloc(layout);
            assert!(!p.is_null());
            let during = live_bytes();
            Heap.dealloc(p, layout);
            during
        };
        if cfg!(feature = "heap-stats") {
            let (before, during) = (before.unwrap(), during.unwrap());
            assert_eq!(during - before, 1 << 20);
        } else {
            assert_eq!((before, during), (None, None));
        }
    }
}
