//! Retention: whole hour partitions are deleted once older than their signal's retention,
//! and the oldest partitions go first while the store is over its size cap.
//!
//! Crash-safe by order: the partition's blocks leave the index in one commit first, then its
//! files are deleted. A crash in between leaves files the index no longer knows, which the
//! next start removes as leftovers; no row is ever visible twice or half-deleted.
//!
//! In a cluster the catalog plays the index's part: partitions leave the catalog in one
//! transaction, query nodes follow its removals feed, and the objects are deleted from the
//! bucket after a grace time ([`sweep_catalog`], [`purge_removed`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::index::BlockIndex;
use crate::metastore::Catalog;
use crate::model::Signal;
use crate::store::{Store, StoreError};

/// How long each signal is kept, and the size cap of the whole store.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionPolicy {
    /// `None` keeps forever.
    pub traces: Option<Duration>,
    pub logs: Option<Duration>,
    pub metrics: Option<Duration>,
    /// Total Parquet bytes allowed; `None` for no cap.
    pub max_store_bytes: Option<u64>,
    /// Time between passes of the server's retention loop.
    pub every: Duration,
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

/// The partitions of `files` (path, bytes) the policy says are expired at `now` (Unix ns),
/// by partition key.
fn expired(
    files: Vec<(String, u64)>,
    policy: &RetentionPolicy,
    now: i64,
) -> Vec<(String, Partition)> {
    let mut partitions: BTreeMap<String, Partition> = BTreeMap::new();
    for (path, size) in files {
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
    doomed
        .into_iter()
        .filter_map(|key| partitions.remove(&key).map(|p| (key, p)))
        .collect()
}

/// Deletes what the policy says is expired at `now` (Unix ns).
pub async fn sweep(
    store: &Store,
    index: &BlockIndex,
    policy: &RetentionPolicy,
    now: i64,
) -> anyhow::Result<Swept> {
    let doomed = expired(store.list_files_with_sizes().await?, policy, now);
    let mut swept = Swept::default();
    let files: Vec<String> = doomed.iter().flat_map(|(_, p)| p.files.clone()).collect();
    if files.is_empty() {
        return Ok(swept);
    }
    // Out of the index first (one commit: a searcher sees all these files or none; one that
    // still holds them reads files deleted below and reports them missing, never wrong rows).
    index.forget_files(&files)?;
    for (key, p) in &doomed {
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

/// Cluster retention, run by the node holding the maintenance lease: the expired partitions
/// of the files the catalog lists leave the catalog in one transaction (query nodes follow
/// the removals and drop the files' blocks); the objects stay in the bucket until
/// [`purge_removed`] finds them past the grace time. Files the catalog does not list — a
/// flush still registering — are never touched.
pub async fn sweep_catalog(
    catalog: &Catalog,
    store: &Store,
    policy: &RetentionPolicy,
    now: i64,
) -> anyhow::Result<Swept> {
    let files = catalog
        .only_registered(store.list_files_with_sizes().await?)
        .await?;
    let doomed = expired(files, policy, now);
    let paths: Vec<String> = doomed.iter().flat_map(|(_, p)| p.files.clone()).collect();
    let mut swept = Swept::default();
    if paths.is_empty() {
        return Ok(swept);
    }
    catalog.remove(&paths).await?;
    for (key, p) in &doomed {
        swept.partitions += 1;
        swept.files += p.files.len();
        swept.bytes += p.bytes;
        tracing::info!(partition = %key, files = p.files.len(), bytes = p.bytes, "retention took a partition out of the catalog");
    }
    Ok(swept)
}

/// Deletes from the bucket the objects of files the catalog removed more than `grace` ago
/// (long enough that no query node still reads them); returns how many. An object that will
/// not go stays pending for the next pass.
pub async fn purge_removed(
    catalog: &Catalog,
    store: &Store,
    grace: Duration,
) -> anyhow::Result<usize> {
    let mut gone = Vec::new();
    for (id, path) in catalog.removals_due(grace).await? {
        match store.delete(&path).await {
            Ok(()) | Err(StoreError::ObjectStore(object_store::Error::NotFound { .. })) => {
                gone.push(id)
            }
            Err(e) => tracing::warn!(file = %path, "could not delete a removed file yet: {e}"),
        }
    }
    if !gone.is_empty() {
        catalog.mark_deleted(&gone).await?;
        tracing::info!(files = gone.len(), "deleted removed files from the bucket");
    }
    Ok(gone.len())
}
