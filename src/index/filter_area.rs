//! A segment's block filters kept out of the heap: written once to a scratch file and read
//! through a read-only memory map.
//!
//! The filters are the part of the index that grows with the data (≈ 5 B a span, 8 B a log
//! record): held as heap vectors they were most of the server's resident memory after
//! minutes of load (≈ 600 MB after 61 M log records). In a mapped file only the pages a
//! lookup touches are resident, and the kernel may drop them again under pressure, since it
//! can read them back from the file.
//!
//! The file is a cache of what the segment's document store holds, not a stored format: it
//! is unlinked as soon as it is mapped (its space returns when the segment is dropped, and
//! nothing is left behind by a crash), and rebuilt from the document store whenever a
//! segment is read again. Where no scratch file can be made (a read-only directory), the
//! filters go to an anonymous mapping instead — heap-like, but still correct.

use std::io::{BufWriter, Write};
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use super::filter::{StoredFilter, Width};

/// Filters start at even offsets, so 16-bit fingerprints (after the 20-byte descriptor)
/// are aligned as xorf's borrowed filters require.
const ALIGN: u64 = 8;

/// Where one block's filter lies in its segment's [`FilterArea`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FilterSlot {
    /// The block holds no key.
    Empty,
    /// No usable filter: any key may be in the block.
    Unknown,
    /// A checked fuse filter at `offset`, `len` bytes long.
    At { offset: u64, len: u32 },
}

/// Where filters go while a segment is read.
enum Sink {
    File(BufWriter<std::fs::File>),
    Memory(Vec<u8>),
}

/// Collects a segment's filters, then maps them ([`FilterAreaWriter::finish`]).
pub(super) struct FilterAreaWriter {
    sink: Sink,
    written: u64,
}

impl FilterAreaWriter {
    /// A writer whose scratch file lives (unlinked) in `dir`, or in memory if none can be made.
    pub fn new(dir: &Path) -> FilterAreaWriter {
        let sink = match tempfile::tempfile_in(dir) {
            Ok(file) => Sink::File(BufWriter::with_capacity(1 << 16, file)),
            Err(e) => {
                tracing::debug!(
                    "no scratch file for block filters in {} ({e}); keeping them in memory",
                    dir.display()
                );
                Sink::Memory(Vec::new())
            }
        };
        FilterAreaWriter { sink, written: 0 }
    }

