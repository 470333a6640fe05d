//! Per-block membership filters for the values that are unique per record: trace, span and
//! correlation ids, linked trace ids and id-like body tokens (hex, uuids, long numbers).
//!
//! Two widths: trace, linked-trace and correlation ids get 16-bit fingerprints
//! (`BinaryFuse16`, ≈ 18 bits a value, 1 in 65 536 false positives), because an id lookup
//! has no time bound and probes every block — with 8 bits, fetching the spans of 40
//! candidate traces over 60 blocks read ≈ 10 blocks for nothing. So do body tokens of exactly
//! eight hex digits (a uuid's first group, a CRC-32, a short commit hash): the rare token
//! people paste most, looked up alone across thousands of blocks — with 8 bits, one such
//! search over 50 M logs (≈ 4 000 blocks) read 12–19 blocks for nothing. Other body tokens
//! and log span ids get 8-bit ones (`BinaryFuse8`, ≈ 9 bits, 0.4 %): they are many per record
//! and searched within a time window, usually beside words.
//!
//! Listing such values as index terms made the index larger than the data (≈ 100 B/record)
//! and its building the slowest ingest stage, while each term matched one block. A binary
//! fuse filter answers "may this block hold the value?" from memory at a fraction of the
//! bytes; a false positive only costs reading one block whose rows are then checked exactly.
//!
//! Keys are 64-bit xxHash values of the raw value, seeded by the value's kind, so a trace id
//! never matches a correlation id with the same bytes. The hash is part of the on-disk format:
//! changing it, or a kind's number, needs a reindex.

use twox_hash::XxHash64;
use xorf::{
    BinaryFuse16, BinaryFuse16Ref, BinaryFuse8, BinaryFuse8Ref, Descriptor, DmaSerializable,
    Filter, FilterRef,
};

/// What kind of value a filter key stands for (the hash seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    TraceId = 1,
    SpanId = 2,
    /// A trace id that a span of the block links to (consumer → producer).
    LinkedTraceId = 3,
    CorrelationId = 4,
    /// An id-like token of a log body (see [`super::text::is_indexed`]) other than a
    /// [`KeyKind::BodyHexWord`].
    BodyToken = 5,
    /// A log body token of exactly eight hex digits (see [`KeyKind::of_body_token`]).
    BodyHexWord = 6,
}

/// Fingerprint width of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// 8-bit fingerprints: body tokens.
    Narrow,
    /// 16-bit fingerprints: ids.
    Wide,
}

impl KeyKind {
    /// Which of a block's two filters holds keys of this kind.
    pub fn width(self) -> Width {
        match self {
            // A log's span id is looked up rarely (and then mostly beside its trace id): it
            // does not earn 16 bits a record.
            KeyKind::BodyToken | KeyKind::SpanId => Width::Narrow,
            KeyKind::TraceId
            | KeyKind::LinkedTraceId
            | KeyKind::CorrelationId
            | KeyKind::BodyHexWord => Width::Wide,
        }
    }

    /// The kind of a body token that is a filter key (decided by its text alone, so the
    /// writer and every query agree).
    pub fn of_body_token(token: &str) -> KeyKind {
        if token.len() == 8 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            KeyKind::BodyHexWord
        } else {
            KeyKind::BodyToken
        }
    }
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
    /// The same with 16-bit fingerprints.
    Fuse16(BinaryFuse16),
    /// No usable filter (construction failed, or the bytes did not parse): any key may be in
    /// the block, so it is always read and checked.
    Unknown,
}

impl BlockFilter {
    /// Builds the filter of a block from its keys (duplicates allowed; `keys` is reordered).
    pub fn build(keys: &mut Vec<u64>, width: Width) -> BlockFilter {
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return BlockFilter::Empty;
        }
        let built = match width {
            Width::Narrow => BinaryFuse8::try_from(keys.as_slice()).map(BlockFilter::Fuse),
            Width::Wide => BinaryFuse16::try_from(keys.as_slice()).map(BlockFilter::Fuse16),
        };
        match built {
            Ok(f) => f,
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
            BlockFilter::Fuse16(f) => f.contains(&key),
            BlockFilter::Unknown => true,
        }
    }

    /// The stored form: empty for no keys, xorf's descriptor followed by the fingerprints
    /// otherwise (16-bit ones little-endian, as xorf lays them out on the little-endian
    /// machines Sightline runs on); `None` when there is nothing usable to store.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            BlockFilter::Empty => Some(Vec::new()),
            BlockFilter::Fuse(f) => {
                let mut out = vec![0u8; DESCRIPTOR_LEN];
                f.dma_copy_descriptor_to(&mut out);
                out.extend_from_slice(f.dma_fingerprints());
                Some(out)
            }
            BlockFilter::Fuse16(f) => {
                let mut out = vec![0u8; DESCRIPTOR_LEN];
                f.dma_copy_descriptor_to(&mut out);
                out.extend(f.fingerprints.iter().flat_map(|v| v.to_le_bytes()));
                Some(out)
            }
            BlockFilter::Unknown => None,
        }
    }
}

/// The stored form of a filter, checked and borrowed where it lies (a document's bytes, or a
/// segment's filter area, [`super::filter_area`]).
#[derive(Debug, Clone, Copy)]
pub enum StoredFilter<'a> {
    /// The block holds no key.
    Empty,
    /// Bytes that do not describe a consistent filter: any key may be in the block.
    Unknown,
    /// A fuse filter: xorf's descriptor and the fingerprints it probes.
    Fuse {
        descriptor: &'a [u8],
        fingerprints: &'a [u8],
    },
}

