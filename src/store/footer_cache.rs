//! Parsed Parquet footers of recently read files.
//!
//! Every read of a file used to fetch and parse its footer (schema, row-group and page
//! metadata) again: a stat, a read and a parse per file per query, and for a compacted hour
//! file with a hundred row groups that parse costs more than reading one row group. Files are
//! immutable once written (new files get new names), so a cached footer never goes stale;
//! deleted files are dropped from the cache.

use moka::sync::Cache;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

/// Footers kept at most; the least used go first (`moka`'s TinyLFU), and a footer costs one
/// read to load again.
const CAPACITY: u64 = 512;

/// Footers by object path.
pub struct FooterCache {
    entries: Cache<String, ArrowReaderMetadata>,
}

impl Default for FooterCache {
    fn default() -> Self {
        FooterCache {
            entries: Cache::new(CAPACITY),
        }
    }
}

impl FooterCache {
    /// The cached footer of `path`, if any.
    pub fn get(&self, path: &str) -> Option<ArrowReaderMetadata> {
        self.entries.get(path)
    }

    /// Remembers the footer of `path`.
    pub fn insert(&self, path: &str, footer: ArrowReaderMetadata) {
        self.entries.insert(path.to_string(), footer);
    }

    /// Forgets `path` (deleted or moved away).
    pub fn remove(&self, path: &str) {
        self.entries.invalidate(path);
    }
}
