//! Acceptance: the Parquet files the server writes are ordinary Parquet — readable by a reader
//! that is not our code path (parquet's generic row reader) — with the documented columns,
//! hour partitions, and column statistics.

mod common;

use common::otlp::{logs, span, traces};
use common::{parquet_files, Server};
use parquet::basic::Type as PhysicalType;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use prost::Message;

fn column_names(reader: &SerializedFileReader<std::fs::File>) -> Vec<String> {
    let schema = reader.metadata().file_metadata().schema_descr();
    schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_are_readable_by_a_generic_reader() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let trace_id: Vec<u8> = (1..=16).collect();
    let mut root = span(trace_id.clone(), vec![1; 8], "GET /cart");
    root.attributes
        .push(common::otlp::kv("request_id", "req-77"));
    let mut child = span(trace_id.clone(), vec![2; 8], "SELECT cart");
    child.parent_span_id = vec![1; 8];
    for (path, body) in [
        (
            "/v1/traces",
            traces("cart", vec![root, child]).encode_to_vec(),
        ),
        (
            "/v1/logs",
            logs("cart", "req-77", &["cart loaded".to_string()]).encode_to_vec(),
        ),
    ] {
        let r = server.post_protobuf(path, body).await;
        assert_eq!(r.status(), 200);
    }
    server.stop(); // flushes everything to Parquet

    let store = data.join("store");
    let span_files = parquet_files(&store.join("traces"));
    assert_eq!(span_files.len(), 1);
    let rel = span_files[0]
        .strip_prefix(&store)
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        regex::Regex::new(r"^traces/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/[0-9a-f-]{36}\.parquet$")
            .unwrap()
            .is_match(&rel),
        "partitioned path: {rel}"
    );

    let reader = SerializedFileReader::new(std::fs::File::open(&span_files[0]).unwrap()).unwrap();
    assert_eq!(
        column_names(&reader),
        [
            "trace_id",
            "span_id",
            "parent_span_id",
            "trace_state",
            "name",
            "kind",
            "start_time",
            "end_time",
            "duration_ns",
            "status_code",
            "status_message",
            "correlation_id",
            "correlation_key",
            "attributes",
            "events",
            "links",
            "scope_name",
            "scope_version",
            "service_name",
            "service_instance_id",
            "host_name",
            "service_version",
            "resource_attributes",
        ]
    );
    let schema = reader.metadata().file_metadata().schema_descr();
    assert_eq!(
        schema.column(0).physical_type(),
        PhysicalType::FIXED_LEN_BYTE_ARRAY
    );
    assert_eq!(schema.column(0).type_length(), 16);
    let row_group = reader.metadata().row_group(0);
    assert!(
        row_group.column(0).statistics().is_some(),
        "statistics on trace_id"
    );

    let mut names = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        for (col, field) in row.get_column_iter() {
            match (col.as_str(), field) {
                ("trace_id", Field::Bytes(b)) => assert_eq!(b.data(), &trace_id[..]),
                ("name", Field::Str(s)) => names.push(s.clone()),
                ("service_name", Field::Str(s)) => assert_eq!(s, "cart"),
                ("duration_ns", Field::Long(d)) => assert_eq!(*d, 1_000_000),
                _ => {}
            }
        }
    }
    names.sort();
    assert_eq!(names, ["GET /cart", "SELECT cart"]);

    let log_files = parquet_files(&store.join("logs"));
    assert_eq!(log_files.len(), 1);
    let reader = SerializedFileReader::new(std::fs::File::open(&log_files[0]).unwrap()).unwrap();
    assert_eq!(
        column_names(&reader),
        [
            "time",
            "observed_time",
            "severity_number",
            "severity_text",
            "body",
            "trace_id",
            "span_id",
            "correlation_id",
            "correlation_key",
            "flags",
            "event_name",
            "attributes",
            "scope_name",
            "service_name",
            "service_instance_id",
            "host_name",
            "service_version",
            "resource_attributes",
        ]
    );
    let row = reader.get_row_iter(None).unwrap().next().unwrap().unwrap();
    let body = row
        .get_column_iter()
        .find(|(c, _)| c.as_str() == "body")
        .map(|(_, f)| f.clone());
    assert_eq!(body, Some(Field::Str("cart loaded".into())));
}
