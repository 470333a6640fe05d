//! The WAL writer thread: group commit, then publish the records, then acknowledge.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::live::{Frozen, LiveData};
use super::{PipelineConfig, Pressure, WriteError, WriteRequest, MAX_FROZEN};
use crate::model::Signal;
use crate::wal::Wal;

/// Most payload bytes gathered into one group commit.
const MAX_GROUP_BYTES: usize = 8 << 20;
/// How often an idle writer wakes to check the age of the memtable.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// Runs until every sender is dropped, then freezes what is left and returns.
pub(super) fn run(
    mut rx: mpsc::Receiver<WriteRequest>,
    mut wal: Option<Wal>,
    live: Arc<LiveData>,
    flush_tx: SyncSender<Arc<Frozen>>,
    config: PipelineConfig,
    rt: Handle,
    pressure: Pressure,
) {
    let mut group: Vec<WriteRequest> = Vec::new();
    loop {
        let closed = match wait_first(&rt, &mut rx) {
            Waited::Request(first) => {
                let mut bytes = first.payload.len();
                group.push(first);
                while bytes < MAX_GROUP_BYTES {
                    match rx.try_recv() {
                        Ok(next) => {
                            bytes += next.payload.len();
                            group.push(next);
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&mut wal, &live, &mut group);
                false
            }
            Waited::Idle => false,
            Waited::Closed => true,
        };
        let (due, backlogged, rows, bytes) = {
            let inner = live.read();
            let (rows, bytes) = (inner.active.rows(), inner.active.bytes());
            // At the memory limit, flush what there is: that is what frees memory.
            let due = rows > 0
                && (closed
                    || rows >= config.flush_rows
                    || bytes >= config.flush_bytes
                    || pressure.memory_full.load(Ordering::Relaxed) > 0
                    || inner
                        .active_since
                        .is_some_and(|t| t.elapsed() >= config.flush_age));
            (due, inner.frozen.len() >= MAX_FROZEN, rows, bytes)
        };
        // Never block the acknowledgements on a slow flusher: while it is behind, keep
        // filling the active memtable up to its hard cap, then refuse exports as retryable.
        if due && (closed || !backlogged) {
            freeze(&mut wal, &live, &flush_tx, closed);
        }
        let over = backlogged
            && (rows >= config.flush_rows.saturating_mul(2)
                || bytes >= config.flush_bytes.saturating_mul(2));
        if pressure.overloaded.swap(over, Ordering::Relaxed) != over {
            if over {
                tracing::warn!(
                    rows,
                    bytes,
                    "flushing is behind: refusing exports until it catches up"
                );
            } else {
                tracing::info!("flushing caught up: accepting exports again");
            }
        }
        if closed {
            return;
        }
    }
}

enum Waited {
    Request(WriteRequest),
    Idle,
    Closed,
}

/// Waits for the next export, at most [`IDLE_TICK`]. The writer is a plain thread, so
/// blocking on the runtime here never stalls a runtime worker, and neither does the fsync.
fn wait_first(rt: &Handle, rx: &mut mpsc::Receiver<WriteRequest>) -> Waited {
    match rt.block_on(async { tokio::time::timeout(IDLE_TICK, rx.recv()).await }) {
        Ok(Some(request)) => Waited::Request(request),
        Ok(None) => Waited::Closed,
        Err(_) => Waited::Idle,
    }
}

/// Appends every request of the group, syncs once, publishes the rows, acknowledges all.
/// Without a WAL (a cluster index node, whose exports the queue holds) the rows are only
/// published, with the queue sequences they came from.
fn commit_group(wal: &mut Option<Wal>, live: &LiveData, group: &mut Vec<WriteRequest>) {
    let result = match wal {
        Some(wal) => {
            let records: Vec<(Signal, &[u8])> = group
                .iter()
                .map(|request| (request.signal, request.payload.as_slice()))
                .collect();
            wal.commit(&records).map_err(|e| {
                tracing::error!("WAL write failed, refusing this group of exports: {e}");
                WriteError::Wal(e.to_string())
            })
        }
        None => Ok(()),
    };
    if result.is_ok() {
        let mut inner = live.write();
        for request in group.iter_mut() {
            if let Some(export) = request.export.take() {
                inner.insert(*export);
            }
            inner.queue_seqs.extend(request.queue_seq);
        }
        let t = crate::telemetry::get();
        t.memtable_rows.set(inner.active.rows() as i64);
        t.memtable_bytes.set(inner.active.bytes() as i64);
        if let Some(wal) = wal {
            t.wal_segment_bytes.set(wal.segment_bytes() as i64);
        }
        drop(inner);
    }
    for request in group.drain(..) {
        let _ = request.done.send(result.clone());
    }
}

/// Seals the WAL segment and hands the memtable to the flusher (blocking when it is behind).
fn freeze(wal: &mut Option<Wal>, live: &LiveData, flush_tx: &SyncSender<Arc<Frozen>>, last: bool) {
    let wal_seq = match wal.as_mut().map_or(Ok(0), Wal::rotate) {
        Ok(seq) => seq,
        Err(e) => {
            tracing::error!("could not rotate the WAL, will retry the flush later: {e}");
            return;
        }
    };
    let frozen = {
        let mut inner = live.write();
        let table = std::mem::take(&mut inner.active);
        let rollups = inner.rollups.take(last);
        inner.active_since = None;
        let frozen = Arc::new(Frozen {
            table,
            rollups,
            wal_seq,
            queue_seqs: std::mem::take(&mut inner.queue_seqs),
        });
        inner.frozen.push(frozen.clone());
        crate::telemetry::get()
            .frozen_memtables
            .set(inner.frozen.len() as i64);
        crate::telemetry::get().memtable_rows.set(0);
        crate::telemetry::get().memtable_bytes.set(0);
        frozen
    };
    if flush_tx.send(frozen).is_err() {
        tracing::error!("flusher stopped; rows stay in the WAL and are replayed on restart");
    }
}
