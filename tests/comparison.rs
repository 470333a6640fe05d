//! Comparison (issue 17) on data sent through OTLP/HTTP where the planted difference is
//! known: canary verdicts (a worse error rate or latency fails, identical versions pass, too
//! little traffic is marginal), group comparison (errors against the rest ranks the one bad
//! instance first), trace against trace (exactly the added and missing spans), bad input,
//! the `sightline canary` gate, and the demo's incident.

mod common;

use common::otlp::{kv, now_ns};
use common::Server;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    status::StatusCode, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

const MS: u64 = 1_000_000;

/// One process: a service at a version on an instance.
struct Process<'a> {
    service: &'a str,
    version: &'a str,
    instance: &'a str,
}

/// A server span of `p`, `ms` long, failed or not, in its own trace (`seq` keeps ids apart),
/// started `ago_ms` before now.
fn request(seq: u64, name: &str, ms: u64, failed: bool, ago_ms: u64) -> Span {
    let start = now_ns() - ago_ms * MS;
    let mut trace_id = vec![0xC0; 16];
    trace_id[8..].copy_from_slice(&seq.to_be_bytes());
    Span {
        trace_id,
        span_id: seq.to_be_bytes().to_vec(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * MS,
        attributes: if failed {
            vec![kv("http.response.status_code", "500")]
        } else {
            vec![kv("http.response.status_code", "200")]
        },
        status: failed.then(|| Status {
            code: StatusCode::Error as i32,
            message: "boom".into(),
        }),
        ..Default::default()
    }
}

fn export(p: &Process<'_>, spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", p.service),
                    kv("service.version", p.version),
                    kv("service.instance.id", p.instance),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends `n` requests of `p` (durations `ms(i)`, failures `failed(i)`), spread over the last
/// ten minutes.
async fn send(
    server: &Server,
    p: &Process<'_>,
    seq: &mut u64,
    n: u64,
    ms: impl Fn(u64) -> u64,
    failed: impl Fn(u64) -> bool,
) {
    let spans = (0..n)
        .map(|i| {
            *seq += 1;
            request(
                *seq,
                "GET /pay",
                ms(i),
                failed(i),
                1_000 + i * 600_000 / n.max(1),
            )
        })
        .collect();
    let response = server.post_protobuf("/v1/traces", export(p, spans)).await;
    assert_eq!(response.status(), 200);
}

/// Waits until `service` has `requests` requests in its rollups.
async fn settled(server: &Server, service: &str, requests: u64) {
    server
        .wait_for(&format!("/api/v1/services/{service}"), |v| {
            v["overview"]["red"]["requests"].as_u64() == Some(requests)
        })
        .await;
}

/// Asserts that each `(query, status, words)` GET of `path` is refused with that status and a
/// JSON error containing `words`.
async fn assert_refused(server: &Server, path: &str, cases: &[(String, u16, &str)]) {
    for (query, status, words) in cases {
        let (got, body) = server.get(&format!("{path}?{query}")).await;
        assert_eq!(got, *status, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{query}: {body}"
        );
    }
}

async fn canary(server: &Server, service: &str) -> serde_json::Value {
    let (status, body) = server
        .get(&format!(
            "/api/v1/canary?service={service}&baseline=1.0&canary=2.0"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The duration (ms) of request i of a planted version.
type Millis = fn(u64) -> u64;
/// Whether request i of a planted version fails.
type Fails = fn(u64) -> bool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_verdicts_on_planted_differences() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut seq = 0;
    // Durations (ms) and failures of request i.
    let usual: Millis = |i| 20 + i % 10;
    let never: Fails = |_| false;
    let one_in_100: Fails = |i| i % 100 == 0;
    let planted: [(&str, &str, u64, Millis, Fails); 8] = [
        // errs: 2.0 fails 1 request in 5, 1.0 one in 100.
        ("errs", "1.0", 300, usual, one_in_100),
        ("errs", "2.0", 300, usual, |i| i % 5 == 0),
        // slow: 2.0 takes three times as long, no errors.
        ("slow", "1.0", 300, usual, never),
        ("slow", "2.0", 300, |i| 60 + i % 10, never),
        // same: the same durations and failures on both versions.
        ("same", "1.0", 300, usual, one_in_100),
        ("same", "2.0", 300, usual, one_in_100),
        // thin: 2.0 served 12 requests like 1.0's.
        ("thin", "1.0", 300, usual, never),
        ("thin", "2.0", 12, usual, never),
    ];
    for (service, version, n, ms, failed) in planted {
        let instance = format!("{service}-{version}");
        let p = Process {
            service,
            version,
            instance: &instance,
        };
        send(&server, &p, &mut seq, n, ms, failed).await;
    }
    for s in ["errs", "slow", "same"] {
        settled(&server, s, 600).await;
    }
    settled(&server, "thin", 312).await;

    let errs = canary(&server, "errs").await;
    assert_eq!(errs["verdict"], "fail", "{errs}");
    assert_eq!(errs["metrics"][0]["metric"], "error_rate");
    assert_eq!(errs["metrics"][0]["outcome"], "fail");
    assert_eq!(errs["metrics"][1]["outcome"], "pass", "latency is the same");
    assert_eq!(errs["canary"]["errors"], 60);
    assert_eq!(errs["baseline"]["errors"], 3);
    assert_eq!(errs["score"], 50.0);

    let slow = canary(&server, "slow").await;
    assert_eq!(slow["verdict"], "fail", "{slow}");
    assert_eq!(slow["metrics"][0]["outcome"], "pass");
    assert_eq!(slow["metrics"][1]["outcome"], "fail");
    assert!(
        slow["metrics"][1]["effect"].as_f64().unwrap() > 0.99,
        "every 2.0 request slower"
    );

    let same = canary(&server, "same").await;
    assert_eq!(same["verdict"], "pass", "{same}");
    assert_eq!(same["score"], 100.0);

    let thin = canary(&server, "thin").await;
    assert_eq!(thin["verdict"], "marginal", "{thin}");
    let reasons = thin["reasons"].to_string();
    assert!(
        reasons.contains("too little traffic: 2.0 served 12 requests"),
        "{reasons}"
    );
    // Each verdict links to the records behind it.
    let evidence = errs["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| e["href"]
        .as_str()
        .unwrap()
        .starts_with("/traces?service=errs&attr=service.version%3D2.0&status=error")));

    // The deploy gate: `sightline canary` exits 0 on pass and non-zero on fail.
    let gate = |service: &str, fail_below: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args([
                "canary",
                "--service",
                service,
                "--baseline",
                "1.0",
                "--canary",
                "2.0",
                "--fail-below",
                fail_below,
                "--api",
                &server.api,
            ])
            .output()
            .expect("run sightline canary")
    };
    let pass = gate("same", "70");
    assert!(pass.status.success(), "{pass:?}");
    assert!(String::from_utf8_lossy(&pass.stdout)
        .contains("same 2.0 against 1.0: pass (score 100 of 100)"));
    let fail = gate("errs", "70");
    assert!(
        !fail.status.success(),
        "a failing canary must fail the gate"
    );
    assert!(String::from_utf8_lossy(&fail.stderr).contains("the canary failed"));
    // Marginal (too little traffic, nothing worse) passes the gate: it scores 100.
    assert!(gate("thin", "70").status.success());
    let unknown = gate("nobody", "70");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no service named \"nobody\""));

    // Bad questions: 4xx naming the problem.
    assert_refused(
        &server,
        "/api/v1/canary",
        &[
        ("service=errs&baseline=1.0&canary=1.0".into(), 400, "same version"),
        ("service=errs&baseline=1.0&canary=9.9".into(), 404, "9.9 served no requests"),
        ("service=nobody&baseline=1.0&canary=2.0".into(), 404, "no service named"),
        ("service=errs&baseline=1.0&canary=2.0&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z".into(), 400, ""),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_against_the_rest_rank_the_bad_instance_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    send_shop(&server).await;
    settled(&server, "shop", 900).await;
    errors_rank_shop_3_first(&server, 900).await;

    // Another baseline window: the selection against an empty hour before is refused.
    let hour_ago = now_ns() - 3_600_000 * MS;
    let (status, body) = server
        .get(&format!(
            "/api/v1/compare/groups?errors=true&baseline_start={}&baseline_end={}",
            hour_ago - 3_600_000 * MS,
            hour_ago
        ))
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("baseline holds no span"));
    // Bad questions.
    assert_refused(
        &server,
        "/api/v1/compare/groups",
        &[
            (
                "errors=false&max_duration_ms=5".into(),
                404,
                "no span in the window matches",
            ),
            ("errors=true&attribute=nokey".into(), 400, "key=value"),
            (
                "min_duration_ms=10000".into(),
                404,
                "no span in the window matches",
            ),
            ("min_duration_ms=-1".into(), 400, "min_duration_ms"),
            (
                "errors=true&baseline_start=2026-01-01T00:00:00Z".into(),
                400,
                "go together",
            ),
            (
                "errors=true&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z".into(),
                400,
                "",
            ),
        ],
    )
    .await;
}

/// 300 requests of each of shop-1, shop-2 and shop-3 (version 4.2): shop-3 fails a third of
/// its requests, shop-1 and shop-2 one in a hundred.
async fn send_shop(server: &Server) {
    let mut seq = 0;
    for (instance, every) in [("shop-1", 100), ("shop-2", 100), ("shop-3", 3)] {
        let p = Process {
            service: "shop",
            version: "4.2",
            instance,
        };
        send(
            server,
            &p,
            &mut seq,
            300,
            |i| 20 + i % 10,
            |i| i % every == 0,
        )
        .await;
    }
}

/// Errors against the rest of the last hour of `shop`: shop-3 first, `read` spans read (900:
/// all of them; less: at most that many, from a sample).
async fn errors_rank_shop_3_first(server: &Server, read: u64) -> serde_json::Value {
    // No selection given: the failed spans.
    let (status, body) = server.get("/api/v1/compare/groups").await;
    assert_eq!(status, 200, "{body}");
    if read == 900 {
        // 100 + 3 + 3 failed spans against the other 794.
        assert_eq!(body["selection_spans"], 106);
        assert_eq!(body["baseline_spans"], 794);
    }
    let spans_read = body["spans_read"].as_u64().unwrap();
    if read == 900 {
        assert_eq!(spans_read, read, "{body}");
    } else {
        assert!(spans_read > 0 && spans_read <= read, "{body}");
    }
    let top = &body["ranked"][0];
    assert_eq!(
        (top["key"].as_str(), top["value"].as_str()),
        (Some("service.instance.id"), Some("shop-3")),
        "{body}"
    );
    if read == 900 {
        assert_eq!(top["selection_count"], 100);
        assert_eq!(top["baseline_count"], 200);
    }
    // The failure's own status code is set apart, not ranked as a cause.
    let ranked = body["ranked"].to_string();
    assert!(!ranked.contains("http.response.status_code"), "{ranked}");
    let describes = body["describes_selection"].to_string();
    assert!(
        describes.contains("\"key\":\"status\"") && describes.contains("http.response.status_code"),
        "{describes}"
    );
    body
}

/// A span of trace `t` with id `id` under `parent`, `from`–`to` ms after a common start.
fn child(t: u8, id: u8, parent: Option<u8>, name: &str, from: u64, to: u64) -> Span {
    let start = now_ns() - 60_000 * MS;
    Span {
        trace_id: vec![t; 16],
        span_id: vec![t, id, 0, 0, 0, 0, 0, 1],
        parent_span_id: parent
            .map(|p| vec![t, p, 0, 0, 0, 0, 0, 1])
            .unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start + from * MS,
        end_time_unix_nano: start + to * MS,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_comparison_reports_exactly_the_added_and_missing_spans() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let p = Process {
        service: "api",
        version: "1",
        instance: "api-1",
    };
    // A: GET / → auth, db query. B: GET / → auth, db query (slower), db query again, cache.
    let a = vec![
        child(0xA1, 1, None, "GET /", 0, 100),
        child(0xA1, 2, Some(1), "auth", 5, 20),
        child(0xA1, 3, Some(1), "db query", 25, 60),
    ];
    let b = vec![
        child(0xB2, 1, None, "GET /", 0, 300),
        child(0xB2, 2, Some(1), "auth", 5, 20),
        child(0xB2, 3, Some(1), "db query", 25, 160),
        child(0xB2, 4, Some(1), "db query", 165, 260),
        child(0xB2, 5, Some(1), "cache get", 262, 270),
    ];
    let mut spans = a;
    spans.extend(b);
    assert_eq!(
        server
            .post_protobuf("/v1/traces", export(&p, spans))
            .await
            .status(),
        200
    );
    let (ta, tb) = (hex::encode([0xA1u8; 16]), hex::encode([0xB2u8; 16]));
    let body = server
        .wait_for(&format!("/api/v1/compare/traces?a={ta}&b={tb}"), |v| {
            v["b"]["span_count"] == 5
        })
        .await;
    assert_eq!(body["duration_delta_nano"], 200 * MS);
    assert_eq!(
        (body["only_in_a"].as_u64(), body["only_in_b"].as_u64()),
        (Some(0), Some(2))
    );
    let listed: Vec<String> = body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} #{} {}",
                s["depth"],
                s["operation"].as_str().unwrap(),
                s["ordinal"],
                s["presence"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "0 GET / #0 both",
            "1 auth #0 both",
            "1 db query #0 both",
            "1 db query #1 only_b",
            "1 cache get #0 only_b",
        ]
    );
    let slower = &body["spans"][2];
    assert_eq!(slower["duration_delta_nano"], 100 * MS);
    // The two db queries explain the difference first (+100 ms and +95 ms of self time).
    let first: Vec<u64> = body["explaining"].as_array().unwrap()[..2]
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    assert_eq!(first, [2, 3]);

    // Reversed, the same spans are missing instead of added.
    let (_, reversed) = server
        .get(&format!("/api/v1/compare/traces?a={tb}&b={ta}"))
        .await;
    assert_eq!(
        (
            reversed["only_in_a"].as_u64(),
            reversed["only_in_b"].as_u64()
        ),
        (Some(2), Some(0))
    );

    // The typical trace of A's root operation near A: B is the only other one.
    let (status, typical) = server
        .get(&format!("/api/v1/compare/traces?a={ta}&b=typical"))
        .await;
    assert_eq!(status, 200, "{typical}");
    assert_eq!(typical["b"]["trace_id"], tb);

    // Bad input.
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_refused(
        &server,
        "/api/v1/compare/traces",
        &[
            (format!("a={ta}&b={unknown}"), 404, "trace b"),
            (format!("a={ta}&b={ta}"), 400, "same trace"),
            (format!("a=xyz&b={tb}"), 400, "a: invalid trace id"),
            (format!("b={tb}"), 400, "missing parameter: a"),
            ("".to_string(), 400, "missing parameters: a, b"),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_canary_fails_and_its_errors_point_at_the_canary() {
    let server = common::shared_demo();
    let body = server
        .wait_for(
            "/api/v1/canary?service=payment&baseline=2.4.0&canary=2.5.0",
            |v| v["verdict"].is_string(),
        )
        .await;
    assert_eq!(body["verdict"], "fail", "{body}");
    let (status, groups) = server.get("/api/v1/compare/groups?errors=true").await;
    assert_eq!(status, 200, "{groups}");
    let top: Vec<String> = groups["ranked"].as_array().unwrap()[..2]
        .iter()
        .map(|r| {
            format!(
                "{}={}",
                r["key"].as_str().unwrap(),
                r["value"].as_str().unwrap()
            )
        })
        .collect();
    for planted in ["service.version=2.5.0", "service.instance.id=payment-3"] {
        assert!(
            top.contains(&planted.to_string()),
            "{planted} not on top: {top:?}"
        );
    }
    // The web pages answer for the same questions.
    let page = reqwest::get(format!(
        "{}/canary?service=payment&baseline=2.4.0&canary=2.5.0&range=1h",
        server.api
    ))
    .await
    .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("data-verdict=\"fail\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_many_blocks_is_answered_from_a_sample_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // 9 rows per row group: 900 spans make 100 stored blocks, past the cap of 32.
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--row-group-rows", "9", "--flush-age-ms", "200"],
    );
    send_shop(&server).await;
    settled(&server, "shop", 900).await;
    // Wait until the spans are flushed into blocks: 900 spans make at least 100 (a flush can
    // end a file on a block of fewer than 9 rows).
    let body = server
        .wait_for("/api/v1/compare/groups", |v| {
            v["blocks_matched"].as_u64().is_some_and(|b| b >= 100)
        })
        .await;
    assert_eq!(body["blocks_read"], 32, "{body}");
    // At most 32 blocks of 9 rows; the sample, spread over every file, still has shop-3's.
    let body = errors_rank_shop_3_first(&server, 32 * 9).await;
    assert!(body["selection_spans"].as_u64().unwrap() < 106);
}
