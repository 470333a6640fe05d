//! Searches find what is in Parquet even for terms the block index leaves out on purpose:
//! id-like body tokens and values of attribute keys with too many values per block.

mod common;

use common::otlp::{kv, now_ns};
use common::{enc, Server};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexed_ids_and_high_cardinality_attributes_are_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let now = now_ns();
    let records = (0..100u64)
        .map(|i| LogRecord {
            time_unix_nano: now + i,
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "order {:012x} shipped",
                    0xabc000 + i
                ))),
            }),
            attributes: vec![kv("user.id", &format!("u-{i}")), kv("region", "eu")],
            ..Default::default()
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shipper")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = server
        .post_protobuf("/v1/logs", request.encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    // Restart: everything is read back from Parquet through the block index.
    server.stop();
    let server = Server::start(&dir.path().join("data"));
    let count = |q: String| {
        let server = &server;
        async move {
            let (status, body) = server
                .get(&format!("/api/v1/logs?limit=1000&q={}", enc(&q)))
                .await;
            assert_eq!(status, 200, "{body}");
            body["logs"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("shipped".into()).await, 100);
    assert_eq!(
        count(format!("{:012x}", 0xabc000 + 42)).await,
        1,
        "an id-like token"
    );
    assert_eq!(
        count("user.id:u-42".into()).await,
        1,
        "a value of a key with 100 values"
    );
    assert_eq!(count("region:eu AND shipped".into()).await, 100);
    assert_eq!(count("region:us".into()).await, 0);
    server.stop();
}
