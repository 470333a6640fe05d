//! The store of record: Parquet files (zstd) per signal, partitioned by hour, written and read
//! through `object_store`: on local disk by default, in an S3 bucket with `--object-store`
//! (see `location.rs`).
//!
//! A file is only *visible* once the index has committed a block document pointing at it (see
//! `crate::index`); files the index does not know are leftovers of a crash and are removed on
//! start. The layout is documented in ARCHITECTURE.md.

pub mod columns;
mod file_writer;
mod footer_cache;
mod location;
pub mod logs;
pub mod metrics;
mod off_workers;
mod partition;
pub mod prefilter;
mod read_cache;
pub mod rollups;
mod s3_http;
pub mod spans;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
pub use file_writer::{FileBuilder, StreamedFile};
pub use location::{ReadCacheSettings, S3Location, StoreLocation};
use off_workers::decode_row_groups;
pub use partition::{Partition, HOUR_NANOS};
pub use prefilter::Prefilter;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("json column: {0}")]
    Json(#[from] serde_json::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected file layout: {0}")]
    Schema(String),
}

impl StoreError {
    /// Whether the error says a file's bytes are bad, rather than that they could not be
    /// fetched: the Parquet reader wraps the object store's own failures (a bucket that does
    /// not answer) as `External`, and those are not the file's fault.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Parquet(parquet::errors::ParquetError::External(_)) => false,
            StoreError::Parquet(_)
            | StoreError::Arrow(_)
            | StoreError::Json(_)
            | StoreError::Schema(_) => true,
            StoreError::ObjectStore(_) | StoreError::Io(_) => false,
        }
    }
}

/// A row type that has its own Parquet files.
pub trait StoredRow: Sized + Send + Sync + 'static {
    /// The signal whose folder the files go in.
    const SIGNAL: Signal;
    /// Event time in Unix nanoseconds; decides the hour partition.
    fn time(&self) -> i64;
    /// Order of rows inside a file: chosen so that the rows a query wants sit together.
    fn order(a: &Self, b: &Self) -> Ordering;
    /// Columns whose values are (nearly) unique per record, stored without a dictionary: a
    /// dictionary of unique values only adds its indices (≈ 6 B/record on log ids).
    const UNIQUE_COLUMNS: &'static [&'static str] = &[];
    /// Text columns that are large and read only once a row is chosen (attribute JSON,
    /// events, bodies): the memtable keeps them compressed.
    const BULKY_COLUMNS: &'static [&'static str] = &[];
    /// Builds one Arrow batch (one row group) from rows.
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError>;
    /// Decodes a batch read back from a file, keeping rows that pass `keep`.
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError>;
    /// Adds `next` into `into` when both count the same thing (rows that are sums), so
    /// compaction writes one row where flushes wrote many; records are never folded.
    /// Returns whether it did.
    fn fold(_into: &mut Self, _next: &Self) -> bool {
        false
    }
    /// The slice of time a row with time `time` belongs to, where row groups are cut: two
    /// rows of different slices never share a row group (the rows are sorted by it). Log row
    /// groups never span two minutes, so a histogram of minute-multiple buckets adds each
    /// block's counts from the index without reading it. `None`: cut by size only.
    fn row_group_slice(_time: i64) -> Option<i64> {
        None
    }
}

/// A row type the memtable holds as Arrow batches in arrival order; the store sorts them
/// into files itself ([`Store::plan_batches`]) instead of sorting rows.
pub trait SortedBatches: StoredRow {
    /// The time column that decides the hour partition.
    const TIME_COLUMN: &'static str;
    /// The sort keys of [`StoredRow::order`], as columns computed from `batch`.
    fn order_columns(batch: &RecordBatch) -> Result<Vec<ArrayRef>, StoreError>;
}

impl SortedBatches for SpanRow {
    const TIME_COLUMN: &'static str = "start_time";
    fn order_columns(batch: &RecordBatch) -> Result<Vec<ArrayRef>, StoreError> {
        columns_named(batch, &["start_time", "trace_id"])
    }
}

