//! The log histogram of one word is counted from the block index (each block keeps how many
//! of its records hold each word) without reading a block; its counts equal those of the
//! record-by-record path and of the records a search returns, in buckets aligned to whole
//! minutes.

mod common;

use common::otlp::{kv, now_ns, resource};
use common::Server;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use serde_json::Value;

const SECOND: u64 = 1_000_000_000;
const MINUTE: u64 = 60 * SECOND;

/// Record `i`'s body: words drawn by a fixed sequence, "timeout" in some (twice in a few,
/// upper case in a few), near misses ("timeouts", "time out") in others.
fn body(i: u64) -> String {
    let pick = |k: u64| (i.wrapping_mul(2_654_435_761).wrapping_add(k * 40_503)) % 7;
    let words = [
        "timeout",
        "TIMEOUT",
        "timeouts",
        "retry",
        "time out",
        "ok",
        "timeout;timeout",
    ];
    format!(
        "request {} {} after {} ms: {}",
        words[pick(1) as usize],
        words[pick(2) as usize],
        i * 7 % 1000,
        words[pick(3) as usize]
    )
}

/// Whether `body` holds the word "timeout" as the index splits words.
fn holds_timeout(body: &str) -> bool {
    body.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case("timeout"))
}

fn export(first: u64, n: u64, start: u64, step: u64) -> (ExportLogsServiceRequest, Vec<u64>) {
    let mut times = Vec::new();
    let records = (first..first + n)
        .map(|i| {
            let t = start + (i - first) * step;
            if holds_timeout(&body(i)) {
                times.push(t);
            }
            LogRecord {
                time_unix_nano: t,
                severity_number: 9,
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body(i))),
                }),
                attributes: vec![kv("correlation_id", &format!("h-{i}"))],
                ..Default::default()
            }
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("histo"),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, times)
}

async fn flushed(server: &Server) {
    for _ in 0..200 {
        if server.metric("sightline_memtable_rows").await == 0.0
            && server.metric("sightline_frozen_memtables").await == 0.0
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the memtable was not flushed");
}

async fn histogram(server: &Server, q: &str, start: u64, end: u64) -> Value {
    let (status, body) = server
        .get(&format!(
            "/api/v1/logs/histogram?q={}&start={start}&end={end}&buckets=60",
            common::enc(q)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Counts per bucket of `times`, as the histogram `h` lays its buckets out.
fn expected(h: &Value, times: &[u64]) -> Vec<u64> {
    let first = h["start_unix_nano"].as_u64().unwrap();
    let width = h["bucket_nano"].as_u64().unwrap();
    let mut counts = vec![0u64; h["counts"].as_array().unwrap().len()];
    for t in times {
        counts[((t - first) / width) as usize] += 1;
    }
    counts
}

fn counts(h: &Value) -> Vec<u64> {
    serde_json::from_value(h["counts"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_word_is_counted_from_the_index_in_minute_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    // 30 exports of 20 records 600 ms apart, 7 s past a minute, 20 minutes ago: each export
    // is flushed into a file of its own, and one in five spans two minutes (two row groups:
    // log row groups never span two minutes).
    let base = now_ns() / MINUTE * MINUTE - 20 * MINUTE + 7 * SECOND;
    let mut times = Vec::new();
    for e in 0..30u64 {
        let (request, t) = export(e * 20, 20, base + e * 12 * SECOND, 600_000_000);
        times.extend(t);
        let r = server
            .post_protobuf("/v1/logs", request.encode_to_vec())
            .await;
        assert_eq!(r.status(), 200);
        flushed(&server).await;
    }
    assert!(times.len() > 100 && times.len() < 600, "{}", times.len());
    let (start, end) = (now_ns() - 60 * MINUTE, now_ns());

    let read_before = server.metric("sightline_blocks_read_total").await;
    let word = histogram(&server, "timeout", start, end).await;
    let read_by_word = server.metric("sightline_blocks_read_total").await - read_before;
    assert_eq!(word["bucket_nano"], MINUTE);
    assert_eq!(word["start_unix_nano"].as_u64().unwrap() % MINUTE, 0);
    assert_eq!(counts(&word), expected(&word, &times));
    assert_eq!(word["total"], times.len());

    // The same word with a condition the index cannot count reads every candidate block,
    // record by record, and agrees.
    let read_before = server.metric("sightline_blocks_read_total").await;
    let both = histogram(&server, "timeout service:histo", start, end).await;
    let read_by_rows = server.metric("sightline_blocks_read_total").await - read_before;
    assert_eq!(counts(&both), counts(&word));
    assert!(read_by_rows >= 36.0, "{read_by_rows} blocks read");
    assert_eq!(
        read_by_word, 0.0,
        "whole minutes are counted from the index"
    );

    // And a search returns exactly as many records.
    let (_, found) = server
        .get(&format!(
            "/api/v1/logs?q=timeout&start={start}&end={end}&limit=10000"
        ))
        .await;
    assert_eq!(found["logs"].as_array().unwrap().len(), times.len());
    server.stop();

    // Records still in memory count too, and the counts survive a restart.
    let server = Server::start_with(&data, &["--flush-age-ms", "600000"]);
    let (request, t) = export(10_000, 20, base + 30 * 12 * SECOND, SECOND);
    times.extend(t);
    let r = server
        .post_protobuf("/v1/logs", request.encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    let end = now_ns();
    let word = histogram(&server, "timeout", start, end).await;
    assert_eq!(counts(&word), expected(&word, &times));
    let both = histogram(&server, "timeout service:histo", start, end).await;
    assert_eq!(counts(&both), counts(&word));
    server.stop();
}
