//! Parsed Parquet footers of recently read files.
//!
//! Every read of a file used to fetch and parse its footer (schema, row-group and page
//! metadata) again: a stat, a read and a parse per file per query, and for a compacted hour
//! file with a hundred row groups that parse costs more than reading one row group. Files are
//! immutable once written (new files get new names), so a cached footer never goes stale;
//! deleted files are dropped from the cache.

use std::collections::HashMap;
use std::sync::Mutex;

use parquet::arrow::arrow_reader::ArrowReaderMetadata;

/// Footers kept at most; when full the cache starts over (simple, and a footer costs one
/// read to load again).
const CAPACITY: usize = 512;

/// Footers by object path.
#[derive(Default)]
pub struct FooterCache {
    entries: Mutex<HashMap<String, ArrowReaderMetadata>>,
}

impl FooterCache {
    /// The cached footer of `path`, if any.
    pub fn get(&self, path: &str) -> Option<ArrowReaderMetadata> {
        self.lock().get(path).cloned()
    }

    /// Remembers the footer of `path`.
    pub fn insert(&self, path: &str, footer: ArrowReaderMetadata) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(path.to_string(), footer);
    }

    /// Forgets `path` (deleted or moved away).
    pub fn remove(&self, path: &str) {
        self.lock().remove(path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ArrowReaderMetadata>> {
        // A panic while holding the lock cannot leave the map half-changed: recover it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
