//! The gRPC query API (`proto/sightline/v1/query.proto`) through the generated client, over
//! the demo data: every call answers what the HTTP JSON API answers for the same query;
//! bad arguments get INVALID_ARGUMENT / NOT_FOUND; server reflection lists the service, as
//! `grpcurl list` does. The cases share one demo server (`common::shared_demo`) and only read.

mod common;

use common::demo::ids;
use common::{enc, shared_demo};
use sightline::api::grpc::proto::query_service_client::QueryServiceClient;
use sightline::api::grpc::proto::{
    GetCorrelationRequest, GetServiceMapRequest, GetTraceRequest, ListServicesRequest,
    QueryMetricRequest, SearchLogsRequest, SearchTracesRequest,
};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// Services: the same names and instances as the HTTP API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_the_same_as_over_http() {
    let server = shared_demo();
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let services = client
        .list_services(ListServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    let (_, http) = server.get("/api/v1/services").await;
    let http = http["services"].as_array().unwrap();
    assert_eq!(services.len(), http.len());
    for (s, h) in services.iter().zip(http) {
        assert_eq!(s.name, h["name"].as_str().unwrap());
        assert_eq!(s.instances.len(), h["instances"].as_array().unwrap().len());
    }
}

/// One trace, stitched: the same spans, parents and linked trace as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stitched_trace_is_the_same_as_over_http() {
    let server = shared_demo();
    let demo = ids(server).await;
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let answer = client
        .get_trace(GetTraceRequest {
            trace_id: demo.stitched_trace.clone(),
            stitch: true,
        })
        .await
        .unwrap()
        .into_inner();
    let trace = answer.trace.unwrap();
    assert_eq!(trace.trace_id, demo.stitched_trace);
    let linked_spans: usize = answer
        .linked
        .iter()
        .map(|l| l.trace.as_ref().unwrap().spans.len())
        .sum();
    assert!(answer
        .linked
        .iter()
        .any(|l| l.trace.as_ref().unwrap().trace_id == demo.linked_trace));
    let (_, http) = server
        .get(&format!(
            "/api/v1/traces/{}?stitch=true",
            demo.stitched_trace
        ))
        .await;
    let http_spans = http["spans"].as_array().unwrap();
    assert_eq!(trace.spans.len(), http_spans.len());
    assert_eq!(
        trace.spans.len()
            + answer
                .linked
                .iter()
                .filter(|l| l.trace.as_ref().unwrap().trace_id == demo.linked_trace)
                .map(|l| l.trace.as_ref().unwrap().spans.len())
                .sum::<usize>(),
        demo.stitched_span_count
    );
    assert!(linked_spans > 0);
    for (s, h) in trace.spans.iter().zip(http_spans) {
        assert_eq!(s.span_id, h["span_id"].as_str().unwrap());
        assert_eq!(s.parent_span_id, h["parent_span_id"].as_str().unwrap_or(""));
        assert_eq!(s.name, h["name"].as_str().unwrap());
        assert_eq!(
            s.start_time_unix_nano,
            h["start_time_unix_nano"].as_i64().unwrap()
        );
        assert_eq!(
            s.resource.as_ref().unwrap().service_name,
            h["resource"]["service_name"].as_str().unwrap()
        );
    }
    assert_eq!(
        trace.critical_path.len(),
        http["critical_path"].as_array().unwrap().len()
    );
}

