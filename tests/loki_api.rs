//! The Loki HTTP API over log records with known bodies, levels and times: labels, label
//! values, log queries with line filters, `| json` and label filters, direction and limit,
//! `count_over_time`/`rate` by labels, and errors naming what is unsupported.

mod common;

use common::otlp::kv;
use common::{enc, Server};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};

const SEC: u64 = 1_000_000_000;

/// `(severity number, severity text, body)` records of one instance at `t0 + 5 s + i·10 s`.
fn records(service: &str, instance: &str, t0: u64, lines: &[(i32, &str, &str)]) -> ResourceLogs {
    ResourceLogs {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service),
                kv("service.instance.id", instance),
            ],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: lines
                .iter()
                .enumerate()
                .map(|(i, (number, text, body))| LogRecord {
                    time_unix_nano: t0 + 5 * SEC + i as u64 * 10 * SEC,
                    severity_number: *number,
                    severity_text: text.to_string(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body.to_string())),
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const OK: &str = r#"{"status":200,"path":"/pay"}"#;
const DECLINED: &str = r#"{"status":500,"path":"/pay","error":{"msg":"card declined"}}"#;

async fn loki(server: &Server, path: &str) -> (u16, Value) {
    server.get(&format!("/loki/api/v1/{path}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_clients_query_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let now = common::otlp::now_ns();
    let t0 = (now / (60 * SEC) - 5) * 60 * SEC;
    let request = ExportLogsServiceRequest {
        resource_logs: vec![
            records(
                "checkout",
                "checkout-1",
                t0,
                &[
                    (9, "INFO", OK),
                    (17, "ERROR", DECLINED),
                    (9, "INFO", OK),
                    (13, "WARN", "slow upstream: timeout after 2s"),
                    (17, "ERROR", DECLINED),
                    (9, "INFO", OK),
                ],
            ),
            records(
                "cart",
                "cart-1",
                t0,
                &[
                    (9, "INFO", "added item 1"),
                    (9, "INFO", "added item 2"),
                    (9, "INFO", "added item 3"),
                    (9, "INFO", "added item 4"),
                ],
            ),
        ],
    };
    let response = server
        .post_protobuf("/v1/logs", request.encode_to_vec())
        .await;
    assert_eq!(response.status(), 200);
    let window = format!("start={}&end={}", t0, t0 + 2 * 60 * SEC);
    let ts = |i: u64| (t0 + 5 * SEC + i * 10 * SEC).to_string();
    server
        .wait_for(
            &format!(
                "/loki/api/v1/query_range?query={}&{window}",
                enc("{service_name=~\".+\"}")
            ),
            |v| v["data"]["result"].as_array().is_some_and(|r| r.len() == 4),
        )
        .await;

    // Labels and their values.
    let (status, v) = loki(&server, &format!("labels?{window}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"status": "success", "data": ["level", "service_instance_id", "service_name"]})
    );
    let (_, v) = loki(&server, &format!("label/service_name/values?{window}")).await;
    assert_eq!(
        v,
        json!({"status": "success", "data": ["cart", "checkout"]})
    );
    let (_, v) = loki(&server, &format!("label/level/values?{window}")).await;
    assert_eq!(v["data"], json!(["error", "info", "warn"]));

    // A line filter: the full answer.
    let (status, v) = loki(
        &server,
        &format!(
            "query_range?query={}&{window}",
            enc("{service_name=\"checkout\"} |= \"timeout\"")
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "streams", "stats": {}, "result": [{
            "stream": {"service_name": "checkout", "service_instance_id": "checkout-1", "level": "warn"},
            "values": [[ts(3), "slow upstream: timeout after 2s"]],
        }]}})
    );

    // | json and a numeric label filter: extracted labels join the stream, newest first.
    let (_, v) = loki(
        &server,
        &format!(
            "query_range?query={}&{window}",
            enc("{service_name=\"checkout\"} | json | status >= 500")
        ),
    )
    .await;
    assert_eq!(
        v["data"]["result"],
        json!([{
            "stream": {"service_name": "checkout", "service_instance_id": "checkout-1", "level": "error",
                       "status": "500", "path": "/pay", "error_msg": "card declined"},
            "values": [[ts(4), DECLINED], [ts(1), DECLINED]],
        }])
    );

    // Regex selectors, negative filters, regex line filters.
    let (_, v) = loki(
        &server,
        &format!(
            "query_range?query={}&{window}",
            enc("{service_name=~\"c.*\"} != \"added\" !~ \"5[0-9][0-9]\"")
        ),
    )
    .await;
    let streams = v["data"]["result"].as_array().unwrap();
    let lines: usize = streams
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(lines, 4, "{v}");

    // Limit and direction.
    let query = enc("{service_name=\"cart\"}");
    let (_, v) = loki(
        &server,
        &format!("query_range?query={query}&limit=2&{window}"),
    )
    .await;
    assert_eq!(
        v["data"]["result"][0]["values"],
        json!([[ts(3), "added item 4"], [ts(2), "added item 3"]])
    );
    let (_, v) = loki(
        &server,
        &format!("query_range?query={query}&limit=2&direction=forward&{window}"),
    )
    .await;
    assert_eq!(
        v["data"]["result"][0]["values"],
        json!([[ts(0), "added item 1"], [ts(1), "added item 2"]])
    );

    // Metric queries: count_over_time by level at one instant, and rate over a range.
    let at = t0 + 60 * SEC;
    let (_, v) = loki(
        &server,
        &format!(
            "query?query={}&time={at}",
            enc("sum by (level) (count_over_time({service_name=\"checkout\"}[1m]))")
        ),
    )
    .await;
    let at_secs = at as f64 / 1e9;
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "vector", "stats": {}, "result": [
            {"metric": {"level": "error"}, "value": [at_secs, "2"]},
            {"metric": {"level": "info"}, "value": [at_secs, "3"]},
            {"metric": {"level": "warn"}, "value": [at_secs, "1"]},
        ]}})
    );
    let (status, v) = loki(
        &server,
        &format!(
            "query_range?query={}&start={}&end={}&step=30",
            enc("sum(rate({service_name=\"cart\"}[1m]))"),
            at,
            at + 60 * SEC
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    // At t0+60 s all four cart lines (5–35 s) are inside the minute; at +90 s the one at
    // 35 s; at +120 s none (no point).
    let rates: Vec<f64> = values
        .iter()
        .map(|p| p[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(values.len(), 2, "{v}");
    assert!((rates[0] - 4.0 / 60.0).abs() < 1e-12 && (rates[1] - 1.0 / 60.0).abs() < 1e-12);

    // Errors name what is wrong or unsupported.
    for (query, needle) in [
        ("{service_name=\"checkout\"} | logfmt", "logfmt"),
        (
            "bytes_over_time({service_name=\"checkout\"}[1m])",
            "bytes_over_time",
        ),
        ("{}", "at least one label matcher"),
        ("{service_name=\"checkout\"", "expected"),
        ("count_over_time({service_name=\"checkout\"})", "range"),
    ] {
        let (status, v) = loki(
            &server,
            &format!("query_range?query={}&{window}", enc(query)),
        )
        .await;
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["status"], "error");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{query}: {v}"
        );
    }
    server.stop();
}

/// `count_over_time` answered from the time and label columns (selector and line filters
/// only) equals the same count answered record by record (a label-filter stage forces that
/// path), over data split between Parquet blocks and the memtable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_from_columns_equal_counts_from_records() {
    const BATCH: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Flushed at every 5 000 records, so some batches are in files and the last in memory.
    let server = Server::start_with(&data, &["--flush-rows", "5000", "--flush-age-ms", "600000"]);
    let base = common::otlp::now_ns() - 120 * SEC;
    for n in 0..12 {
        let r = server
            .post_protobuf("/v1/logs", common::loadgen_export("logs", n, BATCH, base))
            .await;
        assert_eq!(r.status(), 200, "batch {n}");
    }
    let window = format!("start={}&end={}&step=5", base, base + 20 * SEC);
    let series = |v: &Value| -> Vec<(Value, Value)> {
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("no result: {v}"))
            .iter()
            .map(|s| (s["metric"].clone(), s["values"].clone()))
            .collect()
    };
    for (columns, records) in [
        (
            r#"sum by (service_name) (count_over_time({service_name=~"service-1.*"} |= "timeout" [10s]))"#,
            r#"sum by (service_name) (count_over_time({service_name=~"service-1.*"} |= "timeout" | level=~".+" [10s]))"#,
        ),
        (
            r#"count_over_time({service_instance_id="service-3-0"} != "retry" |~ "pool|cache" [5s])"#,
            r#"count_over_time({service_instance_id="service-3-0"} != "retry" |~ "pool|cache" | level!="x" [5s])"#,
        ),
        (
            r#"sum by (level) (rate({level=~"error|warn", host_name=~"node-[0-3]"}[10s]))"#,
            r#"sum by (level) (rate({level=~"error|warn", host_name=~"node-[0-3]"} | level!="x" [10s]))"#,
        ),
    ] {
        let (status, fast) = loki(
            &server,
            &format!("query_range?query={}&{window}", enc(columns)),
        )
        .await;
        assert_eq!(status, 200, "{columns}: {fast}");
        let (status, slow) = loki(
            &server,
            &format!("query_range?query={}&{window}", enc(records)),
        )
        .await;
        assert_eq!(status, 200, "{records}: {slow}");
        let fast = series(&fast);
        assert!(!fast.is_empty(), "{columns}: the data has matching records");
        assert_eq!(fast, series(&slow), "{columns}");
    }
    server.stop();
}