impl SortedBatches for LogRow {
    const TIME_COLUMN: &'static str = "time";
    fn order_columns(batch: &RecordBatch) -> Result<Vec<ArrayRef>, StoreError> {
        let times = columns::Columns::new(batch)
            .primitive::<arrow::datatypes::TimestampNanosecondType>("time")?;
        let minutes: arrow::array::Int64Array = times.unary(minute_of);
        let mut keys: Vec<ArrayRef> = vec![Arc::new(minutes)];
        keys.extend(columns_named(batch, &["service_name", "time"])?);
        Ok(keys)
    }
}

impl SortedBatches for MetricPoint {
    const TIME_COLUMN: &'static str = "time";
    fn order_columns(batch: &RecordBatch) -> Result<Vec<ArrayRef>, StoreError> {
        columns_named(
            batch,
            &["name", "service_name", "service_instance_id", "time"],
        )
    }
}

/// A column that sorts exactly like `column` but compares cheaply: text (metric names,
/// services, instances: few distinct values) becomes each value's rank among the distinct
/// values, so the sort compares integers. Comparing the strings themselves was a sixth of
/// the server's CPU under a metrics load (`memcmp` under `lexsort_to_indices`).
fn cheap_sort_key(column: ArrayRef) -> Result<ArrayRef, StoreError> {
    use arrow::array::{AsArray, UInt32Array};
    use arrow::datatypes::{DataType, Int32Type};
    if column.data_type() != &DataType::Utf8 {
        return Ok(column);
    }
    let coded = arrow::compute::cast(
        &column,
        &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
    )?;
    let coded = coded.as_dictionary::<Int32Type>();
    // Ranks of the distinct values, in the text's own order (equal text, equal rank).
    let ranks = arrow::compute::rank(coded.values(), None)?;
    let keyed: UInt32Array = coded
        .keys()
        .iter()
        .map(|k| k.and_then(|k| usize::try_from(k).ok().and_then(|k| ranks.get(k).copied())))
        .collect();
    Ok(Arc::new(keyed))
}

/// The columns of `batch` with these names, in this order.
fn columns_named(batch: &RecordBatch, names: &[&str]) -> Result<Vec<ArrayRef>, StoreError> {
    names
        .iter()
        .map(|name| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| StoreError::Schema(format!("no column {name}")))
        })
        .collect()
}

impl StoredRow for SpanRow {
    const SIGNAL: Signal = Signal::Traces;
    // Trace ids, parent ids and correlation ids repeat across the spans of a trace.
    const UNIQUE_COLUMNS: &'static [&'static str] = &["span_id"];
    const BULKY_COLUMNS: &'static [&'static str] = &["attributes", "events", "links"];
    fn time(&self) -> i64 {
        self.start_time_unix_nano
    }
    /// By start time: row groups are narrow slices of time even in a compacted hour file, so
    /// time windows prune them and "newest first" reads the newest spans first. A trace's
    /// spans start within moments of each other, so they still share one row group (or two);
    /// the block index finds them by trace id either way.
    fn order(a: &Self, b: &Self) -> Ordering {
        (a.start_time_unix_nano, a.trace_id).cmp(&(b.start_time_unix_nano, b.trace_id))
    }
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError> {
        spans::to_batch(rows)
    }
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError> {
        spans::from_batch(batch, keep, out)
    }
}

