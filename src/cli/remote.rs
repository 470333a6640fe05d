//! `trace`, `logs` and `services`: ask a running server through its gRPC query API (the
//! generated client of `proto/sightline/v1/query.proto`, served on the web port) and print
//! the answer — typed messages rather than JSON read key by key.

use std::collections::HashSet;

use anyhow::Context;
use tonic::transport::Channel;

use crate::api::grpc::proto::query_service_client::QueryServiceClient;
use crate::api::grpc::proto::{GetTraceRequest, ListServicesRequest, SearchLogsRequest, Span};
use crate::model::time::parse_time;

/// A client of the server at `api` (its web address, where the gRPC API is served).
async fn connect(api: &str) -> anyhow::Result<QueryServiceClient<Channel>> {
    let api = api.trim_end_matches('/').to_string();
    QueryServiceClient::connect(api.clone())
        .await
        .with_context(|| format!("could not reach {api}"))
}

/// A failed call as the user should read it: the server's own message.
fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

fn service_of(resource: &Option<crate::api::grpc::proto::Resource>) -> &str {
    resource.as_ref().map_or("", |r| r.service_name.as_str())
}

/// Prints a trace as an indented tree.
pub async fn trace(api: &str, id: &str) -> anyhow::Result<()> {
    let trace = connect(api)
        .await?
        .get_trace(GetTraceRequest {
            trace_id: id.to_string(),
            stitch: false,
        })
        .await
        .map_err(failed)?
        .into_inner()
        .trace
        .context("the server answered without a trace")?;
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    println!(
        "trace {id}  {} spans  {:.3} ms",
        trace.spans.len(),
        trace.duration_nano as f64 / 1e6
    );
    fn print(spans: &[Span], parent: Option<&str>, ids: &HashSet<&str>, depth: usize) {
        for s in spans {
            let p = Some(s.parent_span_id.as_str()).filter(|p| !p.is_empty());
            let is_root = match parent {
                None => p.is_none_or(|p| !ids.contains(p)),
                Some(want) => p == Some(want),
            };
            if is_root {
                println!(
                    "{}{} {} [{}] {:.3} ms {}",
                    "  ".repeat(depth + 1),
                    service_of(&s.resource),
                    s.name,
                    s.kind,
                    s.duration_nano as f64 / 1e6,
                    if s.status_code == "ERROR" {
                        "ERROR"
                    } else {
                        ""
                    },
                );
                print(spans, Some(&s.span_id), ids, depth + 1);
            }
        }
    }
    print(&trace.spans, None, &ids, 0);
    for log in &trace.logs {
        println!(
            "  log {} {} {}",
            time(log.time_unix_nano),
            log.severity_text,
            log.body
        );
    }
    Ok(())
}

/// Prints matching log lines, newest first. `start` and `end` are read as the server reads
/// times (RFC 3339, `YYYY-MM-DDTHH:MM`, Unix s/ms/µs/ns).
pub async fn logs(
    api: &str,
    query: &str,
    start: Option<String>,
    end: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let time_of = |t: Option<String>, name: &str| -> anyhow::Result<i64> {
        t.map(|t| parse_time(&t).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
            .transpose()
            .map(|t| t.unwrap_or(0))
    };
    let found = connect(api)
        .await?
        .search_logs(SearchLogsRequest {
            query: query.to_string(),
            start_unix_nano: time_of(start, "start")?,
            end_unix_nano: time_of(end, "end")?,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            before: String::new(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    for l in &found.logs {
        println!(
            "{} {:<5} {:<16} {}",
            time(l.time_unix_nano),
            l.severity_text,
            service_of(&l.resource),
            l.body.replace(['\n', '\r'], " ")
        );
    }
    if found.logs.is_empty() {
        println!("no log records match");
    }
    Ok(())
}

/// Prints services and their instances.
pub async fn services(api: &str) -> anyhow::Result<()> {
    let listed = connect(api)
        .await?
        .list_services(ListServicesRequest {})
        .await
        .map_err(failed)?
        .into_inner();
    for s in &listed.services {
        println!("{}  (last seen {})", s.name, time(s.last_seen_unix_nano));
        for i in &s.instances {
            println!(
                "  {} host={} version={} last seen {}",
                i.instance,
                i.host,
                i.version,
                time(i.last_seen_unix_nano)
            );
        }
    }
    Ok(())
}
