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

/// What DuckDB reads from the store's files: row counts, services, ids and attributes, through
/// its own Parquet reader and hive partitioning (`date=…/hour=…`), as a user would query them.
const DUCKDB_QUERIES: &str = r#"
import duckdb, json, sys
store = sys.argv[1]
con = duckdb.connect()
spans = f"read_parquet('{store}/traces/**/*.parquet', hive_partitioning = true)"
logs = f"read_parquet('{store}/logs/**/*.parquet', hive_partitioning = true)"
out = {
    "spans": con.execute(f"select count(*) from {spans}").fetchone()[0],
    "span_services": [r[0] for r in con.execute(
        f"select distinct service_name from {spans} order by 1").fetchall()],
    "traces": con.execute(f"select count(distinct hex(trace_id)) from {spans}").fetchone()[0],
    "trace_of_order_7": con.execute(
        f"select lower(hex(trace_id)) from {spans} "
        "where json_extract_string(attributes, '$.order') = '7'").fetchall(),
    "misfiled_spans": con.execute(
        f"select count(*) from {spans} "
        "where hour <> hour(start_time) or date <> cast(start_time as date)").fetchone()[0],
    "logs": con.execute(f"select count(*) from {logs}").fetchone()[0],
    "log_bodies_with_7": con.execute(
        f"select body from {logs} where correlation_id = 'order-7' order by body").fetchall(),
}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_open_in_duckdb() {
    if !common::python_module_available("duckdb", "SIGHTLINE_REQUIRE_DUCKDB") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let services = ["cart", "checkout", "payments"];
    let orders = 30u8;
    let mut log_count = 0;
    for order in 0..orders {
        let service = services[usize::from(order) % services.len()];
        let trace_id: Vec<u8> = (0..16)
            .map(|i| order.wrapping_mul(31).wrapping_add(i))
            .collect();
        let mut root = span(
            trace_id.clone(),
            vec![order, 1, 0, 0, 0, 0, 0, 1],
            "GET /order",
        );
        root.attributes
            .push(common::otlp::kv("order", &order.to_string()));
        root.attributes
            .push(common::otlp::kv("request_id", &format!("order-{order}")));
        let mut child = span(trace_id, vec![order, 2, 0, 0, 0, 0, 0, 1], "SELECT order");
        child.parent_span_id = vec![order, 1, 0, 0, 0, 0, 0, 1];
        let bodies = vec![
            format!("order {order} placed"),
            format!("order {order} paid"),
        ];
        log_count += bodies.len();
        for (path, body) in [
            (
                "/v1/traces",
                traces(service, vec![root, child]).encode_to_vec(),
            ),
            (
                "/v1/logs",
                logs(service, &format!("order-{order}"), &bodies).encode_to_vec(),
            ),
        ] {
            let r = server.post_protobuf(path, body).await;
            assert_eq!(r.status(), 200);
        }
    }
    server.stop(); // flushes everything to Parquet

    let output = std::process::Command::new("python3")
        .args(["-c", DUCKDB_QUERIES])
        .arg(data.join("store"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["spans"], usize::from(orders) * 2, "{read}");
    assert_eq!(read["span_services"], serde_json::json!(services), "{read}");
    assert_eq!(read["traces"], usize::from(orders), "{read}");
    let trace_7: String = (0..16u8)
        .map(|i| format!("{:02x}", 7u8.wrapping_mul(31).wrapping_add(i)))
        .collect();
    assert_eq!(
        read["trace_of_order_7"],
        serde_json::json!([[trace_7]]),
        "{read}"
    );
    assert_eq!(read["misfiled_spans"], 0, "{read}");
    assert_eq!(read["logs"], log_count, "{read}");
    assert_eq!(
        read["log_bodies_with_7"],
        serde_json::json!([["order 7 paid"], ["order 7 placed"]]),
        "{read}"
    );
}
