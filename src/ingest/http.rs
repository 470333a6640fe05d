//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` in protobuf or JSON,
//! optionally gzip-compressed; the answer uses the request's encoding.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;
use serde::de::DeserializeOwned;

use super::decode::{decode_message, gunzip, Encoding};
use super::{IngestError, Receiver};

/// Shared state of the HTTP receiver.
#[derive(Clone)]
struct HttpState {
    receiver: Receiver,
    max_body_bytes: usize,
}

/// The OTLP/HTTP routes.
pub fn router(receiver: Receiver, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(HttpState {
            receiver,
            max_body_bytes,
        })
}

/// The `google.rpc.Status` body OTLP/HTTP puts in error responses.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl IngestError {
    fn http_status(&self) -> (StatusCode, tonic::Code) {
        match self {
            IngestError::BadRequest(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
            IngestError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
            ),
            IngestError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                tonic::Code::ResourceExhausted,
            ),
            IngestError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable)
            }
            IngestError::Unauthenticated(_) => {
                (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated)
            }
            IngestError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                tonic::Code::ResourceExhausted,
            ),
        }
    }
}

fn error_response(error: IngestError, encoding: Encoding) -> Response {
    let (status, code) = error.http_status();
    let retry_after = match &error {
        IngestError::RateLimited { retry_after, .. } => Some(retry_after.as_secs().max(1)),
        IngestError::Unavailable(_) => Some(1),
        _ => None,
    };
    let body = RpcStatus {
        code: code as i32,
        message: error.to_string(),
    };
    let mut response = encode_response(status, &body, encoding);
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn encode_response<T: Message + serde::Serialize>(
    status: StatusCode,
    body: &T,
    encoding: Encoding,
) -> Response {
    let bytes = match encoding {
        Encoding::Protobuf => body.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(body).unwrap_or_default(),
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        bytes,
    )
        .into_response()
}

/// Content type, then gzip: the body's bytes and their encoding. Errors carry the encoding
/// to answer in.
fn body_bytes(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<(Vec<u8>, Encoding), (IngestError, Encoding)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let encoding = Encoding::from_content_type(content_type).map_err(|e| (e, Encoding::Json))?;
    let gzipped = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            let msg = format!("unsupported content encoding {other:?}: use gzip or none");
            return Err((IngestError::UnsupportedMediaType(msg), encoding));
        }
    };
    let raw: Vec<u8> = if gzipped {
        gunzip(&body, limit).map_err(|e| (e, encoding))?
    } else {
        body.to_vec()
    };
    Ok((raw, encoding))
}

/// The body as protobuf: as sent, or an OTLP/JSON body decoded and re-encoded (the receiver
/// reads protobuf, traces and logs in place, and the WAL keeps protobuf).
fn protobuf_of<T>(raw: Vec<u8>, encoding: Encoding) -> Result<Vec<u8>, IngestError>
where
    T: Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => Ok(raw),
        Encoding::Json => Ok(decode_message::<T>(&raw, encoding)?.encode_to_vec()),
    }
}

/// The checks before the body is read (`key`: the API key header's value); an answer when
/// they refuse.
fn refused(state: &HttpState, headers: &HeaderMap, key: Option<&str>) -> Option<Response> {
    let error = state
        .receiver
        .precheck(crate::ingest::Sender::Client(key))
        .err()?;
    // Answer in the request's encoding when it names one, else protobuf.
    let encoding = Encoding::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    )
    .unwrap_or(Encoding::Protobuf);
    Some(error_response(error, encoding))
}

macro_rules! otlp_handler {
    ($name:ident, $request:ty, $method:ident) => {
        async fn $name(
            State(state): State<HttpState>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let key = headers
                .get(state.receiver.key_header())
                .and_then(|v| v.to_str().ok());
            if let Some(refusal) = refused(&state, &headers, key) {
                return refusal;
            }
            let (raw, encoding) = match body_bytes(&headers, body, state.max_body_bytes) {
                Ok(body) => body,
                Err((error, encoding)) => return error_response(error, encoding),
            };
            let protobuf = match protobuf_of::<$request>(raw, encoding) {
                Ok(protobuf) => protobuf,
                Err(error) => return error_response(error, encoding),
            };
            match state
                .receiver
                .$method(protobuf, crate::ingest::Sender::Client(key))
                .await
            {
                Ok(response) => encode_response(StatusCode::OK, &response, encoding),
                Err(error) => error_response(error, encoding),
            }
        }
    };
}

otlp_handler!(
    traces,
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    traces
);
otlp_handler!(
    logs,
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
    logs
);
otlp_handler!(
    metrics,
    opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    metrics
);