impl StoredRow for LogRow {
    const SIGNAL: Signal = Signal::Logs;
    const UNIQUE_COLUMNS: &'static [&'static str] = &["trace_id", "span_id", "correlation_id"];
    const BULKY_COLUMNS: &'static [&'static str] = &["body", "attributes"];
    fn time(&self) -> i64 {
        self.time_unix_nano
    }
    fn row_group_slice(time: i64) -> Option<i64> {
        Some(minute_of(time))
    }
    /// By minute, service and time: a service's lines compress together and come out in
    /// order, and a compacted hour file's row groups each cover about a minute.
    fn order(a: &Self, b: &Self) -> Ordering {
        (
            minute_of(a.time_unix_nano),
            &a.resource.service_name,
            a.time_unix_nano,
        )
            .cmp(&(
                minute_of(b.time_unix_nano),
                &b.resource.service_name,
                b.time_unix_nano,
            ))
    }
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError> {
        logs::to_batch(rows)
    }
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError> {
        logs::from_batch(batch, keep, out)
    }
}

impl StoredRow for MetricPoint {
    const SIGNAL: Signal = Signal::Metrics;
    fn time(&self) -> i64 {
        self.time_unix_nano
    }
    /// By metric, then series owner, then time: what a range query reads.
    fn order(a: &Self, b: &Self) -> Ordering {
        (
            &a.name,
            &a.resource.service_name,
            &a.resource.service_instance_id,
            a.time_unix_nano,
        )
            .cmp(&(
                &b.name,
                &b.resource.service_name,
                &b.resource.service_instance_id,
                b.time_unix_nano,
            ))
    }
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError> {
        metrics::to_batch(rows)
    }
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError> {
        metrics::from_batch(batch, keep, out)
    }
}

impl StoredRow for crate::rollup::RollupRow {
    const SIGNAL: Signal = Signal::Rollups;
    fn time(&self) -> i64 {
        self.minute
    }
    /// By kind, service and minute (what the overview and the map read), then the rest of
    /// the cell's key, so the rows of one cell sit next to each other for [`Self::fold`].
    fn order(a: &Self, b: &Self) -> Ordering {
        (a.kind(), &a.service, a.minute)
            .cmp(&(b.kind(), &b.service, b.minute))
            .then_with(|| a.cell_key().cmp(&b.cell_key()))
    }
    fn fold(into: &mut Self, next: &Self) -> bool {
        into.add(next)
    }
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError> {
        rollups::to_batch(rows)
    }
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError> {
        rollups::from_batch(batch, keep, out)
    }
}

impl StoredRow for crate::rollup::metric_minutes::MinuteMetric {
    const SIGNAL: Signal = Signal::MetricMinutes;
    fn time(&self) -> i64 {
        self.0.time_unix_nano
    }
    fn order(a: &Self, b: &Self) -> Ordering {
        MetricPoint::order(&a.0, &b.0)
    }
    fn to_batch(rows: &[&Self]) -> Result<RecordBatch, StoreError> {
        let points: Vec<&MetricPoint> = rows.iter().map(|m| &m.0).collect();
        metrics::to_batch(&points)
    }
    fn from_batch(
        batch: &RecordBatch,
        keep: &mut dyn FnMut(&Self) -> bool,
        out: &mut Vec<Self>,
    ) -> Result<(), StoreError> {
        let mut points = Vec::new();
        metrics::from_batch(batch, &mut |p| keep(&Self(p.clone())), &mut points)?;
        out.extend(points.into_iter().map(Self));
        Ok(())
    }
}

/// Folder (under the store root) of files found corrupt.
pub const QUARANTINE: &str = "quarantine";

/// One Parquet file just written, with the rows of each of its row groups (for indexing).
pub struct WrittenFile<'a, T> {
    /// Object path relative to the store root, e.g. `traces/date=2026-11-23/hour=10/….parquet`.
    pub path: String,
    /// Rows of row group `i`, in file order.
    pub row_groups: Vec<Vec<&'a T>>,
}

/// The rows of one row group of a [`BatchPlan`]: (batch, row) positions in file order.
pub type RowPositions = Vec<(usize, usize)>;

/// One file of a [`BatchPlan`]: its path and where the rows of each of its row groups are.
pub struct PlannedFile {
    pub path: String,
    pub row_groups: Vec<RowPositions>,
}

