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
            match self.follow(at.file).await {
                Ok(last) => at.file = last,
                Err(e) => tracing::warn!("query role: catalog follow-up failed, retrying: {e:#}"),
            }
            match self.follow_removals(at.removal).await {
                Ok(last) => at.removal = last,
                Err(e) => tracing::warn!("query role: catalog removals failed, retrying: {e:#}"),
            }
        }
    }

    /// Drops the blocks of every file removed after removal id `after`; returns the last id
    /// read. Files registered before are read first by [`CatalogSync::follow`], so a removal
    /// never comes before the file it removes.
    async fn follow_removals(&self, mut after: i64) -> anyhow::Result<i64> {
        loop {
            let page = self.catalog.removals_after(after, PAGE).await?;
            let Some(&(last, _)) = page.last() else {
                return Ok(after);
            };
            let mut held = Vec::new();
            for (_, path) in page {
                if self.index.has_file(&path)? {
                    held.push(path);
                }
            }
            if !held.is_empty() {
                tracing::info!(
                    files = held.len(),
                    "dropping blocks of files the catalog removed"
                );
                self.index.forget_files(&held)?;
            }
            after = last;
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
            self.add_missing(&page, true).await?;
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

    /// Adds the blocks of every file registered after catalog id `after` that this index
    /// does not hold; returns the last id read.
    async fn follow(&self, mut after: i64) -> anyhow::Result<i64> {
        loop {
            let page = self.catalog.files_after(after, PAGE).await?;
            let Some(last) = page.last().map(|f| f.id) else {
                return Ok(after);
            };
            self.add_missing(&page, false).await?;
            after = last;
        }
    }

    /// Commits the blocks of the files of `page` this index lacks (`own`: also those this
    /// node registered).
    async fn add_missing(&self, page: &[CatalogFile], own: bool) -> anyhow::Result<()> {
        let mut docs: Vec<TantivyDocument> = Vec::new();
        for file in page {
            if (!own && file.node == self.node) || self.index.has_file(&file.path)? {
                continue;
            }
            docs.extend(
                block::blocks_of_stored_file(&self.store, self.index.fields(), &file.path).await?,
            );
        }
        if !docs.is_empty() {
            self.commit(docs)?;
        }
        Ok(())
    }

    fn commit(&self, docs: Vec<TantivyDocument>) -> anyhow::Result<()> {
        let seen: Vec<_> = docs
            .iter()
            .flat_map(|d| self.index.instances_of(d))
            .collect();
        let position = self.index.wal_flushed_through()?.unwrap_or(0);
        self.index.commit_blocks(docs, position)?.publish()?;
        self.index.warm()?;
        let mut live = self.live.write();
        for instance in &seen {
            live.services.observe_seen(instance);
        }
        Ok(())
    }
}
