//! Sightline's own metrics, served at `/metrics` in the Prometheus text format: ingest rates,
//! refusals, WAL and memtable sizes, flush and request latencies.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A label set naming one signal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub signal: String,
}

/// A label set naming why an export was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Every self-metric; one process-wide instance (metrics are cheap clones of shared cells).
pub struct Telemetry {
    pub records_ingested: Family<SignalLabel, Counter>,
    pub records_rejected: Family<SignalLabel, Counter>,
    pub exports_refused: Family<ReasonLabel, Counter>,
    /// Queue messages an index node got a second time (their first node died or was too
    /// slow), by what it did: `taken` into its memtable, or `already_indexed` and skipped.
    pub queue_redeliveries: Family<ReasonLabel, Counter>,
    /// Alert evaluations this node ran (in a cluster only the lease holder evaluates).
    pub alert_evaluations: Counter,
    /// 1 while this node holds the alert-evaluation lease.
    pub alert_lease_held: Gauge,
    pub wal_segment_bytes: Gauge,
    pub memtable_rows: Gauge,
    /// Bytes of Arrow buffers the active memtable holds.
    pub memtable_bytes: Gauge,
    pub read_cache_bytes: Gauge,
    pub frozen_memtables: Gauge,
    pub flush_seconds: Histogram,
    pub request_seconds: Histogram,
    /// Parquet row groups (blocks) queries read: what index and filters failed to rule out.
    pub blocks_read: Counter,
    /// Bytes of block locations and stream counts the index holds on the heap.
    pub index_cached_bytes: Gauge,
    /// Bytes of block filters mapped from scratch files (resident only where lookups
    /// touched them).
    pub index_filter_mapped_bytes: Gauge,
}

static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(|| Telemetry {
    records_ingested: Family::default(),
    records_rejected: Family::default(),
    exports_refused: Family::default(),
    queue_redeliveries: Family::default(),
    alert_evaluations: Counter::default(),
    alert_lease_held: Gauge::default(),
    wal_segment_bytes: Gauge::default(),
    memtable_rows: Gauge::default(),
    memtable_bytes: Gauge::default(),
    read_cache_bytes: Gauge::default(),
    frozen_memtables: Gauge::default(),
    flush_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
    request_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
    blocks_read: Counter::default(),
    index_cached_bytes: Gauge::default(),
    index_filter_mapped_bytes: Gauge::default(),
});

/// The process-wide metrics.
pub fn get() -> &'static Telemetry {
    &TELEMETRY
}

/// Counts records of `signal` (`traces`, `logs`, `metrics`).
pub fn signal(signal: &str) -> SignalLabel {
    SignalLabel {
        signal: signal.to_string(),
    }
}

/// The metrics in the Prometheus text exposition format.
pub fn render() -> String {
    let t = get();
    let mut registry = Registry::with_prefix("sightline");
    registry.register(
        "ingested_records",
        "Records acknowledged, by signal",
        t.records_ingested.clone(),
    );
    registry.register(
        "rejected_records",
        "Records dropped for invalid ids, by signal",
        t.records_rejected.clone(),
    );
    registry.register(
        "refused_exports",
        "Exports refused as retryable, by reason",
        t.exports_refused.clone(),
    );
    registry.register(
        "queue_redeliveries",
        "Queue messages delivered to this index node again, by what it did with them",
        t.queue_redeliveries.clone(),
    );
    registry.register(
        "alert_evaluations",
        "Alert rule evaluations this node ran (one node of a cluster evaluates)",
        t.alert_evaluations.clone(),
    );
    registry.register(
        "alert_lease_held",
        "1 while this node holds the alert-evaluation lease",
        t.alert_lease_held.clone(),
    );
    registry.register(
        "blocks_read",
        "Parquet row groups read by queries",
        t.blocks_read.clone(),
    );
    registry.register(
        "index_cached_bytes",
        "Bytes of block locations and stream counts held on the heap",
        t.index_cached_bytes.clone(),
    );
    registry.register(
        "index_filter_mapped_bytes",
        "Bytes of block filters mapped from scratch files (resident only where lookups touched them)",
        t.index_filter_mapped_bytes.clone(),
    );
    registry.register(
        "wal_segment_bytes",
        "Bytes in the current WAL segment",
        t.wal_segment_bytes.clone(),
    );
    registry.register(
        "memtable_rows",
        "Rows in the active memtable",
        t.memtable_rows.clone(),
    );
    registry.register(
        "memtable_bytes",
        "Bytes of Arrow buffers in the active memtable",
        t.memtable_bytes.clone(),
    );
    registry.register(
        "read_cache_bytes",
        "Bytes of object-store reads kept in the local read cache",
        t.read_cache_bytes.clone(),
    );
    registry.register(
        "frozen_memtables",
        "Memtables waiting to be flushed (queue depth)",
        t.frozen_memtables.clone(),
    );
    registry.register(
        "flush_seconds",
        "Time to write one frozen memtable to Parquet and the index",
        t.flush_seconds.clone(),
    );
    registry.register(
        "http_request_seconds",
        "Time to answer UI and query API requests",
        t.request_seconds.clone(),
    );
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}
