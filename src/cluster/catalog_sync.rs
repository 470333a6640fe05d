//! The query role: keeps this node's block index in step with the catalog. New files another
//! node registered are read (through the read cache) and their blocks committed here within
//! a poll interval, and files the catalog removed (retention) leave the index as fast; at
//! start, blocks of files the catalog does not have (a flush that died before registering, a
//! removal while this node was down) are dropped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tantivy::TantivyDocument;
use tokio_util::sync::CancellationToken;

use crate::index::{block, BlockIndex};
use crate::metastore::{Catalog, CatalogFile};
use crate::pipeline::LiveData;
use crate::query::CorruptFileReports;
use crate::store::Store;

/// Files asked for per catalog page.
const PAGE: i64 = 500;

/// Where the follower is in the catalog's two feeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// The last catalog file id read.
    pub file: i64,
    /// The last removal id read.
    pub removal: i64,
}

/// What the follower needs.
pub struct CatalogSync {
    pub catalog: Catalog,
    pub store: Store,
    pub index: Arc<BlockIndex>,
    pub live: Arc<LiveData>,
    pub every: Duration,
    /// This node's name: after the start, files it registered itself are committed to its
    /// index by its own flusher, so the follower leaves them alone.
    pub node: String,
    /// Where a file whose bytes cannot be read goes: it is skipped here and quarantined (out
    /// of the catalog), instead of holding up every file after it.
    pub corrupt_files: CorruptFileReports,
}

impl CatalogSync {
    /// Brings the index in step with the catalog (before this node indexes anything, so
    /// that none of its own files is half-way), asking until the catalog answers; returns
    /// where [`CatalogSync::run`] goes on.
    pub async fn start(&self) -> anyhow::Result<Position> {
        let mut attempts = 0;
        loop {
            match self.reconcile().await {
                Ok(last) => return Ok(last),
                Err(e) if attempts < 30 => {
                    attempts += 1;
                    tracing::warn!("query role: could not read the catalog, retrying: {e:#}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.context("the catalog did not answer within 30 s")),
            }
        }
    }

    /// Follows the catalog from `at` until `stop`. A catalog or store that does not answer is
    /// retried at the next poll; nothing is skipped.
    pub async fn run(self, mut at: Position, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            if let Err(e) = self.follow(&mut at).await {
                tracing::warn!("query role: catalog follow-up failed, retrying: {e:#}");
            }
        }
    }

    /// Applies every catalog change after `at`, advancing it: new files' blocks are added and
    /// removed files' blocks dropped, the changes of one snapshot in one index commit — so a
    /// compaction's merged file and the files it replaced are never both, or neither, seen.
    async fn follow(&self, at: &mut Position) -> anyhow::Result<()> {
        loop {
            let changes = self
                .catalog
                .changes_after(at.file, at.removal, PAGE)
                .await?;
            // A page cut short by its limit may not hold the file a removal was replaced by:
            // such a removal (and those after it) waits for the next page.
            let seen_through = if changes.files.len() as i64 == PAGE {
                changes.files.last().map_or(at.file, |f| f.id)
            } else {
                i64::MAX
            };
            let removals: Vec<_> = changes
                .removals
                .iter()
                .take_while(|r| r.replaced_by.is_none_or(|id| id <= seen_through))
                .collect();
            let mut dropped = Vec::new();
            for removal in &removals {
                if self.index.has_file(&removal.path)? {
                    dropped.push(removal.path.clone());
                }
            }
            let added = self.blocks_of_new(&changes.files, false).await?;
            if !dropped.is_empty() || !added.is_empty() {
                self.apply(&dropped, added)?;
            }
            let more =
                changes.files.len() as i64 == PAGE || removals.len() < changes.removals.len();
            if let Some(last) = changes.files.last() {
                at.file = last.id;
            }
            if let Some(last) = removals.last() {
                at.removal = last.id;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Drops local blocks of files the catalog does not hold and adds the catalog's files
    /// this index lacks; returns where the feeds stood.
    async fn reconcile(&self) -> anyhow::Result<Position> {
        // Read before the files: a removal made while they are read is applied again later
        // (dropping a file twice is harmless; missing one is not).
        let removal = self.catalog.last_removal().await?;
        let mut catalog_paths = HashSet::new();
        let mut after = 0;
        loop {
            let page = self.catalog.files_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            catalog_paths.extend(page.iter().map(|f| f.path.clone()));
            let docs = self.blocks_of_new(&page, true).await?;
            if !docs.is_empty() {
                self.apply(&[], docs)?;
            }
        }
        let local = self.index.all_paths()?;
        let orphans: Vec<String> = local.difference(&catalog_paths).cloned().collect();
        if !orphans.is_empty() {
            tracing::warn!(
                files = orphans.len(),
                "dropping local blocks of files the catalog does not hold"
            );
            self.index.forget_files(&orphans)?;
        }
        Ok(Position {
            file: after,
            removal,
        })
    }

    /// The blocks of the files of `page` this index lacks (`own`: also those this node's
    /// flusher registered — it commits them itself once running; a compaction's file it
    /// registered is read like any other).
    async fn blocks_of_new(
        &self,
        page: &[CatalogFile],
        own: bool,
    ) -> anyhow::Result<Vec<TantivyDocument>> {
        let mut docs: Vec<TantivyDocument> = Vec::new();
        for file in page {
            let flushed_here = file.node == self.node && !file.compacted;
            if (!own && flushed_here) || self.index.has_file(&file.path)? {
                continue;
            }
            match block::blocks_of_stored_file(&self.store, self.index.fields(), &file.path).await {
                Ok(blocks) => docs.extend(blocks),
                Err(e) if e.is_corruption() => {
                    tracing::error!(file = %file.path, "a catalog file cannot be read, reporting it for quarantine: {e}");
                    self.corrupt_files.report(&file.path);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(docs)
    }

    /// Drops the blocks of `dropped` and adds `docs`, in one index commit.
    fn apply(&self, dropped: &[String], docs: Vec<TantivyDocument>) -> anyhow::Result<()> {
        let seen: Vec<_> = docs
            .iter()
            .flat_map(|d| self.index.instances_of(d))
            .collect();
        if !dropped.is_empty() {
            tracing::info!(
                files = dropped.len(),
                "dropping blocks of files the catalog removed"
            );
        }
        // The follower's commits keep the index's WAL position: they hold no WAL records.
        self.index.replace_files(dropped, docs)?;
        let mut live = self.live.write();
        for instance in &seen {
            live.services.observe_seen(instance);
        }
        Ok(())
    }
}
