//! Alerting (issue 16) against real receivers: an HTTP server in the test takes the
//! Alertmanager webhook payload on firing and on resolution (checked field by field), a
//! real SMTP server (aiosmtpd) takes the email, a
//! receiver that is down is retried and the log shows each attempt, a restart while firing
//! sends nothing twice, and bad rules are refused naming the field with the store unchanged.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use common::alerts::{received, receiver, requests, requests_lasting};
use common::otlp::{kv, now_ns};
use common::Server;
use prost::Message;
use serde_json::{json, Value};

async fn send(server: &Server, body: Vec<u8>) {
    assert_eq!(server.post_protobuf("/v1/traces", body).await.status(), 200);
}

async fn post_rule(server: &Server, rule: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/alert-rules", server.api))
        .json(rule)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_fires_and_resolves_to_a_real_webhook_without_duplicates_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = [
        "--alert-eval-secs",
        "1",
        "--external-url",
        "http://sightline.example",
    ];
    let server = Server::start_with(&data, &flags);
    let (hook, inbox) = receiver().await;
    let (status, rule) = post_rule(
        &server,
        &json!({
            "name": "shop errors", "kind": "error_rate", "service": "shop", "threshold": 0.2,
            "window_secs": 120, "for_secs": 0, "labels": {"team": "shop"},
            "annotations": {"summary": "shop fails {{ $value }} of requests"},
            "receivers": [{"webhook": hook}]
        }),
    )
    .await;
    assert_eq!(status, 201, "{rule}");

    // 10 requests, 5 failed: 50 % > 20 %.
    send(&server, requests("shop", "shop-1", 10, 5, 1)).await;
    let firing = received(&inbox, 1).await.remove(0);
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "sightline");
    assert_eq!(firing["groupLabels"]["alertname"], "shop errors");
    assert_eq!(firing["externalURL"], "http://sightline.example");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "shop errors");
    assert_eq!(alert["labels"]["team"], "shop");
    assert_eq!(alert["labels"]["service"], "shop");
    assert_eq!(
        alert["annotations"]["summary"],
        "shop fails 0.5000 of requests"
    );
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(alert["startsAt"].as_str().unwrap().ends_with('Z'));
    assert!(alert["generatorURL"]
        .as_str()
        .unwrap()
        .starts_with("http://sightline.example/services/shop?from="));
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 16);
    let (_, active) = server.get("/api/v1/alerts").await;
    assert_eq!(active["alerts"][0]["state"], "firing", "{active}");
    // Grafana's view: Prometheus' rules and alerts APIs.
    let (_, rules) = server.get("/prometheus/api/v1/rules").await;
    let listed = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rules["status"], "success");
    assert_eq!(listed["name"], "shop errors");
    assert_eq!(listed["type"], "alerting");
    assert_eq!(listed["state"], "firing", "{rules}");
    assert_eq!(listed["alerts"][0]["labels"]["team"], "shop");
    assert_eq!(listed["alerts"][0]["value"], "0.5");
    let (_, alerts) = server.get("/prometheus/api/v1/alerts").await;
    assert_eq!(alerts["data"]["alerts"][0]["state"], "firing", "{alerts}");

    // A restart while firing: the alert is still firing afterwards and nothing is sent again.
    server.stop();
    let server = Server::start_with(&data, &flags);
    tokio::time::sleep(Duration::from_secs(3)).await; // three evaluations after the restart
    assert_eq!(
        inbox.lock().unwrap().len(),
        1,
        "no duplicate after the restart"
    );
    let (_, active) = server.get("/api/v1/alerts").await;
    assert_eq!(active["alerts"][0]["state"], "firing", "{active}");

    // Recovery: 200 more requests without errors bring the rate to 2.4 %.
    send(&server, requests("shop", "shop-1", 200, 0, 2)).await;
    let resolved = received(&inbox, 2).await.remove(1);
    assert_eq!(resolved["status"], "resolved");
    let alert = &resolved["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["fingerprint"], fingerprint.as_str(), "the same alert");
    assert_ne!(alert["endsAt"], "0001-01-01T00:00:00Z");
    // History: inactive → firing → resolved, with the values that caused each.
    let rule_id = rule["id"].as_i64().unwrap();
    let (_, detail) = server.get(&format!("/api/v1/alert-rules/{rule_id}")).await;
    let history: Vec<(String, String)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|t| {
            (
                t["from"].as_str().unwrap().into(),
                t["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("inactive".into(), "firing".into()),
            ("firing".into(), "resolved".into())
        ]
    );
    assert_eq!(detail["history"][1]["value"], 0.5);
    let (_, log) = server.get("/api/v1/alert-notifications").await;
    let outcomes: Vec<&str> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["sent", "sent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_is_retried_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (status, _) = post_rule(
        &server,
        &json!({"name": "silent shop", "kind": "absence", "service": "quiet", "threshold": 1,
                "receivers": [{"webhook": dead}]}),
    )
    .await;
    assert_eq!(status, 201);
    send(&server, requests("quiet", "quiet-1", 1, 0, 3)).await;
    // Silent for over a second: fires; every delivery attempt fails and is logged.
    let log = server
        .wait_for("/api/v1/alert-notifications", |v| {
            v["notifications"].as_array().is_some_and(|n| n.len() >= 3)
        })
        .await;
    let attempts: Vec<u64> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|n| n["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3], "{log}");
    for n in log["notifications"].as_array().unwrap() {
        assert!(
            n["outcome"].as_str().unwrap().starts_with("failed: "),
            "{n}"
        );
        assert_eq!(n["status"], "firing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_holds_back_no_other_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    // A receiver that takes each request and never answers (the client gives up after 10 s).
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<&'static str>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (hook, inbox) = receiver().await;
    // The hanging receiver's rule comes first, so an evaluation meets it first.
    for (name, url) in [("shop errors (hanging)", &hanging), ("shop errors", &hook)] {
        let (status, body) = post_rule(
            &server,
            &json!({"name": name, "kind": "error_rate", "service": "shop", "threshold": 0.2,
                    "window_secs": 120, "receivers": [{"webhook": url}]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    send(&server, requests("shop", "shop-1", 10, 5, 21)).await;
    let told = received(&inbox, 1).await;
    assert_eq!(told[0]["groupLabels"]["alertname"], "shop errors");
    // Told while the hanging receiver still holds its first attempt (its three attempts
    // take over 30 s): the other rule did not wait for it.
    let attempts = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        attempts <= 1,
        "{attempts} attempts: the other rule waited for them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_naming_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let (status, _) = post_rule(
        &server,
        &json!({"name": "ok", "kind": "log_count", "query": "level:error", "threshold": 10}),
    )
    .await;
    assert_eq!(status, 201);
    for (rule, field) in [
        (json!({"name": "a", "kind": "fancy"}), "kind:"),
        (
            json!({"name": "a", "kind": "error_rate", "service": "s", "window_secs": -1}),
            "window_secs:",
        ),
        (
            json!({"name": "a", "kind": "log_count", "query": "service:(payment"}),
            "query:",
        ),
        (
            json!({"name": "a", "kind": "metric", "expr": "rate(x[5m]"}),
            "expr:",
        ),
        (
            json!({"name": "a", "kind": "absence", "service": "s", "receivers": [{"webhook": "gopher://x/y"}]}),
            "receivers[0].webhook:",
        ),
        (
            json!({"name": "a", "kind": "absence", "service": "s", "receivers": [{"email": "ops@example.com"}]}),
            "receivers[0].email: no SMTP server is configured",
        ),
        (
            json!({"name": "ok", "kind": "absence", "service": "s"}),
            "exists",
        ),
    ] {
        let (status, body) = post_rule(&server, &rule).await;
        assert!(status == 400 || status == 409, "{rule}: {status} {body}");
        assert!(
            body["error"].as_str().unwrap().contains(field),
            "{rule}: {body}"
        );
    }
    let (_, rules) = server.get("/api/v1/alert-rules").await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 1, "{rules}");
    // Not JSON at all.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/alert-rules", server.api))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_log_count_rules_fire_on_sent_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    let (hook, inbox) = receiver().await;
    for rule in [
        json!({"name": "slow api", "kind": "latency", "service": "api", "percentile": "p95",
               "threshold": 500, "window_secs": 120, "receivers": [{"webhook": hook}]}),
        json!({"name": "timeouts", "kind": "log_count", "query": "timeout", "threshold": 3,
               "window_secs": 120, "receivers": [{"webhook": hook}]}),
    ] {
        let (status, body) = post_rule(&server, &rule).await;
        assert_eq!(status, 201, "{body}");
    }
    // 20 requests of 900 ms: p95 900 ms > 500 ms.
    send(&server, requests_lasting("api", "api-1", 20, 0, 4, 900)).await;
    // Five log records with the word "timeout".
    let bodies: Vec<String> = (0..5)
        .map(|i| format!("upstream timeout after {i} retries"))
        .collect();
    let logs = common::otlp::logs("api", "req-1", &bodies).encode_to_vec();
    assert_eq!(server.post_protobuf("/v1/logs", logs).await.status(), 200);

    let got = received(&inbox, 2).await;
    let mut fired: Vec<(String, String)> = got
        .iter()
        .map(|m| {
            (
                m["groupLabels"]["alertname"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    fired.sort();
    assert_eq!(
        fired,
        [
            ("slow api".to_string(), "firing".to_string()),
            ("timeouts".to_string(), "firing".to_string())
        ]
    );
    let (_, active) = server.get("/api/v1/alerts").await;
    let values: Vec<(String, f64)> = active["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        values.contains(&("timeouts".to_string(), 5.0)),
        "{values:?}"
    );
    let latency = values.iter().find(|(n, _)| n == "slow api").unwrap().1;
    assert!(
        (latency - 900.0).abs() < 9.0,
        "p95 within 1 % of 900 ms: {latency}"
    );
}

/// The phases an alert of rule `name` went through, oldest first.
async fn phases(server: &Server, name: &str) -> Vec<String> {
    let (_, rules) = server.get("/api/v1/alert-rules").await;
    let id = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .expect("the rule")["id"]
        .as_i64()
        .unwrap();
    let (_, detail) = server.get(&format!("/api/v1/alert-rules/{id}")).await;
    let mut out = vec!["inactive".to_string()];
    for t in detail["history"].as_array().unwrap().iter().rev() {
        out.push(t["to"].as_str().unwrap().to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_log_and_absence_alerts_resolve_when_the_data_recovers_and_for_holds_a_spike_back()
{
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    let (hook, inbox) = receiver().await;
    for rule in [
        json!({"name": "slow api", "kind": "latency", "service": "api", "percentile": "p95",
               "threshold": 500, "window_secs": 120, "receivers": [{"webhook": hook}]}),
        // A short window, so the records leave it within the test.
        json!({"name": "timeouts", "kind": "log_count", "query": "timeout", "threshold": 3,
               "window_secs": 5, "receivers": [{"webhook": hook}]}),
        json!({"name": "quiet worker", "kind": "absence", "service": "worker", "threshold": 2,
               "receivers": [{"webhook": hook}]}),
        // Must hold for an hour: a spike never fires it.
        json!({"name": "shop errors", "kind": "error_rate", "service": "shop", "threshold": 0.2,
               "window_secs": 120, "for_secs": 3600, "receivers": [{"webhook": hook}]}),
    ] {
        let (status, body) = post_rule(&server, &rule).await;
        assert_eq!(status, 201, "{body}");
    }
    send(&server, requests_lasting("api", "api-1", 20, 0, 11, 900)).await;
    let bodies: Vec<String> = (0..5).map(|i| format!("upstream timeout {i}")).collect();
    let logs = common::otlp::logs("api", "req-2", &bodies).encode_to_vec();
    assert_eq!(server.post_protobuf("/v1/logs", logs).await.status(), 200);
    send(&server, requests("worker", "worker-1", 1, 0, 12)).await;
    send(&server, requests("shop", "shop-1", 10, 5, 13)).await;
    let firing = received(&inbox, 3).await;
    let mut names: Vec<&str> = firing
        .iter()
        .map(|m| m["groupLabels"]["alertname"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["quiet worker", "slow api", "timeouts"]);
    assert!(firing.iter().all(|m| m["status"] == "firing"));
    // The error spike is pending, held back by `for`.
    server
        .wait_for("/api/v1/alerts", |v| {
            v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "shop errors" && a["state"] == "pending")
        })
        .await;

    // Recovery: fast requests bring p95 down, the worker speaks again, the timeouts leave
    // the 5-second window, the shop's error rate falls to 2.4 %.
    send(&server, requests_lasting("api", "api-1", 400, 0, 14, 10)).await;
    send(&server, requests("shop", "shop-1", 200, 0, 15)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let resolved = loop {
        // The worker keeps sending, so it stays heard from.
        send(&server, requests("worker", "worker-1", 1, 0, 16)).await;
        let got = inbox.lock().unwrap().clone();
        let resolved: Vec<String> = got
            .iter()
            .filter(|m| m["status"] == "resolved")
            .map(|m| m["groupLabels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        if resolved.len() >= 3 || Instant::now() > deadline {
            break resolved;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut resolved = resolved;
    resolved.sort();
    assert_eq!(resolved, ["quiet worker", "slow api", "timeouts"]);
    // The spike went pending and back, and nothing was sent about it.
    assert_eq!(
        phases(&server, "shop errors").await,
        ["inactive", "pending", "inactive"]
    );
    for name in ["slow api", "timeouts", "quiet worker"] {
        assert_eq!(
            phases(&server, name).await,
            ["inactive", "firing", "resolved"],
            "{name}"
        );
    }
    assert!(inbox
        .lock()
        .unwrap()
        .iter()
        .all(|m| m["groupLabels"]["alertname"] != "shop errors"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_ships_its_example_rule() {
    let server = common::shared_demo();
    let (status, rules) = server.get("/api/v1/alert-rules").await;
    assert_eq!(status, 200);
    let rule = &rules["rules"][0];
    assert_eq!(rule["name"], "payment error rate (demo)", "{rules}");
    assert_eq!(rule["rule"]["kind"], "error_rate");
    assert_eq!(rule["rule"]["service"], "payment");
    let (_, listed) = server.get("/prometheus/api/v1/rules").await;
    assert_eq!(
        listed["data"]["groups"][0]["rules"][0]["name"],
        "payment error rate (demo)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_incident_fires_the_shipped_rule_at_its_minute() {
    use sightline::demo::scenario::{
        INCIDENT_END_MINUTE, INCIDENT_START_MINUTE, SCENARIO_MINUTES, SCENARIO_START,
    };
    const MINUTE: i64 = 60_000_000_000;
    let server = common::shared_demo();
    // Where the recorded hour lies: the demo writes the shift it loaded with.
    let shift: i64 = std::fs::read_to_string(server.data_dir.join("demo-loaded"))
        .expect("the demo marker")
        .trim()
        .parse()
        .expect("the demo shift");
    let hour_start = SCENARIO_START as i64 + shift;
    let hour_end = hour_start + SCENARIO_MINUTES as i64 * MINUTE;
    let (_, rules) = server.get("/api/v1/alert-rules").await;
    let id = rules["rules"][0]["id"].as_i64().expect("the shipped rule");
    let window_minutes = rules["rules"][0]["rule"]["window_secs"].as_i64().unwrap() / 60;
    let (start, end) = (INCIDENT_START_MINUTE as i64, INCIDENT_END_MINUTE as i64);
    // The recorded hour is replayed through the evaluator at start: the rule fired in the
    // incident's first minute and resolved once the incident's last failing minute (the one
    // before its end) left the rule's window.
    let detail = server
        .wait_for(&format!("/api/v1/alert-rules/{id}"), |v| {
            v["history"].as_array().is_some_and(|h| h.len() >= 2)
        })
        .await;
    let history: Vec<&Value> = detail["history"].as_array().unwrap().iter().rev().collect();
    let minute_of = |t: &Value| (t["at"].as_i64().unwrap() - hour_start).div_euclid(MINUTE);
    assert_eq!(history[0]["to"], "firing", "{detail}");
    assert_eq!(
        minute_of(history[0]),
        start,
        "fired at the incident's minute: {detail}"
    );
    assert!(history[0]["value"].as_f64().unwrap() > 0.05);
    assert_eq!(history[1]["from"], "firing");
    assert_eq!(history[1]["to"], "resolved", "{detail}");
    assert_eq!(
        history.len(),
        2,
        "no flapping inside the incident: {detail}"
    );
    assert_eq!(
        minute_of(history[1]),
        end + window_minutes,
        "resolved when the incident left the window: {detail}"
    );
    // The values API shows the same: above the threshold through the incident only, and
    // the firing span.
    let (status, values) = server
        .get(&format!(
            "/api/v1/alert-rules/{id}/values?start={hour_start}&end={hour_end}&step=60"
        ))
        .await;
    assert_eq!(status, 200, "{values}");
    assert_eq!(values["threshold"], 0.05);
    let points = values["series"][0]["values"].as_array().unwrap();
    assert_eq!(points.len(), SCENARIO_MINUTES as usize + 1);
    // A point at minute m reads the window's minutes before m.
    for p in points {
        let minute = (p[0].as_i64().unwrap() - hour_start) / MINUTE;
        let above = p[1].as_f64().is_some_and(|v| v > 0.05);
        let incident = (start + 1..end + window_minutes).contains(&minute);
        let calm = minute <= start || minute >= end + window_minutes;
        assert!(
            !(calm && above),
            "above the threshold at calm minute {minute}: {p}"
        );
        assert!(
            !incident || above,
            "below the threshold in the incident's minute {minute}: {p}"
        );
    }
    let firing = &values["firing"][0];
    assert_eq!(firing["from"], history[0]["at"]);
    assert_eq!(firing["to"], history[1]["at"]);
    // Bad parameters are refused naming them.
    let (status, body) = server
        .get(&format!("/api/v1/alert-rules/{id}/values?step=0"))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("step:"),
        "{body}"
    );
    let (status, body) = server
        .get(&format!(
            "/api/v1/alert-rules/{id}/values?start=yesterday-ish"
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("start"), "{body}");
    let (status, _) = server.get("/api/v1/alert-rules/999999/values").await;
    assert_eq!(status, 404);
}

/// A gauge `queue_depth{queue="orders"}` of `value` at `at`, as an OTLP export.
fn queue_depth(value: f64, at: u64) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: common::otlp::resource("worker"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue_depth".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("queue", "orders")],
                            time_unix_nano: at,
                            value: Some(number_data_point::Value::AsDouble(value)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_rule_fires_per_series_on_otlp_metrics_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    let (hook, inbox) = receiver().await;
    let (status, body) = post_rule(
        &server,
        &json!({"name": "queue backlog", "kind": "metric", "expr": "queue_depth", "threshold": 100,
                "annotations": {"summary": "{{ $labels.queue }} holds {{ $value }}"},
                "receivers": [{"webhook": hook}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let response = server
        .post_protobuf("/v1/metrics", queue_depth(250.0, now_ns()))
        .await;
    assert_eq!(response.status(), 200);
    let firing = received(&inbox, 1).await.remove(0);
    assert_eq!(firing["status"], "firing", "{firing}");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"]["queue"], "orders", "{alert}");
    assert_eq!(alert["labels"]["alertname"], "queue backlog");
    assert_eq!(alert["annotations"]["summary"], "orders holds 250.0000");
    assert!(alert["generatorURL"]
        .as_str()
        .unwrap()
        .contains("/explore?"));
    // The queue drains: a newer sample below the threshold resolves it.
    let response = server
        .post_protobuf("/v1/metrics", queue_depth(3.0, now_ns()))
        .await;
    assert_eq!(response.status(), 200);
    let resolved = received(&inbox, 2).await.remove(1);
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["alerts"][0]["fingerprint"], alert["fingerprint"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_a_firing_alert_back_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--alert-eval-secs", "1"]);
    let (hook, inbox) = receiver().await;
    let client = reqwest::Client::new();
    // Silence the rule by name for an hour, before it fires.
    let in_an_hour = (now_ns() + 3_600_000_000_000).to_string();
    let silence: Value = client
        .post(format!("{}/api/v1/silences", server.api))
        .json(
            &json!({"matchers": [{"name": "alertname", "value": "shop errors"}],
                      "endsAt": in_an_hour, "createdBy": "test", "comment": "deploying"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = silence["silenceID"].as_i64().expect("a silence id");
    let (status, _) = post_rule(
        &server,
        &json!({"name": "shop errors", "kind": "error_rate", "service": "shop", "threshold": 0.2,
                "window_secs": 120, "receivers": [{"webhook": hook}]}),
    )
    .await;
    assert_eq!(status, 201);
    send(&server, requests("shop", "shop-1", 10, 5, 5)).await;
    // Firing, silenced: listed with its silence, nothing sent over three evaluations.
    let active = server
        .wait_for("/api/v1/alerts", |v| v["alerts"][0]["state"] == "firing")
        .await;
    assert_eq!(active["alerts"][0]["silenced_by"], json!([id]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        inbox.lock().unwrap().is_empty(),
        "a silenced alert sent nothing"
    );
    let (_, listed) = server.get("/api/v1/silences").await;
    assert_eq!(listed["silences"][0]["status"]["state"], "active");
    // The silence ends: the alert, still firing, is told.
    let response = client
        .delete(format!("{}/api/v1/silences/{id}", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let firing = received(&inbox, 1).await;
    assert_eq!(firing[0]["status"], "firing");
    let (_, listed) = server.get("/api/v1/silences").await;
    assert_eq!(listed["silences"][0]["status"]["state"], "expired");
    // A bad silence: the field named.
    let response = client
        .post(format!("{}/api/v1/silences", server.api))
        .json(&json!({"matchers": [{"name": "a", "value": "(", "isRegex": true}], "endsAt": in_an_hour}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("matchers[0].value:"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_load_from_a_file_at_start_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rules]]
name = "checkout errors"
kind = "error_rate"
service = "checkout"
threshold = 0.1
labels = { team = "shop" }

[[rules]]
name = "error logs"
kind = "log_count"
query = "level:error"
threshold = 100
receivers = [{ webhook = "http://127.0.0.1:9/hook" }]
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--alert-rules", rules.to_str().unwrap()]);
    let (_, listed) = server.get("/api/v1/alert-rules").await;
    let names: Vec<&str> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout errors", "error logs"]);
    assert_eq!(listed["rules"][0]["rule"]["labels"]["team"], "shop");
    server.stop();

    // A changed threshold replaces the stored rule of that name; a bad rule stops the start
    // naming the file, the rule and the field, and changes nothing.
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"checkout errors\"\nkind = \"error_rate\"\nservice = \"checkout\"\nthreshold = 0.2\n",
    )
    .unwrap();
    let server = Server::start_with(&data, &["--alert-rules", rules.to_str().unwrap()]);
    let (_, listed) = server.get("/api/v1/alert-rules").await;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 2);
    assert_eq!(listed["rules"][0]["rule"]["threshold"], 0.2);
    server.stop();
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"ok\"\nkind = \"absence\"\nservice = \"a\"\n\n[[rules]]\nname = \"x\"\nkind = \"fancy\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .args(["--otlp-http-addr", "127.0.0.1:0", "--alert-rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rule 2 (\"x\"): kind: unknown kind \"fancy\""),
        "{stderr}"
    );
    let server = Server::start(&data);
    let (_, listed) = server.get("/api/v1/alert-rules").await;
    assert_eq!(
        listed["rules"].as_array().unwrap().len(),
        2,
        "nothing stored"
    );
    server.stop();

    // The same rules in YAML, for teams that keep Prometheus-style files.
    let yaml = dir.path().join("rules.yaml");
    std::fs::write(
        &yaml,
        "rules:\n  - name: checkout errors\n    kind: error_rate\n    service: checkout\n    threshold: 0.3\n  - name: slow checkout\n    kind: latency\n    service: checkout\n    percentile: p99\n    threshold: 800\n    labels:\n      team: shop\n",
    )
    .unwrap();
    let server = Server::start_with(&data, &["--alert-rules", yaml.to_str().unwrap()]);
    let (_, listed) = server.get("/api/v1/alert-rules").await;
    let rules = listed["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3, "{listed}");
    assert_eq!(rules[0]["rule"]["threshold"], 0.3);
    assert_eq!(rules[2]["name"], "slow checkout");
    assert_eq!(rules[2]["rule"]["percentile"], "p99");
    assert_eq!(rules[2]["rule"]["labels"]["team"], "shop");
    server.stop();
    std::fs::write(
        &yaml,
        "rules:\n  - name: bad\n    kind: latency\n    service: checkout\n    percentile: p42\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--http-addr", "127.0.0.1:0", "--otlp-grpc-addr"])
        .args([
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--alert-rules",
        ])
        .arg(&yaml)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad YAML rule stops the start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rule 1 (\"bad\"): percentile: p50, p90, p95 or p99, not \"p42\""),
        "{stderr}"
    );
}

/// A real SMTP server (aiosmtpd, from PyPI) that writes every message it takes into a
/// Maildir; stopped when dropped.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// Starts aiosmtpd on a free port; `None` (with a loud notice) when it is not installed
    /// and `SIGHTLINE_REQUIRE_SMTP` is unset — `.ci/run` installs it and sets that.
    fn start(dir: &std::path::Path) -> Option<SmtpServer> {
        if !common::python_module_available("aiosmtpd", "SIGHTLINE_REQUIRE_SMTP") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .spawn()
            .expect("aiosmtpd starts");
        let server = SmtpServer {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Waits until `n` messages arrived; each parsed by Python's `email` package into
    /// headers and its parts by content type (transfer encodings undone).
    async fn messages(&self, n: usize) -> Vec<Value> {
        let new = self.maildir.join("new");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut files: Vec<_> = std::fs::read_dir(&new)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= n {
                files.sort_by_key(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok());
                return files.iter().map(|f| parse_mail(f)).collect();
            }
            assert!(Instant::now() < deadline, "{} of {n} mails", files.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One stored mail as JSON: `subject`, `from`, `to`, `type` and `parts` (content type → text).
fn parse_mail(file: &std::path::Path) -> Value {
    const PARSE: &str = "import email, json, sys\n\
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in m.walk() if not p.is_multipart()}\n\
print(json.dumps({'subject': m['subject'], 'from': m['from'], 'to': m['to'], 'type': m.get_content_type(), 'parts': parts}))";
    let out = std::process::Command::new("python3")
        .args(["-c", PARSE])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_as_text_and_html_on_firing_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = SmtpServer::start(dir.path()) else {
        return;
    };
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--alert-eval-secs",
            "1",
            "--smtp-url",
            &smtp_url,
            "--smtp-from",
            "Sightline <alerts@sightline.example>",
            "--external-url",
            "http://sightline.example",
        ],
    );
    let (status, body) = post_rule(
        &server,
        &json!({"name": "shop <errors>", "kind": "error_rate", "service": "shop", "threshold": 0.2,
                "window_secs": 120,
                "annotations": {"summary": "shop fails {{ $value }} of requests"},
                "receivers": [{"email": "ops@example.com"}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    send(&server, requests("shop", "shop-1", 10, 5, 7)).await;
    let firing = smtp.messages(1).await.remove(0);
    assert_eq!(firing["subject"], "[FIRING:1] shop <errors>", "{firing}");
    assert_eq!(firing["from"], "Sightline <alerts@sightline.example>");
    assert_eq!(firing["to"], "ops@example.com");
    assert_eq!(firing["type"], "multipart/alternative");
    let text = firing["parts"]["text/plain"].as_str().unwrap();
    assert!(text.contains("shop fails 0.5000 of requests"), "{text}");
    assert!(
        text.contains("Evidence: http://sightline.example/services/shop?from="),
        "{text}"
    );
    let html = firing["parts"]["text/html"].as_str().unwrap();
    // The rule's name is escaped (askama writes `<` as `&#60;`).
    assert!(html.contains("shop &#60;errors&#62; is firing"), "{html}");
    assert!(!html.contains("<errors>"), "{html}");
    assert!(html.contains("shop fails 0.5000 of requests"), "{html}");
    assert!(
        html.contains("href=\"http://sightline.example/services/shop?from="),
        "{html}"
    );

    // Recovery: the resolved message.
    send(&server, requests("shop", "shop-1", 200, 0, 8)).await;
    let resolved = smtp.messages(2).await.remove(1);
    assert_eq!(
        resolved["subject"], "[RESOLVED] shop <errors>",
        "{resolved}"
    );
    assert!(resolved["parts"]["text/plain"]
        .as_str()
        .unwrap()
        .contains("Ended: "));
    let (_, log) = server.get("/api/v1/alert-notifications").await;
    let sent: Vec<(&str, &str)> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["receiver"].as_str().unwrap(),
                n["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [("ops@example.com", "sent"), ("ops@example.com", "sent")]
    );
}
