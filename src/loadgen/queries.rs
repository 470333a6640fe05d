//! `sightline loadgen --queries`: query latency against a running server's HTTP API, the way
//! a user meets it (HTTP, JSON, one request at a time). Samples real ids from the stored
//! data first, spread over the last hour, then times each query kind and reports p50, p99
//! and max, plus the very first request of each kind (the cold one, right after a restart).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::latency::Latencies;

/// The ids and words the timed queries look up, taken from the server's own data.
#[derive(Default)]
struct Samples {
    trace_ids: Vec<String>,
    correlation_ids: Vec<String>,
    /// Body words that occur in a few records (numbers from sampled bodies).
    rare_words: Vec<String>,
    /// `start=…&end=…` of the three-minute windows that held traces.
    windows: Vec<String>,
}

/// One kind of query and how to build its URL from the samples.
struct Kind {
    name: &'static str,
    url: fn(&Samples, usize) -> Option<String>,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "trace by id",
        url: |s, i| pick(&s.trace_ids, i).map(|id| format!("/api/v1/traces/{id}")),
    },
    Kind {
        name: "trace search, newest 20",
        url: |_, _| Some("/api/v1/traces?limit=20".into()),
    },
    Kind {
        name: "trace search, 3-minute window, newest 20",
        url: |s, i| pick(&s.windows, i).map(|w| format!("/api/v1/traces?limit=20&{w}")),
    },
    Kind {
        name: "trace search, errors, newest 20",
        url: |_, _| Some("/api/v1/traces?status=error&limit=20".into()),
    },
    Kind {
        name: "logs by correlation id",
        url: |s, i| {
            pick(&s.correlation_ids, i).map(|id| format!("/api/v1/logs?q=correlation_id:{id}"))
        },
    },
    Kind {
        name: "full text, common word, newest 100",
        url: |_, _| Some("/api/v1/logs?q=timeout&limit=100".into()),
    },
    Kind {
        name: "full text, rare word, newest 100",
        url: |s, i| pick(&s.rare_words, i).map(|w| format!("/api/v1/logs?q={w}&limit=100")),
    },
    Kind {
        name: "full text, common word AND rare word, newest 100",
        url: |s, i| {
            pick(&s.rare_words, i).map(|w| format!("/api/v1/logs?q=timeout%20{w}&limit=100"))
        },
    },
    Kind {
        name: "histogram of a common word, last hour, 1-minute buckets",
        url: |_, _| Some("/api/v1/logs/histogram?q=timeout".into()),
    },
    Kind {
        name: "logs page (newest 100 + histogram), common word, last hour",
        url: |_, _| Some("/logs?q=timeout".into()),
    },
    Kind {
        name: "logs page (newest 100 + histogram), one service, last hour",
        url: |_, i| Some(format!("/logs?q=service:service-{}", i % 20)),
    },
    Kind {
        name: "Loki count_over_time by service, last hour, 1-minute steps",
        url: |_, _| {
            let end = crate::model::time::now_ns();
            let start = end - 3_600_000_000_000;
            Some(format!(
                "/loki/api/v1/query_range?query={}&start={start}&end={end}&step=60",
                "sum%20by%20(service_name)%20(count_over_time(%7Bservice_name%3D~%22.%2B%22%7D%5B1m%5D))"
            ))
        },
    },
    Kind {
        name: "service map, last hour",
        url: |_, _| Some("/api/v1/service-map".into()),
    },
    Kind {
        name: "RED overview, last hour",
        url: |_, _| Some("/api/v1/overview".into()),
    },
    Kind {
        name: "metric range query, last hour",
        url: |_, i| {
            Some(format!(
                "/api/v1/metrics/query?name=app.metric.{}&group_by=service",
                i % 50
            ))
        },
    },
];

fn pick(v: &[String], i: usize) -> Option<&String> {
    (!v.is_empty()).then(|| &v[i % v.len()])
}

