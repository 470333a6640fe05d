//! `sightline ingest`: replays OTLP files into a running server, with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use super::SignalArg;

/// One OTLP request read from a file.
struct Request {
    signal: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

/// Sends every request of every file; fails on the first one the server refuses.
pub async fn run(
    files: &[PathBuf],
    endpoint: &str,
    signal: Option<SignalArg>,
) -> anyhow::Result<()> {
    let mut requests = Vec::new();
    for file in files {
        requests.extend(read_requests(file, signal)?);
    }
    let total: u64 = requests.iter().map(|r| r.body.len() as u64).sum();
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let client = reqwest::Client::new();
    let endpoint = endpoint.trim_end_matches('/');
    let mut partial = 0u64;
    for request in &requests {
        let url = format!("{endpoint}/v1/{}", request.signal);
        let response = client
            .post(&url)
            .header("content-type", request.content_type)
            .body(request.body.clone())
            .send()
            .await
            .with_context(|| format!("could not reach {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bar.abandon();
            bail!("{url} answered {status}: {text}");
        }
        if text.contains("rejected") {
            partial += 1;
        }
        bar.inc(request.body.len() as u64);
    }
    bar.finish_with_message(format!("{} requests sent", requests.len()));
    if partial > 0 {
        eprintln!(
            "warning: {partial} requests had records rejected (see the server's partial_success)"
        );
    }
    Ok(())
}

fn read_requests(path: &Path, signal: Option<SignalArg>) -> anyhow::Result<Vec<Request>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "json" | "jsonl" | "ndjson") {
        let Some(signal) = signal else {
            bail!(
                "{}: protobuf files need --signal traces|logs|metrics",
                path.display()
            );
        };
        let signal = match signal {
            SignalArg::Traces => "traces",
            SignalArg::Logs => "logs",
            SignalArg::Metrics => "metrics",
        };
        return Ok(vec![Request {
            signal,
            content_type: "application/x-protobuf",
            body: bytes,
        }]);
    }
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    // A whole-file JSON document, or JSON lines as the collector's file exporter writes them.
    let docs: Vec<&str> = if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        vec![text.as_str()]
    } else {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    };
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let value: serde_json::Value = serde_json::from_str(doc).with_context(|| {
                format!("{} (document {}): invalid JSON", path.display(), i + 1)
            })?;
            let signal = json_signal(&value).with_context(|| {
                format!(
                    "{} (document {}): not an OTLP export request",
                    path.display(),
                    i + 1
                )
            })?;
            Ok(Request {
                signal,
                content_type: "application/json",
                body: doc.as_bytes().to_vec(),
            })
        })
        .collect()
}

fn json_signal(value: &serde_json::Value) -> Option<&'static str> {
    let has = |a: &str, b: &str| value.get(a).or_else(|| value.get(b)).is_some();
    if has("resourceSpans", "resource_spans") {
        Some("traces")
    } else if has("resourceLogs", "resource_logs") {
        Some("logs")
    } else if has("resourceMetrics", "resource_metrics") {
        Some("metrics")
    } else {
        None
    }
}
