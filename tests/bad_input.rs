//! Acceptance: every kind of bad input gets its proper status and a message, valid records
//! next to invalid ones are kept, and what was stored before is untouched.

mod common;

use std::io::Write;

use common::otlp::{logs, span, traces};
use common::{enc, Server};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// The `google.rpc.Status` of OTLP/HTTP error bodies.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A message whose field 1 has the wrong wire type for an export request.
#[derive(Clone, PartialEq, prost::Message)]
struct Bogus {
    #[prost(uint64, tag = "1")]
    resource_spans: u64,
}

async fn post(
    server: &Server,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    gzip: bool,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.otlp_http))
        .header("content-type", content_type);
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    request.body(body).send().await.expect("server reachable")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &["--flush-age-ms", "300", "--max-body-bytes", "8192"],
    );

    // Data stored before the abuse starts.
    let before = logs(
        "ledger",
        "before-abuse",
        &["stored before the bad input".to_string()],
    );
    let r = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        before.encode_to_vec(),
        false,
    )
    .await;
    assert_eq!(r.status(), 200);

    // Malformed protobuf → 400 with a google.rpc.Status body in protobuf.
    let r = post(
        &server,
        "/v1/traces",
        "application/x-protobuf",
        vec![0xff, 0xff, 0xff, 0x01],
        false,
    )
    .await;
    assert_eq!(r.status(), 400);
    let status = RpcStatus::decode(r.bytes().await.unwrap()).expect("protobuf Status body");
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("invalid OTLP protobuf"),
        "{}",
        status.message
    );

    // Malformed JSON and JSON of the wrong shape → 400 with a JSON Status body.
    for body in [&b"{not json"[..], &br#"{"resourceSpans": 5}"#[..]] {
        let r = post(
            &server,
            "/v1/traces",
            "application/json",
            body.to_vec(),
            false,
        )
        .await;
        assert_eq!(r.status(), 400);
        let status: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status["code"], 3);
        assert!(
            status["message"].as_str().unwrap().contains("JSON"),
            "{status}"
        );
    }

    // Unsupported content type and content encoding → 415.
    let r = post(&server, "/v1/logs", "text/plain", b"hello".to_vec(), false).await;
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("unsupported content type"));

    // Over the body limit, raw or after gzip → 413; broken gzip → 400.
    let r = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        vec![0; 20_000],
        false,
    )
    .await;
    assert_eq!(r.status(), 413);
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 8192, "the bomb itself is small");
    let r = post(&server, "/v1/logs", "application/json", bomb, true).await;
    assert_eq!(r.status(), 413);
    let r = post(
        &server,
        "/v1/logs",
        "application/json",
        b"not gzip at all".to_vec(),
        true,
    )
    .await;
    assert_eq!(r.status(), 400);

    // Gzip that is fine is accepted.
    let ok = logs("ledger", "gzipped", &["arrived compressed".to_string()]);
    let r = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        gzip(&ok.encode_to_vec()),
        true,
    )
    .await;
    assert_eq!(r.status(), 200);

    // Invalid ids are dropped one by one, reported as partial success; valid spans are kept.
    let good_trace: Vec<u8> = (101..=116).collect();
    let mixed = traces(
        "ledger",
        vec![
            span(good_trace.clone(), vec![7; 8], "kept"),
            span(vec![1, 2, 3, 4], vec![8; 8], "short trace id"),
            span(good_trace.clone(), vec![0; 8], "zero span id"),
        ],
    );
    let r = post(
        &server,
        "/v1/traces",
        "application/json",
        serde_json::to_vec(&mixed).unwrap(),
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 2, "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("invalid trace_id"));

    // gRPC: undecodable message → INVALID_ARGUMENT; too large → RESOURCE_EXHAUSTED;
    // invalid ids → partial success.
    let channel = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let codec = tonic_prost::ProstCodec::<Bogus, ExportTraceServiceResponse>::default();
    let err = raw
        .unary(
            tonic::Request::new(Bogus { resource_spans: 7 }),
            path,
            codec,
        )
        .await
        .expect_err("malformed protobuf must be refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    let mut client = TraceServiceClient::new(channel);
    let mut big = span(good_trace.clone(), vec![9; 8], "huge");
    big.attributes
        .push(common::otlp::kv("blob", &"x".repeat(20_000)));
    let err = client
        .export(traces("ledger", vec![big]))
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");

    let reply = client
        .export(traces(
            "ledger",
            vec![
                span(vec![1; 3], vec![1; 8], "bad"),
                span(good_trace.clone(), vec![6; 8], "kept too"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success.unwrap().rejected_spans, 1);
    let empty = client
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(empty.partial_success.is_none());

    // Query API: wrong ids and bad queries get 400 with a message, unknown traces 404.
    let (status, body) = server.get("/api/v1/traces/not-hex").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid trace id"));
    let (status, _) = server
        .get(&format!("/api/v1/traces/{}", "ab".repeat(16)))
        .await;
    assert_eq!(status, 404);
    for q in ["\"unclosed", "/(bad/", "severity>=LOUD"] {
        let (status, body) = server.get(&format!("/api/v1/logs?q={}", enc(q))).await;
        assert_eq!(status, 400, "{q}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    let (status, _) = server.get("/api/v1/logs?start=yesterday").await;
    assert_eq!(status, 400);

    // Everything valid is there, including what was stored before.
    let (_, trace) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(&good_trace)))
        .await;
    let mut names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["kept", "kept too"]);
    let found = server
        .get(&format!(
            "/api/v1/logs?q={}",
            enc("correlation_id:before-abuse")
        ))
        .await
        .1;
    assert_eq!(found["logs"].as_array().unwrap().len(), 1);
    let found = server.get("/api/v1/logs?q=compressed").await.1;
    assert_eq!(found["logs"].as_array().unwrap().len(), 1);
    server.stop();
}
