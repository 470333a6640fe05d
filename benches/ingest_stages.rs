//! Each ingest stage on its own, on realistic payloads (see BENCHMARKS.md for figures):
//! OTLP decode, conversion to rows, WAL append with and without fsync, Parquet encode, and
//! block indexing, on the load generator's payloads. Decode, convert and WAL work per export
//! request (1 000 records); Parquet and the index per block of 16 384 rows, as the server
//! flushes them (per-file costs would dominate smaller blocks). Bounded so the suite
//! finishes in a few minutes: `cargo bench`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sightline::index::{block, BlockIndex};
use sightline::ingest::{decode_logs, decode_metrics, decode_traces, CorrelationKeys};
use sightline::loadgen::payload;
use sightline::model::{LogRow, Signal, SpanRow};
use sightline::store::{Store, StoredRow};
use sightline::wal::{SyncPolicy, Wal};

const BATCH: usize = 1000;
/// Rows per Parquet file / index block in the storage stages.
const BLOCK: usize = 16_384;
const NOW: u64 = 1_795_428_900_000_000_000;

fn traces(seed: u64) -> ExportTraceServiceRequest {
    payload::traces(seed, BATCH, NOW)
}

fn logs(seed: u64) -> ExportLogsServiceRequest {
    payload::logs(seed, BATCH, NOW)
}

fn stages(c: &mut Criterion) {
    let keys = CorrelationKeys::default();
    let trace_bytes = traces(1).encode_to_vec();
    let log_bytes = logs(2).encode_to_vec();
    let mut g = c.benchmark_group("stage");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(BATCH as u64));

    g.bench_function("decode traces (1000 spans)", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(trace_bytes.as_slice()).unwrap())
    });
    g.bench_function("decode traces into columns", |b| {
        b.iter(|| decode_traces(&trace_bytes, &keys).unwrap())
    });
    let metric_bytes = payload::metrics(5, BATCH, NOW).encode_to_vec();
    g.bench_function("decode metrics (1000 points)", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(metric_bytes.as_slice()).unwrap())
    });
    g.bench_function("decode metrics into columns (1000 points)", |b| {
        b.iter(|| decode_metrics(&metric_bytes).unwrap())
    });
    g.bench_function("decode logs into columns (1000 records)", |b| {
        b.iter(|| decode_logs(&log_bytes, &keys).unwrap())
    });

    for (name, policy) in [
        ("wal append traces, no fsync", SyncPolicy::Never),
        ("wal append traces, fsync", SyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), policy, None).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                wal.commit(&[(Signal::Traces, &trace_bytes)]).unwrap();
            })
        });
    }

    g.throughput(Throughput::Elements(BLOCK as u64));
    let spans: Vec<_> = (0..(BLOCK as u64).div_ceil(BATCH as u64))
        .flat_map(|n| {
            let mut request = traces(n);
            payload::refresh_trace_ids(&mut request, n, n * 1_000_000_000);
            let batch = decode_traces(&request.encode_to_vec(), &keys)
                .unwrap()
                .batch;
            let mut rows = Vec::new();
            SpanRow::from_batch(&batch, &mut |_| true, &mut rows).unwrap();
            rows
        })
        .take(BLOCK)
        .collect();
    let log_rows: Vec<_> = (0..(BLOCK as u64).div_ceil(BATCH as u64))
        .flat_map(|n| {
            let mut request = logs(n);
            payload::refresh_log_ids(&mut request, n, n * 1_000_000_000);
            let batch = decode_logs(&request.encode_to_vec(), &keys).unwrap().batch;
            let mut rows = Vec::new();
            LogRow::from_batch(&batch, &mut |_| true, &mut rows).unwrap();
            rows
        })
        .take(BLOCK)
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_local(dir.path(), 16_384).unwrap();
    g.bench_function("parquet encode+write spans (16 384)", |b| {
        b.iter(|| rt.block_on(store.write(&spans)).unwrap().len())
    });
    g.bench_function("parquet encode+write logs (16 384)", |b| {
        b.iter(|| rt.block_on(store.write(&log_rows)).unwrap().len())
    });

    let index_dir = tempfile::tempdir().unwrap();
    let index = Arc::new(BlockIndex::open(index_dir.path()).unwrap());
    let fields = index.fields().clone();
    let span_batch = [SpanRow::to_batch(&spans.iter().collect::<Vec<_>>()).unwrap()];
    let log_batch = [LogRow::to_batch(&log_rows.iter().collect::<Vec<_>>()).unwrap()];
    let span_block = || {
        block::block_of_batches(&fields, Signal::Traces, "traces/x.parquet", 0, &span_batch)
            .unwrap()
    };
    let log_block =
        || block::block_of_batches(&fields, Signal::Logs, "logs/x.parquet", 0, &log_batch).unwrap();
    g.bench_function("build one 16 384-span block from columns", |b| {
        b.iter(span_block)
    });
    g.bench_function("build one 16 384-log block from columns", |b| {
        b.iter(log_block)
    });
    let mut seq = 0;
    g.bench_function("index one 16 384-span block + commit", |b| {
        b.iter_batched(
            span_block,
            |doc| {
                seq += 1;
                index.commit_blocks(vec![doc], seq).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("index one 16 384-log block + commit", |b| {
        b.iter_batched(
            log_block,
            |doc| {
                seq += 1;
                index.commit_blocks(vec![doc], seq).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
