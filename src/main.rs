use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    allocator::configure();
    // Stop signals are taken by the main thread only (sigtimedwait); block them before any
    // shard thread exists so every thread inherits the mask.
    shardcast_engine::sys::block_termination_signals();
    std::process::exit(shardcast::boot::cli::main());
}

/// The global allocator's settings.
///
/// mimalloc 3 keeps memory that was freed committed for `purge_delay` (1 s by default) before
/// giving it back to the OS. Under churn (segments, batches and connections allocated on one
/// shard and freed on another) that holds a second of garbage in the resident set, which moves
/// RSS by megabytes from one sample to the next and hides what the server really holds. 10 ms
/// still batches the returns (one `madvise` per run of free pages, not one per free) and keeps
/// RSS within a few pages of the live memory.
mod allocator {
    use std::os::raw::c_long;

    /// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (include/mimalloc.h); the
    /// `libmimalloc-sys` bindings predate it. [`tests`] check the index against its default.
    const MI_OPTION_PURGE_DELAY: i32 = 15;

    /// Milliseconds freed memory stays committed before it goes back to the OS.
    pub const PURGE_DELAY_MS: c_long = 10;

    extern "C" {
        fn mi_option_set(option: i32, value: c_long);
        #[cfg(test)]
        fn mi_option_get(option: i32) -> c_long;
    }

    /// Applies the settings; call it first thing in `main`.
    pub fn configure() {
        // SAFETY: mi_option_set only stores the value in mimalloc's option table; the option index
        // is checked by the tests below against the linked library.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The index names the purge delay: its default is mimalloc 3's 1,000 ms, and the option
        /// after it (use_numa_nodes, index 16 in the bindings) defaults to 0. A mimalloc whose
        /// options moved fails here instead of silently setting another option.
        #[test]
        fn the_purge_delay_index_matches_the_linked_mimalloc() {
            // SAFETY: reads mimalloc's option table.
            let (delay, numa) = unsafe {
                (
                    mi_option_get(MI_OPTION_PURGE_DELAY),
                    mi_option_get(libmimalloc_numa_index()),
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

        fn libmimalloc_numa_index() -> i32 {
            MI_OPTION_PURGE_DELAY + 1
        }
    }
}
