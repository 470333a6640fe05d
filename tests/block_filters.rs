//! Ids and id-like body tokens are found through each block's filter: a present one reads its
//! own block (and rarely one false positive), an absent one reads no block at all, and the
//! index with its filters stays a few bytes per record.

mod common;

use common::otlp::kv;
use common::{dir_bytes, enc, Server};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

const LOGS: u64 = 10_000;
const SPANS: u64 = 4_000;
/// Rows per row group, so the data set spans several blocks of each signal.
const ROW_GROUP_ROWS: &str = "1000";
/// 2026-11-30T10:00:00Z: fixed, so the data set (and so every block) is the same each run.
const BASE_NS: u64 = 1_796_032_800_000_000_000;

/// Deterministic pseudo-random bytes for record `i` and purpose `salt`.
fn bytes_of(i: u64, salt: u64, n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(i * 31 + salt);
    (0..n).map(|_| rng.u8(1..)).collect()
}

fn uuid_of(i: u64) -> String {
    let b = bytes_of(i, 7, 16);
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn trace_id_of(i: u64) -> Vec<u8> {
    bytes_of(i / 4, 1, 16)
}

fn corr_of(i: u64) -> String {
    format!("corr-{}", hex::encode(bytes_of(i, 3, 6)))
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

/// Logs shaped like production ones: words from a small vocabulary, a uuid and a 32-bit
/// number in the body, a correlation id, and trace and span ids on half of them.
fn log_request() -> ExportLogsServiceRequest {
    let words = [
        "payment", "declined", "retry", "cache", "miss", "timeout", "ok",
    ];
    let records = (0..LOGS)
        .map(|i| {
            let number = u32::from_le_bytes(bytes_of(i, 5, 4).try_into().unwrap_or([1; 4]));
            LogRecord {
                time_unix_nano: BASE_NS + i * 100_000,
                severity_number: 9,
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(format!(
                        "{} {} request {} took {} units {}",
                        words[(i % 7) as usize],
                        words[(i % 5) as usize],
                        uuid_of(i),
                        number,
                        words[(i % 3) as usize],
                    ))),
                }),
                attributes: vec![kv("correlation_id", &corr_of(i))],
                trace_id: if i % 2 == 0 {
                    trace_id_of(i)
                } else {
                    Vec::new()
                },
                span_id: if i % 2 == 0 {
                    bytes_of(i, 2, 8)
                } else {
                    Vec::new()
                },
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("payments"),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Spans of 4-span traces, each with a correlation id.
fn span_request() -> ExportTraceServiceRequest {
    let spans = (0..SPANS)
        .map(|i| Span {
            trace_id: trace_id_of(i),
            span_id: bytes_of(i, 2, 8),
            name: format!("GET /orders/{{id}} {}", i % 3),
            kind: 2,
            start_time_unix_nano: BASE_NS + i * 500_000,
            end_time_unix_nano: BASE_NS + i * 500_000 + 2_000_000,
            attributes: vec![kv("correlation_id", &corr_of(i))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("orders"),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The server's count of Parquet row groups read by queries.
async fn blocks_read(server: &Server) -> u64 {
    server.metric("sightline_blocks_read_total").await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_rare_tokens_are_found_through_block_filters_and_absent_ones_read_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &[
            "--flush-age-ms",
            "60000",
            "--row-group-rows",
            ROW_GROUP_ROWS,
        ],
    );
    let r = server
        .post_protobuf("/v1/logs", log_request().encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    let r = server
        .post_protobuf("/v1/traces", span_request().encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    // One flush at shutdown: every record read back from Parquet through the index.
    server.stop();
    let index_bytes = dir_bytes(&data.join("index"));
    let per_record = index_bytes as f64 / (LOGS + SPANS) as f64;
    println!("index + filters: {index_bytes} B, {per_record:.1} B/record");
    assert!(
        per_record <= 10.0,
        "index + filters take {per_record:.1} B per record (budget 10)"
    );

    let server = Server::start_with(&data, &["--row-group-rows", ROW_GROUP_ROWS]);
    let logs = |q: String| {
        let server = &server;
        async move {
            let (status, body) = server
                .get(&format!(
                    "/api/v1/logs?limit=100&start=2026-11-30T09:00:00Z&end=2026-11-30T11:00:00Z&q={}",
                    enc(&q)
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            body["logs"].as_array().cloned().unwrap_or_default()
        }
    };

    // Absent values: nothing found, and no block read to find that out.
    let before = blocks_read(&server).await;
    assert!(logs("0badc0de".into()).await.is_empty());
    assert!(logs("request 0badc0de77".into()).await.is_empty());
    assert!(logs(format!("trace_id:{}", "ab".repeat(16)))
        .await
        .is_empty());
    assert!(logs("correlation_id:corr-000000000000".into())
        .await
        .is_empty());
    let (status, _) = server
        .get(&format!("/api/v1/traces/{}", "cd".repeat(16)))
        .await;
    assert_eq!(status, 404);
    let (status, body) = server.get("/api/v1/correlations/corr-absent").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(0), "{body}");
    assert_eq!(
        blocks_read(&server).await,
        before,
        "absent ids and tokens must be ruled out by the filters alone"
    );

    // Present values: found, reading their own block and at most one false positive.
    let target = 1_234;
    let before = blocks_read(&server).await;
    let uuid = uuid_of(target);
    let first_part = &uuid[..8];
    let found = logs(first_part.to_string()).await;
    assert_eq!(found.len(), 1, "the first 8 hex digits of a uuid");
    assert!(found[0]["body"].as_str().unwrap_or("").contains(&uuid));
    assert!(
        blocks_read(&server).await - before <= 2,
        "a rare token reads its own block and at most one false positive"
    );
    assert_eq!(logs(uuid.clone()).await.len(), 1, "a whole uuid");
    assert_eq!(
        logs(format!("correlation_id:{}", corr_of(target)))
            .await
            .len(),
        1
    );
    let trace_hex = hex::encode(trace_id_of(target));
    assert_eq!(logs(format!("trace_id:{trace_hex}")).await.len(), 2);
    let (status, body) = server.get(&format!("/api/v1/traces/{trace_hex}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spans"].as_array().map(Vec::len), Some(4), "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = server
        .get(&format!("/api/v1/correlations/{}", corr_of(7)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["traces"].as_array().map(Vec::len), Some(1), "{body}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_an_older_layout_is_rebuilt_on_start_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let r = server
        .post_protobuf("/v1/traces", span_request().encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    server.stop();
    // Replace the index by one with another layout (as an earlier version wrote it), which
    // knows nothing of the files: only a rebuild from Parquet finds the spans again.
    let index_dir = data.join("index");
    std::fs::remove_dir_all(&index_dir).unwrap();
    std::fs::create_dir_all(&index_dir).unwrap();
    {
        let mut schema = tantivy::schema::Schema::builder();
        let path = schema.add_text_field("path", tantivy::schema::STRING);
        schema.add_text_field("trace_id", tantivy::schema::STRING);
        let index = tantivy::Index::create_in_dir(&index_dir, schema.build()).unwrap();
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer
            .add_document(tantivy::doc!(path => "traces/unrelated.parquet"))
            .unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(r#"{"wal_flushed_through":null}"#);
        prepared.commit().unwrap();
    }
    let server = Server::start(&data);
    let trace_hex = hex::encode(trace_id_of(100));
    let (status, body) = server.get(&format!("/api/v1/traces/{trace_hex}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spans"].as_array().map(Vec::len), Some(4), "{body}");
    let (status, body) = server
        .get(&format!("/api/v1/correlations/{}", corr_of(101)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["traces"].as_array().map(Vec::len), Some(1), "{body}");
    server.stop();
}
