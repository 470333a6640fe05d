//! Retention deletes whole hour partitions past their signal's age, with their index
//! entries, from the background loop and from `sightline retention`; recent data stays.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::otlp::{kv, now_ns};
use common::Server;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

async fn send(server: &Server, body: &str, age: Duration) {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "keeper")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: now_ns() - age.as_nanos() as u64,
                    severity_number: 9,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(body.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = server
        .post_protobuf("/v1/logs", request.encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
}

async fn bodies(server: &Server) -> Vec<String> {
    let (_, found) = server.get("/api/v1/logs?q=service:keeper").await;
    let mut b: Vec<String> = found["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["body"].as_str().unwrap().to_string())
        .collect();
    b.sort();
    b
}

/// Hour partitions of the log folder that still hold a file.
fn log_partitions(data: &std::path::Path) -> usize {
    let mut n = 0;
    for date in std::fs::read_dir(data.join("store/logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for hour in std::fs::read_dir(date.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_dir(hour.path())
                .map(|f| f.count())
                .unwrap_or(0)
                > 0
            {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_partitions_go_recent_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let day = Duration::from_secs(24 * 3600);

    // Offline: `sightline retention` with the server stopped.
    let server = Server::start(&data);
    send(&server, "two days old", 2 * day).await;
    send(&server, "fresh", Duration::ZERO).await;
    server.stop();
    assert_eq!(log_partitions(&data), 2);
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["retention", "--retention-hours-logs", "24", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("retention deleted 1 partitions"));
    assert_eq!(log_partitions(&data), 1);
    let server = Server::start(&data);
    assert_eq!(bodies(&server).await, ["fresh"]);

    // Online: the server applies retention by itself.
    send(&server, "three days old", 3 * day).await;
    server.stop();
    let server = Server::start_with(&data, &["--retention-hours-logs", "24"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while bodies(&server).await != ["fresh"] {
        assert!(
            Instant::now() < deadline,
            "old data still there: {:?}",
            bodies(&server).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(log_partitions(&data), 1);
    server.stop();
}
