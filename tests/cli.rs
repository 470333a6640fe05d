//! The command line: `demo` regenerates the committed sample data byte for byte; `ingest`,
//! `trace`, `logs` and `services` work against a running server.

mod common;

use std::process::Command;

use common::Server;

fn sightline(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(args)
        .output()
        .expect("run sightline");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_generator_reproduces_the_committed_sample_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (ok, _, err) = sightline(&["demo", "--seed", "42", "--out", out]);
    assert!(ok, "{err}");
    for file in ["traces.jsonl", "logs.jsonl", "metrics.jsonl"] {
        let generated = std::fs::read(dir.path().join(file)).unwrap();
        let committed = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sample-data")
                .join(file),
        )
        .unwrap();
        assert!(
            generated == committed,
            "sample-data/{file} differs from `sightline demo --seed 42`"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_then_query_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let file = dir.path().join("batch.json");
    std::fs::write(
        &file,
        r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cli-svc"}}]},
        "scopeSpans":[{"spans":[
          {"traceId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spanId":"1111111111111111","name":"GET /cli","kind":2,
           "startTimeUnixNano":"1795428900000000000","endTimeUnixNano":"1795428900250000000"},
          {"traceId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spanId":"2222222222222222","parentSpanId":"1111111111111111",
           "name":"SELECT cli","kind":3,"startTimeUnixNano":"1795428900010000000","endTimeUnixNano":"1795428900090000000"}]}]}]}"#,
    )
    .unwrap();
    let logs = dir.path().join("logs.jsonl");
    std::fs::write(
        &logs,
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"cli-svc\"}}]},\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1795428900100000000\",\"severityText\":\"WARN\",\"severityNumber\":13,\"body\":{\"stringValue\":\"cli disk almost full\"}}]}]}]}\n\
         {\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"cli-svc\"}}]},\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"1795428900200000000\",\"severityNumber\":9,\"body\":{\"stringValue\":\"cli all good\"}}]}]}]}\n",
    )
    .unwrap();
    let (ok, _, err) = sightline(&[
        "ingest",
        file.to_str().unwrap(),
        logs.to_str().unwrap(),
        "--endpoint",
        &server.otlp_http,
    ]);
    assert!(ok, "{err}");

    let (ok, out, err) = sightline(&[
        "trace",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "--api",
        &server.api,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2 spans") && out.contains("GET /cli") && out.contains("SELECT cli"),
        "{out}"
    );
    let (ok, out, _) = sightline(&[
        "logs",
        "severity>=WARN service:cli-svc",
        "--api",
        &server.api,
    ]);
    assert!(ok);
    assert!(
        out.contains("cli disk almost full") && !out.contains("cli all good"),
        "{out}"
    );
    let (ok, out, _) = sightline(&["services", "--api", &server.api]);
    assert!(ok);
    assert!(out.contains("cli-svc"), "{out}");
    let (ok, _, err) = sightline(&["trace", "not-hex", "--api", &server.api]);
    assert!(!ok && err.contains("invalid trace id"), "{err}");
    let (ok, _, err) = sightline(&[
        "ingest",
        "/nonexistent.json",
        "--endpoint",
        &server.otlp_http,
    ]);
    assert!(!ok && err.contains("could not read"), "{err}");
    server.stop();
}

#[test]
fn help_documents_every_serve_option() {
    let (ok, out, _) = sightline(&["serve", "--help"]);
    assert!(ok);
    for flag in [
        "--data-dir",
        "--http-addr",
        "--otlp-grpc-addr",
        "--otlp-http-addr",
        "--max-body-bytes",
        "--correlation-keys",
        "--wal-sync",
        "--config",
        "--demo",
    ] {
        assert!(out.contains(flag), "serve --help lacks {flag}");
    }
    assert!(
        out.contains("SIGHTLINE_DATA_DIR"),
        "env vars are documented"
    );
}

/// `sightline loadgen` over gRPC (its workers restamp one copy of each request and send the
/// encoded bytes): every record it reports acknowledged is one the server counted, of each
/// signal of a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_acknowledged_records_are_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let endpoint = server.otlp_grpc.clone();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["loadgen", "--signal", "mix", "--duration-secs", "2"])
        .args([
            "--connections",
            "2",
            "--batch",
            "50",
            "--endpoint",
            &endpoint,
        ])
        .output()
        .await
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acked: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("records acknowledged"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no acknowledged count in:\n{stdout}"));
    assert!(
        acked >= 150,
        "a mix of at least one batch of each signal: {acked}"
    );
    let text = server.metrics_text().await;
    let counted = |signal: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("sightline_ingested_records") && l.contains(signal))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    let per_signal = ["traces", "logs", "metrics"].map(counted);
    assert!(per_signal.iter().all(|&n| n > 0), "{per_signal:?}\n{text}");
    assert_eq!(per_signal.iter().sum::<u64>(), acked, "{text}");
}
