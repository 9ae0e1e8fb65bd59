// jemalloc's options, read at startup by the allocator of every executable
// that links yantra_malloc. Why: passivated executions free their actors,
// but jemalloc returns freed pages to the OS only while it is allocating
// (decay runs on allocation) unless a background thread does it. Without it
// a node that went quiet after 100k executions fell asleep kept ~600 MB of
// dead pages; with it, ~1.3 KB per sleeping execution remain.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000";
}
