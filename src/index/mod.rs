//! The block index: one tantivy document per Parquet row group, naming the file and row
//! group and listing the distinct ids, services, names, attributes and body tokens inside.
//!
//! The index commit is also the store's commit point: its payload records the last WAL
//! segment whose rows are in Parquet, so after a crash the WAL replays exactly what the index
//! does not yet cover, and Parquet files no block document points at are removed.

mod attribute_values;
pub mod block;
mod block_columns;
mod cached;
pub mod filter;
mod filter_area;
mod mapped;
mod schema;
pub mod streams;
pub mod text;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

pub use attribute_values::AttributeValues;
pub use block::SeenInstance;
pub use filter::KeyKind;
pub use schema::Fields;
pub use streams::{BlockStreams, StreamCount, LOG_STREAM_COLUMNS};

use cached::BlockCache;

use crate::model::Signal;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("opening index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("this index was opened read-only")]
    ReadOnly,
    /// The index was written by an earlier version with other fields; `sightline reindex`
    /// (run by `serve` on its own) rebuilds it from the Parquet files.
    #[error("the index in {0} has an older layout and must be rebuilt from the Parquet files (sightline reindex)")]
    OldLayout(String),
}

/// Share of deleted block documents in a segment that makes tantivy merge it.
const DELETED_RATIO_BEFORE_MERGE: f32 = 0.3;

/// Block documents are few and large (one per row group of 16 384 records: ≈ 130 KB of filters
/// for logs), so tantivy's default merge levels, made for millions of small documents, were
/// wrong for them: every segment under 10 000 documents counted as one level, so the whole
/// index (≈ 3 800 documents, 460 MB after five minutes of logs) was rewritten with every
/// eighth commit, and reading it through the memory map put up to 490 MB of it in resident
/// memory each time. Levels start at this many documents instead (a commit brings ≈ 10)…
const MIN_MERGE_LEVEL_DOCS: u32 = 32;
/// …and a segment of more live documents is not merged again (≈ 130 MB of log blocks, 80 MB
/// of span blocks), which bounds what one merge reads and writes.
const MAX_DOCS_MERGED: usize = 1024;

/// A commit of [`BlockIndex::commit_blocks`] that searchers do not see yet. It holds the
/// index writer, so no other commit (compaction, retention) can publish it early.
#[must_use = "a commit nobody publishes stays invisible until the next one"]
pub struct Unpublished<'a> {
    index: &'a BlockIndex,
    _writer: std::sync::MutexGuard<'a, Option<IndexWriter>>,
}

impl Unpublished<'_> {
    /// Makes the commit visible to new searchers.
    pub fn publish(self) -> Result<(), IndexError> {
        self.index.reload()
    }
}

/// One block that a search matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    pub path: String,
    pub row_group: usize,
    pub time_min: i64,
    pub time_max: i64,
}

/// The payload of the index's last commit.
fn payload_of(index: &Index) -> Result<CommitPayload, IndexError> {
    let metas = index.load_metas()?;
    Ok(metas
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default())
}

/// What an index commit records besides the documents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CommitPayload {
    /// Every WAL segment numbered `<=` this is fully in Parquet and in this commit.
    wal_flushed_through: Option<u64>,
}

/// The block index with its single writer (none when opened read-only).
pub struct BlockIndex {
    index: Index,
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    fields: Fields,
    blocks: Arc<BlockCache>,
}

impl BlockIndex {
    /// Opens the index in `dir`, creating it when empty.
    pub fn open(dir: &Path) -> Result<BlockIndex, IndexError> {
        Self::open_with(dir, true)
    }

