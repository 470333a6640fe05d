//! A needle in a million log records: a token that one record of 1 000 000 holds (an id-like
//! token through the block filters, a word through the block index) is found through every
//! front end, and tokens nobody sent answer nothing (a word without reading any block).

mod common;

use common::otlp::{self, now_ns};
use common::search::{found_by_api, found_everywhere};
use common::Server;
use prost::Message;
use sightline::api::grpc::proto::query_service_client::QueryServiceClient;
use sightline::api::grpc::proto::SearchLogsRequest;

/// Load-generator exports of 1 000 log records each: 1 000 of them is a million records.
const EXPORTS: u64 = 1_000;
const BATCH: usize = 1_000;
const SECOND: u64 = 1_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_one_record_of_a_million_is_found_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let flags = ["--flush-age-ms", "600000"];
    let server = Server::start_with(&data, &flags);

    // The load generator's logs (bodies of words, numbers and hex ids), one export a second
    // of event time over the last 20 minutes, four exports in flight.
    let base = now_ns() - 20 * 60 * SECOND;
    common::fill_logs(&server, EXPORTS, BATCH, base).await;
    // The needle: one record among them, with a rare word and an id-like token.
    let needle = otlp::logs(
        "needle-service",
        "the-needle",
        &["ledger the-needle reconciled by xylophonist tok5e1f00d5".to_string()],
    );
    // Right after a million records the server may still shed load (503) while it flushes;
    // an exporter retries, and so does this.
    let status = server
        .export_retrying("/v1/logs", needle.encode_to_vec())
        .await;
    assert_eq!(status, 200);
    let window = format!("start={}&end={}", base, now_ns() + 60 * SECOND);

    for token in ["tok5e1f00d5", "xylophonist"] {
        found_everywhere(&server, "needle-service", token, &window, "the-needle").await;
    }

    // A regular expression alone cannot use the index: it reads every block of the window
    // and says so; the word it stands for reads at most the block that holds it.
    let scanned = |q: &'static str| {
        let (server, window) = (&server, &window);
        async move {
            let path = format!("/api/v1/logs?q={}&{window}", common::enc(q));
            let (status, page) = server.get(&path).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(common::search::ids(&page), ["the-needle"], "{q}");
            page["scanned"]["blocks_read"]
                .as_u64()
                .expect("scanned.blocks_read")
        }
    };
    let by_regex = scanned("/xylophon.st/").await;
    let mut grpc = QueryServiceClient::connect(server.api.clone())
        .await
        .expect("gRPC query API");
    let by_grpc = grpc
        .search_logs(SearchLogsRequest {
            query: "/xylophon.st/".to_string(),
            start_unix_nano: base as i64,
            ..Default::default()
        })
        .await
        .expect("gRPC search")
        .into_inner();
    assert_eq!(by_grpc.logs.len(), 1);
    assert!(by_grpc.blocks_read >= 10, "gRPC reports the scan too");
    let by_word = scanned("xylophonist").await;
    assert!(by_regex >= 10 && by_word <= 1, "{by_regex} vs {by_word}");

    // Through Loki, a line filter narrows by the words it holds whole, reading at most the
    // block that holds the line where the regex above read them all. (A line filter matches
    // any substring, so a bare `|= "xylophonist"` may sit inside a longer word: it is checked
    // line by line over every block, which at a million records outlasts a debug build's
    // request budget.)
    let loki_blocks = |q: &'static str| {
        let (server, window) = (&server, &window);
        async move {
            let before = server.metric("sightline_blocks_read_total").await;
            let path = format!("/loki/api/v1/query_range?query={}&{window}", common::enc(q));
            let (status, body) = server.get(&path).await;
            assert_eq!(status, 200, "{body}");
            let lines = body["data"]["result"][0]["values"]
                .as_array()
                .map_or(0, Vec::len);
            assert_eq!(lines, 1, "{q}: {body}");
            server.metric("sightline_blocks_read_total").await - before
        }
    };
    let by_whole_word = loki_blocks(r#"{service_name=~".+"} |= " xylophonist ""#).await;
    assert!(by_whole_word <= 1.0, "{by_whole_word} vs {by_regex}");

    // Absent tokens: nothing found. A word nobody sent reads no block (the index has no such
    // term). An id-like one is refused by each block's 8-bit filter with a 1-in-256 false
    // positive, and where the row groups are cut depends on flush timing, so with ≈ 60
    // blocks a run may read one of them — never more than a few.
    for (absent, most_blocks) in [("zyzzyvas", 0.0), ("tok0badc0de", 3.0)] {
        let before = server.metric("sightline_blocks_read_total").await;
        assert!(found_by_api(&server, absent, &window).await.is_empty());
        let read = server.metric("sightline_blocks_read_total").await - before;
        assert!(read <= most_blocks, "{absent}: {read} blocks read");
    }
    server.stop();
}
