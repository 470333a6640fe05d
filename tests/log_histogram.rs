//! Log counts over time come from the block index without reading a block: the histogram of
//! one word from each block's records per word, the histogram of a service and Loki's
//! `count_over_time` from each block's records per stream. Their counts equal those of the
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

/// `n` records of `service`, `step` apart from `start`; every third one at level ERROR, the
/// others INFO. Returns the request and each record's (time, level).
fn leveled_export(
    service: &str,
    n: u64,
    start: u64,
    step: u64,
) -> (ExportLogsServiceRequest, Vec<(u64, &'static str)>) {
    let mut seen = Vec::new();
    let records = (0..n)
        .map(|i| {
            let t = start + i * step;
            let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
            seen.push((t, level));
            LogRecord {
                time_unix_nano: t,
                severity_number: if i % 3 == 0 { 17 } else { 9 },
                severity_text: level.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body(i))),
                }),
                ..Default::default()
            }
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, seen)
}

/// A Loki metric query's series as level → (step time in s → value).
async fn loki_by_level(
    server: &Server,
    query: &str,
    start: u64,
    end: u64,
) -> std::collections::BTreeMap<String, Vec<(u64, u64)>> {
    let (status, body) = server
        .get(&format!(
            "/loki/api/v1/query_range?query={}&start={start}&end={end}&step=60",
            common::enc(query)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["result"]
        .as_array()
        .expect("a matrix")
        .iter()
        .map(|s| {
            let level = s["metric"]["level"].as_str().unwrap_or("").to_string();
            let values = s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| {
                    let t = v[0].as_f64().expect("a time") as u64;
                    let n: u64 = v[1].as_str().expect("a count").parse().expect("a number");
                    (t, n)
                })
                .collect();
            (level, values)
        })
        .collect()
}

/// What Loki answers for `seen`: per level, the records in (t - 60 s, t] of each step `t`
/// from `start` to `end` that has any.
fn loki_expected(
    seen: &[(u64, &str)],
    start: u64,
    end: u64,
) -> std::collections::BTreeMap<String, Vec<(u64, u64)>> {
    let mut out = std::collections::BTreeMap::new();
    for level in ["ERROR", "INFO"] {
        let values: Vec<(u64, u64)> = (0..=(end - start) / MINUTE)
            .map(|i| start + i * MINUTE)
            .filter_map(|t| {
                let n = seen
                    .iter()
                    .filter(|(x, l)| *l == level && *x + MINUTE > t && *x <= t)
                    .count() as u64;
                (n > 0).then_some((t / SECOND, n))
            })
            .collect();
        out.insert(level.to_lowercase(), values);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_and_loki_counts_are_added_up_from_the_blocks_records_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    // Two services in turn, 20 exports each of 20 records 600 ms apart, flushed one by one,
    // 7 s past a minute 30 minutes ago (no record on a whole minute).
    let base = now_ns() / MINUTE * MINUTE - 30 * MINUTE + 7 * SECOND;
    let mut histo = Vec::new();
    for e in 0..40u64 {
        let service = if e % 2 == 0 { "histo" } else { "other" };
        let (request, seen) = leveled_export(service, 20, base + e * 12 * SECOND, 600_000_000);
        if service == "histo" {
            histo.extend(seen);
        }
        let r = server
            .post_protobuf("/v1/logs", request.encode_to_vec())
            .await;
        assert_eq!(r.status(), 200);
        flushed(&server).await;
    }
    let (start, end) = (now_ns() - 60 * MINUTE, now_ns());

    // The histogram of one service reads no block.
    let times: Vec<u64> = histo.iter().map(|(t, _)| *t).collect();
    let read_before = server.metric("sightline_blocks_read_total").await;
    let service = histogram(&server, "service:histo", start, end).await;
    let read = server.metric("sightline_blocks_read_total").await - read_before;
    assert_eq!(counts(&service), expected(&service, &times));
    assert_eq!(read, 0.0, "every block lies within one minute");

    // Loki's count by level over minute steps, from the blocks' counts alone…
    let (from, to) = (start / MINUTE * MINUTE, end / MINUTE * MINUTE);
    let plain = r#"sum by (level) (count_over_time({service_name="histo"}[1m]))"#;
    let read_before = server.metric("sightline_blocks_read_total").await;
    let by_blocks = loki_by_level(&server, plain, from, to).await;
    let read = server.metric("sightline_blocks_read_total").await - read_before;
    assert_eq!(by_blocks, loki_expected(&histo, from, to));
    assert_eq!(read, 0.0, "no block straddles a whole minute");

    // …equals the count from records read one by one (a line filter every record passes),
    let filtered = r#"sum by (level) (count_over_time({service_name="histo"} |= "request" [1m]))"#;
    let read_before = server.metric("sightline_blocks_read_total").await;
    assert_eq!(loki_by_level(&server, filtered, from, to).await, by_blocks);
    let read = server.metric("sightline_blocks_read_total").await - read_before;
    assert!(read >= 20.0, "{read} blocks read");

    // …and steps off the minute, which most blocks straddle, count right too.
    let (from, to) = (from + 13 * SECOND, to + 13 * SECOND);
    assert_eq!(
        loki_by_level(&server, plain, from, to).await,
        loki_expected(&histo, from, to)
    );
    server.stop();
}
