//! Searchable storage is no larger than a zstd archive of what was sent: a seeded data set
//! of 200 000 spans and, separately, 200 000 log records (the load generator's payloads),
//! written through the real server and compacted, takes no more bytes (Parquet + index +
//! filters) than the zstd -3 compression of the same OTLP protobuf bytes. Sizes are
//! deterministic; no timing is asserted.

mod common;

use std::io::Write;

use common::{dir_bytes, Server};

const BATCHES: u64 = 200;
const BATCH: usize = 1000;
/// 2026-11-30T10:00:00Z: the data set is the same every run.
const BASE_NS: u64 = 1_796_032_800_000_000_000;

/// Sends `BATCHES` exports of one signal, compacts, and returns (stored bytes, zstd -3 bytes
/// of everything sent).
async fn stored_and_archived(signal: &str) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut archive = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    for n in 0..BATCHES {
        let body = common::loadgen_export(signal, n, BATCH, BASE_NS);
        archive.write_all(&body).unwrap();
        let r = server.post_protobuf(&format!("/v1/{signal}"), body).await;
        assert_eq!(r.status(), 200, "batch {n}");
    }
    server.stop();
    println!(
        "{signal} before compaction: Parquet {} B, index + filters {} B",
        dir_bytes(&data.join("store")),
        dir_bytes(&data.join("index"))
    );
    common::compact(&data);
    let (parquet, index) = (
        dir_bytes(&data.join("store")),
        dir_bytes(&data.join("index")),
    );
    println!("{signal}: Parquet {parquet} B, index + filters {index} B");
    let stored = parquet + index;
    let archived = archive.finish().unwrap().len() as u64;
    (stored, archived)
}

/// Asserts that stored bytes of `signal` do not exceed the zstd -3 archive of its OTLP.
async fn assert_within_archive(signal: &str) {
    let (stored, archived) = stored_and_archived(signal).await;
    let records = (BATCHES * BATCH as u64) as f64;
    println!(
        "{signal}: stored {:.1} B/record, zstd -3 of the OTLP {:.1} B/record",
        stored as f64 / records,
        archived as f64 / records
    );
    assert!(
        stored <= archived,
        "{signal}: stored {stored} B > zstd -3 archive {archived} B"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_take_no_more_room_than_a_zstd_archive_of_their_otlp() {
    assert_within_archive("traces").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_take_no_more_room_than_a_zstd_archive_of_their_otlp() {
    assert_within_archive("logs").await;
}
