//! The gRPC query API (`proto/sightline/v1/query.proto`): the HTTP API's queries for
//! generated clients, a thin layer over [`QueryEngine`] like the JSON handlers beside it.
//! Served on the OTLP gRPC port with server reflection, so `grpcurl` works without the
//! `.proto` file.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::model::time::{UnixNanos, NANOS_PER_HOUR};
use crate::model::window::Window;
use crate::model::{value_text, Attributes, LogRow, Resource, SpanRow, TraceId};
use crate::query::metrics::{GaugeAgg, MetricQuery};
use crate::query::{
    parse_attribute, LogCursor, LogSearch, QueryEngine, QueryError, StatusFilter, TraceDetail,
    TraceSearch,
};

/// Code generated from `proto/sightline/v1/query.proto` by `build.rs`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("sightline.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sightline_query_descriptor.bin"));
}

use proto::query_service_server::{QueryService, QueryServiceServer};

/// The gRPC query service over one query engine.
#[derive(Clone)]
pub struct GrpcQueryApi {
    engine: QueryEngine,
}

impl GrpcQueryApi {
    /// The tonic service to add to a gRPC server.
    pub fn service(engine: QueryEngine) -> QueryServiceServer<GrpcQueryApi> {
        QueryServiceServer::new(GrpcQueryApi { engine })
    }
}

/// The query service and server reflection (v1 and v1alpha, as `grpcurl` tries both) as
/// routes of the web server: gRPC queries then need the same logins as the HTTP API, and
/// the OTLP port stays for ingest (and its API keys).
pub fn router(engine: QueryEngine) -> anyhow::Result<axum::Router> {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Routes per service path (not tonic's own router, whose fallback would take the web
    // pages' 404 page).
    Ok(axum::Router::new()
        .route_service(
            "/sightline.v1.QueryService/{*method}",
            GrpcQueryApi::service(engine),
        )
        .route_service("/grpc.reflection.v1.ServerReflection/{*method}", v1)
        .route_service(
            "/grpc.reflection.v1alpha.ServerReflection/{*method}",
            v1alpha,
        ))
}

impl From<QueryError> for Status {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => Status::invalid_argument(m),
            QueryError::TooLarge(m) => Status::resource_exhausted(m),
            QueryError::NotFound(m) => Status::not_found(m),
            other => {
                tracing::error!("query failed: {other}");
                Status::internal(other.to_string())
            }
        }
    }
}

