//! Without authentication the server only listens on loopback unless `--insecure`, and one
//! query may not cover more than `--max-query-days`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::demo::page;
use common::{enc, Server};

fn serve(data: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sightline"));
    cmd.args(["serve", "--data-dir"])
        .arg(data)
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .args(extra);
    cmd
}

#[test]
fn public_addresses_need_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = serve(&data, &["--http-addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a public bind without auth must be refused"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen") && stderr.contains("--insecure"),
        "{stderr}"
    );

    let mut child = serve(&data, &["--http-addr", "0.0.0.0:0", "--insecure"])
        .env("SIGHTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("ready "));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(ready, "with --insecure it starts");
    assert!(String::from_utf8_lossy(&out.stderr).contains("INSECURE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_query_covers_at_most_max_query_days() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--max-query-days", "1"]);
    let day = 24 * 3600;
    let now = chrono::Utc::now().timestamp();
    for path in [
        format!("/api/v1/logs?q=x&start={}", now - 3 * day),
        format!("/api/v1/traces?service=x&start={}", now - 3 * day),
        format!("/api/v1/overview?start={}", now - 3 * day),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("at most 1 (--max-query-days)"),
            "{body}"
        );
    }
    let (status, _) = server
        .get(&format!("/api/v1/logs?q=x&start={}", now - day / 2))
        .await;
    assert_eq!(status, 200);
    // Without a start, searches run newest first and stop at their limit: allowed.
    let (status, _) = server.get("/api/v1/logs?q=x").await;
    assert_eq!(status, 200);
    let from = chrono::DateTime::from_timestamp(now - 3 * day, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let (status, html) = page(&server, &format!("/logs?q=x&from={}", enc(&from))).await;
    assert_eq!(status, 400);
    assert!(html.contains("--max-query-days"));
    server.stop();
}
