//! A memtable batch packed for memory: repeated text dictionary-coded, bulky text (attribute
//! JSON, events, log bodies) LZ4-compressed, everything else as it is.
//!
//! The file schema keeps attributes as JSON text so that any Parquet reader can read them;
//! held that way in memory, the load generator's spans cost ≈ 900 B each, two thirds of it
//! attribute text that repeats from span to span. Parquet compresses it on the way to disk;
//! the memtable does the same per batch (one LZ4 block per bulky column) and dictionary-codes
//! names, services and statuses, which brings a buffered span to ≈ 235 B (zstd: ≈ 170 B).
//!
//! LZ4 rather than zstd: every acknowledged batch is compressed once and unpacked once more at
//! flush, and LZ4 (`lz4_flex`, in the tree through tantivy) does both several times faster.
//! Measured on the traces load (60 s runs, one machine): zstd level 1 cost 12.0 µs of server
//! CPU per span, LZ4 9.0–10.1 µs, for ≈ 3 % more peak memory; the bytes held are still counted
//! against `--flush-bytes`, so a batch that compresses worse only flushes sooner. Queries evaluate
//! their column checks on the packed batch first (unpacking only the columns checked) and
//! unpack a batch in full only when some of its rows pass.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::index::AttributeValues;
use crate::store::{Prefilter, StoreError, StoredRow};

/// Below this many bytes of text a column is not worth an LZ4 block.
const MIN_PACKED_BYTES: usize = 256;

/// One column of a packed batch.
#[derive(Debug)]
enum Column {
    /// Kept as is (ids, times, unique text).
    Plain(ArrayRef),
    /// A text column as `Dictionary(Int16 | Int32, Utf8)`.
    Coded(ArrayRef),
    /// A text column whose values buffer is one LZ4 block.
    Compressed {
        offsets: OffsetBuffer<i32>,
        nulls: Option<NullBuffer>,
        frame: Vec<u8>,
        /// Bytes of the values buffer before compression.
        values_len: usize,
    },
}

impl Column {
    fn bytes(&self) -> usize {
        match self {
            Column::Plain(a) | Column::Coded(a) => a.get_array_memory_size(),
            Column::Compressed {
                offsets,
                nulls,
                frame,
                ..
            } => {
                offsets.inner().inner().capacity()
                    + nulls.as_ref().map_or(0, |n| n.buffer().capacity())
                    + frame.capacity()
            }
        }
    }

    /// The column in the file's type (Utf8 for coded and compressed text).
    fn unpack(&self) -> Result<ArrayRef, StoreError> {
        Ok(match self {
            Column::Plain(a) => a.clone(),
            Column::Coded(a) => cast(a, &DataType::Utf8)?,
            Column::Compressed {
                offsets,
                nulls,
                frame,
                values_len,
            } => {
                let values = lz4_flex::block::decompress(frame, *values_len).map_err(|e| {
                    StoreError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                })?;
                Arc::new(StringArray::try_new(
                    offsets.clone(),
                    Buffer::from_vec(values),
                    nulls.clone(),
                )?)
            }
        })
    }
}

/// A batch of one signal in the file schema, packed.
#[derive(Debug)]
pub struct PackedBatch {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    bytes: usize,
    /// The distinct attribute values of the rows, when their decoder noted them.
    attribute_values: Option<AttributeValues<'static>>,
}

impl PackedBatch {
    /// Packs a batch built by `T::to_batch`: `T::BULKY_COLUMNS` compressed, other text
    /// columns dictionary-coded where values repeat, `T::UNIQUE_COLUMNS` left alone.
    pub fn pack<T: StoredRow>(batch: RecordBatch) -> Result<PackedBatch, StoreError> {
        let rows = batch.num_rows();
        let (schema, arrays, _) = batch.into_parts();
        let mut columns = Vec::with_capacity(arrays.len());
        for (field, array) in schema.fields().iter().zip(arrays) {
            let name = field.name().as_str();
            let column = match array.as_string_opt::<i32>() {
                Some(text) if T::BULKY_COLUMNS.contains(&name) => compress(text)?,
                Some(_) if !T::UNIQUE_COLUMNS.contains(&name) => coded(array)?,
                _ => Column::Plain(trimmed(array)),
            };
            columns.push(column);
        }
        let bytes = columns.iter().map(Column::bytes).sum();
        Ok(PackedBatch {
            schema,
            columns,
            rows,
            bytes,
            attribute_values: None,
        })
    }

