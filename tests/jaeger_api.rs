//! The Jaeger query API over the demo data: Jaeger's envelope and span model, answers that
//! agree with Sightline's own API, and Jaeger's error shape. The cases share one demo server
//! (`common::shared_demo`) and only read.

mod common;

use std::collections::HashSet;

use common::demo::ids;
use common::{enc, shared_demo};
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Services: Jaeger's envelope, the same names as /api/v1/services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_come_in_jaegers_envelope() {
    let server = shared_demo();
    let (status, services) = server.get("/api/services").await;
    assert_eq!(status, 200);
    assert!(services["errors"].is_null() && services["total"].is_u64());
    let (_, ours) = server.get("/api/v1/services").await;
    let mut expected: Vec<String> = ours["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let mut got = names(&services["data"]);
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}

/// Operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_of_a_service() {
    let server = shared_demo();
    let (_, ops) = server.get("/api/services/payment/operations").await;
    assert!(
        names(&ops["data"]).contains(&"POST /charge".to_string()),
        "{ops}"
    );
    let (_, ops) = server
        .get("/api/operations?service=payment&spanKind=server")
        .await;
    let list = ops["data"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list
        .iter()
        .all(|o| o["spanKind"] == "server" && o["name"].is_string()));
}

/// One trace in Jaeger's model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_in_jaegers_model() {
    let server = shared_demo();
    let demo = ids(server).await;
    let (status, t) = server
        .get(&format!("/api/traces/{}", demo.failed_trace))
        .await;
    assert_eq!(status, 200, "{t}");
    let trace = &t["data"][0];
    assert_eq!(trace["traceID"], demo.failed_trace.as_str());
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), demo.failed_span_count);
    let ids_in: HashSet<&str> = spans
        .iter()
        .map(|s| s["spanID"].as_str().unwrap())
        .collect();
    let mut roots = 0;
    for s in spans {
        assert_eq!(s["spanID"].as_str().unwrap().len(), 16);
        assert!(s["startTime"].is_i64() && s["duration"].is_i64() && s["flags"] == 1);
        assert!(trace["processes"][s["processID"].as_str().unwrap()]["serviceName"].is_string());
        assert!(s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["key"].is_string() && t["type"].is_string()));
        let refs = s["references"].as_array().unwrap();
        match refs.iter().find(|r| r["refType"] == "CHILD_OF") {
            Some(r) => assert!(ids_in.contains(r["spanID"].as_str().unwrap())),
            None => roots += 1,
        }
    }
    assert_eq!(roots, 1, "one root span");
    let errors = spans
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == "error" && t["value"] == true)
        })
        .count();
    assert!(errors > 0, "the failed checkout has error spans");
    let payment = spans
        .iter()
        .find(|s| s["operationName"] == "POST /charge")
        .expect("the payment span");
    assert_eq!(
        trace["processes"][payment["processID"].as_str().unwrap()]["serviceName"],
        "payment"
    );
    assert!(payment["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["fields"][0]["value"] == "exception"));
}

/// Search: failed payment traces, and a duration filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_failed_payments_and_filters_by_duration() {
    let server = shared_demo();
    let now_us = chrono::Utc::now().timestamp_micros();
    let window = format!("&start={}&end={}", now_us - 3_600_000_000, now_us);
    let (status, found) = server
        .get(&format!(
            "/api/traces?service=payment&tags={}&limit=5{window}",
            enc(r#"{"error":"true"}"#)
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let traces = found["data"].as_array().unwrap();
    assert!(!traces.is_empty() && traces.len() <= 5);
    let (_, slow) = server
        .get(&format!(
            "/api/traces?service=frontend&minDuration=2s&limit=10{window}"
        ))
        .await;
    for t in slow["data"].as_array().unwrap() {
        let longest = t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["duration"].as_i64().unwrap())
            .max()
            .unwrap();
        assert!(
            longest >= 2_000_000,
            "a trace of at least 2 s: {longest} µs"
        );
    }
}

/// Dependencies: the call graph of the last hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_are_the_call_graph_of_the_last_hour() {
    let server = shared_demo();
    let now_us = chrono::Utc::now().timestamp_micros();
    let (_, deps) = server
        .get(&format!(
            "/api/dependencies?endTs={}&lookback=3600000",
            now_us / 1000
        ))
        .await;
    let links = deps["data"].as_array().unwrap();
    let has = |p: &str, c: &str| {
        links
            .iter()
            .any(|l| l["parent"] == p && l["child"] == c && l["callCount"].as_u64().unwrap() > 0)
    };
    assert!(
        has("frontend", "checkout") && has("checkout", "payment"),
        "{deps}"
    );
}

/// Jaeger's error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_jaegers_shape() {
    let server = shared_demo();
    for (path, code) in [
        ("/api/traces", 400),
        ("/api/traces/not-a-trace", 400),
        ("/api/traces?service=payment&tags=%7Bbroken", 400),
        ("/api/traces?service=payment&minDuration=5parsecs", 400),
        ("/api/traces/00000000000000000000000000000001", 404),
        ("/api/operations", 400),
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(body["errors"][0]["msg"].is_string(), "{path}: {body}");
    }
}