/// Batches (the memtable's, in arrival order) cut into files and row groups in file order,
/// without copying a row: a row group is gathered from the batches only when it is encoded
/// ([`BatchPlan::row_group`]), so a flush holds the batches and one row group, not the whole
/// memtable twice more (concatenated, then sorted).
pub struct BatchPlan {
    batches: Vec<RecordBatch>,
    pub files: Vec<PlannedFile>,
}

impl BatchPlan {
    /// The rows of one row group, gathered from the batches in file order.
    pub fn row_group(&self, rows: &[(usize, usize)]) -> Result<RecordBatch, StoreError> {
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        Ok(arrow::compute::interleave_record_batch(&batches, rows)?)
    }
}

/// The Parquet store.
#[derive(Clone)]
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    /// Set when the store is the local disk, so written files can be fsynced.
    local_root: Option<PathBuf>,
    row_group_rows: usize,
    footers: Arc<footer_cache::FooterCache>,
}

impl Store {
    /// The store at `location`: a local folder (created if missing) or an S3 bucket's prefix
    /// (whose client is only built here: the first read or write tells whether it answers).
    pub fn open(location: &StoreLocation, row_group_rows: usize) -> Result<Store, StoreError> {
        match location {
            StoreLocation::Local(root) => Store::open_local(root, row_group_rows),
            StoreLocation::S3(s3, cache) => Ok(Store {
                objects: s3.cached_client(cache)?,
                local_root: None,
                row_group_rows: row_group_rows.max(1),
                footers: Default::default(),
            }),
        }
    }

    /// A store in the local folder `root`, created if missing.
    pub fn open_local(root: &Path, row_group_rows: usize) -> Result<Store, StoreError> {
        std::fs::create_dir_all(root)?;
        Ok(Store {
            objects: Arc::new(LocalFileSystem::new_with_prefix(root)?),
            local_root: Some(root.to_path_buf()),
            row_group_rows: row_group_rows.max(1),
            footers: Default::default(),
        })
    }