    /// The batch with the attribute values its decoder noted for its rows.
    pub fn with_attribute_values(mut self, values: Option<AttributeValues<'static>>) -> Self {
        self.bytes += values.as_ref().map_or(0, AttributeValues::heap_bytes);
        self.attribute_values = values;
        self
    }

    /// The distinct attribute values of the rows, when their decoder noted them.
    pub fn attribute_values(&self) -> Option<&AttributeValues<'static>> {
        self.attribute_values.as_ref()
    }

    /// Records in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes the packed columns (and the attribute values noted for them) hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The batch in the file schema.
    pub fn unpack(&self) -> Result<RecordBatch, StoreError> {
        let columns = self
            .columns
            .iter()
            .map(Column::unpack)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// The named columns (those the batch has), unpacked, in the order asked.
    pub fn project(&self, names: &[&str]) -> Result<RecordBatch, StoreError> {
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for name in names {
            let Ok(i) = self.schema.index_of(name) else {
                continue;
            };
            fields.push(self.schema.field(i).clone());
            arrays.push(self.columns[i].unpack()?);
        }
        let options =
            arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(self.rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &options,
        )?)
    }

    /// The rows passing `prefilter`, evaluated on the checked columns alone (unpacked one by
    /// one); `None` when it checks nothing.
    pub fn mask(&self, prefilter: &Prefilter) -> Result<Option<BooleanArray>, StoreError> {
        let mut names: Vec<&str> = prefilter.columns().collect();
        names.sort_unstable();
        names.dedup();
        Ok(prefilter.mask(&self.project(&names)?)?)
    }
}

/// `array` with its buffers shrunk to their length: builders grow by doubling, which would
/// otherwise leave up to half of a column's allocation empty (and counted).
fn trimmed(mut array: ArrayRef) -> ArrayRef {
    if let Some(owned) = Arc::get_mut(&mut array) {
        owned.shrink_to_fit();
    }
    array
}

/// A text column dictionary-coded, when its values repeat; as it is otherwise.
///
/// Coded here rather than by Arrow's cast: a run of one value (a resource's service, host and
/// attribute text, repeated for each of its records) reuses the previous key after one
/// comparison, where the cast hashes and compares every value; and a column found to hold too
/// many distinct values stops being coded as soon as it passes the limit.
fn coded(array: ArrayRef) -> Result<Column, StoreError> {
    let Some(codes) = array.as_string_opt::<i32>().and_then(DictionaryCodes::of) else {
        return Ok(Column::Plain(trimmed(array)));
    };
    Ok(Column::Coded(trimmed(
        codes.into_array(array.nulls().cloned())?,
    )))
}

/// The keys and distinct values of a text column.
struct DictionaryCodes {
    keys: Vec<u32>,
    values: StringArray,
}

impl DictionaryCodes {
    /// The codes of `text`, or `None` when more than half its rows are distinct values (a
    /// dictionary would then cost more than it saves).
    fn of(text: &StringArray) -> Option<DictionaryCodes> {
        let limit = text.len() / 2;
        let mut index: std::collections::HashMap<&str, u32, foldhash::fast::FixedState> =
            Default::default();
        let mut values = arrow::array::StringBuilder::new();
        let mut keys = Vec::with_capacity(text.len());
        let mut last: Option<(&str, u32)> = None;
        for i in 0..text.len() {
            if text.is_null(i) {
                // Masked by the null buffer; any valid key will do.
                keys.push(0);
                continue;
            }
            let value = text.value(i);
            let key = match last {
                Some((previous, key)) if previous == value => key,
                _ => {
                    let next = index.len() as u32;
                    let key = *index.entry(value).or_insert_with(|| {
                        values.append_value(value);
                        next
                    });
                    if index.len() > limit {
                        return None;
                    }
                    last = Some((value, key));
                    key
                }
            };
            keys.push(key);
        }
        Some(DictionaryCodes {
            keys,
            values: values.finish(),
        })
    }

