//! OTLP/gRPC receiver: the Trace, Logs and Metrics `Export` services, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

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

/// The gRPC request's API key metadata, then the receiver.
macro_rules! from_grpc {
    ($name:ident, $request:ty, $response:ty, $method:ident) => {
        impl Receiver {
            async fn $name(&self, request: Request<$request>) -> Result<$response, IngestError> {
                let value = request
                    .metadata()
                    .get(self.key_header())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                self.$method(
                    request.into_inner(),
                    None,
                    crate::ingest::Sender::Client(value.as_deref()),
                )
                .await
            }
        }
    };
}

from_grpc!(
    traces_from,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    traces
);
from_grpc!(
    logs_from,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    logs
);
from_grpc!(
    metrics_from,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    metrics
);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        Ok(Response::new(self.traces_from(request).await?))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Ok(Response::new(self.logs_from(request).await?))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        Ok(Response::new(self.metrics_from(request).await?))
    }
}

/// tonic answers two kinds of bad input with codes OTLP exporters misread: an over-limit
/// message gets OUT_OF_RANGE (which OTLP clients *retry*) and undecodable protobuf gets
/// INTERNAL. OTLP wants RESOURCE_EXHAUSTED and INVALID_ARGUMENT, so the status header of
/// those trailers-only answers is rewritten here, at the one place both pass through.
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
        "13" if message.contains("failed to decode Protobuf message") => {
            Some(tonic::Code::InvalidArgument)
        }
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
    let traces = TraceServiceServer::new(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let logs = LogsServiceServer::new(receiver.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let metrics = MetricsServiceServer::new(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(tower::util::MapResponseLayer::new(otlp_status_codes))
        .add_service(traces)
        .add_service(logs)
        .add_service(metrics)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
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
