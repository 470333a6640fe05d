//! The memory bound of the write path, asserted without timing: the load generator's spans
//! and logs, sent through the real server and held in its memtable (no flush yet), cost
//! under 400 B of accounted Arrow buffers per record, and the accounting covers every
//! record sent. The records are then queryable from memory and, after a restart
//! (replayed from the WAL into the same columns), still there exactly once.

mod common;

use common::Server;
use sightline::loadgen::payload;

const BATCHES: u64 = 40;
const BATCH: usize = 1000;
/// 2026-11-30T10:00:00Z.
const BASE_NS: u64 = 1_796_032_800_000_000_000;

/// Flags of a server that keeps everything in its memtable.
const NEVER_FLUSH: [&str; 4] = ["--flush-age-ms", "3600000", "--flush-rows", "10000000"];

/// Sends the load generator's exports of `signal` to a server that does not flush, checks
/// that the memtable accounts for every record, and returns its bytes per record.
async fn bytes_per_buffered_record(server: &Server, signal: &str) -> f64 {
    for n in 0..BATCHES {
        let r = server
            .post_protobuf(
                &format!("/v1/{signal}"),
                common::loadgen_export(signal, n, BATCH, BASE_NS),
            )
            .await;
        assert_eq!(r.status(), 200, "batch {n}");
    }
    let sent = (BATCHES as usize * BATCH) as f64;
    // Acknowledged means in the memtable: no waiting needed.
    let rows = server.metric("sightline_memtable_rows").await;
    let bytes = server.metric("sightline_memtable_bytes").await;
    assert_eq!(
        rows, sent,
        "{signal}: every acknowledged record is buffered"
    );
    assert!(bytes > 0.0, "{signal}: buffered records have a cost");
    bytes / rows
}

/// Span names of one trace, sorted, as the query API returns them.
async fn span_names(server: &Server, trace_id: &[u8]) -> Vec<String> {
    let (status, trace) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(trace_id)))
        .await;
    assert_eq!(status, 200, "trace {}", hex::encode(trace_id));
    let mut names: Vec<String> = trace["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_span_costs_under_400_bytes_and_reads_back_from_memory_and_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &NEVER_FLUSH);
    let per_span = bytes_per_buffered_record(&server, "traces").await;
    println!("memtable: {per_span:.1} B per buffered span");
    assert!(per_span < 400.0, "{per_span:.1} B per buffered span");

    // One trace of the last batch, as sent.
    let mut sent = payload::traces((BATCHES - 1) % 16, BATCH, BASE_NS);
    payload::refresh_trace_ids(&mut sent, BATCHES - 1, (BATCHES - 1) * 1_000_000_000);
    let spans: Vec<_> = sent
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .collect();
    let trace_id = spans[0].trace_id.clone();
    let mut expected: Vec<String> = spans
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .map(|s| s.name.clone())
        .collect();
    expected.sort();
    assert_eq!(
        span_names(&server, &trace_id).await,
        expected,
        "from memory"
    );

    // Killed before any flush: the WAL replays into the same columns, each span once.
    server.kill9();
    let server = Server::start_with(&data, &NEVER_FLUSH);
    let replayed = server.metric("sightline_memtable_rows").await;
    assert_eq!(replayed, (BATCHES as usize * BATCH) as f64, "replayed rows");
    assert_eq!(
        span_names(&server, &trace_id).await,
        expected,
        "after replay"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_logs_are_accounted_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &NEVER_FLUSH);
    let per_log = bytes_per_buffered_record(&server, "logs").await;
    println!("memtable: {per_log:.1} B per buffered log record");
    // The same bound as spans: bodies are compressed like span attributes.
    assert!(per_log < 400.0, "{per_log:.1} B per buffered log record");
    server.stop();
}
