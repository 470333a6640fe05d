//! The merge of Arrow batches: spans, logs and metric points are merged as the batches their
//! row groups decode to, compared through Arrow's row format on the sort keys, and each
//! output row group is gathered from those batches with `interleave`.
//!
//! Merging decoded rows instead held every input row group as Rust rows with their attribute
//! maps (≈ 1.5 KB a span) and rebuilt batches from them: with eight inputs that was a few
//! hundred MB, the peak of a loaded server's resident memory. Batches are the compact form
//! the reader produces anyway, and no row is rebuilt.

use std::collections::VecDeque;

use arrow::array::{Array, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use arrow::row::{RowConverter, Rows, SortField};
use tantivy::TantivyDocument;

use crate::index::{block, Fields};
use crate::store::columns::Columns;
use crate::store::{Partition, SortedBatches, Store, StoredRow, StreamedFile};

/// Merges `files` (each sorted by the row type's order) into one sorted file in `partition`
/// and returns the block documents of its row groups. Files whose columns differ from what
/// this version writes (an older schema) are merged through rows instead, which converts them.
pub(super) async fn merge<T: SortedBatches>(
    store: &Store,
    partition: &Partition,
    files: &[String],
    fields: &Fields,
) -> anyhow::Result<Vec<TantivyDocument>> {
    let empty = T::to_batch(&[])?;
    let schema = empty.schema();
    let sort_fields = T::order_columns(&empty)?
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(sort_fields)?;
    let mut pool = Pool::default();
    let mut cursors = Vec::with_capacity(files.len());
    for path in files {
        let cursor = Cursor::open::<T>(store, path, &converter, &mut pool).await?;
        if !cursor.has_schema(&schema) {
            tracing::info!(path, "older file schema: merging through rows");
            return super::row_merge::merge::<T>(store, partition, files, fields).await;
        }
        cursors.push(cursor);
    }
    let mut file = store.start_file::<T>(partition)?;
    let mut merge = Merge {
        store,
        fields,
        schema,
        converter,
        pool,
        pending: Vec::with_capacity(store.row_group_rows()),
        docs: Vec::new(),
    };
    match merge.run::<T>(&mut cursors, &mut file).await {
        Ok(()) => {
            store.finish_streamed(file).await?;
            Ok(merge.docs)
        }
        Err(e) => {
            file.abort().await;
            Err(e)
        }
    }
}

/// The batches that rows waiting for the next output row group come from.
#[derive(Default)]
struct Pool {
    batches: Vec<RecordBatch>,
}

impl Pool {
    fn add(&mut self, batch: RecordBatch) -> usize {
        self.batches.push(batch);
        self.batches.len() - 1
    }
}

/// The batch of an input file the merge is in, with its sort keys in row format.
struct Current {
    batch: RecordBatch,
    keys: Rows,
    times: ScalarBuffer<i64>,
    position: usize,
    /// Where `batch` is in the [`Pool`].
    slot: usize,
}

/// One input file of a merge, read one row group at a time.
struct Cursor {
    path: String,
    row_groups: usize,
    next_group: usize,
    /// Batches of the row group last read, after `current`.
    queue: VecDeque<RecordBatch>,
    current: Option<Current>,
}

impl Cursor {
    async fn open<T: SortedBatches>(
        store: &Store,
        path: &str,
        converter: &RowConverter,
        pool: &mut Pool,
    ) -> anyhow::Result<Cursor> {
        let mut cursor = Cursor {
            path: path.to_string(),
            row_groups: store.row_group_count(path).await?,
            next_group: 0,
            queue: VecDeque::new(),
            current: None,
        };
        cursor.advance::<T>(store, converter, pool).await?;
        Ok(cursor)
    }

    /// Whether the file's batches have the columns this version writes (an empty file has
    /// nothing to disagree with).
    fn has_schema(&self, schema: &SchemaRef) -> bool {
        self.current
            .as_ref()
            .is_none_or(|c| c.batch.schema().fields() == schema.fields())
    }

    /// Moves to the next non-empty batch, reading the next row group when the last one is
    /// used up; `current` is `None` at the end of the file.
    async fn advance<T: SortedBatches>(
        &mut self,
        store: &Store,
        converter: &RowConverter,
        pool: &mut Pool,
    ) -> anyhow::Result<()> {
        self.current = None;
        loop {
            if let Some(batch) = self.queue.pop_front() {
                if batch.num_rows() == 0 {
                    continue;
                }
                let keys = converter.convert_columns(&T::order_columns(&batch)?)?;
                let times = Columns::new(&batch)
                    .primitive::<TimestampNanosecondType>(T::TIME_COLUMN)?
                    .values()
                    .clone();
                let slot = pool.add(batch.clone());
                self.current = Some(Current {
                    batch,
                    keys,
                    times,
                    position: 0,
                    slot,
                });
                return Ok(());
            }
            if self.next_group >= self.row_groups {
                return Ok(());
            }
            let batches = store
                .read_row_groups(&self.path, vec![self.next_group])
                .await?;
            self.queue.extend(batches);
            self.next_group += 1;
        }
    }
}

/// The state of one merge: the output row group being gathered and the documents of those
/// written.
struct Merge<'a> {
    store: &'a Store,
    fields: &'a Fields,
    schema: SchemaRef,
    converter: RowConverter,
    pool: Pool,
    /// (pool slot, row) of the rows of the next output row group, in order.
    pending: Vec<(usize, usize)>,
    docs: Vec<TantivyDocument>,
}

