//! The Parquet schema of metric files and the conversion between rows and Arrow batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Float64Builder, ListBuilder, UInt64Array,
    UInt64Builder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimestampNanosecondType, UInt64Type,
};
use arrow::record_batch::RecordBatch;

use super::columns::*;
use super::StoreError;
use crate::model::{MetricKind, MetricPoint};

/// The metric file schema, documented in ARCHITECTURE.md.
pub fn schema() -> SchemaRef {
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    let mut fields = vec![
        Field::new("time", timestamp_type(), false),
        Field::new("start_time", timestamp_type(), false),
        utf8("name"),
        utf8("description"),
        utf8("unit"),
        utf8("kind"),
        utf8("temporality"),
        Field::new("is_monotonic", DataType::Boolean, false),
        Field::new("value", DataType::Float64, true),
        Field::new("count", DataType::UInt64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
        Field::new("bucket_counts", list(DataType::UInt64), false),
        Field::new("explicit_bounds", list(DataType::Float64), false),
        utf8_null("distribution"),
        utf8("attributes"),
        utf8("scope_name"),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
}

/// Builds one batch from metric points, in the order given.
pub fn to_batch(rows: &[&MetricPoint]) -> Result<RecordBatch, StoreError> {
    let f64s = |f: fn(&MetricPoint) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(r)).collect::<Float64Array>())
    };
    let mut buckets = ListBuilder::new(UInt64Builder::new());
    let mut bounds = ListBuilder::new(Float64Builder::new());
    for r in rows {
        buckets.append_value(r.bucket_counts.iter().map(|c| Some(*c)));
        bounds.append_value(r.explicit_bounds.iter().map(|b| Some(*b)));
    }
    let mut columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.time_unix_nano)),
        timestamps(rows.iter().map(|r| r.start_time_unix_nano)),
        strings(rows.iter().map(|r| r.name.as_str())),
        strings(rows.iter().map(|r| r.description.as_str())),
        strings(rows.iter().map(|r| r.unit.as_str())),
        strings(rows.iter().map(|r| r.kind.as_str())),
        strings(rows.iter().map(|r| r.temporality.as_str())),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.is_monotonic)),
        )),
        f64s(|r| r.value),
        Arc::new(rows.iter().map(|r| r.count).collect::<UInt64Array>()),
        f64s(|r| r.sum),
        f64s(|r| r.min),
        f64s(|r| r.max),
        Arc::new(buckets.finish()),
        Arc::new(bounds.finish()),
        opt_strings(
            rows.iter()
                .map(|r| r.distribution.as_ref().map(json_value))
                .collect::<Vec<_>>()
                .iter()
                .map(|s| s.as_deref()),
        ),
        strings(rows.iter().map(|r| json_text(&r.attributes))),
        strings(rows.iter().map(|r| r.scope_name.as_str())),
    ];
    columns.extend(resource_columns(rows.iter().map(|r| r.resource.as_ref())));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Reads metric points back from a batch of a metric file, keeping rows that pass `keep`.
pub fn from_batch(
    batch: &RecordBatch,
    keep: &mut dyn FnMut(&MetricPoint) -> bool,
    out: &mut Vec<MetricPoint>,
) -> Result<(), StoreError> {
    let cols = Columns::new(batch);
    let time = cols.primitive::<TimestampNanosecondType>("time")?;
    let start = cols.primitive::<TimestampNanosecondType>("start_time")?;
    let name = cols.str("name")?;
    let description = cols.str("description")?;
    let unit = cols.str("unit")?;
    let kind = cols.str("kind")?;
    let temporality = cols.str("temporality")?;
    let monotonic = cols.boolean("is_monotonic")?;
    let value = cols.primitive::<Float64Type>("value")?;
    let count = cols.primitive::<UInt64Type>("count")?;
    let sum = cols.primitive::<Float64Type>("sum")?;
    let min = cols.primitive::<Float64Type>("min")?;
    let max = cols.primitive::<Float64Type>("max")?;
    let buckets = cols.list("bucket_counts")?;
    let bounds = cols.list("explicit_bounds")?;
    let distribution = cols.str("distribution")?;
    let attributes = cols.str("attributes")?;
    let scope_name = cols.str("scope_name")?;
    let mut resources = ResourceReader::new(&cols)?;
    let opt_f64 = |a: &arrow::array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        let bucket_values = buckets.value(i);
        let bound_values = bounds.value(i);
        let row = MetricPoint {
            name: name.value(i).to_string(),
            description: description.value(i).to_string(),
            unit: unit.value(i).to_string(),
            kind: MetricKind::parse(kind.value(i)).ok_or_else(|| {
                StoreError::Schema(format!("unknown metric kind {}", kind.value(i)))
            })?,
            temporality: temporality.value(i).to_string(),
            is_monotonic: monotonic.value(i),
            time_unix_nano: time.value(i),
            start_time_unix_nano: start.value(i),
            value: opt_f64(value, i),
            count: (!count.is_null(i)).then(|| count.value(i)),
            sum: opt_f64(sum, i),
            min: opt_f64(min, i),
            max: opt_f64(max, i),
            bucket_counts: bucket_values
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|a| a.values().to_vec())
                .unwrap_or_default(),
            explicit_bounds: bound_values
                .as_any()
                .downcast_ref::<Float64Array>()
                .map(|a| a.values().to_vec())
                .unwrap_or_default(),
            distribution: opt_str(distribution, i).and_then(|s| serde_json::from_str(&s).ok()),
            attributes: parse_attributes(attributes.value(i)),
            resource: resources.get(i),
            scope_name: scope_name.value(i).to_string(),
        };
        if keep(&row) {
            out.push(row);
        }
    }
    Ok(())
}
