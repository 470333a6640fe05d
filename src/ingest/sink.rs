//! Where a receiver's accepted exports go: the local write path (WAL and memtables) in the
//! single binary, or the cluster's queue on an ingest node.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::IngestError;
use crate::model::Signal;
use crate::pipeline::{Export, Pipeline, WriteError};
use crate::queue::{Queue, QueueError};

/// Where accepted exports are stored before they are acknowledged. Cheap to clone.
#[derive(Clone)]
pub enum Sink {
    /// The WAL, then the memtables (the single binary).
    Pipeline(Pipeline),
    /// NATS JetStream (a cluster ingest node): acknowledged once the stream has stored the
    /// request; index nodes decode it again.
    Queue(QueueSink),
}

/// The queue with a budget of bytes waiting for JetStream's acknowledgement: past it exports
/// are refused as retryable instead of queueing in memory without bound.
#[derive(Clone)]
pub struct QueueSink {
    queue: Queue,
    budget: Arc<Semaphore>,
}

impl QueueSink {
    /// Publishes through `queue` with at most `inflight_bytes` of requests waiting.
    pub fn new(queue: Queue, inflight_bytes: usize) -> QueueSink {
        QueueSink {
            queue,
            budget: Arc::new(Semaphore::new(kib(inflight_bytes) as usize)),
        }
    }
}

/// Budget permits are kibibytes, so a `u32` covers any request.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes / 1024 + 1).unwrap_or(u32::MAX)
}

impl Sink {
    /// Whether exports are accepted now (asked before decoding).
    pub fn accepting(&self) -> Result<(), WriteError> {
        match self {
            Sink::Pipeline(pipeline) => pipeline.accepting(),
            Sink::Queue(sink) if sink.budget.available_permits() == 0 => Err(WriteError::Busy),
            Sink::Queue(_) => Ok(()),
        }
    }

    /// Stores one decoded export: `export` builds the memtable's columns, which only the
    /// local write path needs.
    pub async fn store(
        &self,
        signal: Signal,
        body: Vec<u8>,
        export: impl FnOnce() -> Result<Export, IngestError>,
    ) -> Result<(), IngestError> {
        match self {
            Sink::Pipeline(pipeline) => Ok(pipeline.write(signal, body, export()?).await?),
            Sink::Queue(sink) => {
                let _permit = sink
                    .budget
                    .try_acquire_many(kib(body.len()))
                    .map_err(|_| WriteError::Busy)?;
                match sink.queue.publish(signal, &body).await {
                    Ok(_) => Ok(()),
                    Err(e @ QueueError::TooLarge { .. }) => {
                        Err(IngestError::TooLarge(e.to_string()))
                    }
                    Err(e) => Err(WriteError::Queue(e.to_string()).into()),
                }
            }
        }
    }
}
