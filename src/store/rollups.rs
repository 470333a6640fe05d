//! The Parquet schema of rollup files and the conversion between rows and Arrow batches.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListBuilder, UInt64Array, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType, UInt64Type};
use arrow::record_batch::RecordBatch;

use super::columns::*;
use super::StoreError;
use crate::rollup::{LatencyHistogram, RollupKind, RollupRow};

/// The rollup file schema, documented in ARCHITECTURE.md.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("minute", timestamp_type(), false),
        utf8("kind"),
        utf8("service"),
        utf8("operation"),
        utf8("instance"),
        utf8("version"),
        utf8("detail"),
        Field::new("count", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
        Field::new(
            "latency_buckets",
            DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
            false,
        ),
    ]))
}

/// Builds one batch from rollup rows, in the order given.
pub fn to_batch(rows: &[&RollupRow]) -> Result<RecordBatch, StoreError> {
    let mut buckets = ListBuilder::new(UInt64Builder::new());
    for r in rows {
        // Trailing empty buckets are dropped: most cells use a handful.
        let used = r
            .latency
            .counts
            .iter()
            .rposition(|c| *c > 0)
            .map_or(0, |i| i + 1);
        buckets.append_value(r.latency.counts[..used].iter().map(|c| Some(*c)));
    }
    let columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.minute)),
        strings(rows.iter().map(|r| r.kind.as_str())),
        strings(rows.iter().map(|r| r.service.as_str())),
        strings(rows.iter().map(|r| r.operation.as_str())),
        strings(rows.iter().map(|r| r.instance.as_str())),
        strings(rows.iter().map(|r| r.version.as_str())),
        strings(rows.iter().map(|r| r.detail.as_str())),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.count))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.errors))),
        Arc::new(buckets.finish()),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Reads rollup rows back, keeping those that pass `keep`.
pub fn from_batch(
    batch: &RecordBatch,
    keep: &mut dyn FnMut(&RollupRow) -> bool,
    out: &mut Vec<RollupRow>,
) -> Result<(), StoreError> {
    let cols = Columns::new(batch);
    let minute = cols.primitive::<TimestampNanosecondType>("minute")?;
    let kind = cols.str("kind")?;
    let service = cols.str("service")?;
    let operation = cols.str("operation")?;
    let instance = cols.str("instance")?;
    let version = cols.str("version")?;
    let detail = cols.str("detail")?;
    let count = cols.primitive::<UInt64Type>("count")?;
    let errors = cols.primitive::<UInt64Type>("errors")?;
    let buckets = cols.list("latency_buckets")?;
    for i in 0..batch.num_rows() {
        let mut latency = LatencyHistogram::default();
        if let Some(values) = buckets.value(i).as_any().downcast_ref::<UInt64Array>() {
            for (slot, v) in latency.counts.iter_mut().zip(values.values().iter()) {
                *slot = *v;
            }
        }
        let row = RollupRow {
            kind: RollupKind::parse(kind.value(i)).ok_or_else(|| {
                StoreError::Schema(format!("unknown rollup kind {}", kind.value(i)))
            })?,
            minute: minute.value(i),
            service: service.value(i).to_string(),
            operation: operation.value(i).to_string(),
            instance: instance.value(i).to_string(),
            version: version.value(i).to_string(),
            detail: detail.value(i).to_string(),
            count: count.value(i),
            errors: errors.value(i),
            latency,
        };
        if keep(&row) {
            out.push(row);
        }
    }
    Ok(())
}