/// `0` means "not given" in the proto's time and limit fields.
fn given(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn attributes(a: &Attributes) -> HashMap<String, String> {
    a.iter().map(|(k, v)| (k.clone(), value_text(v))).collect()
}

fn resource(r: &Resource) -> proto::Resource {
    proto::Resource {
        service_name: r.service_name.clone(),
        service_instance_id: r.service_instance_id.clone(),
        host_name: r.host_name.clone(),
        service_version: r.service_version.clone(),
        attributes: attributes(&r.attributes),
    }
}

fn span(s: &SpanRow) -> proto::Span {
    proto::Span {
        trace_id: s.trace_id.to_string(),
        span_id: s.span_id.to_string(),
        parent_span_id: s.parent_span_id.map(|p| p.to_string()).unwrap_or_default(),
        name: s.name.clone(),
        kind: s.kind.as_str().to_string(),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        duration_nano: s.duration_nano,
        status_code: s.status_code.as_str().to_string(),
        status_message: s.status_message.clone(),
        attributes: attributes(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| proto::SpanEvent {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        links: s
            .links
            .iter()
            .map(|l| proto::SpanLink {
                trace_id: l.trace_id.to_string(),
                span_id: l.span_id.to_string(),
                attributes: attributes(&l.attributes),
            })
            .collect(),
        resource: Some(resource(&s.resource)),
        scope_name: s.scope_name.clone(),
        correlation_id: s.correlation_id.clone().unwrap_or_default(),
    }
}

fn log(l: &LogRow) -> proto::LogRecord {
    proto::LogRecord {
        time_unix_nano: l.time_unix_nano,
        severity_number: l.severity_number,
        severity_text: l.severity_text.clone(),
        body: l.body.clone(),
        attributes: attributes(&l.attributes),
        trace_id: l.trace_id.map(|t| t.to_string()).unwrap_or_default(),
        span_id: l.span_id.map(|s| s.to_string()).unwrap_or_default(),
        resource: Some(resource(&l.resource)),
        correlation_id: l.correlation_id.clone().unwrap_or_default(),
    }
}

fn trace(t: &TraceDetail) -> proto::Trace {
    proto::Trace {
        trace_id: t.trace_id.to_string(),
        spans: t.spans.iter().map(span).collect(),
        logs: t.logs.iter().map(log).collect(),
        services: t.services.clone(),
        start_time_unix_nano: t.start_time_unix_nano,
        end_time_unix_nano: t.end_time_unix_nano,
        duration_nano: t.duration_nano,
        critical_path: t.critical_path.iter().map(|s| s.to_string()).collect(),
    }
}

fn now() -> i64 {
    crate::model::time::now_ns()
}

/// A window from optional bounds: the last hour before `end` (default now) when no start;
/// refused when reversed.
fn window(start: i64, end: i64) -> Result<Window, Status> {
    let end = given(end)
        .map(UnixNanos::from_nanos)
        .unwrap_or_else(UnixNanos::now);
    let start = given(start)
        .map(UnixNanos::from_nanos)
        .unwrap_or(end.minus(NANOS_PER_HOUR));
    Window::new(start, end).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl QueryService for GrpcQueryApi {
    async fn get_trace(
        &self,
        request: Request<proto::GetTraceRequest>,
    ) -> Result<Response<proto::GetTraceResponse>, Status> {
        let r = request.into_inner();
        let id: TraceId = r.trace_id.parse().map_err(|e| {
            Status::invalid_argument(format!("invalid trace id {:?}: {e}", r.trace_id))
        })?;
        let not_found = || Status::not_found(format!("trace {id} not found"));
        let response = if r.stitch {
            let stitched = self
                .engine
                .stitched_trace(id)
                .await?
                .ok_or_else(not_found)?;
            proto::GetTraceResponse {
                trace: Some(trace(&stitched.trace)),
                linked: stitched
                    .linked
                    .iter()
                    .map(|l| proto::LinkedTrace {
                        attach_to_span_id: l.attach_to.map(|s| s.to_string()).unwrap_or_default(),
                        trace: Some(trace(&l.trace)),
                    })
                    .collect(),
            }
        } else {
            let detail = self.engine.trace(id).await?.ok_or_else(not_found)?;
            proto::GetTraceResponse {
                trace: Some(trace(&detail)),
                linked: Vec::new(),
            }
        };
        Ok(Response::new(response))
    }

    async fn search_traces(
        &self,
        request: Request<proto::SearchTracesRequest>,
    ) -> Result<Response<proto::SearchTracesResponse>, Status> {
        let r = request.into_inner();
        let status = StatusFilter::parse(&r.status).map_err(Status::invalid_argument)?;
        let attribute = parse_attribute(&r.attribute).map_err(Status::invalid_argument)?;
        let search = TraceSearch {
            service: text(&r.service),
            operation: text(&r.operation),
            status,
            min_duration_nano: given(r.min_duration_nano),
            max_duration_nano: given(r.max_duration_nano),
            attribute,
            trace_id: None,
            correlation_id: text(&r.correlation_id),
            start: given(r.start_unix_nano),
            end: given(r.end_unix_nano),
            limit: if r.limit == 0 { 20 } else { r.limit as usize },
        };
        let traces = self.engine.search_traces(&search).await?;
        Ok(Response::new(proto::SearchTracesResponse {
            traces: traces
                .into_iter()
                .map(|t| proto::TraceSummary {
                    trace_id: t.trace_id.to_string(),
                    root_service: t.root_service,
                    root_name: t.root_name,
                    start_time_unix_nano: t.start_time_unix_nano,
                    duration_nano: t.duration_nano,
                    span_count: t.span_count as u32,
                    error_count: t.error_count as u32,
                    services: t.services,
                })
                .collect(),
        }))
    }

    async fn search_logs(
        &self,
        request: Request<proto::SearchLogsRequest>,
    ) -> Result<Response<proto::SearchLogsResponse>, Status> {
        let r = request.into_inner();
        let search = LogSearch {
            query: r.query,
            start: given(r.start_unix_nano),
            end: given(r.end_unix_nano),
            limit: if r.limit == 0 { 100 } else { r.limit as usize },
            before: text(&r.before).map(|b| LogCursor::parse(&b)).transpose()?,
        };
        let found = self.engine.search_logs(&search).await?;
        Ok(Response::new(proto::SearchLogsResponse {
            logs: found.logs.iter().map(log).collect(),
            truncated: found.truncated,
            next_cursor: found.next_cursor.unwrap_or_default(),
            blocks_read: found.scanned.blocks_read as u64,
            records_examined: found.scanned.records_examined,
        }))
    }

    async fn get_correlation(
        &self,
        request: Request<proto::GetCorrelationRequest>,
    ) -> Result<Response<proto::GetCorrelationResponse>, Status> {
        let r = request.into_inner();
        if r.correlation_id.is_empty() {
            return Err(Status::invalid_argument("correlation_id is empty"));
        }
        let found = self.engine.correlation(&r.correlation_id).await?;
        Ok(Response::new(proto::GetCorrelationResponse {
            correlation_id: found.correlation_id,
            traces: found
                .traces
                .into_iter()
                .map(|t| proto::CorrelatedTrace {
                    trace_id: t.trace_id.to_string(),
                    start_time_unix_nano: t.start_time_unix_nano,
                    services: t.services,
                })
                .collect(),
            logs: found.logs.iter().map(log).collect(),
        }))
    }

    async fn list_services(
        &self,
        _request: Request<proto::ListServicesRequest>,
    ) -> Result<Response<proto::ListServicesResponse>, Status> {
        Ok(Response::new(proto::ListServicesResponse {
            services: self
                .engine
                .services()
                .into_iter()
                .map(|s| proto::Service {
                    name: s.name,
                    instances: s
                        .instances
                        .into_iter()
                        .map(|i| proto::Instance {
                            instance: i.instance,
                            host: i.host,
                            version: i.version,
                            last_seen_unix_nano: i.last_seen_unix_nano,
                        })
                        .collect(),
                    last_seen_unix_nano: s.last_seen_unix_nano,
                })
                .collect(),
        }))
    }

    async fn get_service_map(
        &self,
        request: Request<proto::GetServiceMapRequest>,
    ) -> Result<Response<proto::GetServiceMapResponse>, Status> {
        let r = request.into_inner();
        let w = window(r.start_unix_nano, r.end_unix_nano)?;
        let (start, end) = (w.start(), w.end());
        let map = self.engine.service_map(start, end, end.min(now())).await?;
        Ok(Response::new(proto::GetServiceMapResponse {
            nodes: map
                .nodes
                .into_iter()
                .map(|n| proto::MapNode {
                    name: n.name,
                    instrumented: n.instrumented,
                    requests: n.red.as_ref().map_or(0, |r| r.requests),
                    errors: n.red.as_ref().map_or(0, |r| r.errors),
                    down_instances: n.down_instances as u32,
                })
                .collect(),
            edges: map
                .edges
                .into_iter()
                .map(|e| proto::MapEdge {
                    caller: e.caller,
                    callee: e.callee,
                    kind: e.kind,
                    calls: e.calls,
                    errors: e.errors,
                    calls_per_second: e.calls_per_second,
                    error_rate: e.error_rate,
                    p95_nano: e.p95_nano.unwrap_or(0),
                })
                .collect(),
        }))
    }

    async fn query_metric(
        &self,
        request: Request<proto::QueryMetricRequest>,
    ) -> Result<Response<proto::QueryMetricResponse>, Status> {
        let r = request.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name is empty"));
        }
        let w = window(r.start_unix_nano, r.end_unix_nano)?;
        if w.is_empty() {
            return Err(Status::invalid_argument("end must be after start"));
        }
        let (start, end) = (w.start(), w.end());
        let gauge_agg = GaugeAgg::parse(&r.gauge_agg).map_err(Status::invalid_argument)?;
        let q = MetricQuery {
            name: r.name,
            start,
            end,
            step: MetricQuery::step_for(start, end, given(r.step_nano)),
            service: text(&r.service),
            instance: text(&r.instance),
            group_by: r.group_by,
            gauge_agg,
        };
        let series = self.engine.metric_query(&q).await?;
        Ok(Response::new(proto::QueryMetricResponse {
            series: series
                .into_iter()
                .map(|s| proto::Series {
                    labels: s.labels.into_iter().collect(),
                    value: s.value.name(),
                    unit: s.unit,
                    points: s
                        .points
                        .into_iter()
                        .map(|(t, v)| proto::Point {
                            time_unix_nano: t,
                            value: v,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }
}