    /// Writes `rows` into one file per hour partition, sorted by the row type's order, with
    /// one row group per `row_group_rows` rows. Files are durable when this returns.
    pub async fn write<'a, T: StoredRow>(
        &self,
        rows: &'a [T],
    ) -> Result<Vec<WrittenFile<'a, T>>, StoreError> {
        let planned = self.plan(rows);
        for file in &planned {
            let encoded = self.encode(file)?;
            self.finish_file(encoded).await?;
        }
        Ok(planned)
    }

    /// Splits rows into the files (one per hour partition, rows in file order) and row groups
    /// [`Store::write`] stores.
    fn plan<'a, T: StoredRow>(&self, rows: &'a [T]) -> Vec<WrittenFile<'a, T>> {
        let mut by_hour: std::collections::BTreeMap<Partition, Vec<&T>> = Default::default();
        for row in rows {
            by_hour
                .entry(Partition::of(T::SIGNAL.as_str(), row.time()))
                .or_default()
                .push(row);
        }
        let mut planned = Vec::new();
        for (partition, mut part) in by_hour {
            part.sort_by(|a, b| T::order(a, b));
            let path = partition.new_file_path();
            let row_groups: Vec<Vec<&T>> = part
                .chunks(self.row_group_rows)
                .map(|c| c.to_vec())
                .collect();
            planned.push(WrittenFile { path, row_groups });
        }
        planned
    }

    /// Like [`Store::plan`] for rows held as Arrow batches (the memtable): files per hour
    /// partition and row groups of `row_group_rows`, in the row type's order. Only the sort
    /// keys are concatenated and sorted (with Arrow's kernels); the rows stay where they are.
    pub fn plan_batches<T: SortedBatches>(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<BatchPlan, StoreError> {
        use arrow::array::AsArray;
        use arrow::compute::{concat, lexsort_to_indices, SortColumn};
        use arrow::datatypes::TimestampNanosecondType;
        let mut plan = BatchPlan {
            batches,
            files: Vec::new(),
        };
        if plan.batches.is_empty() {
            return Ok(plan);
        }
        // Where each batch starts among all rows, to turn a row number back into (batch, row).
        let mut starts = Vec::with_capacity(plan.batches.len());
        let mut total = 0;
        // Per batch: its time column, then the columns of the row type's order.
        let mut columns: Vec<Vec<ArrayRef>> = Vec::with_capacity(plan.batches.len());
        for batch in &plan.batches {
            starts.push(total);
            total += batch.num_rows();
            let mut of_batch = columns_named(batch, &[T::TIME_COLUMN])?;
            of_batch.extend(T::order_columns(batch)?);
            columns.push(of_batch);
        }
        let mut concatenated = (0..columns[0].len()).map(|k| {
            let parts: Vec<&dyn arrow::array::Array> =
                columns.iter().map(|c| c[k].as_ref()).collect();
            concat(&parts)
        });
        let times = concatenated
            .next()
            .transpose()?
            .and_then(|t| t.as_primitive_opt::<TimestampNanosecondType>().cloned())
            .ok_or_else(|| StoreError::Schema(format!("{} is not a timestamp", T::TIME_COLUMN)))?;
        let hours: arrow::array::Int64Array = times.unary(|t| t.div_euclid(HOUR_NANOS));
        let mut keys = vec![SortColumn {
            values: Arc::new(hours.clone()),
            options: None,
        }];
        for column in concatenated {
            keys.push(SortColumn {
                values: cheap_sort_key(column?)?,
                options: None,
            });
        }
        drop(columns);
        let order = lexsort_to_indices(&keys, None)?;
        drop(keys);
        let source = |i: usize| order.value(i) as usize;
        let position = |i: usize| {
            let row = source(i);
            let batch = starts.partition_point(|&s| s <= row) - 1;
            (batch, row - starts[batch])
        };
        let mut start = 0;
        while start < total {
            let hour = hours.value(source(start));
            let end = (start..total)
                .find(|&i| hours.value(source(i)) != hour)
                .unwrap_or(total);
            let path =
                Partition::of(T::SIGNAL.as_str(), times.value(source(start))).new_file_path();
            let slice_of = |i: usize| T::row_group_slice(times.value(source(i)));
            let mut row_groups = Vec::new();
            let mut offset = start;
            while offset < end {
                let full = (offset + self.row_group_rows).min(end);
                let first = slice_of(offset);
                let cut = (offset + 1..full)
                    .find(|&i| slice_of(i) != first)
                    .unwrap_or(full);
                row_groups.push((offset..cut).map(position).collect());
                offset = cut;
            }
            plan.files.push(PlannedFile { path, row_groups });
            start = end;
        }
        Ok(plan)
    }

    /// Starts the file of a [`BatchPlan`]; its row groups are written with
    /// [`FileBuilder::write_batch`], then [`Store::finish_file`] stores it.
    pub fn start_planned<T: StoredRow>(
        &self,
        file: &PlannedFile,
    ) -> Result<FileBuilder<T>, StoreError> {
        FileBuilder::new(file.path.clone())
    }

    /// Encodes a planned file as Parquet in memory (CPU only); [`Store::finish_file`] stores it.
    fn encode<T: StoredRow>(
        &self,
        file: &WrittenFile<'_, T>,
    ) -> Result<FileBuilder<T>, StoreError> {
        let mut builder = FileBuilder::<T>::new(file.path.clone())?;
        for group in &file.row_groups {
            builder.write_row_group(group)?;
        }
        Ok(builder)
    }

    /// Starts a file in `partition` that is written one row group at a time, for writers that
    /// never hold all rows at once (compaction).
    pub fn start_file<T: StoredRow>(
        &self,
        partition: &Partition,
    ) -> Result<StreamedFile<T>, StoreError> {
        StreamedFile::new(self.objects.clone(), partition.new_file_path())
    }

    /// Completes a file started with [`Store::start_file`]; durable when this returns.
    /// Returns its path.
    pub async fn finish_streamed<T: StoredRow>(
        &self,
        file: StreamedFile<T>,
    ) -> Result<String, StoreError> {
        let path = file.close().await?;
        self.sync_local(&path)?;
        Ok(path)
    }

    /// Stores a file encoded in memory ([`Store::start_planned`]); durable when this returns. Returns its
    /// path.
    pub async fn finish_file<T: StoredRow>(
        &self,
        file: FileBuilder<T>,
    ) -> Result<String, StoreError> {
        let (path, bytes) = file.into_parts()?;
        self.objects
            .put(&ObjectPath::from(path.as_str()), PutPayload::from(bytes))
            .await?;
        self.sync_local(&path)?;
        Ok(path)
    }

    /// Rows per row group of the files this store writes.
    pub fn row_group_rows(&self) -> usize {
        self.row_group_rows
    }

    /// Reads the given row groups of one file, keeping rows that pass `keep`.
    pub async fn read<T: StoredRow>(
        &self,
        path: &str,
        row_groups: Vec<usize>,
        keep: &mut (dyn FnMut(&T) -> bool + Send),
    ) -> Result<Vec<T>, StoreError> {
        self.read_filtered(path, row_groups, &Prefilter::none(), keep)
            .await
    }

    /// Reads the given row groups of one file, decoding in full only the rows that pass
    /// `prefilter`, and keeping those that also pass `keep`.
    pub async fn read_filtered<T: StoredRow>(
        &self,
        path: &str,
        row_groups: Vec<usize>,
        prefilter: &Prefilter,
        keep: &mut (dyn FnMut(&T) -> bool + Send),
    ) -> Result<Vec<T>, StoreError> {
        let (reader, footer) = self.open_file(path).await?;
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer)
            .with_row_groups(row_groups);
        if let Some(filter) = prefilter.row_filter(builder.parquet_schema()) {
            builder = builder.with_row_filter(filter);
        }
        let batches = decode_row_groups(builder.build()?).await?;
        let mut out = Vec::new();
        for batch in &batches {
            T::from_batch(batch, keep, &mut out)?;
        }
        Ok(out)
    }

    /// Reads the given row groups of one file as they are stored, every column.
    pub async fn read_row_groups(
        &self,
        path: &str,
        row_groups: Vec<usize>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let (reader, footer) = self.open_file(path).await?;
        let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer)
            .with_row_groups(row_groups);
        decode_row_groups(builder.build()?).await
    }

    /// Reads only `columns` of the rows of the given row groups that pass `prefilter`: for
    /// counting and grouping records without decoding them (a column the file lacks is left
    /// out of the batches).
    pub async fn read_columns(
        &self,
        path: &str,
        row_groups: Vec<usize>,
        prefilter: &Prefilter,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let (reader, footer) = self.open_file(path).await?;
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer)
            .with_row_groups(row_groups);
        let projection = parquet::arrow::ProjectionMask::columns(
            builder.parquet_schema(),
            columns.iter().copied(),
        );
        builder = builder.with_projection(projection);
        if let Some(filter) = prefilter.row_filter(builder.parquet_schema()) {
            builder = builder.with_row_filter(filter);
        }
        decode_row_groups(builder.build()?).await
    }

    /// Number of row groups in one file (reads only its footer).
    pub async fn row_group_count(&self, path: &str) -> Result<usize, StoreError> {
        let (_, footer) = self.open_file(path).await?;
        Ok(footer.metadata().num_row_groups())
    }

    /// A reader of one file and its parsed footer, from the footer cache when it is there.
    #[allow(deprecated)]
    async fn open_file(
        &self,
        path: &str,
    ) -> Result<
        (
            ParquetObjectReader,
            parquet::arrow::arrow_reader::ArrowReaderMetadata,
        ),
        StoreError,
    > {
        use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
        use parquet::file::metadata::PageIndexPolicy;
        // `ParquetObjectReader` is deprecated in parquet 60 in favour of a hand-written
        // `AsyncFileReader`; it still reads only the footer and the requested row groups,
        // which is what we need.
        let mut reader = ParquetObjectReader::new(self.objects.clone(), ObjectPath::from(path));
        if let Some(footer) = self.footers.get(path) {
            return Ok((reader, footer));
        }
        // The offset index lets a filtered read skip the pages of rows it does not want.
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let footer = ArrowReaderMetadata::load_async(&mut reader, options).await?;
        self.footers.insert(path, footer.clone());
        Ok((reader, footer))
    }

    /// Every Parquet file in the store, as object paths.
    pub async fn list_files(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_files_with_sizes()
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    /// Every Parquet file in the store with its size in bytes.
    pub async fn list_files_with_sizes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let metas: Vec<_> = self.objects.list(None).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .filter(|(p, _)| p.ends_with(".parquet") && !p.starts_with(QUARANTINE))
            .collect())
    }

    /// Moves a corrupt file under `quarantine/` (same relative path), out of every query.
    pub async fn quarantine(&self, path: &str) -> Result<(), StoreError> {
        self.footers.remove(path);
        let to = format!("{QUARANTINE}/{path}");
        self.objects
            .rename(&ObjectPath::from(path), &ObjectPath::from(to.as_str()))
            .await?;
        Ok(())
    }

    /// Deletes one file (a crash leftover the index never committed).
    pub async fn delete(&self, path: &str) -> Result<(), StoreError> {
        self.footers.remove(path);
        self.objects.delete(&ObjectPath::from(path)).await?;
        Ok(())
    }

    /// The local path of an object, when the store is the local disk (for tests and tools).
    pub fn local_path(&self, path: &str) -> Option<PathBuf> {
        self.local_root.as_ref().map(|r| r.join(path))
    }

    /// `object_store` renames a finished temp file into place but does not fsync it; on the
    /// local disk we do, or an index commit could point at a file a power loss would erase.
    fn sync_local(&self, path: &str) -> Result<(), StoreError> {
        if let Some(full) = self.local_path(path) {
            std::fs::File::open(&full)?.sync_all()?;
            if let Some(dir) = full.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    }
}

