//! A cluster node's connections to the shared services and the tasks of its roles.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::cluster::catalog_sync::CatalogSync;
use crate::cluster::indexer::Indexer;
use crate::cluster::ClusterSettings;
use crate::index::BlockIndex;
use crate::ingest::CorrelationKeys;
use crate::metastore::Catalog;
use crate::pipeline::{LiveData, Pipeline, QueueJournal};
use crate::query::CorruptFileReports;
use crate::queue::{Queue, Receipts};
use crate::store::Store;

/// The queue and the catalog, connected, and the messages this node holds.
pub struct ClusterNode {
    pub settings: ClusterSettings,
    pub queue: Queue,
    pub catalog: Catalog,
    receipts: Receipts,
}

impl ClusterNode {
    /// Connects to the queue (creating its stream) and the metastore (migrating it).
    pub async fn connect(settings: &ClusterSettings) -> anyhow::Result<ClusterNode> {
        let queue = Queue::connect(&settings.queue).await?;
        let catalog = Catalog::connect(&settings.metastore)
            .await
            .context("could not open the metastore")?;
        tracing::info!(
            node = %settings.node,
            roles = ?settings.roles,
            stream = %settings.queue.stream,
            "cluster mode"
        );
        Ok(ClusterNode {
            settings: settings.clone(),
            queue,
            catalog,
            receipts: Receipts::default(),
        })
    }

    /// The write path's journal on this node: queue messages held until registered.
    pub fn journal(&self) -> QueueJournal {
        QueueJournal {
            catalog: self.catalog.clone(),
            receipts: self.receipts.clone(),
            stream: self.queue.stream().to_string(),
            node: self.settings.node.clone(),
        }
    }

    /// Starts the query role's catalog follower (after bringing the index in step) and then
    /// the index role's consumer, in that order, so no file of this node is half-way while
    /// the follower reconciles.
    pub async fn start_roles(
        &self,
        pipeline: Pipeline,
        keys: Arc<CorrelationKeys>,
        (store, index, live): (Store, Arc<BlockIndex>, Arc<LiveData>),
        corrupt_files: CorruptFileReports,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let roles = self.settings.roles;
        if roles.query {
            let sync = CatalogSync {
                catalog: self.catalog.clone(),
                store,
                index,
                live,
                every: self.settings.catalog_poll,
                node: self.settings.node.clone(),
                corrupt_files,
            };
            let after = sync.start().await?;
            tokio::spawn(sync.run(after, stop.clone()));
        }
        if roles.index {
            let every = self.settings.queue.ack_wait / 3;
            tokio::spawn(self.receipts.clone().keep_alive(every, stop.clone()));
            let indexer = Indexer {
                queue: self.queue.clone(),
                catalog: self.catalog.clone(),
                receipts: self.receipts.clone(),
                pipeline,
                keys,
            };
            tokio::spawn(indexer.run(stop.clone()));
        }
        Ok(())
    }
}
