//! OTLP/gRPC exports sent as protobuf bytes the generator encoded itself: tonic's generated
//! clients take the request message by value, so every export would need its own copy of a
//! 1 000-record prost tree; with the bytes in hand, a worker keeps one copy, restamps it in
//! place and encodes it once.

use std::marker::PhantomData;

use prost::bytes::{BufMut, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Status;

/// The `Export` paths of the three OTLP collector services.
pub const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
pub const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A gRPC client over one connection that sends encoded export requests.
pub struct RawExport {
    grpc: tonic::client::Grpc<Channel>,
}

impl RawExport {
    /// A client over `channel`, sending requests of up to `max_bytes`.
    pub fn new(channel: Channel, max_bytes: usize) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel).max_encoding_message_size(max_bytes),
        }
    }

    /// Sends `request` (an encoded `Export…ServiceRequest`) to `path` and decodes the
    /// service's response `R`.
    pub async fn export<R: Message + Default + Send + Sync + 'static>(
        &mut self,
        path: &'static str,
        request: Bytes,
    ) -> Result<R, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
        let codec = BytesCodec::<R>(PhantomData);
        let response = self
            .grpc
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(path),
                codec,
            )
            .await?;
        Ok(response.into_inner())
    }
}

/// Writes a request's bytes as they are; decodes the response with prost.
struct BytesCodec<R>(PhantomData<fn() -> R>);

impl<R: Message + Default + Send + 'static> Codec for BytesCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesCodec<R>;
    type Decoder = BytesCodec<R>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec(PhantomData)
    }
}

impl<R: Message + Default + Send + 'static> Encoder for BytesCodec<R> {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl<R: Message + Default + Send + 'static> Decoder for BytesCodec<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(format!("could not decode the response: {e}")))
    }
}
