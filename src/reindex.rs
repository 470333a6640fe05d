//! `sightline reindex`: rebuilds the block index from the Parquet files, for when the index
//! is lost or damaged. Parquet is the store of record; the index is derived from it.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tantivy::TantivyDocument;

use crate::index::{block, BlockIndex};
use crate::store::Store;

/// What a reindex did.
#[derive(Debug, Clone, Copy)]
pub struct Reindexed {
    pub files: usize,
    pub blocks: usize,
    /// Whether the old index's WAL position could be kept; if not, every WAL segment left is
    /// replayed on the next start (rows flushed just before the index was lost can then
    /// appear twice; trace views show each span once).
    pub kept_wal_position: bool,
}

/// Rebuilds `<data_dir>/index` from `<data_dir>/store`. The server must not be running.
pub async fn reindex(data_dir: &Path, row_group_rows: usize) -> anyhow::Result<Reindexed> {
    let index_dir = data_dir.join("index");
    let old_position = match BlockIndex::open(&index_dir) {
        Ok(old) => old.wal_flushed_through().ok().flatten(),
        Err(crate::index::IndexError::OldLayout(_)) => {
            BlockIndex::wal_position_in(&index_dir).ok().flatten()
        }
        Err(e) if e.to_string().contains("ock") => {
            anyhow::bail!(
                "the index is locked — is a server running on {}? stop it first",
                data_dir.display()
            )
        }
        Err(_) => None,
    };
    let aside = data_dir.join("index.before-reindex");
    if index_dir.exists() {
        if aside.exists() {
            std::fs::remove_dir_all(&aside)?;
        }
        std::fs::rename(&index_dir, &aside).context("could not move the old index aside")?;
    }
    let index = BlockIndex::open(&index_dir).context("could not create the new index")?;
    let store = Store::open_local(&data_dir.join("store"), row_group_rows)?;
    let files = store.list_files().await?;
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let fields = index.fields().clone();
    let mut docs: Vec<TantivyDocument> = Vec::new();
    for path in &files {
        docs.extend(
            block::blocks_of_stored_file(&store, &fields, path)
                .await
                .with_context(|| {
                    format!("could not read {path} (move it to store/quarantine/ and run again)")
                })?,
        );
        bar.inc(1);
    }
    let blocks = docs.len();
    index
        .commit_blocks(docs, old_position.unwrap_or(0))?
        .publish()?;
    bar.finish_with_message(format!("{blocks} blocks indexed"));
    if aside.exists() {
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(Reindexed {
        files: files.len(),
        blocks,
        kept_wal_position: old_position.is_some(),
    })
}

/// Rebuilds the index of `data_dir` when an earlier version wrote it with other fields
/// (done by `serve` on start, for the data dir and every pinned view's evidence). Returns
/// whether it rebuilt. Nothing is lost: Parquet is the store of record and the WAL position
/// is kept.
pub async fn upgrade_if_needed(data_dir: &Path) -> anyhow::Result<bool> {
    let index_dir = data_dir.join("index");
    if !index_dir.exists() || BlockIndex::layout_is_current(&index_dir)? {
        return Ok(false);
    }
    tracing::info!(
        dir = %data_dir.display(),
        "the block index has an older layout; rebuilding it from the Parquet files"
    );
    let done = reindex(data_dir, 16_384).await?;
    tracing::info!(
        files = done.files,
        blocks = done.blocks,
        "block index rebuilt"
    );
    Ok(true)
}