    /// Adds one block's stored filter (`None`: the document had none) and says where it went.
    /// Filters that do not parse are not copied: their slot says [`FilterSlot::Unknown`].
    pub fn push(&mut self, bytes: Option<&[u8]>, width: Width) -> FilterSlot {
        let Some(bytes) = bytes else {
            return FilterSlot::Unknown;
        };
        match StoredFilter::parse(bytes, width) {
            StoredFilter::Empty => FilterSlot::Empty,
            StoredFilter::Unknown => FilterSlot::Unknown,
            StoredFilter::Fuse { .. } => {
                let Ok(len) = u32::try_from(bytes.len()) else {
                    return FilterSlot::Unknown;
                };
                let padding = self.written.next_multiple_of(ALIGN) - self.written;
                let offset = self.written + padding;
                if self
                    .write(&[0u8; ALIGN as usize][..padding as usize])
                    .is_err()
                    || self.write(bytes).is_err()
                {
                    return FilterSlot::Unknown;
                }
                FilterSlot::At { offset, len }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::File(file) => file.write_all(bytes)?,
            Sink::Memory(buffer) => buffer.extend_from_slice(bytes),
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Maps what was written. A failure leaves no usable area: every slot then reads as
    /// "may hold" (blocks are read and checked), which is slow but never wrong.
    pub fn finish(self) -> FilterArea {
        if self.written == 0 {
            return FilterArea(None);
        }
        let mapped = match self.sink {
            Sink::File(file) => file
                .into_inner()
                .map_err(|e| e.into_error())
                // SAFETY: the file is this process's own unlinked scratch file: no other
                // process can open it, and nothing here writes to or truncates it after
                // this point, so the mapped bytes never change under the map.
                .and_then(|file| unsafe { Mmap::map(&file) }),
            Sink::Memory(buffer) => MmapMut::map_anon(buffer.len()).and_then(|mut map| {
                map.copy_from_slice(&buffer);
                map.make_read_only()
            }),
        };
        match mapped {
            Ok(map) => FilterArea(Some(map)),
            Err(e) => {
                tracing::warn!(
                    "block filters could not be mapped ({e}); blocks are read for every id"
                );
                FilterArea(None)
            }
        }
    }
}

/// A segment's filters, mapped read-only.
pub(super) struct FilterArea(Option<Mmap>);

impl FilterArea {
    /// Whether the block whose filter is at `slot` may hold `key`.
    pub fn may_contain(&self, slot: FilterSlot, width: Width, key: u64) -> bool {
        match slot {
            FilterSlot::Empty => false,
            FilterSlot::Unknown => true,
            FilterSlot::At { offset, len } => {
                let stored = usize::try_from(offset).ok().and_then(|start| {
                    let map = self.0.as_ref()?;
                    map.get(start..start.checked_add(len as usize)?)
                });
                match stored {
                    Some(bytes) => StoredFilter::parse(bytes, width).may_contain(key, width),
                    None => true,
                }
            }
        }
    }

    /// Bytes mapped (resident only where lookups touched them).
    pub fn mapped_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::{key, BlockFilter, KeyKind};
    use super::*;

    fn stored(keys: std::ops::Range<u32>, width: Width) -> Vec<u8> {
        let mut keys: Vec<u64> = keys
            .map(|i| key(KeyKind::TraceId, &i.to_le_bytes()))
            .collect();
        BlockFilter::build(&mut keys, width)
            .to_bytes()
            .expect("a fuse filter")
    }

    /// Filters of odd sizes one after another: each is found where it was put, answers for
    /// its own keys and (almost) never for another block's, in the file and in memory.
    fn check_area(dir: &Path) {
        let mut writer = FilterAreaWriter::new(dir);
        let mut slots = Vec::new();
        for b in 0..20u32 {
            let width = if b % 2 == 0 {
                Width::Wide
            } else {
                Width::Narrow
            };
            let keys = b * 1000..b * 1000 + 1 + b * 37;
            slots.push((
                writer.push(Some(&stored(keys.clone(), width)), width),
                width,
                keys,
            ));
        }
        let empty = writer.push(Some(&[]), Width::Wide);
        let missing = writer.push(None, Width::Wide);
        let damaged = writer.push(Some(&[1, 2, 3]), Width::Narrow);
        let area = writer.finish();
        assert!(area.mapped_bytes() > 0);
        for (slot, width, keys) in &slots {
            assert!(matches!(slot, FilterSlot::At { .. }));
            for i in keys.clone() {
                assert!(area.may_contain(*slot, *width, key(KeyKind::TraceId, &i.to_le_bytes())));
            }
            let strangers = (100_000..110_000u32)
                .filter(|i| {
                    area.may_contain(*slot, *width, key(KeyKind::TraceId, &i.to_le_bytes()))
                })
                .count();
            assert!(strangers < 100, "{strangers} false positives of 10 000");
        }
        assert_eq!(empty, FilterSlot::Empty);
        assert!(!area.may_contain(empty, Width::Wide, 1));
        assert_eq!(missing, FilterSlot::Unknown);
        assert_eq!(damaged, FilterSlot::Unknown);
        assert!(area.may_contain(damaged, Width::Narrow, 1));
    }

    #[test]
    fn filters_answer_the_same_from_the_mapped_scratch_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        check_area(dir.path());
        // The scratch file is unlinked: nothing stays in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn filters_answer_the_same_from_memory_when_no_file_can_be_made() {
        check_area(Path::new("/nonexistent/sightline/filters"));
    }

    #[test]
    fn a_slot_outside_the_area_reads_as_may_hold() {
        let area = FilterAreaWriter::new(Path::new("/nonexistent")).finish();
        let slot = FilterSlot::At {
            offset: 1 << 40,
            len: 64,
        };
        assert!(area.may_contain(slot, Width::Wide, 7));
    }
}
