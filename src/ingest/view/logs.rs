//! `collector.logs.v1.ExportLogsServiceRequest` read in place: its resource and scope
//! blocks ([`super::blocks`]), each record parsed when the decoder reaches it.

use super::blocks::{ResourceBlock, Shape};
use super::{any_value, field, push_key_value, AnyValue, KeyValue};
use crate::ingest::wire::{Fields, WireError};

/// The names of this signal's request.
pub const SHAPE: Shape = Shape {
    request: "ExportLogsServiceRequest",
    resources: "resource_logs",
    resource_message: "ResourceLogs",
    scopes: "scope_logs",
    scope_message: "ScopeLogs",
    records: "log_records",
};

/// The resource blocks of an export request.
pub fn request(bytes: &[u8]) -> Result<Vec<ResourceBlock<'_>>, WireError> {
    super::blocks::request(bytes, &SHAPE)
}

/// `logs.v1.LogRecord`.
#[derive(Debug, Default)]
pub struct LogRecord<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'a str,
    /// `None` when the record has no body.
    pub body: Option<AnyValue<'a>>,
    pub attributes: Vec<KeyValue<'a>>,
    pub flags: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub event_name: &'a str,
}

impl<'a> LogRecord<'a> {
    /// Replaces this record with the one encoded in `bytes`, keeping the memory of its
    /// attribute list (see [`super::trace::Span::read`]).
    pub fn read(&mut self, bytes: &'a [u8]) -> Result<(), WireError> {
        const M: &str = "LogRecord";
        let mut attributes = std::mem::take(&mut self.attributes);
        attributes.clear();
        *self = LogRecord {
            attributes,
            ..LogRecord::default()
        };
        let record = self;
        for f in Fields::new(bytes) {
            match f? {
                (1, v) => record.time_unix_nano = v.fixed64(&field(M, "time_unix_nano"))?,
                (2, v) => record.severity_number = v.varint(&field(M, "severity_number"))? as i32,
                (3, v) => record.severity_text = v.str(&field(M, "severity_text"))?,
                (5, v) => {
                    let body = any_value(v.bytes(&field(M, "body"))?, 0)?;
                    // A later body with no kind set keeps the earlier one (a message merge).
                    if record.body.is_none() || body != AnyValue::Empty {
                        record.body = Some(body);
                    }
                }
                (6, v) => {
                    push_key_value(&mut record.attributes, v.bytes(&field(M, "attributes"))?)?
                }
                (7, v) => {
                    v.varint(&field(M, "dropped_attributes_count"))?;
                }
                (8, v) => record.flags = v.fixed32(&field(M, "flags"))?,
                (9, v) => record.trace_id = v.bytes(&field(M, "trace_id"))?,
                (10, v) => record.span_id = v.bytes(&field(M, "span_id"))?,
                (11, v) => {
                    record.observed_time_unix_nano =
                        v.fixed64(&field(M, "observed_time_unix_nano"))?
                }
                (12, v) => record.event_name = v.str(&field(M, "event_name"))?,
                _ => {}
            }
        }
        Ok(())
    }
}
