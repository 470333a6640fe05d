//! What every block document says, held per tantivy segment: where the block is (file, row
//! group, time range), its filters (mapped from a scratch file, [`super::filter_area`]) and,
//! for log blocks, its records per stream.
//!
//! Segments never change once written (deletes only mark documents), so a segment's blocks
//! are read from its document store once, the first time a query or a reload meets the
//! segment, and dropped when a reload no longer sees it. Queries then never touch the
//! document store: a search maps matching document ids straight to blocks, and an id lookup
//! asks each candidate block's filter.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tantivy::directory::ManagedDirectory;
use tantivy::index::SegmentId;
use tantivy::query::doc_predicate_query::{DocPredicateQuery, FunctionPredicate};
use tantivy::schema::Value;
use tantivy::{DocId, Searcher, SegmentReader, TantivyDocument};

use super::filter::Width;
use super::filter_area::{FilterArea, FilterAreaWriter, FilterSlot};
use super::streams::{BlockStreams, StreamCount, StreamInterner};
use super::{BlockRef, Fields};

/// Bytes a block's entry for one stream holds (the values are shared across the segment).
const STREAM_COUNT_BYTES: usize = std::mem::size_of::<StreamCount>();

/// One block document as queries need it.
pub(super) struct CachedBlock {
    pub block: BlockRef,
    /// Id-like body tokens and span ids (the 8-bit filter).
    pub tokens: FilterSlot,
    /// Trace, linked-trace and correlation ids and eight-hex-digit body tokens (the 16-bit
    /// filter).
    pub ids: FilterSlot,
    /// Log blocks: records per stream (`None` for other blocks, or stored text that did not
    /// parse).
    pub streams: Option<BlockStreams>,
}

impl CachedBlock {
    fn filter(&self, width: Width) -> FilterSlot {
        match width {
            Width::Narrow => self.tokens,
            Width::Wide => self.ids,
        }
    }
}

/// The blocks of one segment, by document id (`None`: a document that is not a block), and
/// the mapped area their filters lie in.
pub(super) struct SegmentBlocks {
    blocks: Vec<Option<CachedBlock>>,
    filters: FilterArea,
}

impl SegmentBlocks {
    pub fn get(&self, doc: DocId) -> Option<&CachedBlock> {
        self.blocks.get(doc as usize).and_then(Option::as_ref)
    }

    /// Whether block `doc` may hold any of `keys` (of filter `width`).
    fn may_hold_any(&self, doc: DocId, width: Width, keys: &[u64]) -> bool {
        match self.get(doc) {
            Some(b) => {
                let slot = b.filter(width);
                keys.iter()
                    .any(|k| self.filters.may_contain(slot, width, *k))
            }
            // Not a block we could read: keep it, the rows decide.
            None => true,
        }
    }

    /// Heap bytes held (the filters are mapped, not counted here).
    fn heap_bytes(&self) -> usize {
        let entries = self.blocks.len() * std::mem::size_of::<Option<CachedBlock>>();
        let owned: usize = self
            .blocks
            .iter()
            .flatten()
            .map(|b| {
                b.streams.as_ref().map_or(0, |s| s.len()) * STREAM_COUNT_BYTES + b.block.path.len()
            })
            .sum();
        entries + owned
    }
}

/// The per-segment block cache of one index.
pub(super) struct BlockCache {
    fields: Fields,
    /// The index's memory-mapped directory, whose document-store pages are given back once
    /// a segment's blocks are read ([`super::mapped`]).
    directory: ManagedDirectory,
    /// Where the segments' filter scratch files are made (the index directory; they are
    /// unlinked at once, so tantivy never sees them).
    scratch: PathBuf,
    segments: Mutex<HashMap<SegmentId, Arc<SegmentBlocks>>>,
}

impl BlockCache {
    pub fn new(fields: Fields, directory: ManagedDirectory, scratch: PathBuf) -> Arc<BlockCache> {
        Arc::new(BlockCache {
            fields,
            directory,
            scratch,
            segments: Mutex::default(),
        })
    }

    /// The blocks of `reader`'s segment, read from its document store on first use.
    pub fn of(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentBlocks>> {
        let id = reader.segment_id();
        if let Some(found) = self.lock().get(&id) {
            return Ok(found.clone());
        }
        // Read outside the lock; two queries meeting a new segment at once both read it.
        let loaded = Arc::new(self.load(reader)?);
        super::mapped::release_store_pages(&self.directory, id);
        self.lock().insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Reads every segment of `searcher` not read yet and forgets segments it no longer has.
    pub fn refresh(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let current: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        self.lock().retain(|id, _| current.contains(id));
        for reader in searcher.segment_readers() {
            self.of(reader)?;
        }
        Ok(())
    }

    /// Heap bytes of block locations and stream counts held.
    pub fn heap_bytes(&self) -> usize {
        self.lock().values().map(|s| s.heap_bytes()).sum()
    }

    /// Bytes of filters mapped from scratch files (resident only where lookups touched them).
    pub fn mapped_bytes(&self) -> usize {
        self.lock().values().map(|s| s.filters.mapped_bytes()).sum()
    }

    /// A query matching the blocks that may hold any of `keys` (of filter `width`).
    pub fn may_hold_any(self: &Arc<Self>, width: Width, keys: Vec<u64>) -> DocPredicateQuery {
        let cache = self.clone();
        let keys: Arc<[u64]> = keys.into();
        FunctionPredicate::from(move |reader: &SegmentReader| {
            let blocks = cache.of(reader)?;
            let keys = keys.clone();
            Ok(move |doc: DocId| blocks.may_hold_any(doc, width, &keys))
        })
        .into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<SegmentBlocks>>> {
        self.segments.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, reader: &SegmentReader) -> tantivy::Result<SegmentBlocks> {
        let f = &self.fields;
        let store = reader.get_store_reader(0)?;
        let mut blocks = Vec::with_capacity(reader.max_doc() as usize);
        let mut streams = StreamInterner::default();
        let mut filters = FilterAreaWriter::new(&self.scratch);
        // Without an alive bitset the iterator yields every document in id order.
        for doc in store.iter::<TantivyDocument>(None) {
            let doc = doc?;
            let text = |field| doc.get_first(field).and_then(|v| v.as_str());
            let int = |field| doc.get_first(field).and_then(|v| v.as_i64());
            let block = match (
                text(f.path),
                doc.get_first(f.row_group).and_then(|v| v.as_u64()),
                int(f.time_min),
                int(f.time_max),
            ) {
                (Some(path), Some(row_group), Some(time_min), Some(time_max)) => {
                    let bytes = |field| doc.get_first(field).and_then(|v| v.as_bytes());
                    Some(CachedBlock {
                        tokens: filters.push(bytes(f.narrow_filter), Width::Narrow),
                        ids: filters.push(bytes(f.wide_filter), Width::Wide),
                        streams: text(f.streams).and_then(|s| streams.parse(s)),
                        block: BlockRef {
                            path: path.to_string(),
                            row_group: row_group as usize,
                            time_min,
                            time_max,
                        },
                    })
                }
                _ => None,
            };
            blocks.push(block);
        }
        Ok(SegmentBlocks {
            blocks,
            filters: filters.finish(),
        })
    }
}
