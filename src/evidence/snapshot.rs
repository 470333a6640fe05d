//! A pin's snapshot data dir: the evidence `query::snapshot` collected, written as a small data
//! dir of its own (`store/` Parquet + `index/` block index) with the same code as the server's
//! flusher, and read-only query engines over such dirs — so every page and API answers from a
//! pin exactly as it answered from the live data.

use std::path::Path;
use std::sync::Arc;

use crate::index::BlockIndex;
use crate::pipeline::{write_blocks, LiveData, Memtable};
use crate::query::snapshot::Evidence;
use crate::query::{QueryEngine, QueryError};
use crate::store::Store;

/// Row group size of snapshot files: they are read whole, so fewer, larger groups.
const SNAPSHOT_ROW_GROUP_ROWS: usize = 8192;

/// Writes `evidence` as a snapshot data dir in `dir` (which must not exist yet).
pub async fn write_snapshot(dir: &Path, evidence: &Evidence) -> anyhow::Result<()> {
    let store = Store::open_local(&dir.join("store"), SNAPSHOT_ROW_GROUP_ROWS)?;
    let index = BlockIndex::open(&dir.join("index"))?;
    let table = Memtable::of_rows(&evidence.rows)?;
    let docs = write_blocks(&store, index.fields(), &table, &evidence.rollups).await?;
    index.commit_blocks(docs, 0)?.publish()?;
    Ok(())
}

/// A query engine over a snapshot written by [`write_snapshot`] (or any stopped server's data
/// dir); nothing in memory.
pub fn open_snapshot(dir: &Path) -> Result<QueryEngine, QueryError> {
    let index = BlockIndex::open_read_only(&dir.join("index"))?;
    let store = Store::open_local(&dir.join("store"), SNAPSHOT_ROW_GROUP_ROWS)?;
    let live = Arc::new(LiveData::default());
    for seen in index.all_instances()? {
        live.write().services.observe_seen(&seen);
    }
    Ok(QueryEngine::new(live, Arc::new(index), store))
}
