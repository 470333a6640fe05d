//! Post-mortems over the demo incident: built from three saved views, timeline suggestions
//! accepted one by one, annotations on charts and in the timeline, Markdown export with SVG
//! charts over HTTP and through `sightline postmortem export`.

mod common;

use std::process::Command;

use common::demo::ids;
use common::notebook::{page, send_json};
use common::{enc, Server};
use serde_json::{json, Value};
use sightline::demo::scenario::{
    CANARY_DEPLOY_MINUTE, INCIDENT_END_MINUTE, INCIDENT_START_MINUTE, SCENARIO_START,
};

const MINUTE: i64 = 60_000_000_000;

/// Start of the demo scenario as loaded in this data dir (it is moved to end "now").
fn scenario_start(server: &Server) -> i64 {
    let shift: i64 = std::fs::read_to_string(server.data_dir.join("demo-loaded"))
        .expect("the demo marker")
        .trim()
        .parse()
        .unwrap();
    SCENARIO_START as i64 + shift
}

async fn create_view(server: &Server, body: Value) -> i64 {
    let (status, view) = send_json(server, "POST", "/api/v1/views", body).await;
    assert_eq!(status, 201, "{view}");
    view["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_of_the_demo_incident() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--demo", "--demo-frozen", "--flush-age-ms", "500"],
    );
    let demo = ids(&server).await;
    let s0 = scenario_start(&server);
    let (start, end) = (s0 + 30 * MINUTE, s0 + 58 * MINUTE);
    let window = |url: &str, name: &str| json!({"name": name, "url": url, "start": start, "end": end, "pin": true});
    let views = [
        create_view(
            &server,
            window(
                &format!("/logs?q={}", enc("service:payment severity>=ERROR")),
                "payment errors",
            ),
        )
        .await,
        create_view(
            &server,
            json!({"name": "a failed checkout", "url": format!("/traces/{}", demo.failed_trace), "pin": true}),
        )
        .await,
        create_view(&server, window("/services/payment", "payment service")).await,
    ];
    // A deploy script marks the release.
    let deploy_at = s0 + CANARY_DEPLOY_MINUTE as i64 * MINUTE + 5_000_000_000;
    let (status, _) = send_json(
        &server,
        "POST",
        "/api/v1/annotations",
        json!({"time": deploy_at, "service": "payment", "text": "deploy payment 2.5.0 canary"}),
    )
    .await;
    assert_eq!(status, 201);
    let title = "Checkout failures <script>alert(1)</script>";
    let (status, pm) = send_json(
        &server,
        "POST",
        "/api/v1/postmortems",
        json!({
            "title": title,
            "incident_start": start, "incident_end": end,
            "summary": "Checkouts failed while the payment canary timed out.",
            "impact": "About half of the checkouts failed for 12 minutes.",
            "root_cause": "payment 2.5.0 shortened the card processor timeout.",
            "action_items": [{"owner": "payments", "text": "canary analysis gates the rollout"}],
            "views": views.iter().map(|v| json!({"view_id": v, "note": "see here"})).collect::<Vec<_>>(),
        }),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let id = pm["id"].as_i64().unwrap();

    // Suggestions come from the data of the incident window; accept every one.
    let (_, suggested) = server
        .get(&format!("/api/v1/postmortems/{id}/suggestions"))
        .await;
    let suggestions = suggested["suggestions"].as_array().unwrap().clone();
    let kinds: Vec<&str> = suggestions
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "deploy",
        "first_error",
        "error_peak",
        "recovery",
        "instance_down",
    ] {
        assert!(kinds.contains(&kind), "a {kind} suggestion in {kinds:?}");
    }
    for s in &suggestions {
        let key = s["key"].as_str().unwrap();
        let (status, body) = send_json(
            &server,
            "POST",
            &format!("/api/v1/postmortems/{id}/suggestions/{}/accept", enc(key)),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{key}: {body}");
    }
    let (_, left) = server
        .get(&format!("/api/v1/postmortems/{id}/suggestions"))
        .await;
    assert_eq!(
        left["suggestions"].as_array().unwrap().len(),
        0,
        "all settled"
    );
    let (_, pm) = server.get(&format!("/api/v1/postmortems/{id}")).await;
    let timeline = pm["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), suggestions.len());
    for e in timeline {
        let t = e["time"].as_i64().unwrap();
        assert!(t >= start && t <= end, "{e} lies in the incident window");
    }
    let entry = |source: &str| {
        timeline
            .iter()
            .find(|e| e["source"] == source)
            .unwrap_or_else(|| panic!("a {source} entry"))
    };
    let first = entry("first_error");
    let text = first["text"].as_str().unwrap();
    assert!(
        text.contains("payment") && text.contains("2.5.0"),
        "the first error names the failing service and version: {text}"
    );
    assert_eq!(
        first["time"].as_i64().unwrap(),
        s0 + INCIDENT_START_MINUTE as i64 * MINUTE
    );
    let deploy = entry("deploy");
    assert!(deploy["text"].as_str().unwrap().contains("payment 2.5.0"));
    assert_eq!(
        deploy["time"].as_i64().unwrap(),
        s0 + CANARY_DEPLOY_MINUTE as i64 * MINUTE
    );
    let recovery = timeline
        .iter()
        .find(|e| e["source"] == "recovery" && e["text"].as_str().unwrap().contains("payment"))
        .expect("payment recovers");
    assert_eq!(
        recovery["time"].as_i64().unwrap(),
        s0 + INCIDENT_END_MINUTE as i64 * MINUTE
    );
    assert!(entry("instance_down")["text"]
        .as_str()
        .unwrap()
        .contains("payment-3"));
    // A dismissed suggestion does not come back: add a manual entry, remove it again.
    let (status, pm2) = send_json(
        &server,
        "POST",
        &format!("/api/v1/postmortems/{id}/timeline"),
        json!({"time": start + MINUTE, "text": "on-call paged"}),
    )
    .await;
    assert_eq!(status, 201);
    let manual = pm2["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "manual")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = send_json(
        &server,
        "DELETE",
        &format!("/api/v1/postmortems/{id}/timeline/{manual}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);

    // The page renders each view inline: log excerpt, waterfall, charts with the annotation.
    let (status, html) = page(&server, &format!("/postmortems/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("charge failed"), "the log excerpt");
    assert_eq!(
        html.matches("<details class=\"span").count(),
        demo.failed_span_count,
        "the waterfall of the failed checkout"
    );
    assert!(
        html.contains("class=\"annotation\""),
        "the deploy marker on the charts"
    );
    assert!(html.contains("deploy payment 2.5.0 canary"));
    assert!(!html.contains("<script>alert(1)"), "the title is escaped");

    // Markdown over HTTP.
    let md = reqwest::get(format!("{}/postmortems/{id}.md", server.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        md.starts_with("# Checkout failures &lt;script&gt;alert\\(1\\)&lt;/script&gt;"),
        "{md}"
    );
    assert!(!md.contains("<script>"));
    for v in views {
        assert!(
            md.contains(&format!("/views/{v}/open")),
            "a permalink to view {v}"
        );
    }
    assert!(md.contains("## Timeline"));
    assert!(
        md.contains("First errors: payment 2.5.0 \\(POST /charge\\)"),
        "the accepted timeline: {md}"
    );
    assert!(md.contains("- [ ] canary analysis gates the rollout — payments"));
    let charts: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("![").and_then(|l| l.split("](").nth(1)))
        .map(|l| l.trim_end_matches(')'))
        .collect();
    assert!(charts.len() >= 3, "charts of the three views: {charts:?}");
    // Each image is titled by what it shows, not numbered; the key numbers and log lines of
    // the views come as tables; the downloaded document links its charts absolutely.
    assert!(!md.contains("— chart "), "untitled charts: {md}");
    assert!(
        md.contains("![Errors per minute, stacked per service]("),
        "{md}"
    );
    assert!(md.contains("| --- |"), "no table in the export: {md}");
    assert!(
        charts.iter().all(|c| c.starts_with(&server.api)),
        "{charts:?}"
    );
    let svg = reqwest::get(charts[0]).await.unwrap();
    assert_eq!(svg.status(), 200);
    assert!(svg
        .text()
        .await
        .unwrap()
        .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));

    // The CLI writes the same document with its charts beside it.
    let out = dir.path().join("export");
    let run = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "postmortem",
            "export",
            &id.to_string(),
            "--api",
            &server.api,
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read_to_string(out.join(format!("postmortem-{id}.md"))).unwrap();
    let files: Vec<&str> = written
        .lines()
        .filter_map(|l| l.strip_prefix("![").and_then(|l| l.split("](").nth(1)))
        .map(|l| l.trim_end_matches(')'))
        .collect();
    assert_eq!(files.len(), charts.len());
    for f in &files {
        assert!(!f.contains('/'), "charts are beside the Markdown: {f}");
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=") && svg.trim_end().ends_with("</svg>"),
            "{f}"
        );
    }
    let waterfall =
        std::fs::read_to_string(out.join(files.iter().find(|f| f.starts_with("view-2-")).unwrap()))
            .unwrap();
    assert!(
        waterfall.contains("POST /charge"),
        "the failed checkout's waterfall"
    );
    server.stop();
}
