//! Per-block membership filters for the values that are unique per record: trace, span and
//! correlation ids, linked trace ids and id-like body tokens (hex, uuids, long numbers).
//!
//! Listing such values as index terms made the index larger than the data (≈ 100 B/record)
//! and its building the slowest ingest stage, while each term matched one block. A binary
//! fuse filter (`xorf`, 8-bit fingerprints: ≈ 9 bits per distinct value, 0.4 % false
//! positives) answers "may this block hold the value?" from memory at a fraction of the
//! bytes; a false positive only costs reading one block whose rows are then checked exactly.
//!
//! Keys are 64-bit xxHash values of the raw value, seeded by the value's kind, so a trace id
//! never matches a correlation id with the same bytes. The hash is part of the on-disk format:
//! changing it, or a kind's number, needs a reindex.

use twox_hash::XxHash64;
use xorf::{BinaryFuse8, Descriptor, DmaSerializable, Filter};

/// What kind of value a filter key stands for (the hash seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    TraceId = 1,
    SpanId = 2,
    /// A trace id that a span of the block links to (consumer → producer).
    LinkedTraceId = 3,
    CorrelationId = 4,
    /// An id-like token of a log body (see [`super::text::is_indexed`]).
    BodyToken = 5,
}

/// The filter key of one value.
pub fn key(kind: KeyKind, value: &[u8]) -> u64 {
    XxHash64::oneshot(kind as u64, value)
}

/// Bytes of the descriptor that leads a serialized filter (xorf's DMA layout: seed u64,
/// segment length, its mask and the segments' total length as u32, little-endian).
const DESCRIPTOR_LEN: usize = Descriptor::DMA_LEN;

/// A block's filter: which keys the block may hold.
#[derive(Debug, Clone)]
pub enum BlockFilter {
    /// The block holds no key at all.
    Empty,
    /// The block may hold the keys the fuse filter contains.
    Fuse(BinaryFuse8),
    /// No usable filter (construction failed, or the bytes did not parse): any key may be in
    /// the block, so it is always read and checked.
    Unknown,
}

impl BlockFilter {
    /// Builds the filter of a block from its keys (duplicates allowed; `keys` is reordered).
    pub fn build(keys: &mut Vec<u64>) -> BlockFilter {
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return BlockFilter::Empty;
        }
        match BinaryFuse8::try_from(keys.as_slice()) {
            Ok(f) => BlockFilter::Fuse(f),
            Err(e) => {
                tracing::warn!("block filter not built ({e}); the block is read for every id");
                BlockFilter::Unknown
            }
        }
    }

    /// Whether the block may hold `key` (never false for a key that is in it).
    pub fn may_contain(&self, key: u64) -> bool {
        match self {
            BlockFilter::Empty => false,
            BlockFilter::Fuse(f) => f.contains(&key),
            BlockFilter::Unknown => true,
        }
    }

    /// The stored form: empty for no keys, xorf's descriptor followed by the fingerprints
    /// otherwise; `None` when there is nothing usable to store.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            BlockFilter::Empty => Some(Vec::new()),
            BlockFilter::Fuse(f) => {
                let mut out = vec![0u8; DESCRIPTOR_LEN];
                f.dma_copy_descriptor_to(&mut out);
                out.extend_from_slice(f.dma_fingerprints());
                Some(out)
            }
            BlockFilter::Unknown => None,
        }
    }

    /// Reads the stored form back. Bytes that do not describe a consistent filter give
    /// [`BlockFilter::Unknown`] (read every block) rather than a filter that could index out
    /// of its fingerprints.
    pub fn from_bytes(bytes: &[u8]) -> BlockFilter {
        if bytes.is_empty() {
            return BlockFilter::Empty;
        }
        let Some((head, fingerprints)) = bytes.split_at_checked(DESCRIPTOR_LEN) else {
            return BlockFilter::Unknown;
        };
        let u32_at = |i: usize| {
            head.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0)
        };
        let seed = head
            .get(0..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        let descriptor = Descriptor {
            seed,
            segment_length: u32_at(8),
            segment_length_mask: u32_at(12),
            segment_count_length: u32_at(16),
        };
        // Every probe lands below segment_count_length + 2 × segment_length.
        let consistent = descriptor.segment_length.is_power_of_two()
            && descriptor.segment_length_mask == descriptor.segment_length - 1
            && descriptor.segment_count_length as usize + 2 * descriptor.segment_length as usize
                <= fingerprints.len();
        if !consistent {
            return BlockFilter::Unknown;
        }
        BlockFilter::Fuse(BinaryFuse8 {
            descriptor,
            fingerprints: fingerprints.into(),
        })
    }

    /// Bytes held in memory.
    pub fn heap_bytes(&self) -> usize {
        match self {
            BlockFilter::Fuse(f) => f.fingerprints.len() + DESCRIPTOR_LEN,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_it_was_built_from_and_survives_its_stored_form() {
        let mut keys: Vec<u64> = (0..5000u32)
            .map(|i| key(KeyKind::TraceId, &i.to_le_bytes()))
            .collect();
        keys.extend(keys.clone()); // duplicates are fine
        let built = BlockFilter::build(&mut keys);
        let bytes = built.to_bytes().expect("a fuse filter");
        assert!(
            bytes.len() < 5000 * 2,
            "{} bytes for 5000 keys",
            bytes.len()
        );
        let read = BlockFilter::from_bytes(&bytes);
        for i in 0..5000u32 {
            assert!(read.may_contain(key(KeyKind::TraceId, &i.to_le_bytes())));
        }
        let false_positives = (5000..105_000u32)
            .filter(|i| read.may_contain(key(KeyKind::TraceId, &i.to_le_bytes())))
            .count();
        assert!(false_positives < 1000, "{false_positives} of 100 000");
    }

    #[test]
    fn kinds_do_not_collide_and_empty_blocks_hold_nothing() {
        assert_ne!(
            key(KeyKind::TraceId, b"x"),
            key(KeyKind::CorrelationId, b"x")
        );
        let empty = BlockFilter::build(&mut Vec::new());
        assert!(!empty.may_contain(key(KeyKind::SpanId, b"x")));
        assert!(matches!(BlockFilter::from_bytes(&[]), BlockFilter::Empty));
    }

    #[test]
    fn damaged_bytes_read_as_unknown_never_panic() {
        let mut keys = vec![1, 2, 3];
        let bytes = BlockFilter::build(&mut keys).to_bytes().expect("filter");
        for cut in 1..bytes.len() {
            let f = BlockFilter::from_bytes(&bytes[..cut]);
            assert!(matches!(f, BlockFilter::Unknown | BlockFilter::Fuse(_)));
            let _ = f.may_contain(42);
        }
        let mut garbage = bytes.clone();
        garbage[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            BlockFilter::from_bytes(&garbage),
            BlockFilter::Unknown
        ));
    }
}
