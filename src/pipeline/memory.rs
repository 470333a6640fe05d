//! The memory watcher: measures the process's resident memory and, at the configured limit,
//! makes the pipeline refuse exports as retryable until flushing has freed memory.
//!
//! Refusal starts at 75 % of the limit, leaving room for the requests already accepted (the
//! in-flight byte budget is also capped to an eighth of the limit) and for the flush that
//! frees memory (Parquet encoding and indexing allocate while they run), and ends below
//! 60 % — or once nothing is left in memory to flush: the allocator may keep freed
//! pages resident, and new rows reuse them, so waiting longer would refuse forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::LiveData;

/// How often resident memory is measured.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Resident set size of this process in bytes (`memory-stats`: `/proc/self/statm` on Linux,
/// the platform's call elsewhere), if known.
pub fn resident_bytes() -> Option<u64> {
    memory_stats::memory_stats().map(|m| m.physical_mem as u64)
}

/// Runs forever; `full` holds the resident bytes while exports are refused, else 0.
pub async fn watch(live: Arc<LiveData>, full: Arc<AtomicU64>, limit: u64) {
    let (high, low) = (limit / 4 * 3, limit / 5 * 3);
    if resident_bytes().is_none() {
        tracing::warn!("cannot read this process's resident memory: --max-rss-bytes has no effect");
        return;
    }
    loop {
        let rss = resident_bytes().unwrap_or(0);
        let refusing = full.load(Ordering::Relaxed) > 0;
        let in_memory = live.read().rows();
        if !refusing && rss >= high {
            tracing::warn!(
                rss,
                limit,
                "memory limit near: refusing exports until flushed"
            );
            full.store(rss, Ordering::Relaxed);
        } else if refusing && (rss < low || in_memory == 0) {
            tracing::info!(rss, limit, "memory freed: accepting exports again");
            full.store(0, Ordering::Relaxed);
        } else if refusing {
            full.store(rss, Ordering::Relaxed);
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}