impl Merge<'_> {
    async fn run<T: SortedBatches>(
        &mut self,
        cursors: &mut [Cursor],
        file: &mut StreamedFile<T>,
    ) -> anyhow::Result<()> {
        let per_group = self.store.row_group_rows();
        let mut pending_slice = None;
        loop {
            let mut smallest: Option<(usize, &Current)> = None;
            for (i, cursor) in cursors.iter().enumerate() {
                if let Some(c) = &cursor.current {
                    let key = c.keys.row(c.position);
                    if smallest.is_none_or(|(_, s)| key < s.keys.row(s.position)) {
                        smallest = Some((i, c));
                    }
                }
            }
            let Some((i, time)) = smallest.map(|(i, c)| (i, c.times[c.position])) else {
                break;
            };
            let slice = T::row_group_slice(time);
            if !self.pending.is_empty() && pending_slice != slice {
                // Moves the cursors' batches to new pool slots: read the slot after this.
                self.write_pending(file, cursors).await?;
            }
            pending_slice = slice;
            let cursor = &mut cursors[i];
            if let Some(c) = cursor.current.as_mut() {
                self.pending.push((c.slot, c.position));
                c.position += 1;
                if c.position >= c.batch.num_rows() {
                    cursor
                        .advance::<T>(self.store, &self.converter, &mut self.pool)
                        .await?;
                }
            }
            if self.pending.len() >= per_group {
                self.write_pending(file, cursors).await?;
            }
        }
        if !self.pending.is_empty() {
            self.write_pending(file, cursors).await?;
        }
        Ok(())
    }

    /// Writes the pending rows as one row group and keeps in the pool only the batches the
    /// cursors are still in.
    async fn write_pending<T: StoredRow>(
        &mut self,
        file: &mut StreamedFile<T>,
        cursors: &mut [Cursor],
    ) -> anyhow::Result<()> {
        let sources: Vec<&RecordBatch> = self.pool.batches.iter().collect();
        let gathered = arrow::compute::interleave_record_batch(&sources, &self.pending)?;
        let batch = RecordBatch::try_new(self.schema.clone(), gathered.columns().to_vec())?;
        let i = file.write_batch(&batch).await?;
        self.docs.push(block::block_of_batches(
            self.fields,
            T::SIGNAL,
            file.path(),
            i,
            std::slice::from_ref(&batch),
        )?);
        self.pending.clear();
        self.pool.batches.clear();
        for current in cursors.iter_mut().filter_map(|c| c.current.as_mut()) {
            current.slot = self.pool.add(current.batch.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{LogRow, Resource, SpanRow};
    use crate::store::test_rows::span_at;

    /// 2026-11-30T10:00:00Z, the start of an hour partition.
    const HOUR: i64 = 1_796_032_800_000_000_000;
    const SECOND: i64 = 1_000_000_000;

    fn log_at(service: &str, time: i64, n: usize) -> LogRow {
        LogRow {
            time_unix_nano: time,
            observed_time_unix_nano: time,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: format!("line {n}"),
            attributes: Default::default(),
            trace_id: None,
            span_id: None,
            flags: 0,
            event_name: String::new(),
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            scope_name: String::new(),
            correlation_id: Some(format!("c-{n}")),
        }
    }

    /// Every row of every row group of `path`, and the rows per row group.
    async fn file_rows<T: StoredRow>(store: &Store, path: &str) -> (Vec<T>, Vec<usize>) {
        let groups = store.row_group_count(path).await.expect("footer");
        let mut rows = Vec::new();
        let mut sizes = Vec::new();
        for g in 0..groups {
            let group = store
                .read::<T>(path, vec![g], &mut |_| true)
                .await
                .expect("read");
            sizes.push(group.len());
            rows.extend(group);
        }
        (rows, sizes)
    }

    /// Writes `files` as separate store files, merges them once through rows and once
    /// through batches, and asserts both merged files hold the same rows in the same row
    /// groups (the row merge is the reference: it is `StoredRow::order` itself).
    async fn merges_agree<T: SortedBatches + PartialEq + std::fmt::Debug>(
        files: Vec<Vec<T>>,
    ) -> Vec<usize> {
        let dir = tempfile::tempdir().expect("temp dir");
        // Row groups of 7 rows: every input spans several, and outputs cut mid-batch.
        let store = Store::open_local(dir.path(), 7).expect("store");
        let (_, fields) = Fields::schema();
        let mut inputs = Vec::new();
        for rows in &files {
            let written = store.write(rows).await.expect("write");
            inputs.extend(written.into_iter().map(|f| f.path));
        }
        let partition = Partition::of_path(&inputs[0]).expect("partition");
        let by_rows = super::super::row_merge::merge::<T>(&store, &partition, &inputs, &fields)
            .await
            .expect("row merge");
        let by_batches = merge::<T>(&store, &partition, &inputs, &fields)
            .await
            .expect("batch merge");
        assert_eq!(by_rows.len(), by_batches.len(), "one block per row group");
        let outputs: Vec<String> = store
            .list_files_with_sizes()
            .await
            .expect("list")
            .into_iter()
            .map(|(path, _)| path)
            .filter(|p| !inputs.contains(p))
            .collect();
        assert_eq!(outputs.len(), 2, "{outputs:?}");
        let (a, a_groups) = file_rows::<T>(&store, &outputs[0]).await;
        let (b, b_groups) = file_rows::<T>(&store, &outputs[1]).await;
        assert_eq!(a.len(), files.iter().map(Vec::len).sum::<usize>());
        assert_eq!(a, b);
        assert_eq!(a_groups, b_groups);
        a_groups
    }

    #[tokio::test]
    async fn log_batches_merge_like_rows_and_never_mix_minutes_in_a_row_group() {
        let files: Vec<Vec<LogRow>> = (0..3)
            .map(|f| {
                (0..20)
                    .map(|i| {
                        let service = ["checkout", "payments"][i % 2];
                        log_at(
                            service,
                            HOUR + (i as i64 * 3 + f) * 7 * SECOND,
                            i * 3 + f as usize,
                        )
                    })
                    .collect()
            })
            .collect();
        let groups = merges_agree(files).await;
        // 60 records over 7 minutes: more groups than 60 / 7 because minutes cut them.
        assert!(groups.len() > 9, "{groups:?}");
    }

    #[tokio::test]
    async fn span_batches_merge_like_rows() {
        let files: Vec<Vec<SpanRow>> = (0..4u8)
            .map(|f| {
                (0..15u8)
                    .map(|i| span_at(i * 4 + f, HOUR + i64::from(i % 5) * SECOND))
                    .collect()
            })
            .collect();
        let groups = merges_agree(files).await;
        assert_eq!(groups.iter().sum::<usize>(), 60);
    }
}