    /// `Dictionary(Int16, Utf8)` when the values fit 16-bit keys, `Dictionary(Int32, Utf8)`
    /// otherwise.
    fn into_array(self, nulls: Option<NullBuffer>) -> Result<ArrayRef, StoreError> {
        use arrow::array::{DictionaryArray, PrimitiveArray};
        use arrow::datatypes::{Int16Type, Int32Type};
        let values: ArrayRef = Arc::new(self.values);
        // Keys are below the number of distinct values, which is at most half the rows.
        Ok(if values.len() <= i16::MAX as usize + 1 {
            let keys: Vec<i16> = self.keys.iter().map(|k| *k as i16).collect();
            let keys = PrimitiveArray::<Int16Type>::new(keys.into(), nulls);
            Arc::new(DictionaryArray::<Int16Type>::try_new(keys, values)?)
        } else {
            let keys: Vec<i32> = self.keys.iter().map(|k| *k as i32).collect();
            let keys = PrimitiveArray::<Int32Type>::new(keys.into(), nulls);
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values)?)
        })
    }
}

/// A text column with its values buffer in one LZ4 block (as it is when small).
fn compress(text: &StringArray) -> Result<Column, StoreError> {
    let values = text.values();
    if values.len() < MIN_PACKED_BYTES {
        return Ok(Column::Plain(trimmed(Arc::new(text.clone()))));
    }
    let mut frame = lz4_flex::block::compress(values.as_slice());
    // The frame was allocated at LZ4's worst-case bound.
    frame.shrink_to_fit();
    Ok(Column::Compressed {
        offsets: text.offsets().clone(),
        nulls: text.nulls().cloned(),
        frame,
        values_len: values.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{decode_logs, decode_traces, CorrelationKeys};
    use crate::loadgen::payload;
    use crate::model::{LogRow, Rows, Signal, SpanRow};
    use prost::Message;

    const NOW: u64 = 1_796_032_800_000_000_000;

    fn rows(signal: Signal) -> Rows {
        let keys = CorrelationKeys::new(vec!["correlation_id".into()]);
        let mut rows = Rows::default();
        match signal {
            Signal::Traces => {
                let batch = decode_traces(&payload::traces(3, 500, NOW).encode_to_vec(), &keys)
                    .expect("loadgen payload decodes")
                    .batch;
                SpanRow::from_batch(&batch, &mut |_: &_| true, &mut rows.spans)
                    .expect("reads back");
            }
            _ => {
                let batch = decode_logs(&payload::logs(3, 500, NOW).encode_to_vec(), &keys)
                    .expect("loadgen payload decodes")
                    .batch;
                LogRow::from_batch(&batch, &mut |_: &_| true, &mut rows.logs).expect("reads back");
            }
        }
        rows
    }

    fn round_trip<T: StoredRow>(rows: &[T]) -> (RecordBatch, PackedBatch) {
        let refs: Vec<&T> = rows.iter().collect();
        let batch = T::to_batch(&refs).expect("batch");
        let packed = PackedBatch::pack::<T>(batch.clone()).expect("packs");
        (batch, packed)
    }

    #[test]
    fn a_packed_batch_unpacks_to_the_same_columns_and_is_smaller() {
        let spans = rows(Signal::Traces).spans;
        let (batch, packed) = round_trip::<SpanRow>(&spans);
        assert_eq!(packed.unpack().expect("unpacks"), batch);
        assert!(packed.bytes() * 3 < batch.get_array_memory_size());
        let logs = rows(Signal::Logs).logs;
        let (batch, packed) = round_trip::<LogRow>(&logs);
        assert_eq!(packed.unpack().expect("unpacks"), batch);
        // Projection and the prefilter read the packed columns the same way.
        let names = packed.project(&["body", "service_name"]).expect("projects");
        assert_eq!(names.num_rows(), logs.len());
        let service = logs[0].resource.service_name.clone();
        let mask = packed
            .mask(&Prefilter::none().text_is("service_name", &service))
            .expect("mask")
            .expect("a check");
        assert_eq!(mask.true_count(), logs.len());
        let none = packed
            .mask(&Prefilter::none().text_is("service_name", "no such service"))
            .expect("mask")
            .expect("a check");
        assert_eq!(none.true_count(), 0);
    }

    #[test]
    fn one_record_and_unique_values_stay_plain_and_round_trip() {
        let spans: Vec<SpanRow> = rows(Signal::Traces).spans.into_iter().take(1).collect();
        let (batch, packed) = round_trip::<SpanRow>(&spans);
        assert_eq!(packed.unpack().expect("unpacks"), batch);
        let (batch, packed) = round_trip::<SpanRow>(&[]);
        assert_eq!(packed.unpack().expect("unpacks"), batch);
        assert_eq!(packed.rows(), 0);
    }
}
