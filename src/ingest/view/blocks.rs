//! The resource and scope blocks every OTLP export request nests its records in — the same
//! three levels for spans and log records, only the names differ — each record still encoded.

use super::{field, resource, scope, KeyValue, Scope};
use crate::ingest::wire::{Fields, WireError};

/// The message and field names of one signal's request, for error messages.
pub struct Shape {
    /// `ExportTraceServiceRequest`.
    pub request: &'static str,
    /// `resource_spans`.
    pub resources: &'static str,
    /// `ResourceSpans`.
    pub resource_message: &'static str,
    /// `scope_spans`.
    pub scopes: &'static str,
    /// `ScopeSpans`.
    pub scope_message: &'static str,
    /// `spans`.
    pub records: &'static str,
}

/// `ResourceSpans` / `ResourceLogs`.
#[derive(Debug, Default)]
pub struct ResourceBlock<'a> {
    pub resource: Vec<KeyValue<'a>>,
    pub scopes: Vec<ScopeBlock<'a>>,
}

/// `ScopeSpans` / `ScopeLogs`, the records still encoded.
#[derive(Debug, Default)]
pub struct ScopeBlock<'a> {
    pub scope: Scope<'a>,
    pub records: Vec<&'a [u8]>,
}

/// The resource blocks of an export request of `shape`.
pub fn request<'a>(bytes: &'a [u8], shape: &Shape) -> Result<Vec<ResourceBlock<'a>>, WireError> {
    let mut out = Vec::new();
    for f in Fields::new(bytes) {
        if let (1, v) = f? {
            out.push(resource_block(
                v.bytes(&field(shape.request, shape.resources))?,
                shape,
            )?);
        }
    }
    Ok(out)
}

fn resource_block<'a>(bytes: &'a [u8], shape: &Shape) -> Result<ResourceBlock<'a>, WireError> {
    let m = shape.resource_message;
    let mut out = ResourceBlock::default();
    for f in Fields::new(bytes) {
        match f? {
            // A resource given twice merges, as prost merges it.
            (1, v) => out
                .resource
                .extend(resource(v.bytes(&field(m, "resource"))?)?),
            (2, v) => out
                .scopes
                .push(scope_block(v.bytes(&field(m, shape.scopes))?, shape)?),
            (3, v) => {
                v.str(&field(m, "schema_url"))?;
            }
            _ => {}
        }
    }
    Ok(out)
}

fn scope_block<'a>(bytes: &'a [u8], shape: &Shape) -> Result<ScopeBlock<'a>, WireError> {
    let m = shape.scope_message;
    let mut out = ScopeBlock::default();
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => {
                let s = scope(v.bytes(&field(m, "scope"))?)?;
                if !s.name.is_empty() {
                    out.scope.name = s.name;
                }
                if !s.version.is_empty() {
                    out.scope.version = s.version;
                }
            }
            (2, v) => out.records.push(v.bytes(&field(m, shape.records))?),
            (3, v) => {
                v.str(&field(m, "schema_url"))?;
            }
            _ => {}
        }
    }
    Ok(out)
}
