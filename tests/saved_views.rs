//! Saved views: every page kind saved from its own "Save view" form reopens with the same
//! content, live or pinned; pinned views survive retention; everything survives a restart.

mod common;

use std::process::Command;

use common::demo::ids;
use common::notebook::{assert_same, form_fields, page, post_form, send_json, visible_content};
use common::otlp::{kv, now_ns};
use common::{enc, Server};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;

/// Saves `path` through its own Save form; returns the new view's id.
async fn save_from_page(server: &Server, path: &str, name: &str, pin: bool) -> (i64, String) {
    let (status, html) = page(server, path).await;
    assert_eq!(status, 200, "{path}");
    let fields = form_fields(&html, "/views");
    assert_eq!(
        fields["url"], path,
        "the Save form carries the page's own address"
    );
    let mut form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("name", name));
    form.push(("note", "why this matters"));
    if pin {
        form.push(("pin", "1"));
    }
    let (status, location, body) = post_form(server, "/views", &form).await;
    assert_eq!(status, 303, "{path}: {body}");
    let id = location
        .strip_prefix("/views/")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("redirect to the view, got {location:?}"));
    (id, visible_content(&html))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_kind_reopens_the_same_live_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--demo", "--demo-frozen", "--flush-age-ms", "500"],
    );
    let demo = ids(&server).await;
    let pages = [
        "/?range=1h".to_string(),
        "/map?range=1h".to_string(),
        "/services/payment?range=1h".to_string(),
        "/errors?range=1h".to_string(),
        "/traces?service=payment&status=error&range=1h".to_string(),
        format!("/traces/{}", demo.failed_trace),
        format!("/logs?q={}&range=1h", enc("severity>=ERROR")),
        "/explore?metric=process.cpu.utilization&service=payment&group_by=instance&range=1h"
            .to_string(),
        // Issue 17's comparisons are pages like the others.
        format!("/compare?a={}&b={}", demo.failed_trace, demo.stitched_trace),
        "/compare/groups?status=error&range=1h".to_string(),
        "/canary?service=payment&baseline=2.4.0&canary=2.5.0&range=1h".to_string(),
    ];
    // The metrics explorer draws one line per payment instance.
    let (status, html) = page(&server, &pages[7]).await;
    assert_eq!(status, 200);
    assert_eq!(
        html.matches("<polyline class=\"line\"").count(),
        3,
        "payment-1, -2, -3"
    );
    assert!(html.contains("instance=payment-3"));
    for (i, path) in pages.iter().enumerate() {
        for pin in [false, true] {
            let name = format!("view {i} pinned={pin}");
            let (id, shown) = save_from_page(&server, path, &name, pin).await;
            let (_, view) = server.get(&format!("/api/v1/views/{id}")).await;
            assert_eq!(view["name"], name.as_str());
            assert_eq!(view["pin"].is_object(), pin, "{view}");
            if path.contains("range=1h") {
                assert!(
                    view["url"].as_str().unwrap().contains("from=")
                        && !view["url"].as_str().unwrap().contains("range="),
                    "saved with the absolute hour it showed: {view}"
                );
            }
            let (status, reopened) = page(&server, &format!("/views/{id}/open")).await;
            assert_eq!(status, 200, "{path}");
            assert_same(
                &shown,
                &visible_content(&reopened),
                &format!("{path} (pinned: {pin})"),
            );
            if pin {
                assert!(reopened.contains("id=\"pinned-banner\""));
            }
        }
    }
    // The list shows them all and filters by name.
    let (_, list) = server.get("/api/v1/views").await;
    assert_eq!(list["views"].as_array().unwrap().len(), pages.len() * 2);
    let (_, some) = server.get("/api/v1/views?q=pinned%3Dtrue").await;
    assert_eq!(some["views"].as_array().unwrap().len(), pages.len());
    let (status, html) = page(&server, "/views?q=view+3").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("class=\"view-row\"").count(), 2);
    server.stop();
}

