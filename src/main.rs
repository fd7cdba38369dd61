use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    // Stop signals are taken by the main thread only (sigtimedwait); block them before any
    // shard thread exists so every thread inherits the mask.
    shardcast_engine::sys::block_termination_signals();
    std::process::exit(shardcast::boot::cli::main());
}
