//! One log search through every front end a user has: the JSON API, the gRPC query API,
//! Loki's `query_range` with a line filter, the `/logs` page and `sightline logs`.

use sightline::api::grpc::proto::query_service_client::QueryServiceClient;
use sightline::api::grpc::proto::SearchLogsRequest;

use super::Server;

/// Asserts that searching `token` within `window` (`start=…&end=…`) finds exactly one record,
/// whose correlation id is `id`, through every front end (Loki's selector names `service`).
/// The record's body holds `id` too: the logs page and the CLI show bodies.
pub async fn found_everywhere(server: &Server, service: &str, token: &str, window: &str, id: &str) {
    assert_eq!(found_by_api(server, token, window).await, [id], "JSON API");

    let mut grpc = QueryServiceClient::connect(server.api.clone())
        .await
        .expect("gRPC query API");
    let by_grpc = grpc
        .search_logs(SearchLogsRequest {
            query: token.to_string(),
            ..Default::default()
        })
        .await
        .expect("gRPC search")
        .into_inner();
    let grpc_ids: Vec<&str> = by_grpc
        .logs
        .iter()
        .map(|l| l.correlation_id.as_str())
        .collect();
    assert_eq!(grpc_ids, [id], "gRPC");

    let loki_query = super::enc(&format!("{{service_name=\"{service}\"}} |= \"{token}\""));
    let (status, by_loki) = server
        .get(&format!(
            "/loki/api/v1/query_range?query={loki_query}&{window}&limit=10"
        ))
        .await;
    assert_eq!(status, 200, "{by_loki}");
    let lines: Vec<&str> = by_loki["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().into_iter().flatten())
        .filter_map(|v| v[1].as_str())
        .collect();
    assert_eq!(lines.len(), 1, "Loki: {by_loki}");
    assert!(lines[0].contains(token), "Loki: {by_loki}");

    let page = reqwest::get(format!("{}/logs?q={token}&{window}", server.api))
        .await
        .expect("logs page")
        .text()
        .await
        .expect("page text");
    assert!(page.contains(id), "the logs page shows the record");

    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["logs", token, "--api", &server.api])
        .output()
        .expect("sightline logs");
    let cli_out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success() && cli_out.contains(id),
        "CLI: {cli_out}"
    );
}

/// The correlation ids of the JSON API's first page for `q` within `window`.
pub async fn found_by_api(server: &Server, q: &str, window: &str) -> Vec<String> {
    let (status, page) = server
        .get(&format!("/api/v1/logs?q={}&{window}", super::enc(q)))
        .await;
    assert_eq!(status, 200, "{page}");
    ids(&page)
}

/// The correlation ids of one page of `/api/v1/logs` results.
pub fn ids(page: &serde_json::Value) -> Vec<String> {
    page["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no logs: {page}"))
        .iter()
        .map(|l| l["correlation_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A log search answer without its `scanned` report: what was found, which must not change
/// when the data moves between memory, files and compacted files (how much was read does).
pub fn found_part(mut answer: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = answer.as_object_mut() {
        fields.remove("scanned");
    }
    answer
}