fn old_logs(bodies: &[&str], at: u64) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "ledger")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .enumerate()
                    .map(|(i, b)| LogRecord {
                        time_unix_nano: at + i as u64 * 1_000_000_000,
                        severity_number: 17,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(b.to_string())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn old_trace(trace_id: [u8; 16], at: u64) -> ExportTraceServiceRequest {
    let span = |id: u8, parent: Option<u8>, name: &str, len_ms: u64| Span {
        trace_id: trace_id.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: at,
        end_time_unix_nano: at + len_ms * 1_000_000,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "ledger")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(1, None, "POST /settle", 120),
                    span(2, Some(1), "UPDATE accounts", 40),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_views_outlive_retention_and_everything_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let two_days = 2 * 24 * 3600 * 1_000_000_000u64;
    let at = now_ns() - two_days;
    let trace_id = [0x5a; 16];
    let trace_hex = "5a".repeat(16);
    let r = server
        .post_protobuf(
            "/v1/logs",
            old_logs(&["settlement batch 7 failed", "ledger lock timeout"], at).encode_to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = server
        .post_protobuf("/v1/traces", old_trace(trace_id, at).encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    server
        .wait_for("/api/v1/logs?q=service:ledger", |b| {
            b["logs"].as_array().is_some_and(|l| l.len() == 2)
        })
        .await;
    let window = json!({"start": at - 60_000_000_000, "end": at + 60_000_000_000});
    let mut ids = Vec::new();
    for (name, url, pin) in [
        ("ledger logs", "/logs?q=service%3Aledger".to_string(), true),
        ("ledger trace", format!("/traces/{trace_hex}"), true),
        ("ledger traces", "/traces?service=ledger".to_string(), true),
        (
            "ledger logs, live",
            "/logs?q=service%3Aledger".to_string(),
            false,
        ),
    ] {
        let mut body = json!({"name": name, "url": url, "pin": pin, "tags": ["ledger"]});
        if !url.starts_with("/traces/") {
            body["start"] = window["start"].clone();
            body["end"] = window["end"].clone();
        }
        let (status, view) = send_json(&server, "POST", "/api/v1/views", body).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["pin"].is_object(), pin);
        if pin {
            assert!(view["pin"]["rows"].as_u64().unwrap() >= 2, "{view}");
            assert!(view["pin"]["bytes"].as_u64().unwrap() > 0, "{view}");
        }
        ids.push(view["id"].as_i64().unwrap());
    }
    let (status, annotation) = send_json(
        &server,
        "POST",
        "/api/v1/annotations",
        json!({"time": at, "service": "ledger", "text": "ledger 3.1 rollout"}),
    )
    .await;
    assert_eq!(status, 201, "{annotation}");
    let mut before = Vec::new();
    for id in &ids {
        let (status, html) = page(&server, &format!("/views/{id}/open")).await;
        assert_eq!(status, 200);
        before.push(visible_content(&html));
    }
    assert!(
        before[0].contains("settlement batch 7 failed")
            && before[0].contains("ledger lock timeout")
    );
    assert!(before[1].contains("POST /settle") && before[1].contains("UPDATE accounts"));
    assert!(before[2].contains("POST /settle"));
    assert_eq!(
        before[3], before[0],
        "live and pinned agree while the data is there"
    );
    let (status, pm) = send_json(
        &server,
        "POST",
        "/api/v1/postmortems",
        json!({"title": "Ledger settlement stall", "incident_start": at - 60_000_000_000,
               "incident_end": at + 60_000_000_000, "summary": "Batches failed.",
               "action_items": [{"owner": "ana", "text": "alert on lock timeouts"}],
               "views": [{"view_id": ids[0], "note": "the failures"}, {"view_id": ids[1]}]}),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let pm_id = pm["id"].as_i64().unwrap();
    server.stop();

    // Retention deletes the raw data (everything older than a day).
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "retention",
            "--retention-hours-logs",
            "24",
            "--retention-hours-traces",
            "24",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = Server::start(&data);
    let (_, raw) = server.get("/api/v1/logs?q=service:ledger").await;
    assert_eq!(
        raw["logs"].as_array().unwrap().len(),
        0,
        "the raw logs are gone"
    );
    let (status, _) = server.get(&format!("/api/v1/traces/{trace_hex}")).await;
    assert_eq!(status, 404, "the raw trace is gone");
    for (i, id) in ids.iter().enumerate().take(3) {
        let (status, html) = page(&server, &format!("/views/{id}/open")).await;
        assert_eq!(status, 200, "pinned view {id}");
        assert_eq!(
            visible_content(&html),
            before[i],
            "pinned view {id} renders the same"
        );
    }
    let (_, live) = page(&server, &format!("/views/{}/open", ids[3])).await;
    assert!(
        !live.contains("settlement batch 7 failed"),
        "an unpinned view has nothing left"
    );

    // Everything is still there after the restart.
    let (_, views) = server.get("/api/v1/views?tag=ledger").await;
    assert_eq!(views["views"].as_array().unwrap().len(), 4);
    let (_, pm) = server.get(&format!("/api/v1/postmortems/{pm_id}")).await;
    assert_eq!(pm["title"], "Ledger settlement stall");
    assert_eq!(pm["views"].as_array().unwrap().len(), 2);
    assert_eq!(pm["action_items"][0]["owner"], "ana");
    let (_, notes) = server
        .get(&format!(
            "/api/v1/annotations?service=ledger&start={}",
            at - 1
        ))
        .await;
    assert_eq!(notes["annotations"][0]["text"], "ledger 3.1 rollout");
    // The post-mortem still embeds the pinned evidence, and its timeline shows the annotation.
    let (status, html) = page(&server, &format!("/postmortems/{pm_id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("settlement batch 7 failed"));
    assert!(html.contains("ledger 3.1 rollout"));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_notebook_changes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("view {i}");
        let (status, _) = send_json(
            &server,
            "POST",
            "/api/v1/views",
            json!({"name": name, "url": "/logs?q=x", "start": 1, "end": 2}),
        )
        .await;
        assert_eq!(status, 201);
        names.push(name);
    }
    let (_, pm) = send_json(
        &server,
        "POST",
        "/api/v1/postmortems",
        json!({"title": "t", "summary": "acknowledged"}),
    )
    .await;
    let id = pm["id"].as_i64().unwrap();
    server.kill9();
    let server = Server::start(&data);
    let (_, views) = server.get("/api/v1/views").await;
    let mut found: Vec<String> = views["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    names.sort();
    assert_eq!(found, names);
    let (_, pm) = server.get(&format!("/api/v1/postmortems/{id}")).await;
    assert_eq!(pm["summary"], "acknowledged");
    server.stop();
}
