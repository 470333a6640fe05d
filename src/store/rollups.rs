//! The Parquet schema of rollup files and the conversion between rows and Arrow batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Array, ListBuilder, UInt16Array, UInt16Builder, UInt64Array,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampNanosecondType, UInt64Type};
use arrow::record_batch::RecordBatch;

use super::columns::*;
use super::StoreError;
use crate::model::SpanKind;
use crate::rollup::latency::Extremes;
use crate::rollup::{
    EdgeKind, ErrorGroupDetail, ErrorSignature, LatencyHistogram, RollupCell, RollupKind, RollupRow,
};

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
        // The latency sketch's used buckets and their counts, side by side (files of earlier
        // versions hold `latency_buckets` instead: 128 coarse buckets).
        Field::new(
            "latency_keys",
            DataType::List(Arc::new(Field::new("item", DataType::UInt16, true))),
            false,
        ),
        Field::new(
            "latency_counts",
            DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
            false,
        ),
        // Shortest and longest duration counted (ns); null in files of earlier versions.
        Field::new("latency_min", DataType::Int64, true),
        Field::new("latency_max", DataType::Int64, true),
    ]))
}

/// Builds one batch from rollup rows, in the order given.
pub fn to_batch(rows: &[&RollupRow]) -> Result<RecordBatch, StoreError> {
    let mut keys = ListBuilder::new(UInt16Builder::new());
    let mut counts = ListBuilder::new(UInt64Builder::new());
    for r in rows {
        keys.append_value(r.latency.buckets.keys().map(|k| Some(*k)));
        counts.append_value(r.latency.buckets.values().map(|c| Some(*c)));
    }
    // The cell, flattened: operation (callee, group key), instance, version and detail (span
    // kind, edge kind, or an error group's example as JSON).
    let details: Vec<std::borrow::Cow<'_, str>> = rows
        .iter()
        .map(|r| match &r.cell {
            RollupCell::ErrorGroup { example, .. } => {
                serde_json::to_string(example).map(std::borrow::Cow::Owned)
            }
            other => Ok(std::borrow::Cow::Borrowed(other.key().4)),
        })
        .collect::<Result<_, _>>()?;
    let columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.minute)),
        strings(rows.iter().map(|r| r.kind().as_str())),
        strings(rows.iter().map(|r| r.service.as_str())),
        strings(rows.iter().map(|r| r.cell_key().1)),
        strings(rows.iter().map(|r| r.cell_key().2)),
        strings(rows.iter().map(|r| r.cell_key().3)),
        strings(details.iter().map(|d| d.as_ref())),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.count))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.errors))),
        Arc::new(keys.finish()),
        Arc::new(counts.finish()),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|r| extreme(r, false)),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| extreme(r, true)))),
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
    let sketch = match (
        batch.column_by_name("latency_keys"),
        batch.column_by_name("latency_counts"),
    ) {
        (Some(_), Some(_)) => Some((cols.list("latency_keys")?, cols.list("latency_counts")?)),
        _ => None,
    };
    let coarse = match sketch {
        Some(_) => None,
        None => Some(cols.list("latency_buckets")?),
    };
    let extreme_column = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
    };
    let (mins, maxes) = (extreme_column("latency_min"), extreme_column("latency_max"));
    for i in 0..batch.num_rows() {
        let value = |c: Option<&Int64Array>| c.filter(|c| c.is_valid(i)).map(|c| c.value(i));
        let extremes = match (value(mins), value(maxes)) {
            (Some(min), Some(max)) => Extremes::Known { min, max },
            _ => Extremes::Unknown,
        };
        let mut latency = match (&sketch, &coarse) {
            (Some((keys, counts)), _) => {
                let keys = keys.value(i);
                let counts = counts.value(i);
                let keys = keys.as_any().downcast_ref::<UInt16Array>();
                let counts = counts.as_any().downcast_ref::<UInt64Array>();
                let mut h = LatencyHistogram {
                    extremes,
                    ..LatencyHistogram::default()
                };
                if let (Some(keys), Some(counts)) = (keys, counts) {
                    h.buckets = keys
                        .values()
                        .iter()
                        .copied()
                        .zip(counts.values().iter().copied())
                        .collect();
                }
                h
            }
            (None, Some(coarse)) => {
                let values = coarse.value(i);
                let values = values.as_any().downcast_ref::<UInt64Array>();
                let counts = values.map(|v| v.values().to_vec()).unwrap_or_default();
                LatencyHistogram::from_coarse(&counts, extremes)
            }
            (None, None) => LatencyHistogram::default(),
        };
        if latency.total() == 0 {
            latency.extremes = Extremes::Empty;
        }
        let kind = RollupKind::parse(kind.value(i))
            .ok_or_else(|| StoreError::Schema(format!("unknown rollup kind {}", kind.value(i))))?;
        let row = RollupRow {
            minute: minute.value(i),
            service: service.value(i).to_string(),
            cell: cell_of(
                kind,
                operation.value(i),
                instance.value(i),
                version.value(i),
                detail.value(i),
            )?,
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

/// A row's shortest (or, with `max`, longest) duration, when known.
fn extreme(row: &RollupRow, max: bool) -> Option<i64> {
    match row.latency.extremes {
        Extremes::Known { min, max: longest } => Some(if max { longest } else { min }),
        _ => None,
    }
}

/// A stored row's cell from its flat columns.
fn cell_of(
    kind: RollupKind,
    operation: &str,
    instance: &str,
    version: &str,
    detail: &str,
) -> Result<RollupCell, StoreError> {
    Ok(match kind {
        RollupKind::Red => RollupCell::Red {
            operation: operation.to_string(),
            instance: instance.to_string(),
            version: version.to_string(),
            span_kind: SpanKind::of_name(detail),
        },
        RollupKind::Edge => RollupCell::Edge {
            callee: operation.to_string(),
            kind: EdgeKind::parse(detail)
                .ok_or_else(|| StoreError::Schema(format!("unknown edge kind {detail:?}")))?,
        },
        RollupKind::LogErrors => RollupCell::LogErrors {
            instance: instance.to_string(),
            version: version.to_string(),
        },
        RollupKind::ErrorGroup => RollupCell::ErrorGroup {
            key: operation.to_string(),
            instance: instance.to_string(),
            version: version.to_string(),
            // An example that no longer reads (it is informational) must not make the
            // whole file look corrupt: the counts stay, the example says it is lost.
            example: serde_json::from_str(detail).unwrap_or_else(|_| ErrorGroupDetail {
                signature: ErrorSignature {
                    error_type: "(unreadable)".into(),
                    message: format!("error group {operation}"),
                    top_frame: String::new(),
                },
                example_trace_id: None,
                example_span_id: None,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of cell is stored flat and read back the same.
    #[test]
    fn cells_round_trip_through_their_columns() {
        let example = ErrorGroupDetail {
            signature: ErrorSignature {
                error_type: "Timeout".into(),
                message: "charge timed out".into(),
                top_frame: "pay()".into(),
            },
            example_trace_id: Some("ab".repeat(16)),
            example_span_id: None,
        };
        let cells = [
            RollupCell::Red {
                operation: "GET /cart".into(),
                instance: "cart-1".into(),
                version: "1.2".into(),
                span_kind: SpanKind::Consumer,
            },
            RollupCell::Edge {
                callee: "postgresql".into(),
                kind: EdgeKind::Uninstrumented,
            },
            RollupCell::LogErrors {
                instance: "cart-2".into(),
                version: "1.3".into(),
            },
            RollupCell::ErrorGroup {
                key: "timeout-1".into(),
                instance: "cart-1".into(),
                version: "1.2".into(),
                example,
            },
        ];
        let rows: Vec<RollupRow> = cells
            .into_iter()
            .enumerate()
            .map(|(i, cell)| {
                let mut latency = LatencyHistogram::default();
                if i == 0 {
                    latency.add(5_000_000);
                    latency.add(7_000_000);
                }
                RollupRow {
                    minute: 60_000_000_000,
                    service: "cart".into(),
                    cell,
                    count: 3,
                    errors: 1,
                    latency,
                }
            })
            .collect();
        let refs: Vec<&RollupRow> = rows.iter().collect();
        let batch = to_batch(&refs).unwrap();
        let mut back = Vec::new();
        from_batch(&batch, &mut |_| true, &mut back).unwrap();
        assert_eq!(back, rows);
    }
}
