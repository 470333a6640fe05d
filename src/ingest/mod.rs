//! The OTLP receivers: gRPC and HTTP transports, decoding into columns, replies.
//!
//! Both transports end in [`Receiver`], which decodes a request straight into Arrow columns
//! and rollup sums (dropping invalid records one by one), hands it to the write path, and
//! answers with OTLP partial success once the WAL holds it.

mod attribute_text;
pub mod auth;
pub mod correlation;
pub mod decode;
pub mod grpc;
pub mod http;
mod logs;
mod metrics;
mod record_columns;
mod rejects;
mod resource;
#[cfg(test)]
mod row_oracle_logs;
#[cfg(test)]
mod row_oracle_metrics;
#[cfg(test)]
mod row_oracle_traces;
mod sink;
mod traces;
mod view;
pub mod wire;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

pub use correlation::CorrelationKeys;
pub use logs::decode_logs;
pub use metrics::decode_metrics;
pub use record_columns::{DecodeError, Decoded};
pub use rejects::Rejects;
pub use sink::{QueueSink, Sink};
pub use traces::decode_traces;

use crate::model::Signal;
use crate::pipeline::{Export, WriteError};
use crate::store::StoreError;

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
            WriteError::Queue(_) => "queue_error",
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

/// Why a WAL payload could not be turned back into an export.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("not an OTLP export request: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A trace, logs or metrics payload (read in place).
    #[error(transparent)]
    Request(#[from] DecodeError),
    #[error("could not build its columns: {0}")]
    Columns(#[from] StoreError),
}

/// Decodes a WAL payload (an OTLP protobuf export request) through the same decoders as a
/// live export.
pub fn export_from_payload(
    signal: Signal,
    payload: &[u8],
    keys: &CorrelationKeys,
) -> Result<Export, ReplayError> {
    Ok(match signal {
        Signal::Traces => {
            let decoded = decode_traces(payload, keys)?;
            Export::spans(decoded.batch, decoded.rollups, decoded.attribute_values)?
        }
        Signal::Logs => {
            let decoded = decode_logs(payload, keys)?;
            Export::logs(decoded.batch, decoded.rollups, decoded.attribute_values)?
        }
        Signal::Metrics => {
            let decoded = decode_metrics(payload)?;
            Export::metrics(decoded.batch, decoded.rollups)?
        }
        // Derived data is never written to the WAL; nothing to decode.
        Signal::Rollups | Signal::MetricMinutes => Export::default(),
    })
}

/// A decoded export's columns could not be built: a bug, not the sender's fault; retryable.
fn encode_error(e: StoreError) -> IngestError {
    IngestError::from(WriteError::Encode(e.to_string()))
}

/// Bytes that are no request are the sender's fault; columns that cannot be built are ours.
fn decode_error(e: DecodeError) -> IngestError {
    match e {
        DecodeError::Wire(e) => IngestError::BadRequest(e.to_string()),
        DecodeError::Columns(e) => encode_error(e),
    }
}

/// The transport-independent receiver shared by the gRPC and HTTP servers.
#[derive(Clone)]
pub struct Receiver {
    sink: Sink,
    keys: std::sync::Arc<CorrelationKeys>,
    auth: std::sync::Arc<auth::IngestAuth>,
}

impl Receiver {
    /// A receiver storing into `sink`, finding correlation ids under `keys`.
    pub fn new(sink: Sink, keys: CorrelationKeys, auth: std::sync::Arc<auth::IngestAuth>) -> Self {
        Self {
            sink,
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
        Ok(self.sink.accepting()?)
    }

    fn admit(&self, sender: Sender<'_>) -> Result<auth::Admitted, IngestError> {
        match sender {
            Sender::Client(value) => self.auth.admit(value),
            Sender::Internal => self.auth.admit_internal(),
        }
    }

    /// Stores a trace export: `body` is an `ExportTraceServiceRequest` in protobuf, read in
    /// place and kept as it is for the WAL (an OTLP/JSON body is re-encoded by its
    /// transport first).
    pub async fn traces(
        &self,
        body: Vec<u8>,
        sender: Sender<'_>,
    ) -> Result<ExportTraceServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.sink.accepting()?;
        let decoded = decode_traces(&body, &self.keys).map_err(decode_error)?;
        let rejects = decoded.rejects;
        let accepted = decoded.batch.num_rows();
        self.auth.charge(&admitted, accepted)?;
        let (batch, rollups, values) = (decoded.batch, decoded.rollups, decoded.attribute_values);
        self.sink
            .store(Signal::Traces, body, || {
                Export::spans(batch, rollups, values).map_err(encode_error)
            })
            .await?;
        count(Signal::Traces, accepted, &rejects);
        Ok(ExportTraceServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }

    /// Stores a logs export (an `ExportLogsServiceRequest` in protobuf); see
    /// [`Receiver::traces`].
    pub async fn logs(
        &self,
        body: Vec<u8>,
        sender: Sender<'_>,
    ) -> Result<ExportLogsServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.sink.accepting()?;
        let decoded = decode_logs(&body, &self.keys).map_err(decode_error)?;
        let rejects = decoded.rejects;
        let accepted = decoded.batch.num_rows();
        self.auth.charge(&admitted, accepted)?;
        let (batch, rollups, values) = (decoded.batch, decoded.rollups, decoded.attribute_values);
        self.sink
            .store(Signal::Logs, body, || {
                Export::logs(batch, rollups, values).map_err(encode_error)
            })
            .await?;
        count(Signal::Logs, accepted, &rejects);
        Ok(ExportLogsServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }

    /// Stores a metrics export (an `ExportMetricsServiceRequest` in protobuf); see
    /// [`Receiver::traces`].
    pub async fn metrics(
        &self,
        body: Vec<u8>,
        sender: Sender<'_>,
    ) -> Result<ExportMetricsServiceResponse, IngestError> {
        let admitted = self.admit(sender)?;
        self.sink.accepting()?;
        let decoded = decode_metrics(&body).map_err(decode_error)?;
        let rejects = decoded.rejects;
        let accepted = decoded.batch.num_rows();
        self.auth.charge(&admitted, accepted)?;
        let (batch, rollups) = (decoded.batch, decoded.rollups);
        self.sink
            .store(Signal::Metrics, body, || {
                Export::metrics(batch, rollups).map_err(encode_error)
            })
            .await?;
        count(Signal::Metrics, accepted, &rejects);
        Ok(ExportMetricsServiceResponse {
            partial_success: (rejects.count > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejects.count,
                error_message: rejects.message(),
            }),
        })
    }
}
