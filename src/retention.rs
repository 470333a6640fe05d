//! Retention: whole hour partitions are deleted once older than their signal's retention,
//! and the oldest partitions go first while the store is over its size cap.
//!
//! Crash-safe by order: the partition's blocks leave the index in one commit first, then its
//! files are deleted. A crash in between leaves files the index no longer knows, which the
//! next start removes as leftovers; no row is ever visible twice or half-deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::index::BlockIndex;
use crate::model::Signal;
use crate::store::Store;

/// How long each signal is kept, and the size cap of the whole store.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPolicy {
    /// `None` keeps forever.
    pub traces: Option<Duration>,
    pub logs: Option<Duration>,
    pub metrics: Option<Duration>,
    /// Total Parquet bytes allowed; `None` for no cap.
    pub max_store_bytes: Option<u64>,
}

impl RetentionPolicy {
    /// Whether there is anything to enforce.
    pub fn is_active(&self) -> bool {
        self.traces.is_some()
            || self.logs.is_some()
            || self.metrics.is_some()
            || self.max_store_bytes.is_some()
    }

    /// The retention of a store folder. Rollups follow the longer of traces and logs (they
    /// are derived from both); one-minute metric points follow metrics.
    fn of_folder(&self, folder: &str) -> Option<Duration> {
        match Signal::from_folder(folder)? {
            Signal::Traces => self.traces,
            Signal::Logs => self.logs,
            Signal::Metrics | Signal::MetricMinutes => self.metrics,
            Signal::Rollups => match (self.traces, self.logs) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub partitions: usize,
    pub files: usize,
    pub bytes: u64,
}

/// What one hour partition (`store::Partition`) holds.
#[derive(Debug, Default)]
struct Partition {
    /// End of the hour, Unix ns.
    end: i64,
    files: Vec<String>,
    bytes: u64,
}

/// Deletes what the policy says is expired at `now` (Unix ns).
pub async fn sweep(
    store: &Store,
    index: &BlockIndex,
    policy: &RetentionPolicy,
    now: i64,
) -> anyhow::Result<Swept> {
    let mut partitions: BTreeMap<String, Partition> = BTreeMap::new();
    for (path, size) in store.list_files_with_sizes().await? {
        let Some(partition) = crate::store::Partition::of_path(&path) else {
            continue;
        };
        let end = partition.end();
        let p = partitions.entry(partition.to_string()).or_default();
        p.end = end;
        p.files.push(path);
        p.bytes += size;
    }
    let mut doomed: Vec<String> = partitions
        .iter()
        .filter(|(key, p)| {
            let folder = key.split('/').next().unwrap_or("");
            policy
                .of_folder(folder)
                .is_some_and(|keep| p.end < now - keep.as_nanos() as i64)
        })
        .map(|(k, _)| k.clone())
        .collect();
    if let Some(cap) = policy.max_store_bytes {
        let mut total: u64 = partitions.values().map(|p| p.bytes).sum::<u64>()
            - doomed.iter().map(|k| partitions[k].bytes).sum::<u64>();
        let mut by_age: Vec<(&String, &Partition)> = partitions
            .iter()
            .filter(|(k, _)| !doomed.contains(k))
            .collect();
        by_age.sort_by_key(|(_, p)| p.end);
        for (key, p) in by_age {
            if total <= cap {
                break;
            }
            total -= p.bytes;
            doomed.push(key.clone());
        }
    }
    let mut swept = Swept::default();
    let files: Vec<String> = doomed
        .iter()
        .flat_map(|k| partitions[k].files.clone())
        .collect();
    if files.is_empty() {
        return Ok(swept);
    }
    // Out of the index first (one commit: a searcher sees all these files or none; one that
    // still holds them reads files deleted below and reports them missing, never wrong rows).
    index.forget_files(&files)?;
    for key in &doomed {
        let p = &partitions[key];
        for f in &p.files {
            store.delete(f).await?;
        }
        swept.partitions += 1;
        swept.files += p.files.len();
        swept.bytes += p.bytes;
        tracing::info!(partition = %key, files = p.files.len(), bytes = p.bytes, "retention deleted a partition");
    }
    Ok(swept)
}
