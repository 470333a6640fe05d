//! The merge of rows: each input row group decoded into rows, merged in the row type's
//! order, and rows that [`StoredRow::fold`] says are one summed (rollup cells). Used for the
//! rollup files (a few hundred rows each) and for files of an older schema, which the batch
//! merge cannot interleave with today's.

use std::collections::VecDeque;

use tantivy::TantivyDocument;

use crate::index::{block, Fields};
use crate::store::{Partition, Store, StoredRow, StreamedFile};

/// One input file of a merge, read one row group at a time.
struct Cursor<T> {
    path: String,
    row_groups: usize,
    next_group: usize,
    rows: VecDeque<T>,
}

impl<T: StoredRow> Cursor<T> {
    async fn open(store: &Store, path: &str) -> anyhow::Result<Self> {
        let mut cursor = Cursor {
            path: path.to_string(),
            row_groups: store.row_group_count(path).await?,
            next_group: 0,
            rows: VecDeque::new(),
        };
        cursor.refill(store).await?;
        Ok(cursor)
    }

    /// Reads the next non-empty row group once the current one is used up.
    async fn refill(&mut self, store: &Store) -> anyhow::Result<()> {
        while self.rows.is_empty() && self.next_group < self.row_groups {
            let rows = store
                .read::<T>(&self.path, vec![self.next_group], &mut |_| true)
                .await?;
            self.rows = rows.into();
            self.next_group += 1;
        }
        Ok(())
    }
}

/// Merges the rows of `files` (each sorted by the row type's order) into one sorted file in
/// `partition`, and returns the block documents of its row groups.
pub(super) async fn merge<T: StoredRow>(
    store: &Store,
    partition: &Partition,
    files: &[String],
    fields: &Fields,
) -> anyhow::Result<Vec<TantivyDocument>> {
    let mut cursors = Vec::with_capacity(files.len());
    for path in files {
        cursors.push(Cursor::<T>::open(store, path).await?);
    }
    let mut file = store.start_file::<T>(partition)?;
    match merge_into(store, &mut cursors, &mut file, fields).await {
        Ok(docs) => {
            store.finish_streamed(file).await?;
            Ok(docs)
        }
        Err(e) => {
            file.abort().await;
            Err(e)
        }
    }
}

/// Writes the merged rows of `cursors` into `file`; returns the block documents.
async fn merge_into<T: StoredRow>(
    store: &Store,
    cursors: &mut [Cursor<T>],
    file: &mut StreamedFile<T>,
    fields: &Fields,
) -> anyhow::Result<Vec<TantivyDocument>> {
    let per_group = store.row_group_rows();
    let mut docs = Vec::new();
    let mut pending: Vec<T> = Vec::with_capacity(per_group);
    loop {
        let smallest = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.rows.front().map(|row| (i, row)))
            .min_by(|a, b| T::order(a.1, b.1))
            .map(|(i, _)| i);
        let Some(i) = smallest else { break };
        let cursor = &mut cursors[i];
        if let Some(row) = cursor.rows.pop_front() {
            let folded = pending.last_mut().is_some_and(|last| T::fold(last, &row));
            if !folded {
                let new_slice =
                    |last: &T| T::row_group_slice(last.time()) != T::row_group_slice(row.time());
                if pending.last().is_some_and(new_slice) {
                    docs.push(write_rows(file, &mut pending, fields).await?);
                }
                pending.push(row);
            }
        }
        cursor.refill(store).await?;
        if pending.len() >= per_group {
            docs.push(write_rows(file, &mut pending, fields).await?);
        }
    }
    if !pending.is_empty() {
        docs.push(write_rows(file, &mut pending, fields).await?);
    }
    Ok(docs)
}

/// Writes `pending` as one row group of `file` and empties it; returns its block document.
async fn write_rows<T: StoredRow>(
    file: &mut StreamedFile<T>,
    pending: &mut Vec<T>,
    fields: &Fields,
) -> anyhow::Result<TantivyDocument> {
    let rows: Vec<&T> = pending.iter().collect();
    let batch = T::to_batch(&rows)?;
    let i = file.write_batch(&batch).await?;
    let doc = block::block_of_batches(
        fields,
        T::SIGNAL,
        file.path(),
        i,
        std::slice::from_ref(&batch),
    )?;
    pending.clear();
    Ok(doc)
}