/// Times every query kind for `runs` requests against the API at `base`. With `cold_trace_id`
/// (an id from an earlier run), that trace is looked up first of all, before sampling warms
/// any cache: the first query after a restart.
pub async fn run(base: &str, runs: usize, cold_trace_id: Option<&str>) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    if let Some(id) = cold_trace_id {
        let t = Instant::now();
        let status = http
            .get(format!("{base}/api/v1/traces/{id}"))
            .send()
            .await?
            .status();
        println!(
            "cold trace by id {id}: {status} in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let samples_started = Instant::now();
    let samples = sample(&http, base).await?;
    println!(
        "sampled {} trace ids, {} correlation ids, {} rare words in {:.2} s",
        samples.trace_ids.len(),
        samples.correlation_ids.len(),
        samples.rare_words.len(),
        samples_started.elapsed().as_secs_f64()
    );
    if let Some(id) = samples.trace_ids.first() {
        println!("(for a cold figure after a restart: --cold-trace-id {id})");
    }
    println!(
        "{:<42} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "query", "first ms", "p50 ms", "p99 ms", "max ms", "runs"
    );
    for kind in KINDS {
        let mut latency = Latencies::default();
        let mut first = None;
        let mut max = 0u64;
        let mut done = 0;
        for i in 0..runs {
            let Some(path) = (kind.url)(&samples, i) else {
                break;
            };
            let t = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = response.status();
            let _ = response.bytes().await?;
            let ns = t.elapsed().as_nanos() as u64;
            if !status.is_success() && status.as_u16() != 404 {
                anyhow::bail!("GET {path} answered {status}");
            }
            first.get_or_insert(ns);
            latency.record(ns);
            max = max.max(ns);
            done += 1;
        }
        let ms = |q: f64| latency.ms(q);
        println!(
            "{:<42} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            kind.name,
            first.unwrap_or(0) as f64 / 1e6,
            ms(0.5),
            ms(0.99),
            max as f64 / 1e6,
            done
        );
    }
    Ok(())
}

/// Takes ids from twenty short windows spread over the last hour, so lookups hit old
/// (flushed, compacted) data as well as the newest.
/// A token of `body` that few other records hold: the first 8 hex digits of a uuid
/// (`--unique-bodies`), else a 5-digit number.
pub fn rare_token(body: &str) -> Option<&str> {
    let words = || body.split_whitespace();
    let hex8 = |w: &str| {
        w.len() == 36 && w.as_bytes()[8] == b'-' && w[..8].bytes().all(|b| b.is_ascii_hexdigit())
    };
    words()
        .find(|w| hex8(w))
        .map(|w| &w[..8])
        .or_else(|| words().find(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_digit())))
}

async fn sample(http: &reqwest::Client, base: &str) -> anyhow::Result<Samples> {
    let now = chrono::Utc::now();
    let mut samples = Samples::default();
    for k in 0..20 {
        let end = now - chrono::Duration::minutes(3 * k);
        let start = end - chrono::Duration::minutes(3);
        let window = format!(
            "start={}&end={}",
            start.timestamp_nanos_opt().unwrap_or(0),
            end.timestamp_nanos_opt().unwrap_or(0)
        );
        let traces: Value = http
            .get(format!("{base}/api/v1/traces?{window}&limit=5"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for t in traces["traces"].as_array().into_iter().flatten() {
            if let Some(id) = t["trace_id"].as_str() {
                samples.trace_ids.push(id.to_string());
            }
        }
        if traces["traces"].as_array().is_some_and(|t| !t.is_empty()) {
            samples.windows.push(window.clone());
        }
        let logs: Value = http
            .get(format!("{base}/api/v1/logs?{window}&limit=5"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for log in logs["logs"].as_array().into_iter().flatten() {
            if let Some(id) = log["correlation_id"].as_str() {
                samples.correlation_ids.push(id.to_string());
            }
            if let Some(token) = rare_token(log["body"].as_str().unwrap_or_default()) {
                samples.rare_words.push(token.to_string());
            }
        }
    }
    Ok(samples)
}
