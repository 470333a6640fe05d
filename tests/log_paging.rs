//! Log search as a user pages through it: "Older →" returns every matching record exactly
//! once while newer records keep arriving, a token held by one record finds that record
//! through every front end (JSON API, gRPC, Loki, the logs page, the CLI), and the answers
//! are the same before and after compaction and after a restart.

mod common;

use std::collections::HashMap;

use common::otlp::{kv, now_ns};
use common::search::ids;
use common::Server;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;

const MS: u64 = 1_000_000;
/// Records per export.
const BATCH: u64 = 300;

/// Export `n`: `BATCH` records of service `pager`, one millisecond apart from `t0`, each with
/// the common word `ledger`, a unique id (`rec-<n>-<i>`, also its correlation id) and a token
/// only it has (`tok` and eight hex digits).
fn export(n: u64, t0: u64) -> Vec<u8> {
    let records = (0..BATCH)
        .map(|i| {
            let id = format!("rec-{n}-{i}");
            LogRecord {
                time_unix_nano: t0 + i * MS,
                severity_number: 9,
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(format!(
                        "ledger entry {id} posted tok{:08x}",
                        n * 100_000 + i
                    ))),
                }),
                attributes: vec![kv("correlation_id", &id)],
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "pager")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Every page of `q` in `[start, end]`, following `next_cursor`; between pages `between` runs.
async fn all_pages(
    server: &Server,
    q: &str,
    window: &str,
    mut between: impl FnMut(usize) -> Option<Vec<u8>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_no in 0.. {
        let path = match &cursor {
            Some(c) => format!("/api/v1/logs?q={q}&limit=100&{window}&before={c}"),
            None => format!("/api/v1/logs?q={q}&limit=100&{window}"),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        seen.extend(ids(&page));
        if let Some(body) = between(page_no) {
            let r = server.post_protobuf("/v1/logs", body).await;
            assert_eq!(r.status(), 200);
        }
        match page["next_cursor"].as_str() {
            Some(c) if page["truncated"] == true => cursor = Some(common::enc(c)),
            _ => break,
        }
    }
    seen
}

/// The answers that must not change: the first page of the common word, a rare token, and
/// a correlation id.
async fn answers(server: &Server, window: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/logs?q=ledger&limit=100&{window}"),
        format!("/api/v1/logs?q=tok{:08x}&{window}", 2 * 100_000 + 7),
        "/api/v1/correlations/rec-1-250".to_string(),
    ] {
        let (status, answer) = server.get(&path).await;
        assert_eq!(status, 200, "{path}: {answer}");
        out.push(common::search::found_part(answer));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_pages_return_each_record_once_and_answers_survive_compaction_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Flushed every 400 records: the data is spread over files and the memtable.
    let flags = ["--flush-rows", "400", "--flush-age-ms", "600000"];
    let server = Server::start_with(&data, &flags);
    let t0 = now_ns() - 20 * 60 * 1_000 * MS;
    for n in 0..4 {
        let r = server
            .post_protobuf("/v1/logs", export(n, t0 + n * BATCH * MS))
            .await;
        assert_eq!(r.status(), 200, "export {n}");
    }
    let window = format!("start={t0}&end={}", now_ns() + 60_000 * MS);

    // Newer records arrive while the user pages back: none of them may show up in older
    // pages, and no older record may be skipped or repeated.
    let newer = now_ns() - 5 * 60 * 1_000 * MS;
    let seen = all_pages(&server, "ledger", &window, |page| {
        (page < 3).then(|| export(10 + page as u64, newer + page as u64 * BATCH * MS))
    })
    .await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &seen {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    for n in 0..4 {
        for i in 0..BATCH {
            let id = format!("rec-{n}-{i}");
            assert_eq!(counts.get(id.as_str()), Some(&1), "{id} once");
        }
    }
    // The first page may hold newer records (they are the newest); none appears twice.
    assert!(counts.values().all(|c| *c == 1), "no record twice");

    // A token one record holds finds that record, through every front end.
    let token = format!("tok{:08x}", 3 * 100_000 + 123);
    common::search::found_everywhere(&server, "pager", &token, &window, "rec-3-123").await;

    let before = answers(&server, &window).await;
    assert_eq!(ids(&before[1]), ["rec-2-7"]);
    server.stop();
    common::compact(&data);
    let server = Server::start_with(&data, &flags);
    assert_eq!(answers(&server, &window).await, before, "after compaction");
    server.stop();
    let server = Server::start_with(&data, &flags);
    assert_eq!(answers(&server, &window).await, before, "after a restart");
    server.stop();
}
