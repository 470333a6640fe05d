//! The maintenance task that moves corrupt Parquet files aside.
//!
//! Queries only report a file they cannot decode (`query::CorruptFileReports`); this task moves it
//! to `store/quarantine/` (kept for inspection, never deleted) and drops its blocks from the
//! index in one commit (a searcher sees the file's blocks or none of them). Each file is
//! handled once however many queries report it.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::index::BlockIndex;
use crate::store::Store;

/// Quarantines every reported file until every reporting handle is dropped.
pub async fn run(mut reports: UnboundedReceiver<String>, store: Store, index: Arc<BlockIndex>) {
    let mut handled = HashSet::new();
    while let Some(path) = reports.recv().await {
        if !handled.insert(path.clone()) {
            continue;
        }
        match store.quarantine(&path).await {
            Ok(()) => tracing::error!(file = %path, "corrupt Parquet file moved to quarantine"),
            Err(e) => tracing::error!(file = %path, "could not quarantine: {e}"),
        }
        if let Err(e) = index.forget_file(&path) {
            tracing::error!(file = %path, "could not drop its blocks from the index: {e}");
        }
    }
}
