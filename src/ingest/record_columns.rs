//! The columns every span and log record has — its attributes (correlation id lifted out)
//! and its resource — appended straight from the OTLP request, shared by both decoders.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};

use super::attribute_text::{key_holding, term_text, write_object_visiting};
use super::correlation::CorrelationKeys;
use super::view::KeyValue;
use arrow::record_batch::RecordBatch;

use super::rejects::Rejects;
use crate::index::AttributeValues;
use crate::model::Resource;
use crate::rollup::RollupDelta;
use crate::store::columns::json_text;
use crate::store::StoreError;

/// One decoded span, logs or metrics export.
pub struct Decoded {
    /// The accepted records in the files' schema, in request order.
    pub batch: RecordBatch,
    /// What they add to the rollups and the service list.
    pub rollups: RollupDelta,
    /// Records dropped: spans and log records with invalid ids, metrics without data and
    /// number points without a value.
    pub rejects: Rejects,
    /// The distinct attribute values of the spans or log records, for the blocks their rows
    /// end up in (`None` for metrics, whose blocks read the attribute column).
    pub attribute_values: Option<AttributeValues<'static>>,
}

/// Why an export request could not be decoded into columns.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid request: the sender's fault, not retryable.
    #[error(transparent)]
    Wire(#[from] super::wire::WireError),
    /// The columns could not be built: a bug, not the sender's fault.
    #[error("could not build its columns: {0}")]
    Columns(#[from] StoreError),
}

/// A resource block as its records repeat it in their columns.
pub struct ResourceText {
    pub resource: Arc<Resource>,
    /// `resource_attributes`, written once per block.
    attributes: String,
}

impl ResourceText {
    /// Writes the attribute text of `resource` once.
    pub fn new(resource: Arc<Resource>) -> Self {
        let attributes = json_text(&resource.attributes);
        Self {
            resource,
            attributes,
        }
    }
}

/// Builders of the correlation, attribute and resource columns, and the distinct attribute
/// values of the records (`'r`: the request's bytes, which the values borrow).
pub struct RecordColumns<'r> {
    correlation_id: StringBuilder,
    correlation_key: StringBuilder,
    attributes: StringBuilder,
    resource: ResourceColumns,
    /// Reused for each record's JSON.
    scratch: Vec<u8>,
    values: AttributeValues<'r>,
}

/// Builders of the resource columns every signal's files end with.
pub struct ResourceColumns {
    service_name: StringBuilder,
    service_instance_id: StringBuilder,
    host_name: StringBuilder,
    service_version: StringBuilder,
    resource_attributes: StringBuilder,
}

impl ResourceColumns {
    /// Builders for about `rows` records.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            service_name: text_builder(rows, 16),
            service_instance_id: text_builder(rows, 16),
            host_name: text_builder(rows, 16),
            service_version: text_builder(rows, 8),
            resource_attributes: text_builder(rows, 64),
        }
    }

    /// Appends one record's resource.
    pub fn append(&mut self, resource: &ResourceText) {
        let r = &resource.resource;
        self.service_name.append_value(&r.service_name);
        self.service_instance_id
            .append_value(&r.service_instance_id);
        self.host_name.append_value(&r.host_name);
        self.service_version.append_value(&r.service_version);
        self.resource_attributes.append_value(&resource.attributes);
    }

    /// The resource columns, in schema order.
    pub fn finish(&mut self) -> [ArrayRef; 5] {
        [
            Arc::new(self.service_name.finish()),
            Arc::new(self.service_instance_id.finish()),
            Arc::new(self.host_name.finish()),
            Arc::new(self.service_version.finish()),
            Arc::new(self.resource_attributes.finish()),
        ]
    }
}

/// A text column builder sized for `rows` values of about `bytes` each.
pub fn text_builder(rows: usize, bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * bytes)
}

/// Appends JSON written by `write` (valid UTF-8 by construction) as one value.
pub fn append_json(
    column: &mut StringBuilder,
    scratch: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>),
) {
    scratch.clear();
    write(scratch);
    column.append_value(std::str::from_utf8(scratch).unwrap_or("null"));
}

impl<'r> RecordColumns<'r> {
    /// Builders for about `rows` records.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            correlation_id: text_builder(rows, 16),
            correlation_key: text_builder(rows, 8),
            attributes: text_builder(rows, 128),
            resource: ResourceColumns::with_capacity(rows),
            scratch: Vec::with_capacity(1024),
            values: AttributeValues::default(),
        }
    }

    /// Appends one record's attributes and resource and notes its attribute values; returns
    /// its correlation id.
    pub fn append<'s>(
        &mut self,
        attributes: &[KeyValue<'r>],
        resource: &'s ResourceText,
        keys: &CorrelationKeys,
    ) -> Option<Cow<'s, str>>
    where
        'r: 's,
    {
        let correlation_id = keys.find_in(attributes, &resource.resource.attributes);
        let lifted = correlation_id
            .as_deref()
            .and_then(|id| key_holding(attributes, id));
        self.correlation_id.append_option(correlation_id.as_deref());
        self.correlation_key.append_option(lifted);
        let values = &mut self.values;
        append_json(&mut self.attributes, &mut self.scratch, |out| {
            write_object_visiting(out, attributes, lifted, |kv| {
                values.note_with(kv.key, || term_text(&kv.value))
            })
        });
        self.resource.append(resource);
        correlation_id
    }

    /// The distinct attribute values of the records appended, owned.
    pub fn attribute_values(&mut self) -> AttributeValues<'static> {
        std::mem::take(&mut self.values).into_owned()
    }

    /// `correlation_id`, `correlation_key` and `attributes`, in that order.
    pub fn finish_record(&mut self) -> [ArrayRef; 3] {
        [
            Arc::new(self.correlation_id.finish()),
            Arc::new(self.correlation_key.finish()),
            Arc::new(self.attributes.finish()),
        ]
    }

    /// The resource columns every file ends with, in schema order.
    pub fn finish_resource(&mut self) -> [ArrayRef; 5] {
        self.resource.finish()
    }
}
