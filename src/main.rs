//! The `cordon` binary: the allocator and the runtime; the commands are in `cli/`.

// prost allocates every decoded string; glibc's malloc and free were 38% of the ingest
// profile. mimalloc halves that cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Rules plan on the engine's blocking thread; nested expressions (up to
    // guard::MAX_NESTING) need more than the 2 MiB a runtime thread gets by default.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 << 20)
        .build()?
        .block_on(cordon::cli::run())
}
