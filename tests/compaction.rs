//! `sightline compact` merges the small files of an hour into one, with column statistics, and
//! every query answers exactly as before.

mod common;

use common::otlp::{logs, span, traces};
use common::{parquet_files, Server};
use parquet::file::reader::{FileReader, SerializedFileReader};
use prost::Message;

/// The answers compaction must not change: the trace, the logs, the correlation.
async fn answers(server: &Server, trace_id: &[u8]) -> [serde_json::Value; 3] {
    [
        server
            .get(&format!("/api/v1/traces/{}", hex::encode(trace_id)))
            .await
            .1,
        common::search::found_part(
            server
                .get("/api/v1/logs?q=service:merger&limit=100")
                .await
                .1,
        ),
        server.get("/api/v1/correlations/m-1").await.1,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_merge_and_queries_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Five server runs, each ending in a flush: five small files per signal in this hour.
    let trace_id: Vec<u8> = (60..76).collect();
    for round in 0..5u8 {
        let server = Server::start(&data);
        let spans = traces(
            "merger",
            vec![span(
                trace_id.clone(),
                vec![round + 1; 8],
                &format!("step {round}"),
            )],
        );
        let lines: Vec<String> = (0..10).map(|i| format!("round {round} line {i}")).collect();
        for (path, body) in [
            ("/v1/traces", spans.encode_to_vec()),
            ("/v1/logs", logs("merger", "m-1", &lines).encode_to_vec()),
        ] {
            let r = server.post_protobuf(path, body).await;
            assert_eq!(r.status(), 200);
        }
        server.stop();
    }
    let span_files = || parquet_files(&data.join("store/traces"));
    let log_files = || parquet_files(&data.join("store/logs"));
    assert_eq!((span_files().len(), log_files().len()), (5, 5));
    let server = Server::start(&data);
    let before = answers(&server, &trace_id).await;
    server.stop();

    let printed = common::compact(&data);
    // One merged file per hour partition (the five runs may straddle an hour boundary).
    let partitions = |fs: Vec<std::path::PathBuf>| {
        fs.iter()
            .map(|f| f.parent().unwrap().to_path_buf())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    // Checked whether or not the runs crossed an hour: as many files as partitions.
    assert_eq!(
        (span_files().len(), log_files().len()),
        (partitions(span_files()), partitions(log_files())),
        "{printed}"
    );
    let merged = SerializedFileReader::new(std::fs::File::open(&span_files()[0]).unwrap()).unwrap();
    assert!(
        merged.metadata().file_metadata().num_rows() >= 4,
        "a merged file"
    );
    // Merged files are written like every other file: with column statistics (ids are found
    // through the index's block filters, not Parquet bloom filters).
    assert!(merged
        .metadata()
        .row_group(0)
        .column(0)
        .statistics()
        .is_some());

    let server = Server::start(&data);
    let after = answers(&server, &trace_id).await;
    assert_eq!(after[0]["spans"].as_array().unwrap().len(), 5);
    assert_eq!(after[1]["logs"].as_array().unwrap().len(), 50);
    assert_eq!(before, after);
    server.stop();
}

/// Every flush writes the rollups of the minutes it saw into a file of its own; compaction
/// sums the rows of one cell into one, and the overview reads the same numbers from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_rows_of_one_cell_are_summed_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The middle of a minute ten minutes ago: every run's span falls in the same cell.
    let minute = 60_000_000_000u64;
    let t = (common::otlp::now_ns() - 10 * minute) / minute * minute + minute / 2;
    let durations_ms = [3u64, 5, 8, 13, 400];
    for (round, ms) in durations_ms.iter().enumerate() {
        let server = Server::start(&data);
        let mut s = span(vec![7; 16], vec![round as u8 + 1; 8], "GET /fold");
        s.start_time_unix_nano = t + round as u64;
        s.end_time_unix_nano = s.start_time_unix_nano + ms * 1_000_000;
        let r = server
            .post_protobuf("/v1/traces", traces("folder", vec![s]).encode_to_vec())
            .await;
        assert_eq!(r.status(), 200);
        server.stop();
    }
    let rollup_rows = || {
        parquet_files(&data.join("store/rollups"))
            .iter()
            .map(|f| {
                SerializedFileReader::new(std::fs::File::open(f).unwrap())
                    .unwrap()
                    .metadata()
                    .file_metadata()
                    .num_rows()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rollup_rows(), [1; 5], "one RED row per run");
    let window = format!("start={}&end={}", t - 5 * minute, t + 5 * minute);
    let red = |body: serde_json::Value| {
        let service = body["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "folder")
            .cloned()
            .unwrap_or_default();
        (
            service["red"].clone(),
            service["requests_per_minute"].clone(),
        )
    };
    let server = Server::start(&data);
    let before = red(server.get(&format!("/api/v1/overview?{window}")).await.1);
    server.stop();
    assert_eq!(before.0["requests"], 5, "{before:?}");

    common::compact(&data);
    assert_eq!(
        rollup_rows(),
        [1],
        "the five rows of one cell summed into one"
    );
    let server = Server::start(&data);
    let after = red(server.get(&format!("/api/v1/overview?{window}")).await.1);
    server.stop();
    assert_eq!(before, after);
}
