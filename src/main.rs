use shardcast_engine::heap::{self, Heap};

#[global_allocator]
static GLOBAL: Heap = Heap;

fn main() {
    heap::configure();
    // Stop signals are taken by the main thread only (sigtimedwait); block them before any
    // shard thread exists so every thread inherits the mask.
    shardcast_engine::sys::block_termination_signals();
    std::process::exit(shardcast::boot::cli::main());
}