/// Trace search: the failed checkouts of payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_finds_the_failed_checkouts() {
    let server = shared_demo();
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let found = client
        .search_traces(SearchTracesRequest {
            service: "payment".into(),
            status: "error".into(),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .traces;
    let (_, http) = server
        .get("/api/v1/traces?service=payment&status=error&limit=5")
        .await;
    let http_ids: Vec<&str> = http["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    let ids_: Vec<&str> = found.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(ids_, http_ids);
    assert!(found.iter().all(|t| t.error_count > 0));
}

/// Log search and correlation lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_search_and_correlation_lookup_match_http() {
    let server = shared_demo();
    let demo = ids(server).await;
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let logs = client
        .search_logs(SearchLogsRequest {
            query: format!("correlation_id:{}", demo.correlation_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(logs.logs.len(), demo.correlation_logs);
    assert!(logs
        .logs
        .iter()
        .all(|l| l.correlation_id == demo.correlation_id));
    let corr = client
        .get_correlation(GetCorrelationRequest {
            correlation_id: demo.correlation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (_, http) = server
        .get(&format!(
            "/api/v1/correlations/{}",
            enc(&demo.correlation_id)
        ))
        .await;
    assert_eq!(corr.logs.len(), http["logs"].as_array().unwrap().len());
    assert_eq!(corr.traces.len(), http["traces"].as_array().unwrap().len());
    assert!(corr
        .traces
        .iter()
        .any(|t| t.trace_id == demo.stitched_trace));
}

/// Service map and a metric query over the demo hour: the same edges and series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_map_and_metric_query_match_http() {
    let server = shared_demo();
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let (_, http_services) = server.get("/api/v1/services").await;
    let last_seen = http_services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["last_seen_unix_nano"].as_i64().unwrap())
        .max()
        .unwrap();
    let (start, end) = (last_seen - 3_600_000_000_000, last_seen + 1);
    let map = client
        .get_service_map(GetServiceMapRequest {
            start_unix_nano: start,
            end_unix_nano: end,
        })
        .await
        .unwrap()
        .into_inner();
    let (_, http) = server
        .get(&format!("/api/v1/service-map?start={start}&end={end}"))
        .await;
    let http_edges = http["edges"].as_array().unwrap();
    assert!(!map.edges.is_empty());
    assert_eq!(map.edges.len(), http_edges.len());
    for (e, h) in map.edges.iter().zip(http_edges) {
        assert_eq!(
            (e.caller.as_str(), e.callee.as_str(), e.calls),
            (
                h["caller"].as_str().unwrap(),
                h["callee"].as_str().unwrap(),
                h["calls"].as_u64().unwrap()
            )
        );
    }
    let (_, names) = server.get("/api/v1/metrics?service=payment").await;
    let metric = names["metrics"][0]["name"].as_str().unwrap().to_string();
    let series = client
        .query_metric(QueryMetricRequest {
            name: metric.clone(),
            start_unix_nano: start,
            end_unix_nano: end,
            step_nano: 60_000_000_000,
            service: "payment".into(),
            group_by: vec!["instance".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    let (_, http) = server
        .get(&format!(
            "/api/v1/metrics/query?name={}&start={start}&end={end}&step=60&service=payment&group_by=instance",
            enc(&metric)
        ))
        .await;
    let http_series = http["series"].as_array().unwrap();
    assert!(!series.is_empty());
    assert_eq!(series.len(), http_series.len());
    for (s, h) in series.iter().zip(http_series) {
        assert_eq!(s.points.len(), h["points"].as_array().unwrap().len());
        assert_eq!(
            s.labels["instance"],
            h["labels"]["instance"].as_str().unwrap()
        );
    }
}

/// Wrong arguments: gRPC status codes with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_arguments_get_status_codes_with_a_message() {
    let server = shared_demo();
    let mut client = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let err = client
        .get_trace(GetTraceRequest {
            trace_id: "not-hex".into(),
            stitch: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("invalid trace id"));
    let err = client
        .get_trace(GetTraceRequest {
            trace_id: "0123456789abcdef0123456789abcdef".into(),
            stitch: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .search_logs(SearchLogsRequest {
            query: "/a(/".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

/// Reflection lists the service, as `grpcurl list` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service() {
    let server = shared_demo();
    let channel = tonic::transport::Endpoint::from_shared(server.api.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"sightline.v1.QueryService".to_string()),
        "{names:?}"
    );
}
