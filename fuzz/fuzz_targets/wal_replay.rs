//! Arbitrary bytes as a WAL segment: replay must never panic, and must truncate what it
//! cannot read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline::wal::{SyncPolicy, Wal};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("00000000000000000001.wal"), data).expect("segment");
    let (_, replayed) = Wal::open(dir.path(), SyncPolicy::Never, None).expect("a WAL always opens");
    let kept = std::fs::metadata(dir.path().join("00000000000000000001.wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(kept as usize <= data.len());
    let payload: usize = replayed
        .iter()
        .map(|r| r.payload.len() + sightline::wal::HEADER_LEN)
        .sum();
    assert_eq!(
        payload as u64, kept,
        "what is kept is exactly the records replayed"
    );
});
