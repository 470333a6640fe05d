//! The WAL keeps an OTLP/gRPC export exactly as the exporter sent it: bytes a decode and
//! re-encode would change (a field this protobuf version does not know) are still there after
//! a crash, and replay reads the export from them.

mod common;

use bytes::{Buf, BufMut};
use common::{otlp, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use sightline::model::Signal;
use sightline::wal::{SyncPolicy, Wal};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends a request body as given; decodes the OTLP response.
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, tonic::Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

#[tokio::test]
async fn grpc_exports_are_logged_as_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // No flush: the export stays in the WAL until the crash.
    let server = Server::start_with(&data, &["--flush-age-ms", "600000"]);
    let request = otlp::traces(
        "wal-bytes",
        vec![otlp::span(vec![7; 16], vec![7; 8], "kept as sent")],
    );
    let mut sent = request.encode_to_vec();
    // Field 1000 (varint 7): unknown to OTLP, skipped by a decoder, lost by a re-encode.
    sent.extend_from_slice(&[0xC0, 0x3E, 0x07]);
    assert_ne!(
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
            sent.as_slice()
        )
        .expect("still valid protobuf")
        .encode_to_vec(),
        sent,
        "the test payload must be one a re-encode changes"
    );

    let channel = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let response = grpc
        .unary(tonic::Request::new(sent.clone()), path, RawBytes)
        .await
        .expect("export acknowledged")
        .into_inner();
    assert_eq!(response.partial_success, None);

    // Acknowledged means logged: crash, then read the log as replay will.
    server.kill9();
    let (_wal, replayed) =
        Wal::open(&data.join("wal"), SyncPolicy::Never, None).expect("read the WAL");
    let traces: Vec<&[u8]> = replayed
        .iter()
        .filter(|r| r.signal == Signal::Traces)
        .map(|r| r.payload.as_slice())
        .collect();
    assert_eq!(traces, [sent.as_slice()]);

    // Replay decodes those bytes: the span is found after a restart.
    let server = Server::start_with(&data, &["--flush-age-ms", "600000"]);
    let (status, body) = server
        .get(&format!("/api/v1/traces/{}", "07".repeat(16)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("kept as sent"), "{body}");
    server.stop();
}
