//! The OTLP receivers: gRPC and HTTP transports, decoding, conversion to rows, replies.
//!
//! Both transports end in [`Receiver`], which converts a request into rows (dropping invalid
//! records one by one), hands it to the write path, and answers with OTLP partial success
//! once the WAL holds it.

pub mod auth;
pub mod correlation;
pub mod decode;
pub mod grpc;
pub mod http;
mod logs;
mod metrics;
mod rejects;
mod resource;
mod traces;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

pub use correlation::CorrelationKeys;
pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use rejects::Rejects;
pub use traces::convert_traces;

use crate::model::{Rows, Signal};
use crate::pipeline::{Pipeline, WriteError};

/// Why an export was refused; each maps to an OTLP gRPC code and HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// Malformed protobuf/JSON/gzip: not retryable.
    #[error("{0}")]
    BadRequest(String),
    /// Content type other than protobuf or JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body over the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The write path is full or the WAL failed: retryable.
    #[error("{0}")]
    Unavailable(String),
    /// No valid API key while keys are required.
    #[error("{0}")]
    Unauthenticated(String),
    /// The API key's rate limit is used up: retry after `retry_after`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
}

/// Who sends an export: a network client (with the raw value of the API key header, if
/// any), or the server itself (the demo loader), which needs no key.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    Client(Option<&'a str>),
    Internal,
}

impl From<WriteError> for IngestError {
    fn from(e: WriteError) -> Self {
        let reason = match e {
            WriteError::Busy => "busy",
            WriteError::DiskFull { .. } => "disk_full",
            WriteError::MemoryFull { .. } => "memory_full",
            WriteError::Closed => "shutting_down",
            WriteError::Wal(_) => "wal_error",
            WriteError::Encode(_) => "encode_error",
        };
        let reason = crate::telemetry::ReasonLabel {
            reason: reason.to_string(),
        };
        crate::telemetry::get()
            .exports_refused
            .get_or_create(&reason)
            .inc();
        IngestError::Unavailable(e.to_string())
    }
}

/// Counts acknowledged and rejected records of one export.
fn count(signal: Signal, accepted: usize, rejects: &Rejects) {
    let t = crate::telemetry::get();
    let label = crate::telemetry::signal(signal.as_str());
    t.records_ingested
        .get_or_create(&label)
        .inc_by(accepted as u64);
    if rejects.count > 0 {
        t.records_rejected
            .get_or_create(&label)
            .inc_by(rejects.count as u64);
    }
}

/// Decodes a WAL payload (an OTLP protobuf export request) back into rows.
pub fn rows_from_payload(
    signal: Signal,
    payload: &[u8],
    keys: &CorrelationKeys,
) -> Result<Rows, prost::DecodeError> {
    let mut rows = Rows::default();
    match signal {
        Signal::Traces => {
            rows.spans = convert_traces(ExportTraceServiceRequest::decode(payload)?, keys).0
        }
        Signal::Logs => {
            rows.logs = convert_logs(ExportLogsServiceRequest::decode(payload)?, keys).0
        }
        Signal::Metrics => {
            rows.metrics = convert_metrics(ExportMetricsServiceRequest::decode(payload)?).0
        }
        // Derived data is never written to the WAL; nothing to decode.
        Signal::Rollups | Signal::MetricMinutes => {}
    }
    Ok(rows)
}

/// The transport-independent receiver shared by the gRPC and HTTP servers.
#[derive(Clone)]
pub struct Receiver {
    pipeline: Pipeline,
    keys: std::sync::Arc<CorrelationKeys>,
    auth: std::sync::Arc<auth::IngestAuth>,
}

impl Receiver {
    /// A receiver writing into `pipeline`, finding correlation ids under `keys`.
    pub fn new(
        pipeline: Pipeline,
        keys: CorrelationKeys,
        auth: std::sync::Arc<auth::IngestAuth>,
    ) -> Self {
        Self {
            pipeline,
            keys: std::sync::Arc::new(keys),
            auth,
        }
    }

    /// The header API keys are read from (lower case).
    pub fn key_header(&self) -> &str {
        self.auth.header()
    }

    /// The checks that need no body (key, load), so a transport can refuse before decoding.
    pub fn precheck(&self, sender: Sender<'_>) -> Result<(), IngestError> {
        self.admit(sender)?;
        Ok(self.pipeline.accepting()?)
    }

    fn admit(&self, sender: Sender<'_>) -> Result<auth::Admitted, IngestError> {
        match sender {
            Sender::Client(value) => self.auth.admit(value),
            Sender::Internal => self.auth.admit_internal(),
        }
    }

    /// Stores a trace export. `raw` is the request's protobuf encoding when the transport
    /// already has it, to save re-encoding it for the WAL.
    pub async fn traces(
        &self,
        request: ExportTraceServiceRequest,
        raw: Option<Vec<u8>>,
        sender: Sender<'_>,
    ) -> Result<ExportTraceServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.pipeline.accepting()?;
        let payload = raw.unwrap_or_else(|| request.encode_to_vec());
        let (spans, rejects) = convert_traces(request, &self.keys);
        let accepted = spans.len();
        self.auth.charge(&admitted, accepted)?;
        let rows = Rows {
            spans,
            ..Rows::default()
        };
        self.pipeline.write(Signal::Traces, payload, rows).await?;
        count(Signal::Traces, accepted, &rejects);
        Ok(ExportTraceServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }

    /// Stores a logs export; see [`Receiver::traces`].
    pub async fn logs(
        &self,
        request: ExportLogsServiceRequest,
        raw: Option<Vec<u8>>,
        sender: Sender<'_>,
    ) -> Result<ExportLogsServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.pipeline.accepting()?;
        let payload = raw.unwrap_or_else(|| request.encode_to_vec());
        let (logs, rejects) = convert_logs(request, &self.keys);
        let accepted = logs.len();
        self.auth.charge(&admitted, accepted)?;
        let rows = Rows {
            logs,
            ..Rows::default()
        };
        self.pipeline.write(Signal::Logs, payload, rows).await?;
        count(Signal::Logs, accepted, &rejects);
        Ok(ExportLogsServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }

    /// Stores a metrics export; see [`Receiver::traces`].
    pub async fn metrics(
        &self,
        request: ExportMetricsServiceRequest,
        raw: Option<Vec<u8>>,
        sender: Sender<'_>,
    ) -> Result<ExportMetricsServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.pipeline.accepting()?;
        let payload = raw.unwrap_or_else(|| request.encode_to_vec());
        let (metrics, rejects) = convert_metrics(request);
        let accepted = metrics.len();
        self.auth.charge(&admitted, accepted)?;
        let rows = Rows {
            metrics,
            ..Rows::default()
        };
        self.pipeline.write(Signal::Metrics, payload, rows).await?;
        count(Signal::Metrics, accepted, &rejects);
        Ok(ExportMetricsServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }
}
