//! `collector.trace.v1.ExportTraceServiceRequest` read in place: its resource and scope
//! blocks ([`super::blocks`]), each span parsed when the decoder reaches it.

use super::blocks::{ResourceBlock, Shape};
use super::{field, push_key_value, KeyValue};
use crate::ingest::wire::{Fields, WireError};

/// The names of this signal's request.
pub const SHAPE: Shape = Shape {
    request: "ExportTraceServiceRequest",
    resources: "resource_spans",
    resource_message: "ResourceSpans",
    scopes: "scope_spans",
    scope_message: "ScopeSpans",
    records: "spans",
};

/// The resource blocks of an export request.
pub fn request(bytes: &[u8]) -> Result<Vec<ResourceBlock<'_>>, WireError> {
    super::blocks::request(bytes, &SHAPE)
}

/// `trace.v1.Status`; an absent status is the default one (unset, no message).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status<'a> {
    pub message: &'a str,
    pub code: i32,
}

/// `trace.v1.Span.Event`.
#[derive(Debug, Default)]
pub struct Event<'a> {
    pub time_unix_nano: u64,
    pub name: &'a str,
    pub attributes: Vec<KeyValue<'a>>,
}

/// `trace.v1.Span.Link`.
#[derive(Debug, Default)]
pub struct Link<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub attributes: Vec<KeyValue<'a>>,
}

/// `trace.v1.Span`.
#[derive(Debug, Default)]
pub struct Span<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue<'a>>,
    pub events: Vec<Event<'a>>,
    pub links: Vec<Link<'a>>,
    pub status: Status<'a>,
}

impl<'a> Span<'a> {
    /// Replaces this span with the one encoded in `bytes`, keeping the memory of its lists
    /// (a decoder reads every span of a request into one `Span`: growing a fresh attribute
    /// list for each was a tenth of the decoding).
    pub fn read(&mut self, bytes: &'a [u8]) -> Result<(), WireError> {
        const M: &str = "Span";
        let mut attributes = std::mem::take(&mut self.attributes);
        let mut events = std::mem::take(&mut self.events);
        let mut links = std::mem::take(&mut self.links);
        attributes.clear();
        events.clear();
        links.clear();
        *self = Span {
            attributes,
            events,
            links,
            ..Span::default()
        };
        let span = self;
        for f in Fields::new(bytes) {
            match f? {
                (1, v) => span.trace_id = v.bytes(&field(M, "trace_id"))?,
                (2, v) => span.span_id = v.bytes(&field(M, "span_id"))?,
                (3, v) => span.trace_state = v.str(&field(M, "trace_state"))?,
                (4, v) => span.parent_span_id = v.bytes(&field(M, "parent_span_id"))?,
                (5, v) => span.name = v.str(&field(M, "name"))?,
                (6, v) => span.kind = v.varint(&field(M, "kind"))? as i32,
                (7, v) => {
                    span.start_time_unix_nano = v.fixed64(&field(M, "start_time_unix_nano"))?
                }
                (8, v) => span.end_time_unix_nano = v.fixed64(&field(M, "end_time_unix_nano"))?,
                (9, v) => push_key_value(&mut span.attributes, v.bytes(&field(M, "attributes"))?)?,
                (10, v) => {
                    v.varint(&field(M, "dropped_attributes_count"))?;
                }
                (11, v) => span.events.push(event(v.bytes(&field(M, "events"))?)?),
                (12, v) => {
                    v.varint(&field(M, "dropped_events_count"))?;
                }
                (13, v) => span.links.push(link(v.bytes(&field(M, "links"))?)?),
                (14, v) => {
                    v.varint(&field(M, "dropped_links_count"))?;
                }
                (15, v) => status(v.bytes(&field(M, "status"))?, &mut span.status)?,
                (16, v) => {
                    v.fixed32(&field(M, "flags"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Merges the status encoded in `bytes` into `into`.
fn status<'a>(bytes: &'a [u8], into: &mut Status<'a>) -> Result<(), WireError> {
    for f in Fields::new(bytes) {
        match f? {
            (2, v) => into.message = v.str(&field("Status", "message"))?,
            (3, v) => into.code = v.varint(&field("Status", "code"))? as i32,
            _ => {}
        }
    }
    Ok(())
}

fn event(bytes: &[u8]) -> Result<Event<'_>, WireError> {
    const M: &str = "Event";
    let mut event = Event::default();
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => event.time_unix_nano = v.fixed64(&field(M, "time_unix_nano"))?,
            (2, v) => event.name = v.str(&field(M, "name"))?,
            (3, v) => push_key_value(&mut event.attributes, v.bytes(&field(M, "attributes"))?)?,
            (4, v) => {
                v.varint(&field(M, "dropped_attributes_count"))?;
            }
            _ => {}
        }
    }
    Ok(event)
}

fn link(bytes: &[u8]) -> Result<Link<'_>, WireError> {
    const M: &str = "Link";
    let mut link = Link::default();
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => link.trace_id = v.bytes(&field(M, "trace_id"))?,
            (2, v) => link.span_id = v.bytes(&field(M, "span_id"))?,
            (3, v) => link.trace_state = v.str(&field(M, "trace_state"))?,
            (4, v) => push_key_value(&mut link.attributes, v.bytes(&field(M, "attributes"))?)?,
            (5, v) => {
                v.varint(&field(M, "dropped_attributes_count"))?;
            }
            (6, v) => {
                v.fixed32(&field(M, "flags"))?;
            }
            _ => {}
        }
    }
    Ok(link)
}
