//! The write path after decoding: group-committed WAL appends, the in-memory tables queries
//! read, and the background flush to Parquet and the block index.
//!
//! ```text
//! handlers ──(bounded queue, byte budget)──> writer thread ──> WAL (fsync) ──> ack
//!                                                  │ inserts rows into LiveData
//!                                                  └─(freeze when big/old)──> flusher thread
//!                                                        Parquet ─> index commit ─> drop WAL
//! ```

mod export;
mod flusher;
mod live;
mod memory;
mod memtable;
mod minute_points;
mod packed;
mod services;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};

pub use export::Export;
pub use flusher::{write_blocks, QueueJournal, Settle};
pub use live::{Frozen, LiveData, LiveInner, LiveRows};
pub use memtable::{Chunk, Memtable};
pub use services::{InstanceInfo, ServiceInfo, ServiceRegistry};

use crate::index::BlockIndex;
use crate::model::Signal;
use crate::store::Store;
use crate::wal::Wal;

/// Tuning of the write path.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Freeze and flush the memtable when it holds this many rows…
    pub flush_rows: usize,
    /// …or this many bytes of Arrow buffers…
    pub flush_bytes: usize,
    /// …or when its oldest row is this old.
    pub flush_age: Duration,
    /// Bytes of undecoded payload allowed in flight between the receivers and the WAL; past
    /// it, exports are refused as retryable instead of queueing without bound.
    pub inflight_bytes: usize,
    /// Largest size of the data dir before exports are refused (0 = no budget).
    pub disk_budget_bytes: u64,
    /// Resident memory at which exports are refused until flushing frees it (0 = no limit).
    pub max_rss_bytes: u64,
}

/// Why a write was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The write queue is full: the client should retry later.
    #[error("server is busy: write queue full, retry later")]
    Busy,
    /// The data dir reached its disk budget: retry once retention or an operator frees space.
    #[error(
        "disk budget reached: the data dir holds {used} bytes of {budget} allowed; retry later"
    )]
    DiskFull { used: u64, budget: u64 },
    /// The process is at its memory limit: retry once flushing has freed memory.
    #[error("memory limit reached: the server uses {rss} bytes of {limit} allowed; retry later")]
    MemoryFull { rss: u64, limit: u64 },
    /// The server is shutting down.
    #[error("server is shutting down")]
    Closed,
    /// The records could not be converted to the memtable's columns (a bug, not bad input:
    /// every decoded record converts).
    #[error("could not convert the export to columns: {0}")]
    Encode(String),
    /// The WAL could not be written; nothing of this request was acknowledged.
    #[error("write-ahead log: {0}")]
    Wal(String),
    /// A cluster ingest node's queue did not store the export: retry later.
    #[error("{0}")]
    Queue(String),
}

/// Where acknowledged exports are kept until their rows are in stored, committed files.
pub enum Journal {
    /// The single binary: the WAL in `dir`.
    Wal { wal: Wal, dir: PathBuf },
    /// A cluster index node: the queue keeps them until the metastore registers their files.
    Queue(QueueJournal),
}

/// One export on its way to the WAL.
struct WriteRequest {
    signal: Signal,
    payload: Vec<u8>,
    /// The queue message it came from (cluster index nodes; `payload` is then empty).
    queue_seq: Option<u64>,
    /// The records as the memtable keeps them and their rollups (taken by the writer).
    export: Option<Box<Export>>,
    done: oneshot::Sender<Result<(), WriteError>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The receivers' handle to the write path. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<WriteRequest>,
    budget: Arc<Semaphore>,
    /// Set by the writer while flushing is so far behind that the memtable reached its hard
    /// cap; exports are then refused as retryable instead of growing memory.
    overloaded: Arc<AtomicBool>,
    /// Bytes the data dir uses now (refreshed by the disk watcher) and its budget (0 = none).
    disk_used: Arc<AtomicU64>,
    disk_budget: u64,
    /// Resident bytes while over the memory limit (refresh by the memory watcher), else 0.
    memory_full: Arc<AtomicU64>,
    max_rss: u64,
}

/// What the writer and the memory watcher tell the receivers' handle about load.
#[derive(Clone, Default)]
struct Pressure {
    /// Flushing is so far behind that the memtable reached its hard cap.
    overloaded: Arc<AtomicBool>,
    /// Resident bytes while over the memory limit, else 0.
    memory_full: Arc<AtomicU64>,
}

/// Memtables frozen and not yet flushed beyond which the writer stops freezing (and the
/// active memtable grows toward its hard cap of twice `flush_rows` or `flush_bytes`).
pub const MAX_FROZEN: usize = 3;

/// The background threads; join them after every [`Pipeline`] clone is dropped to flush
/// everything and stop cleanly.
pub struct PipelineThreads {
    writer: std::thread::JoinHandle<()>,
    flusher: std::thread::JoinHandle<()>,
}

impl PipelineThreads {
    /// Waits until the writer has frozen the last rows and the flusher has stored them.
    pub fn join(self) {
        let _ = self.writer.join();
        let _ = self.flusher.join();
    }
}

/// Permits are kibibytes, so a `u32` permit count covers any request size.
fn permits_for(bytes: usize) -> u32 {
    u32::try_from(bytes / 1024 + 1).unwrap_or(u32::MAX)
}

