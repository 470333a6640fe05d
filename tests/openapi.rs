//! The OpenAPI document of `/api/v1` is generated from the handlers and agrees with the
//! server: every route is documented with its parameters, every documented operation is
//! served, and `/api/docs` renders it.

mod common;

use common::Server;
use serde_json::Value;

/// Every `/api/v1` route the server has, with its methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/traces", &["get"]),
    ("/api/v1/traces/{trace_id}", &["get"]),
    ("/api/v1/logs", &["get"]),
    ("/api/v1/logs/histogram", &["get"]),
    ("/api/v1/correlations/{id}", &["get"]),
    ("/api/v1/services", &["get"]),
    ("/api/v1/overview", &["get"]),
    ("/api/v1/service-map", &["get"]),
    ("/api/v1/services/{name}", &["get"]),
    ("/api/v1/errors", &["get"]),
    ("/api/v1/metrics", &["get"]),
    ("/api/v1/metrics/query", &["get"]),
    ("/api/v1/views", &["get", "post"]),
    ("/api/v1/views/{id}", &["get", "put", "delete"]),
    ("/api/v1/views/{id}/pin", &["post", "delete"]),
    ("/api/v1/postmortems", &["get", "post"]),
    ("/api/v1/postmortems/{id}", &["get", "put", "delete"]),
    ("/api/v1/postmortems/{id}/views", &["post"]),
    (
        "/api/v1/postmortems/{id}/views/{entry}",
        &["post", "delete"],
    ),
    ("/api/v1/postmortems/{id}/timeline", &["post"]),
    ("/api/v1/postmortems/{id}/timeline/{entry}", &["delete"]),
    ("/api/v1/postmortems/{id}/suggestions", &["get"]),
    ("/api/v1/postmortems/{id}/suggestions/accept-all", &["post"]),
    (
        "/api/v1/postmortems/{id}/suggestions/{key}/{action}",
        &["post"],
    ),
    ("/api/v1/annotations", &["get", "post"]),
    ("/api/v1/annotations/{id}", &["delete"]),
    ("/api/v1/compare/traces", &["get"]),
    ("/api/v1/compare/groups", &["get"]),
    ("/api/v1/canary", &["get"]),
    ("/api/v1/alert-rules", &["get", "post"]),
    ("/api/v1/alert-rules/{id}", &["get", "put", "delete"]),
    ("/api/v1/alert-rules/{id}/values", &["get"]),
    ("/api/v1/alerts", &["get"]),
    ("/api/v1/alert-notifications", &["get"]),
    ("/api/v1/silences", &["get", "post"]),
    ("/api/v1/silences/{id}", &["delete"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_matches_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--demo", "--demo-frozen"]);
    let (status, doc) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (p.clone(), m.clone()))
        })
        .collect();
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);

    // Parameters come from the handlers' own query types.
    let params: Vec<&str> = paths["/api/v1/traces"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "service",
        "operation",
        "status",
        "min_duration_ms",
        "max_duration_ms",
        "attribute",
        "correlation_id",
        "start",
        "end",
        "limit",
    ] {
        assert!(params.contains(&name), "{name} missing: {params:?}");
    }
    let body = &paths["/api/v1/views"]["post"]["requestBody"]["content"]["application/json"];
    let schema_ref = body["schema"]["$ref"].as_str().unwrap();
    let schema_name = schema_ref.rsplit('/').next().unwrap();
    let schema: &Value = &doc["components"]["schemas"][schema_name];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"name") && required.contains(&"url"),
        "{schema}"
    );

    // Every documented GET without path parameters is served: 200, or a JSON 400 naming
    // the missing parameter when one is required.
    for (path, method) in &documented {
        if method == "get" && !path.contains('{') {
            let required: Vec<&str> = paths[path.as_str()]["get"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["required"] == true)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let (status, answer) = server.get(path).await;
            if required.is_empty() {
                assert_eq!(status, 200, "{path}: {answer}");
            } else {
                assert_eq!(status, 400, "{path}: {answer}");
                let message = answer["error"].as_str().unwrap();
                assert!(
                    required.iter().all(|r| message.contains(r)),
                    "{path}: {answer}"
                );
            }
        }
    }

    // The page lists every operation.
    let html = reqwest::get(format!("{}/api/docs", server.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (path, _) in &documented {
        assert!(
            html.contains(&format!("<code>{path}</code>")),
            "{path} not on the page"
        );
    }
    server.stop();
}
