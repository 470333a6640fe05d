//! The index role: takes exports from the queue's shared consumer into this node's write
//! path. Their messages are held ([`Receipts`]) until the flusher has registered the files
//! holding their records, then acknowledged; a redelivered message the catalog already
//! covers is acknowledged and skipped, so a crash at any point neither loses nor doubles.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ingest::{self, CorrelationKeys};
use crate::metastore::Catalog;
use crate::pipeline::{Pipeline, WriteError};
use crate::queue::{Delivery, Queue, Receipts};

/// Pause before reconnecting to the queue or asking a busy write path again.
const BACKOFF: Duration = Duration::from_millis(200);

/// What the consumer needs.
pub struct Indexer {
    pub queue: Queue,
    pub catalog: Catalog,
    pub receipts: Receipts,
    pub pipeline: Pipeline,
    pub keys: Arc<CorrelationKeys>,
}

impl Indexer {
    /// Consumes until `stop`, reconnecting when the queue goes away.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let mut deliveries = match self.queue.deliveries().await {
                Ok(deliveries) => deliveries,
                Err(e) => {
                    tracing::warn!("index role: {e}; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(BACKOFF * 5) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    next = deliveries.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => {
                        if !self.take(delivery, &stop).await {
                            return;
                        }
                    }
                    Some(Err(e)) => tracing::warn!("index role: {e}"),
                    None => break,
                }
            }
        }
    }

    /// Adds one delivery to the write path; `false` once the server is stopping.
    async fn take(&self, delivery: Delivery, stop: &CancellationToken) -> bool {
        let Delivery {
            signal,
            request,
            seq,
            redelivered,
            acker,
        } = delivery;
        if redelivered {
            let indexed = self.already_indexed(seq, stop).await;
            count_redelivery(if indexed { "already_indexed" } else { "taken" });
            if indexed {
                if let Err(e) = acker.ack().await {
                    tracing::warn!(seq, "could not acknowledge an indexed message: {e}");
                }
                return true;
            }
        }
        if !self.receipts.hold(seq, acker) {
            // Redelivered while this node still holds it: the first delivery stands.
            return true;
        }
        loop {
            // Decode only once the write path takes exports: a busy one would waste it.
            while self.pipeline.accepting().is_err() {
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(BACKOFF) => {}
                }
            }
            let export = match ingest::export_from_payload(signal, &request, &self.keys) {
                Ok(export) => export,
                Err(e) => {
                    // The ingest node decoded these very bytes before publishing them.
                    tracing::error!(seq, "skipping a queue message that does not decode: {e}");
                    self.receipts.settle(&[seq]).await;
                    return true;
                }
            };
            match self
                .pipeline
                .write_delivered(signal, request.len(), seq, export)
                .await
            {
                Ok(()) => return true,
                Err(WriteError::Closed) => return false,
                // Refused between the check and the write: wait and decode again.
                Err(_) => tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(BACKOFF) => {}
                },
            }
        }
    }

    /// Whether the catalog covers message `seq`, asking until the metastore answers.
    async fn already_indexed(&self, seq: u64, stop: &CancellationToken) -> bool {
        loop {
            match self.catalog.is_indexed(self.queue.stream(), seq).await {
                Ok(indexed) => return indexed,
                Err(e) => {
                    tracing::warn!(seq, "index role: {e}; asking again");
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(BACKOFF * 5) => {}
                    }
                }
            }
        }
    }
}

/// Counts a redelivered message by what became of it.
fn count_redelivery(outcome: &str) {
    let label = crate::telemetry::ReasonLabel {
        reason: outcome.to_string(),
    };
    crate::telemetry::get()
        .queue_redeliveries
        .get_or_create(&label)
        .inc();
}