impl<'a> StoredFilter<'a> {
    /// Checks `bytes` (the form [`BlockFilter::to_bytes`] writes): every probe the descriptor
    /// can make must land inside the fingerprints, or the filter reads as
    /// [`StoredFilter::Unknown`].
    pub fn parse(bytes: &'a [u8], width: Width) -> StoredFilter<'a> {
        if bytes.is_empty() {
            return StoredFilter::Empty;
        }
        let Some((head, fingerprints)) = bytes.split_at_checked(DESCRIPTOR_LEN) else {
            return StoredFilter::Unknown;
        };
        let descriptor = descriptor_of(head);
        let per_fingerprint = match width {
            Width::Narrow => 1,
            Width::Wide => 2,
        };
        // Every probe lands below segment_count_length + 2 × segment_length.
        let consistent = descriptor.segment_length.is_power_of_two()
            && descriptor.segment_length_mask == descriptor.segment_length - 1
            && fingerprints.len() % per_fingerprint == 0
            && descriptor.segment_count_length as usize + 2 * descriptor.segment_length as usize
                <= fingerprints.len() / per_fingerprint;
        if consistent {
            StoredFilter::Fuse {
                descriptor: head,
                fingerprints,
            }
        } else {
            StoredFilter::Unknown
        }
    }

    /// Whether the block may hold `key`, probing the fingerprints where they lie. 16-bit
    /// fingerprints must start at an even address (the filter area aligns them); if they do
    /// not, the answer is "may" (the block is read and its rows decide), never a panic.
    pub fn may_contain(&self, key: u64, width: Width) -> bool {
        match *self {
            StoredFilter::Empty => false,
            StoredFilter::Unknown => true,
            StoredFilter::Fuse {
                descriptor,
                fingerprints,
            } => match width {
                Width::Narrow => BinaryFuse8Ref::from_dma(descriptor, fingerprints).contains(&key),
                Width::Wide => {
                    if fingerprints
                        .as_ptr()
                        .align_offset(BinaryFuse16Ref::FINGERPRINT_ALIGNMENT)
                        != 0
                    {
                        return true;
                    }
                    BinaryFuse16Ref::from_dma(descriptor, fingerprints).contains(&key)
                }
            },
        }
    }
}

/// The descriptor at the head of `bytes` (missing bytes read as zero; callers check
/// consistency).
fn descriptor_of(head: &[u8]) -> Descriptor {
    let u32_at = |i: usize| {
        head.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0)
    };
    Descriptor {
        seed: head
            .get(0..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0),
        segment_length: u32_at(8),
        segment_length_mask: u32_at(12),
        segment_count_length: u32_at(16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds from 5000 keys (and their duplicates), stores, reads back: every key found;
    /// returns the stored size and the false positives among 100 000 other keys.
    fn round_trip(width: Width) -> (usize, usize) {
        let mut keys: Vec<u64> = (0..5000u32)
            .map(|i| key(KeyKind::TraceId, &i.to_le_bytes()))
            .collect();
        keys.extend(keys.clone()); // duplicates are fine
        let built = BlockFilter::build(&mut keys, width);
        let bytes = built.to_bytes().expect("a fuse filter");
        let read = StoredFilter::parse(&bytes, width);
        for i in 0..5000u32 {
            assert!(read.may_contain(key(KeyKind::TraceId, &i.to_le_bytes()), width));
        }
        let false_positives = (5000..105_000u32)
            .filter(|i| read.may_contain(key(KeyKind::TraceId, &i.to_le_bytes()), width))
            .count();
        (bytes.len(), false_positives)
    }

    #[test]
    fn finds_every_key_it_was_built_from_and_survives_its_stored_form() {
        let (bytes, false_positives) = round_trip(Width::Narrow);
        assert!(bytes < 5000 * 2, "{bytes} bytes for 5000 keys");
        assert!(false_positives < 1000, "{false_positives} of 100 000");
        let (bytes, false_positives) = round_trip(Width::Wide);
        assert!(bytes < 5000 * 3, "{bytes} bytes for 5000 keys");
        assert!(false_positives < 20, "{false_positives} of 100 000");
    }

    #[test]
    fn kinds_do_not_collide_and_empty_blocks_hold_nothing() {
        assert_ne!(
            key(KeyKind::TraceId, b"x"),
            key(KeyKind::CorrelationId, b"x")
        );
        let empty = BlockFilter::build(&mut Vec::new(), Width::Wide);
        assert!(!empty.may_contain(key(KeyKind::SpanId, b"x")));
        assert!(matches!(
            StoredFilter::parse(&[], Width::Narrow),
            StoredFilter::Empty
        ));
    }

    #[test]
    fn damaged_bytes_read_as_unknown_never_panic() {
        for width in [Width::Narrow, Width::Wide] {
            let mut keys = vec![1, 2, 3];
            let bytes = BlockFilter::build(&mut keys, width)
                .to_bytes()
                .expect("filter");
            for cut in 1..bytes.len() {
                let _ = StoredFilter::parse(&bytes[..cut], width).may_contain(42, width);
            }
            let mut garbage = bytes.clone();
            garbage[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(matches!(
                StoredFilter::parse(&garbage, width),
                StoredFilter::Unknown
            ));
        }
    }
}