impl Pipeline {
    /// Starts the writer and flusher threads over an opened WAL, store and index. Must be
    /// called inside the tokio runtime the threads will use for async storage calls.
    pub fn start(
        config: PipelineConfig,
        journal: Journal,
        data_dir: PathBuf,
        live: Arc<LiveData>,
        store: Store,
        index: Arc<BlockIndex>,
    ) -> std::io::Result<(Pipeline, PipelineThreads)> {
        let (tx, rx) = mpsc::channel(4096);
        // Two frozen memtables may wait; a third blocks the writer, which fills the queue,
        // which makes receivers answer "busy".
        let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel(2);
        let rt = tokio::runtime::Handle::current();
        let (wal, settle) = match journal {
            Journal::Wal { wal, dir } => (Some(wal), Settle::Wal(dir)),
            Journal::Queue(queue) => (None, Settle::Queue(queue)),
        };
        let flusher = {
            let (live, store, index, rt) = (live.clone(), store, index, rt.clone());
            std::thread::Builder::new()
                .name("flusher".into())
                .spawn(move || flusher::run(flush_rx, live, store, index, settle, rt))?
        };
        let pressure = Pressure::default();
        let (overloaded, memory_full) = (pressure.overloaded.clone(), pressure.memory_full.clone());
        let writer = {
            let (config, rt, live, pressure) =
                (config.clone(), rt.clone(), live.clone(), pressure.clone());
            std::thread::Builder::new()
                .name("wal-writer".into())
                .spawn(move || writer::run(rx, wal, live, flush_tx, config, rt, pressure))?
        };
        // Requests waiting for the WAL are memory too: under a memory limit they may take an
        // eighth of it.
        let inflight = match config.max_rss_bytes {
            0 => config.inflight_bytes,
            limit => config
                .inflight_bytes
                .min(usize::try_from(limit / 8).unwrap_or(usize::MAX)),
        };
        let budget = Arc::new(Semaphore::new(permits_for(inflight) as usize));
        let disk_used = Arc::new(AtomicU64::new(0));
        if config.disk_budget_bytes > 0 {
            tokio::spawn(watch_disk(
                data_dir,
                disk_used.clone(),
                config.disk_budget_bytes,
            ));
        }
        if config.max_rss_bytes > 0 {
            tokio::spawn(memory::watch(
                live.clone(),
                memory_full.clone(),
                config.max_rss_bytes,
            ));
        }
        let pipeline = Pipeline {
            tx,
            budget,
            overloaded,
            disk_used,
            disk_budget: config.disk_budget_bytes,
            memory_full,
            max_rss: config.max_rss_bytes,
        };
        Ok((pipeline, PipelineThreads { writer, flusher }))
    }

    /// Whether exports are accepted now; receivers ask before converting a request, so a
    /// refused one costs as little as possible.
    pub fn accepting(&self) -> Result<(), WriteError> {
        if self.overloaded.load(Ordering::Relaxed) {
            return Err(WriteError::Busy);
        }
        let rss = self.memory_full.load(Ordering::Relaxed);
        if rss > 0 {
            return Err(WriteError::MemoryFull {
                rss,
                limit: self.max_rss,
            });
        }
        let used = self.disk_used.load(Ordering::Relaxed);
        if self.disk_budget > 0 && used >= self.disk_budget {
            return Err(WriteError::DiskFull {
                used,
                budget: self.disk_budget,
            });
        }
        Ok(())
    }

    /// Appends an export to the WAL and makes its rows queryable; returns once durable.
    ///
    /// `payload` is the export request as OTLP protobuf: that is what the WAL keeps and
    /// replays, so the on-disk log is readable with any OTLP decoder.
    pub async fn write(
        &self,
        signal: Signal,
        payload: Vec<u8>,
        export: Export,
    ) -> Result<(), WriteError> {
        let bytes = payload.len();
        self.submit(signal, payload, bytes, None, export).await
    }

    /// Adds an export taken from the cluster's queue (message `seq`, `bytes` long): its rows
    /// become queryable here and the message is held until their files are registered.
    pub async fn write_delivered(
        &self,
        signal: Signal,
        bytes: usize,
        seq: u64,
        export: Export,
    ) -> Result<(), WriteError> {
        self.submit(signal, Vec::new(), bytes, Some(seq), export)
            .await
    }

    async fn submit(
        &self,
        signal: Signal,
        payload: Vec<u8>,
        bytes: usize,
        queue_seq: Option<u64>,
        export: Export,
    ) -> Result<(), WriteError> {
        self.accepting()?;
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(permits_for(bytes))
            .map_err(|_| WriteError::Busy)?;
        let (done, wait) = oneshot::channel();
        let request = WriteRequest {
            signal,
            payload,
            queue_seq,
            export: Some(Box::new(export)),
            done,
            _permit: permit,
        };
        self.tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WriteError::Busy,
            mpsc::error::TrySendError::Closed(_) => WriteError::Closed,
        })?;
        wait.await.map_err(|_| WriteError::Closed)?
    }
}

/// How often the disk watcher measures the data dir.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Measures the data dir's size every few seconds, logging when the budget is reached and
/// when space returns.
async fn watch_disk(dir: PathBuf, used: Arc<AtomicU64>, budget: u64) {
    let mut full = false;
    loop {
        let d = dir.clone();
        let size = tokio::task::spawn_blocking(move || crate::store::dir_size(&d))
            .await
            .unwrap_or(0);
        used.store(size, Ordering::Relaxed);
        match (full, size >= budget) {
            (false, true) => tracing::error!(
                size,
                budget,
                "disk budget reached: refusing exports (queries keep working)"
            ),
            (true, false) => tracing::info!(
                size,
                budget,
                "below the disk budget again: accepting exports"
            ),
            _ => {}
        }
        full = size >= budget;
        tokio::time::sleep(DISK_CHECK_EVERY).await;
    }
}
