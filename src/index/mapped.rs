//! Giving back the pages of a segment's document store once its blocks are read.
//!
//! tantivy reads index files through memory maps (`MmapDirectory`), and every page of a
//! mapping that was read counts in the process's resident memory until the mapping goes.
//! The block cache reads each segment's whole document store once (the blocks' locations
//! and filters, [`super::cached`]) and never again, yet those pages stayed resident as long
//! as the segment lived: at 170 000 spans/s that was a quarter of a GiB after five minutes,
//! growing with the data. Telling the kernel the pages are not needed
//! (`madvise(MADV_DONTNEED)`) drops them from this process; they stay in the page cache,
//! and a later read (a rebuilt cache after a restart) faults them back in from the file.

use tantivy::directory::Directory;
use tantivy::index::SegmentId;

/// Releases the resident pages of segment `id`'s document store in `directory`.
///
/// Sound only for a directory that memory-maps its files read-only (the index is always
/// opened on an `MmapDirectory`, see [`super::BlockIndex`]): on anonymous memory
/// `MADV_DONTNEED` would zero the pages. Only whole pages inside the file's bytes are
/// advised. Failures are ignored: the pages then simply stay resident.
pub(super) fn release_store_pages(directory: &dyn Directory, id: SegmentId) {
    let path = std::path::PathBuf::from(format!("{}.store", id.uuid_string()));
    let Some(bytes) = directory
        .open_read(&path)
        .ok()
        .and_then(|file| file.read_bytes().ok())
    else {
        return;
    };
    let page = page_size();
    let start = bytes.as_slice().as_ptr() as usize;
    let end = start + bytes.len();
    let first = start.div_ceil(page) * page;
    let last = end / page * page;
    if last <= first {
        return;
    }
    // SAFETY: [first, last) lies inside the read-only shared file mapping `bytes` points
    // into (held alive by `bytes` for the call). MADV_DONTNEED on such a mapping only drops
    // page-table entries; the next access reads the same file contents back, so no Rust
    // reference into the mapping ever sees different bytes.
    unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_DONTNEED,
        );
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}
