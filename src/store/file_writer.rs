//! Writing one Parquet file row group by row group, with the properties every file of the
//! store shares: in memory ([`FileBuilder`]: the flusher's files, stored in one put once
//! encoded) or streamed to the object store ([`StreamedFile`]: compaction's merged files, up to
//! a few hundred MB, which held whole in memory were the peak of a server's resident memory).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{ArrowWriter, AsyncArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use super::{StoreError, StoredRow};

/// Bytes a streamed file buffers before it uploads a part, and parts in flight at once:
/// what a streamed file holds in memory beside the row group being encoded.
const STREAM_PART_BYTES: usize = 8 << 20;
const STREAM_PARTS_IN_FLIGHT: usize = 2;

/// The schema and writer properties of a file of `T` rows: zstd, page statistics, no
/// Parquet bloom filters — ids are found through the block index's own filters
/// (`index::filter`), which cost a byte or two per id instead of more.
fn file_properties<T: StoredRow>() -> Result<(SchemaRef, WriterProperties), StoreError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(None);
    let schema = T::to_batch(&[])?.schema();
    // Timestamps are sorted (or nearly) within a row group: deltas, bit-packed.
    for field in schema.fields() {
        if matches!(field.data_type(), arrow::datatypes::DataType::Timestamp(..)) {
            let column = ColumnPath::from(field.name().as_str());
            props = props
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
        }
    }
    // Floats (metric values, sums, bounds) rarely repeat: a dictionary only costs a hash per
    // value before Parquet gives up on it. Their bytes split into streams (exponents
    // together) compress well under zstd instead.
    for field in schema.fields() {
        if matches!(field.data_type(), arrow::datatypes::DataType::Float64) {
            let column = ColumnPath::from(field.name().as_str());
            props = props
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_encoding(column, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    // Long text, unique per record (attribute JSON, bodies, events) or repeated whole (the
    // resource's attribute JSON, the same for every record of an export): a dictionary
    // hashes each value and compares each repeat to its end before it pays off or gives up
    // (parquet-rs interns every value, 7 % of the server's CPU at 120 000 spans/s), where
    // zstd over the plain values finds the repeats by itself.
    let long_text = T::BULKY_COLUMNS.iter().chain(&["resource_attributes"]);
    for name in T::UNIQUE_COLUMNS.iter().chain(long_text) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    // Min/max of text prunes nothing for our reader (it selects row groups through the
    // block index and pages through the offset index, never by statistics), and
    // comparing every value cost: attribute JSON and bodies half of the span encoding,
    // the resource's attribute JSON (equal strings compared to their end) a tenth of the
    // flusher, and the remaining short text columns 5 % of the server's CPU at
    // 170 000 spans/s. Only `service_name` keeps them, for other readers (DuckDB) that
    // prune row groups by service.
    for field in schema.fields() {
        let text = matches!(
            field.data_type(),
            arrow::datatypes::DataType::Utf8 | arrow::datatypes::DataType::LargeUtf8
        );
        let unique = T::UNIQUE_COLUMNS.contains(&field.name().as_str());
        if (text && field.name() != "service_name") || unique {
            props = props.set_column_statistics_enabled(
                ColumnPath::from(field.name().as_str()),
                EnabledStatistics::None,
            );
        }
    }
    Ok((schema, props.build()))
}

/// A Parquet file being encoded in memory row group by row group, not yet stored
/// ([`super::Store::finish_file`] stores it). The columns of a row group are encoded in
/// parallel (rayon), each by its own column writer, then appended in order: the flusher is one
/// thread, and while it encoded column after column a core sat idle and exports waited for
/// it (metrics, whose decoding is cheap, were refused as "busy" behind the flush).
pub struct FileBuilder<T> {
    path: String,
    schema: SchemaRef,
    writer: SerializedFileWriter<Vec<u8>>,
    columns: ArrowRowGroupWriterFactory,
    row_groups: usize,
    rows: std::marker::PhantomData<fn(&T)>,
}

impl<T: StoredRow> FileBuilder<T> {
    pub(super) fn new(path: String) -> Result<Self, StoreError> {
        let (schema, props) = file_properties::<T>()?;
        // The Arrow writer sets the file up (Parquet schema, the Arrow schema in the footer);
        // its row groups are then written column by column.
        let (writer, columns) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?
            .into_serialized_writer()?;
        Ok(Self {
            path,
            schema,
            writer,
            columns,
            row_groups: 0,
            rows: std::marker::PhantomData,
        })
    }

    /// The object path the file will have.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends a batch of this file's schema as one row group (exactly this batch: its block
    /// document says so); returns its index in the file.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<usize, StoreError> {
        use rayon::prelude::*;
        let index = self.row_groups;
        let writers = self.columns.create_column_writers(index)?;
        // One writer per leaf column, in schema order, as `compute_leaves` lists the leaves.
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        let chunks: Vec<ArrowColumnChunk> = writers
            .into_par_iter()
            .zip(leaves)
            .map(|(mut writer, leaf)| {
                writer.write(&leaf)?;
                writer.close()
            })
            .collect::<Result<_, _>>()?;
        let mut row_group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        Ok(index)
    }

    /// Appends `rows` as one row group; returns its index in the file.
    pub fn write_row_group(&mut self, rows: &[&T]) -> Result<usize, StoreError> {
        self.write_batch(&T::to_batch(rows)?)
    }

    /// The object path and the whole encoded file.
    pub(super) fn into_parts(self) -> Result<(String, Vec<u8>), StoreError> {
        Ok((self.path, self.writer.into_inner()?))
    }
}

/// A Parquet file written row group by row group straight to the object store (a multipart
/// upload; on local disk a staging file renamed into place when complete), so only the row
/// group being encoded and a few upload parts are in memory. Not visible under its path
/// until [`super::Store::finish_streamed`]; [`StreamedFile::abort`] drops what was uploaded.
pub struct StreamedFile<T> {
    path: String,
    writer: AsyncArrowWriter<BufWriter>,
    row_groups: usize,
    rows: std::marker::PhantomData<fn(&T)>,
}

impl<T: StoredRow> StreamedFile<T> {
    pub(super) fn new(objects: Arc<dyn ObjectStore>, path: String) -> Result<Self, StoreError> {
        let (schema, props) = file_properties::<T>()?;
        let upload =
            BufWriter::with_capacity(objects, ObjectPath::from(path.as_str()), STREAM_PART_BYTES)
                .with_max_concurrency(STREAM_PARTS_IN_FLIGHT);
        Ok(Self {
            path,
            writer: AsyncArrowWriter::try_new(upload, schema, Some(props))?,
            row_groups: 0,
            rows: std::marker::PhantomData,
        })
    }

    /// The object path the file will have.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends a batch of this file's schema as one row group; returns its index in the file.
    pub async fn write_batch(&mut self, batch: &RecordBatch) -> Result<usize, StoreError> {
        self.writer.write(batch).await?;
        // Close the row group so that it holds exactly this batch (its block document says so).
        self.writer.flush().await?;
        self.row_groups += 1;
        Ok(self.row_groups - 1)
    }

    /// Appends `rows` as one row group; returns its index in the file.
    pub async fn write_row_group(&mut self, rows: &[&T]) -> Result<usize, StoreError> {
        self.write_batch(&T::to_batch(rows)?).await
    }

    /// Writes the footer and completes the upload; the file then exists under its path.
    pub(super) async fn close(self) -> Result<String, StoreError> {
        self.writer.close().await?;
        Ok(self.path)
    }

    /// Gives up the file: the parts uploaded so far are removed, nothing appears under its
    /// path. Failures are logged (a staging file left behind is invisible to the store).
    pub async fn abort(self) {
        if let Err(e) = self.writer.into_inner().abort().await {
            tracing::warn!(path = %self.path, "abandoned upload not cleaned up: {e}");
        }
    }
}
