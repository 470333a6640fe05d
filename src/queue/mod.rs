//! The durable queue in front of indexing, for cluster mode: NATS JetStream through
//! `async-nats`.
//!
//! An ingest node publishes each export's OTLP protobuf request (LZ4-compressed, so a 16 MiB
//! body fits NATS's default 1 MiB message limit in all but pathological cases) to the subject
//! `<stream>.<signal>` and acknowledges the client once JetStream has stored it. Index nodes
//! share one durable pull consumer (`indexers`) on that stream: each message is decoded as the
//! WAL's records are, and acknowledged only after the files holding its records are
//! registered in the metastore ([`Receipts`]). The stream has work-queue retention, so
//! acknowledged messages leave it: it holds what is not yet indexed, bounded by
//! `--queue-max-bytes` (past it, publishing is refused and ingest answers "retry later").

mod receipts;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;

pub use receipts::Receipts;

use crate::model::Signal;

/// Where the queue is and how its stream is made.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// `nats://host:port` (several comma-separated servers allowed).
    pub url: String,
    /// The JetStream stream's name; subjects are `<stream>.traces|logs|metrics`.
    pub stream: String,
    /// Stream replicas (1 on a single NATS server; 3 on a NATS cluster).
    pub replicas: usize,
    /// Bytes the stream may hold before publishing is refused (not yet indexed data).
    pub max_bytes: i64,
    /// How long a delivered message may go unacknowledged before JetStream gives it to
    /// another index node. Held messages are marked in progress every third of it, so this is
    /// how long a dead index node's messages wait before another node takes them.
    pub ack_wait: Duration,
}

/// Why the queue could not be reached or did not store a message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("could not connect to the queue at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the queue's stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("the queue did not store the export: {0}")]
    Publish(String),
    #[error("the export is {bytes} bytes compressed, more than the queue's {limit}-byte message limit (raise max_payload in the NATS server's configuration)")]
    TooLarge { bytes: usize, limit: usize },
    #[error("reading from the queue: {0}")]
    Consume(String),
}

/// The consumer every index node shares.
const CONSUMER: &str = "indexers";
/// How long a publish waits for JetStream's acknowledgement.
const PUBLISH_LIMIT: Duration = Duration::from_secs(10);

/// A connection to the queue with its stream ensured.
#[derive(Clone)]
pub struct Queue {
    js: jetstream::Context,
    settings: std::sync::Arc<QueueSettings>,
    max_payload: usize,
}

impl Queue {
    /// Connects and creates the stream when it does not exist yet (an existing stream is
    /// used as it is configured).
    pub async fn connect(settings: &QueueSettings) -> Result<Queue, QueueError> {
        let connect_error = |e: &dyn std::fmt::Display| QueueError::Connect {
            url: settings.url.clone(),
            message: e.to_string(),
        };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.url.as_str())
            .await
            .map_err(|e| connect_error(&e))?;
        let max_payload = client.server_info().max_payload;
        let js = jetstream::new(client);
        js.get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.*", settings.stream)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            num_replicas: settings.replicas.max(1),
            max_bytes: settings.max_bytes,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| QueueError::Stream {
            stream: settings.stream.clone(),
            message: e.to_string(),
        })?;
        Ok(Queue {
            js,
            settings: std::sync::Arc::new(settings.clone()),
            max_payload,
        })
    }

    /// The stream's name (the metastore records which of its sequences are indexed).
    pub fn stream(&self) -> &str {
        &self.settings.stream
    }

    /// Stores one export request; returns its stream sequence once JetStream has it on disk.
    pub async fn publish(&self, signal: Signal, request: &[u8]) -> Result<u64, QueueError> {
        let compressed = lz4_flex::compress_prepend_size(request);
        if compressed.len() > self.max_payload {
            return Err(QueueError::TooLarge {
                bytes: compressed.len(),
                limit: self.max_payload,
            });
        }
        let subject = format!("{}.{}", self.settings.stream, signal.as_str());
        let publish = async {
            self.js
                .publish(subject, Bytes::from(compressed))
                .await
                .map_err(|e| QueueError::Publish(e.to_string()))?
                .await
                .map_err(|e| QueueError::Publish(e.to_string()))
        };
        let ack = tokio::time::timeout(PUBLISH_LIMIT, publish)
            .await
            .map_err(|_| {
                QueueError::Publish(format!(
                    "no acknowledgement within {} s",
                    PUBLISH_LIMIT.as_secs()
                ))
            })??;
        Ok(ack.sequence)
    }

    /// The shared durable consumer's deliveries, oldest first, with the receipts that
    /// acknowledge them.
    pub async fn deliveries(&self) -> Result<Deliveries, QueueError> {
        let stream_error = |e: &dyn std::fmt::Display| QueueError::Stream {
            stream: self.settings.stream.clone(),
            message: e.to_string(),
        };
        let stream = self
            .js
            .get_stream(&self.settings.stream)
            .await
            .map_err(|e| stream_error(&e))?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    // Messages stay unacknowledged until their flush is registered: a
                    // memtable's worth of exports per index node.
                    max_ack_pending: 1_000_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| stream_error(&e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| QueueError::Consume(e.to_string()))?;
        Ok(Deliveries {
            messages,
            stream: self.settings.stream.clone(),
        })
    }
}

/// The messages delivered to this index node.
pub struct Deliveries {
    messages: consumer::pull::Stream,
    stream: String,
}

/// One export taken from the queue.
pub struct Delivery {
    pub signal: Signal,
    /// The OTLP protobuf request, decompressed.
    pub request: Vec<u8>,
    /// Its stream sequence: what the metastore records as indexed.
    pub seq: u64,
    /// Whether JetStream delivered it before (to a node that died or was too slow): it may
    /// already be indexed.
    pub redelivered: bool,
    /// Acknowledges it (held in [`Receipts`] until its files are registered).
    pub acker: jetstream::message::Acker,
}

impl Deliveries {
    /// The next delivery; `None` when the connection is gone for good. A message this node
    /// cannot read (not ours, or corrupt) is an error naming its sequence, and is
    /// acknowledged so that it does not come back forever.
    pub async fn next(&mut self) -> Option<Result<Delivery, QueueError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(QueueError::Consume(e.to_string()))),
        };
        let (seq, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(e) => return Some(Err(QueueError::Consume(e.to_string()))),
        };
        let signal = message
            .subject
            .as_str()
            .strip_prefix(&self.stream)
            .and_then(|s| s.strip_prefix('.'))
            .and_then(Signal::from_folder);
        let (message, acker) = message.split();
        let request = lz4_flex::decompress_size_prepended(&message.payload);
        let unreadable = match (signal, request) {
            (Some(signal), Ok(request)) => {
                return Some(Ok(Delivery {
                    signal,
                    request,
                    seq,
                    redelivered: delivered > 1,
                    acker,
                }))
            }
            (None, _) => "unknown subject".to_string(),
            (_, Err(e)) => format!("payload: {e}"),
        };
        // Not ours, or corrupt: acknowledged so that it does not come back forever.
        let _ = acker.ack().await;
        Some(Err(QueueError::Consume(format!(
            "message {seq} on {} is not an export this version reads ({unreadable}); dropped",
            message.subject
        ))))
    }
}
