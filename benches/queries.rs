//! The main queries on their own, in process, over flushed data (Parquet + block index):
//! trace by id, logs by correlation id, full-text search (a common word, a rare token, both),
//! the histogram of a common word, service map, RED overview and a metric range query
//! (figures in BENCHMARKS.md).
//!
//! The data: with `SIGHTLINE_BENCH_DATA=<dir>`, the data dir of a *stopped* server (for
//! example one filled with `sightline loadgen --fill N`); otherwise the bench starts the real
//! `sightline serve` on a temporary dir, fills it with `sightline loadgen --signal mix --fill
//! 300000`, stops it (which flushes), and opens what it wrote. HTTP latency of the same
//! queries against a running server: `sightline loadgen --queries`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sightline::model::TraceId;
use sightline::query::metrics::{GaugeAgg, MetricQuery};
use sightline::query::{LogSearch, TraceSearch};

const BIN: &str = env!("CARGO_BIN_EXE_sightline");
const HOUR: i64 = 3_600_000_000_000;

/// Fills `dir` through a real server and the load generator, then stops the server.
fn fill(dir: &Path, records: u64) {
    let mut server = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sightline serve");
    let stdout = server.stdout.take().expect("server stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("ready "))
        .expect("server ready line");
    std::thread::spawn(move || for _ in lines {});
    let grpc = ready
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("otlp_grpc="))
        .expect("otlp_grpc address")
        .to_string();
    let status = Command::new(BIN)
        .args(["loadgen", "--signal", "mix", "--endpoint", &grpc])
        .args(["--fill", &records.to_string(), "--connections", "2"])
        .stdout(Stdio::null())
        .status()
        .expect("run loadgen");
    assert!(status.success(), "loadgen failed");
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    assert!(server.wait().expect("wait for server").success());
}

fn data_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Ok(dir) = std::env::var("SIGHTLINE_BENCH_DATA") {
        return (PathBuf::from(dir), None);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    fill(&dir, 300_000);
    (dir, Some(tmp))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn queries(c: &mut Criterion) {
    let (dir, _keep) = data_dir();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let engine = sightline::evidence::open_snapshot(&dir).expect("open the data dir");
    let end = now();
    let start = end - HOUR;

    // Ids to look up, spread over the data: a few records of each of twenty windows.
    let mut trace_ids: Vec<TraceId> = Vec::new();
    let mut correlation_ids: Vec<String> = Vec::new();
    let mut rare_tokens: Vec<String> = Vec::new();
    for k in 0..20 {
        let (s, e) = (start + k * HOUR / 20, start + (k + 1) * HOUR / 20);
        let traces = rt
            .block_on(engine.search_traces(&TraceSearch {
                start: Some(s),
                end: Some(e),
                limit: 3,
                ..Default::default()
            }))
            .expect("trace search");
        trace_ids.extend(traces.iter().map(|t| t.trace_id));
        let logs = rt
            .block_on(engine.search_logs(&LogSearch {
                query: String::new(),
                start: Some(s),
                end: Some(e),
                limit: 3,
                before: None,
            }))
            .expect("log search");
        correlation_ids.extend(logs.logs.iter().filter_map(|l| l.correlation_id.clone()));
        rare_tokens.extend(
            logs.logs
                .iter()
                .filter_map(|l| sightline::loadgen::rare_token(&l.body).map(str::to_string)),
        );
    }
    assert!(
        !trace_ids.is_empty() && !correlation_ids.is_empty() && !rare_tokens.is_empty(),
        "no data in the last hour of {}",
        dir.display()
    );

    let mut g = c.benchmark_group("query");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    let mut i = 0usize;
    g.bench_function("trace by id", |b| {
        b.iter(|| {
            i += 1;
            let id = trace_ids[i % trace_ids.len()];
            rt.block_on(engine.trace(id)).expect("trace")
        })
    });
    g.bench_function("logs by correlation id", |b| {
        b.iter(|| {
            i += 1;
            let search = LogSearch {
                query: format!(
                    "correlation_id:{}",
                    correlation_ids[i % correlation_ids.len()]
                ),
                start: None,
                end: None,
                limit: 100,
                before: None,
            };
            rt.block_on(engine.search_logs(&search)).expect("logs")
        })
    });
    g.bench_function("full text, newest 100", |b| {
        let search = LogSearch {
            query: "timeout".into(),
            start: None,
            end: None,
            limit: 100,
            before: None,
        };
        b.iter(|| rt.block_on(engine.search_logs(&search)).expect("logs"))
    });
    let newest_100 = |query: String| LogSearch {
        query,
        start: None,
        end: None,
        limit: 100,
        before: None,
    };
    g.bench_function("full text, rare token, newest 100", |b| {
        b.iter(|| {
            i += 1;
            let search = newest_100(rare_tokens[i % rare_tokens.len()].clone());
            rt.block_on(engine.search_logs(&search)).expect("logs")
        })
    });
    g.bench_function("full text, common word AND rare token, newest 100", |b| {
        b.iter(|| {
            i += 1;
            let search = newest_100(format!("timeout {}", rare_tokens[i % rare_tokens.len()]));
            rt.block_on(engine.search_logs(&search)).expect("logs")
        })
    });
    g.bench_function("histogram of a common word, last hour", |b| {
        b.iter(|| {
            rt.block_on(engine.log_histogram("timeout", start, end, 60))
                .expect("histogram")
        })
    });
    g.bench_function("service map, last hour", |b| {
        b.iter(|| {
            rt.block_on(engine.service_map(start, end, end))
                .expect("map")
        })
    });
    g.bench_function("RED overview, last hour", |b| {
        b.iter(|| {
            rt.block_on(engine.overview(start, end, end))
                .expect("overview")
        })
    });
    g.bench_function("metric range query, last hour", |b| {
        b.iter(|| {
            i += 1;
            let q = MetricQuery {
                name: format!("app.metric.{}", i % 50),
                start,
                end,
                step: HOUR / 60,
                service: None,
                instance: None,
                group_by: vec!["service".into()],
                gauge_agg: GaugeAgg::Avg,
            };
            rt.block_on(engine.metric_query(&q)).expect("metric query")
        })
    });
    g.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
