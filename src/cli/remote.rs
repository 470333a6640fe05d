//! `trace`, `logs` and `services`: ask a running server's API and print the answer.

use anyhow::{bail, Context};
use serde_json::Value;

pub(super) async fn get(url: &str) -> anyhow::Result<Value> {
    let response = reqwest::get(url)
        .await
        .with_context(|| format!("could not reach {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("server answered with invalid JSON")?;
    if !status.is_success() {
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("request failed");
        bail!("{status}: {message}");
    }
    Ok(body)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn time(v: &Value, key: &str) -> String {
    let ns = v.get(key).and_then(Value::as_i64).unwrap_or(0);
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// Prints a trace as an indented tree.
pub async fn trace(api: &str, id: &str) -> anyhow::Result<()> {
    let trace = get(&format!("{}/api/v1/traces/{id}", api.trim_end_matches('/'))).await?;
    let spans = trace
        .get("spans")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| text(s, "span_id")).collect();
    println!(
        "trace {id}  {} spans  {:.3} ms",
        spans.len(),
        trace["duration_nano"].as_f64().unwrap_or(0.0) / 1e6
    );
    fn print(
        spans: &[Value],
        parent: Option<&str>,
        ids: &std::collections::HashSet<&str>,
        depth: usize,
    ) {
        for s in spans {
            let p = s.get("parent_span_id").and_then(Value::as_str);
            let is_root = match parent {
                None => p.is_none_or(|p| !ids.contains(p)),
                Some(want) => p == Some(want),
            };
            if is_root {
                println!(
                    "{}{} {} [{}] {:.3} ms {}",
                    "  ".repeat(depth + 1),
                    s["resource"]["service_name"].as_str().unwrap_or(""),
                    text(s, "name"),
                    text(s, "kind"),
                    s["duration_nano"].as_f64().unwrap_or(0.0) / 1e6,
                    if text(s, "status_code") == "ERROR" {
                        "ERROR"
                    } else {
                        ""
                    },
                );
                print(spans, Some(text(s, "span_id")), ids, depth + 1);
            }
        }
    }
    print(&spans, None, &ids, 0);
    for log in trace
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "  log {} {} {}",
            time(log, "time_unix_nano"),
            text(log, "severity_text"),
            text(log, "body")
        );
    }
    Ok(())
}

/// Prints matching log lines, newest first.
pub async fn logs(
    api: &str,
    query: &str,
    start: Option<String>,
    end: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/logs", api.trim_end_matches('/')))?;
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("limit", &limit.to_string());
    if let Some(s) = start {
        url.query_pairs_mut().append_pair("start", &s);
    }
    if let Some(e) = end {
        url.query_pairs_mut().append_pair("end", &e);
    }
    let result = get(url.as_str()).await?;
    let logs = result
        .get("logs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for l in &logs {
        println!(
            "{} {:<5} {:<16} {}",
            time(l, "time_unix_nano"),
            text(l, "severity_text"),
            l["resource"]["service_name"].as_str().unwrap_or(""),
            text(l, "body").replace(['\n', '\r'], " ")
        );
    }
    if logs.is_empty() {
        println!("no log records match");
    }
    Ok(())
}

/// Prints services and their instances.
pub async fn services(api: &str) -> anyhow::Result<()> {
    let result = get(&format!("{}/api/v1/services", api.trim_end_matches('/'))).await?;
    for s in result
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "{}  (last seen {})",
            text(s, "name"),
            time(s, "last_seen_unix_nano")
        );
        for i in s
            .get("instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            println!(
                "  {} host={} version={} last seen {}",
                text(i, "instance"),
                text(i, "host"),
                text(i, "version"),
                time(i, "last_seen_unix_nano")
            );
        }
    }
    Ok(())
}
