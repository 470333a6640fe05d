//! Crash recovery at start: indexes of an older layout rebuilt, Parquet files a crash left
//! uncommitted removed, and the write-ahead log replayed into the live data, so everything
//! acknowledged before the crash is queryable again before a listener opens.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::ServeConfig;
use crate::index::BlockIndex;
use crate::ingest::{self, CorrelationKeys};
use crate::pipeline::LiveData;
use crate::store::{Store, StoreLocation};
use crate::wal::Wal;

/// How long a start waits for an object store's bucket to list its files.
const BUCKET_ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The storage of a data dir, opened and brought back to what was acknowledged.
pub struct Recovered {
    pub index: Arc<BlockIndex>,
    pub store: Store,
    /// The memtables, holding what the WAL still had.
    pub live: Arc<LiveData>,
    /// The WAL, ready to append after what was replayed (`None` in cluster mode, where the
    /// queue keeps what is not yet in files).
    pub wal: Option<Wal>,
}

/// Opens the index, the store and the WAL of `config.data_dir` and replays the WAL.
pub async fn recover(config: &ServeConfig, keys: &CorrelationKeys) -> anyhow::Result<Recovered> {
    let data = &config.data_dir;
    upgrade_indexes(data).await?;
    let index = Arc::new(
        BlockIndex::open(&data.join("index"))
            .with_context(|| format!("could not open index in {}", data.display()))?,
    );
    let store = Store::open(&config.store, config.row_group_rows)
        .with_context(|| format!("could not open the store at {}", config.store))?;
    let wal_dir = data.join("wal");
    if config.cluster.is_some() {
        return recover_cluster_node(index, store, &wal_dir);
    }
    let cleaned = remove_uncommitted_files(&store, &index, &wal_dir);
    let cleaned = match &config.store {
        // A bucket that does not answer would otherwise hold the start for as long as the S3
        // client keeps retrying (up to 3 minutes).
        StoreLocation::S3(..) => tokio::time::timeout(BUCKET_ANSWER_LIMIT, cleaned)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the store at {} did not answer within {} s",
                    config.store,
                    BUCKET_ANSWER_LIMIT.as_secs()
                )
            })?,
        StoreLocation::Local(_) => cleaned.await,
    };
    cleaned
        .with_context(|| format!("could not list the files of the store at {}", config.store))?;

    let live = Arc::new(LiveData::default());
    for seen in index.all_instances()? {
        live.write().services.observe_seen(&seen);
    }
    let (wal, replayed) = Wal::open(&wal_dir, config.wal_sync, index.wal_flushed_through()?)
        .with_context(|| format!("could not open WAL in {}", wal_dir.display()))?;
    let replayed_count = replayed.len();
    for record in replayed {
        let inserted = ingest::export_from_payload(record.signal, &record.payload, keys)
            .map(|export| live.write().insert(export));
        // The checksum matched, so these are bytes we wrote: only a bug gets here.
        if let Err(e) = inserted {
            tracing::error!("skipping undecodable WAL record: {e}");
        }
    }
    if replayed_count > 0 {
        tracing::info!(records = replayed_count, "replayed the write-ahead log");
        let t = crate::telemetry::get();
        let live = live.read();
        t.memtable_rows.set(live.active.rows() as i64);
        t.memtable_bytes.set(live.active.bytes() as i64);
    }
    Ok(Recovered {
        index,
        store,
        live,
        wal: Some(wal),
    })
}

/// A cluster node keeps no WAL (the queue holds what is not yet registered) and never
/// removes files it does not know: the bucket is shared, and the catalog, not this node's
/// index, says which files count (the query role's follower reconciles the index with it).
fn recover_cluster_node(
    index: Arc<BlockIndex>,
    store: Store,
    wal_dir: &Path,
) -> anyhow::Result<Recovered> {
    if wal_has_data(wal_dir) {
        anyhow::bail!(
            "{} holds a single-binary WAL with records not yet in files; start once without --queue to flush them",
            wal_dir.display()
        );
    }
    let live = Arc::new(LiveData::default());
    for seen in index.all_instances()? {
        live.write().services.observe_seen(&seen);
    }
    Ok(Recovered {
        index,
        store,
        live,
        wal: None,
    })
}

/// Whether any WAL segment holds bytes.
fn wal_has_data(wal_dir: &Path) -> bool {
    std::fs::read_dir(wal_dir)
        .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
        .unwrap_or(false)
}

/// Parquet files the index never committed are leftovers of a crash mid-flush: their rows
/// are still in the WAL and are flushed again, so the files would only duplicate them.
async fn remove_uncommitted_files(
    store: &Store,
    index: &BlockIndex,
    wal_dir: &Path,
) -> anyhow::Result<()> {
    let committed = index.all_paths()?;
    let files = store.list_files().await?;
    // Leftovers of a crashed flush always have their rows still in the WAL (segments are
    // deleted only after the index commit). Files with an empty index and an empty WAL mean
    // the index was lost: never delete data for that.
    if committed.is_empty() && !files.is_empty() && !wal_has_data(wal_dir) {
        anyhow::bail!(
            "the index is empty but the store holds {} Parquet files; run `sightline reindex --data-dir …` first",
            files.len()
        );
    }
    for path in files {
        if !committed.contains(&path) {
            tracing::warn!(file = %path, "removing Parquet file not committed to the index (crash leftover)");
            store.delete(&path).await?;
        }
    }
    Ok(())
}

/// Rebuilds, from their Parquet files, the block indexes an earlier version wrote with other
/// fields: the data dir's own and those of pinned evidence.
async fn upgrade_indexes(data: &Path) -> anyhow::Result<()> {
    crate::reindex::upgrade_if_needed(data)
        .await
        .with_context(|| format!("could not rebuild the index in {}", data.display()))?;
    if let Ok(entries) = std::fs::read_dir(data.join("evidence")) {
        for entry in entries.flatten() {
            crate::reindex::upgrade_if_needed(&entry.path())
                .await
                .with_context(|| format!("could not rebuild {}", entry.path().display()))?;
        }
    }
    Ok(())
}
