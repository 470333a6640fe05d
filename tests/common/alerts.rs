//! Alert receivers and the requests that make alerts fire, for the alerting tests and the
//! cluster's: a webhook receiver on an ephemeral port, and spans of which some failed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    status::StatusCode, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use serde_json::Value;

use super::otlp::{kv, now_ns};

/// What a receiver in the test got.
pub type Inbox = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on an ephemeral port: its URL and what it received.
pub async fn receiver() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State(inbox): State<Inbox>, Json(body): Json<Value>| async move {
                    inbox.lock().unwrap().push(body);
                    "ok"
                },
            ),
        )
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

/// Waits until `inbox` holds `n` messages.
pub async fn received(inbox: &Inbox, n: usize) -> Vec<Value> {
    // Generous: in a cluster test the records go through the queue, a flush and a catalog
    // poll before an evaluation sees them, on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = inbox.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` server spans of `service` on `instance`, `failed` of them failed, just now.
pub fn requests(service: &str, instance: &str, n: u64, failed: u64, seed: u8) -> Vec<u8> {
    requests_lasting(service, instance, n, failed, seed, 5)
}

/// [`requests`] that each took `ms` milliseconds.
pub fn requests_lasting(
    service: &str,
    instance: &str,
    n: u64,
    failed: u64,
    seed: u8,
    ms: u64,
) -> Vec<u8> {
    let now = now_ns();
    let spans = (0..n)
        .map(|i| Span {
            trace_id: [[seed; 8], (i + 1).to_be_bytes()].concat(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            name: "GET /shop".into(),
            kind: 2,
            start_time_unix_nano: now - ms * 1_000_000,
            end_time_unix_nano: now,
            status: (i < failed).then(|| Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", service),
                    kv("service.instance.id", instance),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}
