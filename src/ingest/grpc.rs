//! OTLP/gRPC receiver: the Trace, Logs and Metrics `Export` services, gzip accepted.

use std::convert::Infallible;
use std::marker::PhantomData;

use bytes::Buf;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::net::TcpListener;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, EnabledCompressionEncodings, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use super::Sender;
use super::{IngestError, Receiver};

/// How long a refused exporter is told to wait before retrying.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl From<IngestError> for Status {
    fn from(e: IngestError) -> Status {
        match e {
            IngestError::BadRequest(m) | IngestError::UnsupportedMediaType(m) => {
                Status::invalid_argument(m)
            }
            IngestError::TooLarge(m) => Status::resource_exhausted(m),
            IngestError::Unauthenticated(m) => Status::unauthenticated(m),
            // RESOURCE_EXHAUSTED is retryable for OTLP exporters only with RetryInfo.
            IngestError::RateLimited {
                message,
                retry_after,
            } => Status::with_error_details(
                tonic::Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            // UNAVAILABLE is the retryable code OTLP exporters back off and retry on;
            // RetryInfo tells them how long to wait.
            IngestError::Unavailable(m) => Status::with_error_details(
                tonic::Code::Unavailable,
                m,
                ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
            ),
        }
    }
}

/// One OTLP `Export` method served with the request's bytes kept: the WAL stores what the
/// exporter sent instead of a re-encoding of the decoded request (which cost more CPU than
/// the decoding), and traces and logs are read in place from those bytes
/// ([`super::view`]). The generated OTLP servers decode with `ProstCodec` and hand over only
/// the decoded message, so the three services are served here with [`RawCodec`], which
/// decodes nothing.
trait ExportMethod: Send + Sync + 'static {
    /// The gRPC service name (`package.Service`).
    const SERVICE: &'static str;
    /// The request path of its `Export` method.
    const PATH: &'static str;
    type Response: Message + Send + 'static;
    /// Stores one export (its protobuf bytes) through the receiver.
    fn export(
        receiver: Receiver,
        raw: Vec<u8>,
        key: Option<String>,
    ) -> BoxFuture<Self::Response, IngestError>;
}

macro_rules! export_method {
    ($kind:ident, $service:literal, $response:ty, $method:ident) => {
        /// The `Export` method of one OTLP collector service.
        struct $kind;

        impl ExportMethod for $kind {
            const SERVICE: &'static str = $service;
            const PATH: &'static str = concat!("/", $service, "/Export");
            type Response = $response;
            fn export(
                receiver: Receiver,
                raw: Vec<u8>,
                key: Option<String>,
            ) -> BoxFuture<$response, IngestError> {
                Box::pin(async move { receiver.$method(raw, Sender::Client(key.as_deref())).await })
            }
        }
    };
}

export_method!(
    TraceExport,
    "opentelemetry.proto.collector.trace.v1.TraceService",
    ExportTraceServiceResponse,
    traces
);
export_method!(
    LogsExport,
    "opentelemetry.proto.collector.logs.v1.LogsService",
    ExportLogsServiceResponse,
    logs
);
export_method!(
    MetricsExport,
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    ExportMetricsServiceResponse,
    metrics
);

/// Keeps a request's (decompressed) bytes as they are; encodes responses
/// as protobuf.
struct RawCodec<M>(PhantomData<fn() -> M>);

impl<M: ExportMethod> Codec for RawCodec<M> {
    type Encode = M::Response;
    type Decode = Vec<u8>;
    type Encoder = RawCodec<M>;
    type Decoder = RawCodec<M>;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec(PhantomData)
    }
}

impl<M: ExportMethod> Encoder for RawCodec<M> {
    type Item = M::Response;
    type Error = Status;

    fn encode(&mut self, item: M::Response, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("could not encode the response: {e}")))
    }
}

impl<M: ExportMethod> Decoder for RawCodec<M> {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let mut raw = vec![0; buf.remaining()];
        buf.copy_to_slice(&mut raw);
        Ok(Some(raw))
    }
}

/// The unary handler: the API key from the metadata, then the receiver.
struct Handler<M> {
    receiver: Receiver,
    method: PhantomData<fn() -> M>,
}

impl<M: ExportMethod> UnaryService<Vec<u8>> for Handler<M> {
    type Response = M::Response;
    type Future = BoxFuture<tonic::Response<M::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        let key = request
            .metadata()
            .get(self.receiver.key_header())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let export = M::export(self.receiver.clone(), request.into_inner(), key);
        Box::pin(async move { Ok(tonic::Response::new(export.await?)) })
    }
}

/// One OTLP collector service (gzip in and out, a decoded-size limit) as a tower service
/// for tonic's router.
struct ExportService<M> {
    receiver: Receiver,
    max_message_bytes: usize,
    method: PhantomData<fn() -> M>,
}

impl<M> ExportService<M> {
    fn new(receiver: &Receiver, max_message_bytes: usize) -> Self {
        Self {
            receiver: receiver.clone(),
            max_message_bytes,
            method: PhantomData,
        }
    }
}

impl<M> Clone for ExportService<M> {
    fn clone(&self) -> Self {
        Self::new(&self.receiver, self.max_message_bytes)
    }
}

impl<M: ExportMethod> NamedService for ExportService<M> {
    const NAME: &'static str = M::SERVICE;
}

impl<M: ExportMethod, B> Service<http::Request<B>> for ExportService<M>
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != M::PATH {
            let status = Status::unimplemented(format!(
                "{} has no method {}",
                M::SERVICE,
                request.uri().path()
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let handler = Handler::<M> {
            receiver: self.receiver.clone(),
            method: PhantomData,
        };
        let max = self.max_message_bytes;
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawCodec::<M>(PhantomData))
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(max), None);
            Ok(grpc.unary(handler, request).await)
        })
    }
}

/// tonic answers an over-limit message with OUT_OF_RANGE, which OTLP clients *retry*; OTLP
/// wants RESOURCE_EXHAUSTED, so the status header of that trailers-only answer is rewritten
/// here. (Undecodable protobuf is answered INVALID_ARGUMENT by the receiver.)
fn otlp_status_codes<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let replacement = match code {
        "11" if message.contains("too large") => Some(tonic::Code::ResourceExhausted),
        _ => None,
    };
    if let Some(code) = replacement {
        headers.insert("grpc-status", http::HeaderValue::from(code as i32));
    }
    response
}

/// Serves OTLP/gRPC on `listener` (over TLS when configured) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    max_message_bytes: usize,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let traces = ExportService::<TraceExport>::new(&receiver, max_message_bytes);
    let logs = ExportService::<LogsExport>::new(&receiver, max_message_bytes);
    let metrics = ExportService::<MetricsExport>::new(&receiver, max_message_bytes);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(tower::util::MapResponseLayer::new(otlp_status_codes))
        .add_service(traces)
        .add_service(logs)
        .add_service(metrics)
        // Without TCP_NODELAY the small frames of each answer (headers, message, trailers)
        // waited for the client's delayed ACK: every export took ≥ 40 ms on loopback, and
        // four exporters in flight could not pass ≈ 80 000 spans/s however idle the server.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_retry_info() {
        let status = Status::from(IngestError::Unavailable("busy".into()));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(RETRY_AFTER)
        );
    }
}