/// The minute a Unix-nanosecond time falls in: the leading sort key of log files. Without
/// it, an hour file merged by compaction would be sorted by service alone, a row group would
/// span much of the hour, and a five-minute search would read most of them.
fn minute_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(60_000_000_000)
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Rows for tests of the store and of what reads it back.
#[cfg(test)]
pub(crate) mod test_rows {
    use crate::model::SpanRow;

    /// A server span of trace `[trace; 16]` starting at `start`, 1 µs long.
    pub(crate) fn span_at(trace: u8, start: i64) -> SpanRow {
        SpanRow {
            trace_id: crate::model::TraceId([trace; 16]),
            span_id: crate::model::SpanId([trace; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            name: "op".into(),
            kind: crate::model::SpanKind::Server,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 1_000,
            duration_nano: 1_000,
            status_code: crate::model::SpanStatus::Ok,
            status_message: String::new(),
            attributes: Default::default(),
            events: Vec::new(),
            links: Vec::new(),
            resource: Default::default(),
            scope_name: String::new(),
            scope_version: String::new(),
            correlation_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rows::span_at;
    use super::*;

    /// A bucket that does not answer is not a corrupt file; undecodable bytes are.
    #[test]
    fn only_bad_bytes_count_as_corruption() {
        let unreachable = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        let wrapped = parquet::errors::ParquetError::External(Box::new(unreachable));
        assert!(!StoreError::Parquet(wrapped).is_corruption());
        let bad = parquet::errors::ParquetError::General("bad page header".into());
        assert!(StoreError::Parquet(bad).is_corruption());
        assert!(StoreError::Schema("no such column".into()).is_corruption());
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk");
        assert!(!StoreError::Io(io).is_corruption());
    }

    /// Sorting the memtable's batches with Arrow kernels cuts the same files and row groups,
    /// rows in the same order, as sorting rows: two hours, row groups of 3.
    #[test]
    fn batches_are_planned_like_rows() {
        let hour = 3_600_000_000_000;
        let rows: Vec<SpanRow> = (0..10u8)
            .map(|i| {
                span_at(
                    200 - i,
                    5 * hour + i64::from(i % 5) * hour / 4 + i64::from(i),
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path(), 3).unwrap();
        let by_rows = store.plan(&rows);
        let halves: Vec<RecordBatch> = rows
            .chunks(4)
            .map(|c| SpanRow::to_batch(&c.iter().collect::<Vec<_>>()).unwrap())
            .collect();
        let plan = store.plan_batches::<SpanRow>(halves).unwrap();
        let by_batches = &plan.files;
        assert_eq!(by_rows.len(), by_batches.len());
        for (a, b) in by_rows.iter().zip(by_batches) {
            assert_eq!(
                a.path.rsplit_once('/').map(|p| p.0),
                b.path.rsplit_once('/').map(|p| p.0),
                "same partition"
            );
            let a_groups: Vec<Vec<SpanRow>> = a
                .row_groups
                .iter()
                .map(|g| g.iter().map(|r| (*r).clone()).collect())
                .collect();
            let b_groups: Vec<Vec<SpanRow>> = b
                .row_groups
                .iter()
                .map(|g| {
                    let mut out = Vec::new();
                    let batch = plan.row_group(g).unwrap();
                    SpanRow::from_batch(&batch, &mut |_| true, &mut out).unwrap();
                    out
                })
                .collect();
            assert_eq!(a_groups, b_groups);
        }
    }

    /// A merged hour file must keep its row groups narrow in time (or every short window
    /// reads all of them): the rows of ten minutes, trace ids counting down as time goes on,
    /// come out in time order.
    #[tokio::test]
    async fn row_groups_of_an_hour_file_cover_about_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_local(dir.path(), 10).unwrap();
        let hour = 1_795_428_000_000_000_000; // 2026-11-23T10:00:00Z
        let minute = 60_000_000_000;
        let spans: Vec<SpanRow> = (0..100)
            .map(|i| span_at(200 - i as u8, hour + i * minute / 10))
            .collect();
        let written = store.write(&spans).await.unwrap();
        assert_eq!(written.len(), 1);
        let starts: Vec<i64> = written[0]
            .row_groups
            .iter()
            .flatten()
            .map(|s| s.start_time_unix_nano)
            .collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        for group in &written[0].row_groups {
            let width = group[group.len() - 1].start_time_unix_nano - group[0].start_time_unix_nano;
            assert!(width < minute, "a row group of 10 spans covers {width} ns");
        }
    }

    /// Text sort keys replaced by ranks order rows exactly as the text does, nulls first.
    #[test]
    fn ranked_text_sorts_like_the_text() {
        use arrow::array::{Array, StringArray};
        use arrow::compute::{lexsort_to_indices, SortColumn};
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("payments"),
            None,
            Some("cart"),
            Some("payments"),
            Some("checkout"),
            Some(""),
            Some("cart"),
        ]));
        let order = |values: ArrayRef| {
            let sort = [SortColumn {
                values,
                options: None,
            }];
            lexsort_to_indices(&sort, None).unwrap().values().to_vec()
        };
        let ranked = cheap_sort_key(text.clone()).unwrap();
        let sorted = |indices: Vec<u32>| {
            let strings = text.as_any().downcast_ref::<StringArray>().unwrap();
            indices
                .into_iter()
                .map(|i| {
                    strings
                        .is_valid(i as usize)
                        .then(|| strings.value(i as usize))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(sorted(order(ranked)), sorted(order(text.clone())));
    }
}