    /// Opens an existing index for searching only: no writer, no lock, no indexing threads
    /// (evidence snapshots, of which many may be open at once).
    pub fn open_read_only(dir: &Path) -> Result<BlockIndex, IndexError> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, writable: bool) -> Result<BlockIndex, IndexError> {
        std::fs::create_dir_all(dir)?;
        if !Self::layout_is_current(dir)? {
            return Err(IndexError::OldLayout(dir.display().to_string()));
        }
        let (schema, fields) = Fields::schema();
        let index = Index::open_or_create(MmapDirectory::open(dir)?, schema)?;
        index
            .tokenizers()
            .register(text::TOKENIZER, text::analyzer());
        index
            .tokenizers()
            .register(text::COUNTED_TOKENIZER, text::CountedWords::default());
        // One indexing thread: indexing a block is cheap, and the other core serves ingest.
        let writer = if writable {
            let writer: IndexWriter = index.writer_with_num_threads(1, 64 << 20)?;
            // Compaction and retention delete block documents; merge a segment once a third
            // of it is deleted, so dead blocks (and their filters) do not stay on disk.
            let mut policy = tantivy::merge_policy::LogMergePolicy::default();
            policy.set_del_docs_ratio_before_merge(DELETED_RATIO_BEFORE_MERGE);
            policy.set_min_layer_size(MIN_MERGE_LEVEL_DOCS);
            policy.set_max_docs_before_merge(MAX_DOCS_MERGED);
            writer.set_merge_policy(Box::new(policy));
            Some(writer)
        } else {
            None
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let blocks = BlockCache::new(fields.clone(), index.directory().clone(), dir.to_path_buf());
        // Read every block's location and filter now, so the first query after a start does
        // not pay for it.
        blocks.refresh(&reader.searcher())?;
        Ok(BlockIndex {
            index,
            writer: Mutex::new(writer),
            reader,
            fields,
            blocks,
        })
    }

    /// Whether `dir` holds no index yet or one with this version's fields.
    pub fn layout_is_current(dir: &Path) -> Result<bool, IndexError> {
        let directory = MmapDirectory::open(dir)?;
        if !Index::exists(&directory).map_err(tantivy::TantivyError::from)? {
            return Ok(true);
        }
        let existing = Index::open(directory)?.schema();
        Ok(existing == Fields::schema().0)
    }

    /// The WAL position recorded by the index in `dir`, whatever its layout (for rebuilding
    /// an index of an older layout without replaying what it already covered).
    pub fn wal_position_in(dir: &Path) -> Result<Option<u64>, IndexError> {
        let index = Index::open(MmapDirectory::open(dir)?)?;
        Ok(payload_of(&index)?.wal_flushed_through)
    }

    /// Waits for the index's background merges to finish, so a command that exits right after
    /// a large change (compaction, reindex) leaves a compact index behind.
    pub fn close(self) -> Result<(), IndexError> {
        let writer = self.writer.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = writer {
            writer.wait_merging_threads()?;
        }
        Ok(())
    }

    /// Field handles, for building block documents and queries.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The last WAL segment whose rows are committed in Parquet and here.
    pub fn wal_flushed_through(&self) -> Result<Option<u64>, IndexError> {
        Ok(payload_of(&self.index)?.wal_flushed_through)
    }

    /// Adds block documents and commits them together with the WAL position they cover. The
    /// commit is not visible until the caller publishes it ([`Unpublished::publish`]), and no
    /// other commit can make it visible before: the flusher publishes it in the same moment
    /// as it drops the memtable those blocks came from, so a query sees those rows once.
    pub fn commit_blocks(
        &self,
        docs: Vec<TantivyDocument>,
        wal_flushed_through: u64,
    ) -> Result<Unpublished<'_>, IndexError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = guard.as_mut().ok_or(IndexError::ReadOnly)?;
        for doc in docs {
            writer.add_document(doc)?;
        }
        let payload = CommitPayload {
            wal_flushed_through: Some(wal_flushed_through),
        };
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&payload).unwrap_or_default());
        prepared.commit()?;
        Ok(Unpublished {
            index: self,
            _writer: guard,
        })
    }

    /// Drops every block of one file (a quarantined one) and makes that visible, keeping the
    /// commit's WAL position.
    pub fn forget_file(&self, path: &str) -> Result<(), IndexError> {
        self.forget_files(&[path.to_string()])
    }

    /// Drops every block of several files in one commit, keeping the WAL position.
    pub fn forget_files(&self, paths: &[String]) -> Result<(), IndexError> {
        self.replace_files(paths, Vec::new())
    }

    /// Swaps the blocks of `old` files for `new_docs` in one commit, keeping the WAL position
    /// (compaction, a cluster's catalog follower; with no new blocks, forgetting files), and
    /// makes it visible.
    pub fn replace_files(
        &self,
        old: &[String],
        new_docs: Vec<TantivyDocument>,
    ) -> Result<(), IndexError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = guard.as_mut().ok_or(IndexError::ReadOnly)?;
        for path in old {
            writer.delete_term(Term::from_field_text(self.fields.path, path));
        }
        for doc in new_docs {
            writer.add_document(doc)?;
        }
        let payload = self.index.load_metas()?.payload.unwrap_or_default();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        // Visible before the writer is free: no other commit is between the two.
        self.reload()?;
        drop(guard);
        self.warm()
    }

    /// Makes the latest commit visible to new searchers. Cheap: the blocks of new segments
    /// are read by [`BlockIndex::warm`] or by the first query that meets them.
    pub fn reload(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }

    /// Reads the block locations and filters of segments the last reload brought in, and
    /// forgets those of segments gone (merged or deleted). Called after a reload, outside
    /// any lock that acknowledgements wait on.
    pub fn warm(&self) -> Result<(), IndexError> {
        self.blocks.refresh(&self.searcher())?;
        let telemetry = crate::telemetry::get();
        telemetry
            .index_cached_bytes
            .set(self.blocks.heap_bytes() as i64);
        telemetry
            .index_filter_mapped_bytes
            .set(self.blocks.mapped_bytes() as i64);
        Ok(())
    }

    /// Blocks that may hold any of these ids or id-like tokens (their filters say so).
    pub fn may_hold(&self, kind: KeyKind, values: &[&[u8]]) -> Box<dyn Query> {
        let keys = values.iter().map(|v| filter::key(kind, v)).collect();
        Box::new(self.blocks.may_hold_any(kind.width(), keys))
    }

    /// A point-in-time view for one query.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// An exact-term query on a string field.
    pub fn term(&self, field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        ))
    }

    /// Blocks that may hold an attribute `key` with `value`: those that list it, and those
    /// where `key` had too many values to list.
    pub fn attr_query(&self, key: &str, value: &str) -> Box<dyn Query> {
        Box::new(BooleanQuery::new(vec![
            (
                Occur::Should,
                self.term(self.fields.attr, &format!("{key}={value}")),
            ),
            (Occur::Should, self.term(self.fields.attr_overflow, key)),
        ]))
    }

    /// Blocks of `signal` matching `query` and overlapping `[start, end]` (Unix ns).
    pub fn search(
        &self,
        searcher: &Searcher,
        signal: Signal,
        query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Vec<BlockRef>, IndexError> {
        let query = self.window_query(signal, query, start, end);
        self.matching_blocks(searcher, &query)
    }

    /// `query` restricted to the blocks of `signal` that overlap `[start, end]`.
    fn window_query(
        &self,
        signal: Signal,
        query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> BooleanQuery {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, self.term(f.signal, signal.as_str())),
            (Occur::Must, query),
        ];
        if let Some(start) = start {
            let lower = Term::from_field_i64(f.time_max, start);
            let q = RangeQuery::new(std::ops::Bound::Included(lower), std::ops::Bound::Unbounded);
            clauses.push((Occur::Must, Box::new(q)));
        }
        if let Some(end) = end {
            let upper = Term::from_field_i64(f.time_min, end);
            let q = RangeQuery::new(std::ops::Bound::Unbounded, std::ops::Bound::Included(upper));
            clauses.push((Occur::Must, Box::new(q)));
        }
        BooleanQuery::new(clauses)
    }

    /// Every log block overlapping `[start, end]` whose bodies hold `word` (an indexed word,
    /// see `text::is_indexed`), with the number of its records that do: the word's term
    /// frequency in the block document (`text::CountedWords`). Reads postings only.
    pub fn body_word_counts(
        &self,
        searcher: &Searcher,
        word: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<(BlockRef, u32)>, IndexError> {
        use tantivy::postings::Postings;
        use tantivy::{DocSet, TERMINATED};
        let term = Term::from_field_text(self.fields.body, word);
        let mut out = Vec::new();
        for reader in searcher.segment_readers() {
            let inverted = reader.inverted_index(self.fields.body)?;
            let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::WithFreqs)?
            else {
                continue;
            };
            let blocks = self.blocks.of(reader)?;
            let alive = reader.alive_bitset();
            let mut doc = postings.doc();
            while doc != TERMINATED {
                let live = alive.is_none_or(|a| a.is_alive(doc));
                if let Some(cached) = blocks.get(doc).filter(|_| live) {
                    let block = &cached.block;
                    if block.time_max >= start && block.time_min <= end {
                        out.push((block.clone(), postings.term_freq()));
                    }
                }
                doc = postings.advance();
            }
        }
        Ok(out)
    }

    /// Like [`BlockIndex::search`] for log blocks, with each block's records per stream
    /// (`None` for a block whose counts the index does not hold).
    pub fn search_with_streams(
        &self,
        searcher: &Searcher,
        query: Box<dyn Query>,
        start: i64,
        end: i64,
    ) -> Result<Vec<(BlockRef, Option<BlockStreams>)>, IndexError> {
        let query = self.window_query(Signal::Logs, query, Some(start), Some(end));
        let mut out = Vec::new();
        self.for_each_match(searcher, &query, |cached| {
            out.push((cached.block.clone(), cached.streams.clone()));
        })?;
        Ok(out)
    }

    /// The blocks of every live document `query` matches, from the block cache (no document
    /// store reads).
    fn matching_blocks(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<Vec<BlockRef>, IndexError> {
        let mut out = Vec::new();
        self.for_each_match(searcher, query, |cached| out.push(cached.block.clone()))?;
        Ok(out)
    }

    /// Calls `f` with the cached block of every live document `query` matches.
    fn for_each_match(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        mut f: impl FnMut(&cached::CachedBlock),
    ) -> Result<(), IndexError> {
        let docs = searcher.search(query, &DocSetCollector)?;
        let mut segments = std::collections::HashMap::new();
        for address in docs {
            let ord = address.segment_ord;
            let blocks = match segments.get(&ord) {
                Some(b) => Arc::clone(b),
                None => {
                    let b = self.blocks.of(searcher.segment_reader(ord))?;
                    segments.insert(ord, b.clone());
                    b
                }
            };
            if let Some(cached) = blocks.get(address.doc_id) {
                f(cached);
            }
        }
        Ok(())
    }

    /// Every file path any block document points at.
    pub fn all_paths(&self) -> Result<HashSet<String>, IndexError> {
        let blocks = self.matching_blocks(&self.searcher(), &AllQuery)?;
        Ok(blocks.into_iter().map(|b| b.path).collect())
    }

    /// Whether any block points at file `path`.
    pub fn has_file(&self, path: &str) -> Result<bool, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.path, path),
            IndexRecordOption::Basic,
        );
        Ok(self.searcher().search(&query, &tantivy::collector::Count)? > 0)
    }

    /// The instances one block document (as built, before commit) saw.
    pub fn instances_of(&self, doc: &TantivyDocument) -> Vec<SeenInstance> {
        doc.get_first(self.fields.instances)
            .and_then(|v| v.as_str())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }

    /// Every instance any block saw, for rebuilding the service list on start.
    pub fn all_instances(&self) -> Result<Vec<SeenInstance>, IndexError> {
        let searcher = self.searcher();
        let docs = searcher.search(&AllQuery, &DocSetCollector)?;
        let mut out = Vec::new();
        for address in docs {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(json) = doc
                .get_first(self.fields.instances)
                .and_then(|v| v.as_str())
            {
                out.extend(serde_json::from_str::<Vec<SeenInstance>>(json).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_doc(index: &BlockIndex, path: &str) -> TantivyDocument {
        let f = index.fields();
        let mut doc = TantivyDocument::default();
        doc.add_text(f.signal, "logs");
        doc.add_text(f.path, path);
        doc.add_u64(f.row_group, 0);
        doc.add_i64(f.time_min, 1);
        doc.add_i64(f.time_max, 2);
        doc
    }

    /// A flush's commit stays invisible until the flusher publishes it, and no other commit
    /// can publish it meanwhile: it holds the writer, which compaction and retention need.
    #[test]
    fn a_commit_is_seen_only_once_published() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = BlockIndex::open(dir.path()).expect("index");
        let committed = index
            .commit_blocks(vec![block_doc(&index, "logs/a.parquet")], 7)
            .expect("commit");
        assert!(index.all_paths().expect("paths").is_empty());
        assert!(
            index.writer.try_lock().is_err(),
            "no other commit can slip in"
        );
        committed.publish().expect("publish");
        assert!(index.all_paths().expect("paths").contains("logs/a.parquet"));
        assert_eq!(index.wal_flushed_through().expect("payload"), Some(7));
        index
            .forget_files(&["logs/a.parquet".to_string()])
            .expect("forget");
        assert!(index.all_paths().expect("paths").is_empty());
    }

    /// The block cache gives back the document store's mapped pages once it has read them
    /// (`mapped.rs`); what is read again afterwards — by a query through the cached filters,
    /// or from the store itself — must be exactly what was committed.
    #[test]
    fn blocks_read_the_same_after_their_pages_are_given_back() {
        use tantivy::collector::Count;
        use tantivy::schema::Value;
        let dir = tempfile::tempdir().expect("tempdir");
        let index = BlockIndex::open(dir.path()).expect("index");
        let fields = index.fields().clone();
        // 64 blocks of 4 000 ids: a document store of ≈ 0.6 MB, many pages.
        let mut stored = Vec::new();
        let docs: Vec<TantivyDocument> = (0..64u32)
            .map(|b| {
                let mut keys: Vec<u64> = (0..4000u32)
                    .map(|i| filter::key(KeyKind::TraceId, &(b * 4000 + i).to_le_bytes()))
                    .collect();
                let bytes = filter::BlockFilter::build(&mut keys, filter::Width::Wide)
                    .to_bytes()
                    .expect("a fuse filter");
                let mut doc = block_doc(&index, &format!("traces/{b}.parquet"));
                doc.add_bytes(fields.wide_filter, &bytes);
                stored.push(bytes);
                doc
            })
            .collect();
        index
            .commit_blocks(docs, 1)
            .expect("commit")
            .publish()
            .expect("publish");
        index.warm().expect("warm");
        // Nothing of the document store stays resident but a partial last page.
        assert!(
            resident_store_bytes(dir.path()) <= 4096,
            "{} bytes of the document store still resident",
            resident_store_bytes(dir.path())
        );
        let searcher = index.searcher();
        for b in [0u32, 17, 63] {
            let id = (b * 4000 + 123).to_le_bytes();
            let query = index.may_hold(KeyKind::TraceId, &[&id]);
            assert!(searcher.search(&query, &Count).expect("search") >= 1);
        }
        let mut read_back = Vec::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(0).expect("store");
            for doc in store.iter::<TantivyDocument>(None) {
                let doc = doc.expect("doc");
                let bytes = doc.get_first(fields.wide_filter).and_then(|v| v.as_bytes());
                read_back.push(bytes.expect("filter bytes").to_vec());
            }
        }
        read_back.sort();
        stored.sort();
        assert_eq!(read_back, stored);
    }

    /// Resident bytes of the document-store mappings of the index in `dir`, from
    /// `/proc/self/smaps` (each mapping's header line ends with its file's path).
    fn resident_store_bytes(dir: &Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut in_store = false;
        let mut bytes = 0;
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("Rss:") if in_store => {
                    let kib: u64 = words.next().and_then(|k| k.parse().ok()).unwrap_or(0);
                    bytes += kib * 1024;
                }
                Some(first) if first.contains('-') && !first.ends_with(':') => {
                    let path = line.split_whitespace().nth(5).unwrap_or("");
                    in_store = path.ends_with(".store")
                        && Path::new(path).starts_with(dir.canonicalize().expect("dir"));
                }
                _ => {}
            }
        }
        bytes
    }
}
