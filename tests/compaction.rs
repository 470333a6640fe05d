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
    if partitions(span_files()) == 1 {
        assert_eq!(
            (span_files().len(), log_files().len()),
            (1, 1),
            "{}",
            printed
        );
    }
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
