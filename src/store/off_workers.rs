//! Decoding Parquet off the async workers. Decompressing and decoding a row group is CPU
//! work of milliseconds to seconds; done inside a task's poll it would hold one of the
//! runtime's few worker threads, and every acknowledgement queued behind that worker would
//! wait for a query. So a read fetches each row group's bytes on the runtime (I/O), then
//! decodes them on the blocking pool, while the workers go on serving ingest.

use arrow::record_batch::RecordBatch;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};

use super::StoreError;

/// Every batch of `stream`: each row group fetched on the runtime, then decoded on the
/// blocking pool ([`off_workers`]).
pub(super) async fn decode_row_groups<R>(
    mut stream: ParquetRecordBatchStream<R>,
) -> Result<Vec<RecordBatch>, StoreError>
where
    R: AsyncFileReader + Unpin + Send + 'static,
{
    let mut batches = Vec::new();
    while let Some(row_group) = stream.next_row_group().await? {
        let decoded = off_workers(move || row_group.collect::<Result<Vec<_>, _>>()).await?;
        batches.extend(decoded?);
    }
    Ok(batches)
}

/// Runs `work` (CPU only, no awaiting) on the blocking pool, so no async worker is held
/// while it runs.
pub(super) async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        StoreError::Io(std::io::Error::other(format!(
            "a decoding task failed: {e}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// While a decode blocks its thread, another task still runs on the runtime's only
    /// worker — acknowledgements are not stuck behind a query.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_a_decode_blocks() {
        let (started, wait_started) = tokio::sync::oneshot::channel::<()>();
        let (ran, wait_ran) = std::sync::mpsc::channel::<()>();
        let decode = tokio::spawn(off_workers(move || {
            let _ = started.send(());
            // Blocks until the other task has run (or fails after 10 s: were it on the only
            // worker, the other task never could).
            wait_ran.recv_timeout(Duration::from_secs(10)).is_ok()
        }));
        wait_started.await.unwrap();
        let other = tokio::spawn(async move {
            let _ = ran.send(());
        });
        assert!(decode.await.unwrap().unwrap(), "the other task never ran");
        other.await.unwrap();
    }

    /// A real file of four row groups decodes, group by group, to the values written, in order.
    #[tokio::test]
    async fn a_file_decodes_group_by_group_in_order() {
        use arrow::array::Int64Array;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("v", arrow::datatypes::DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(300))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema,
            Some(props),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let stream = parquet::arrow::ParquetRecordBatchStreamBuilder::new(file)
            .await
            .unwrap()
            .build()
            .unwrap();
        let batches = decode_row_groups(stream).await.unwrap();
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(
            values,
            (0..1000).collect::<Vec<_>>(),
            "four row groups, in order"
        );
    }
}
