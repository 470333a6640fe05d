//! The write-ahead log: every acknowledged export is in here, on disk, before it is answered.
//!
//! The log is a folder of numbered segment files. Records are appended to the newest segment;
//! [`Wal::commit`] writes a group of records (their headers and payloads in one vectored
//! write, payloads not copied) and makes them durable with one `fdatasync` (group commit: the
//! writer batches many exports per sync). A segment is *sealed* by [`Wal::rotate`] when the
//! in-memory rows it covers are frozen for flushing, and deleted by [`Wal::delete_through`]
//! only once those rows are in Parquet and committed in the index.
//!
//! On open, every segment is replayed in order. A torn or corrupt record (a crash mid-write)
//! ends that segment: the file is truncated there with a warning and the server starts.

mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};

#[cfg(test)]
use record::encode;
pub use record::{decode, Decoded, HEADER_LEN};

use crate::model::Signal;

/// When appended records reach the disk.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// `fdatasync` before every acknowledgement (default): nothing acknowledged is lost even
    /// if the machine loses power.
    Always,
    /// Leave flushing to the operating system: survives a process crash (`kill -9`), not a
    /// power loss. For benchmarks and throw-away environments.
    Never,
}

/// One record read back during replay.
#[derive(Debug)]
pub struct ReplayedRecord {
    pub signal: Signal,
    pub payload: Vec<u8>,
}

/// The open log, appending to its newest segment.
pub struct Wal {
    dir: PathBuf,
    policy: SyncPolicy,
    file: File,
    seq: u64,
    segment_bytes: u64,
}

const SEGMENT_SUFFIX: &str = ".wal";

/// `write_all` for a vectored write (std's `write_all_vectored` is not stable): writes until
/// every slice is out, going on after short writes and interruptions.
fn write_all_vectored(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Wal {
    /// Opens the log in `dir`, deleting segments at or below `flushed_through` (already in the
    /// store), replaying the rest, and starting a fresh segment for new appends.
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        flushed_through: Option<u64>,
    ) -> io::Result<(Wal, Vec<ReplayedRecord>)> {
        fs::create_dir_all(dir)?;
        let mut replayed = Vec::new();
        let mut last_seq = flushed_through.unwrap_or(0);
        for (seq, path) in list_segments(dir)? {
            last_seq = last_seq.max(seq);
            if flushed_through.is_some_and(|f| seq <= f) {
                fs::remove_file(&path)?;
                continue;
            }
            replay_segment(&path, &mut replayed)?;
        }
        let seq = last_seq + 1;
        let file = create_segment(dir, seq)?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            policy,
            file,
            seq,
            segment_bytes: 0,
        };
        Ok((wal, replayed))
    }

    /// Writes `records` (signal, OTLP payload) at the end of the current segment and, under
    /// [`SyncPolicy::Always`], syncs them to disk: durable when this returns `Ok`.
    pub fn commit(&mut self, records: &[(Signal, &[u8])]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let headers: Vec<_> = records
            .iter()
            .map(|(signal, payload)| record::header(*signal, payload))
            .collect();
        let mut slices: Vec<IoSlice> = headers
            .iter()
            .zip(records)
            .flat_map(|(header, (_, payload))| [IoSlice::new(header), IoSlice::new(payload)])
            .collect();
        let bytes: usize = slices.iter().map(|s| s.len()).sum();
        let result = write_all_vectored(&mut self.file, &mut slices).and_then(|()| {
            if self.policy == SyncPolicy::Always {
                self.file.sync_data()?;
            }
            Ok(())
        });
        match result {
            Ok(()) => self.segment_bytes += bytes as u64,
            // Cut off a partial write so the records appended after it are not hidden behind
            // a corrupt record on replay. If this fails too, replay truncates there anyway.
            Err(_) => {
                let _ = self.file.set_len(self.segment_bytes);
            }
        }
        result
    }

    /// Seals the current segment and starts the next; returns the sealed segment's number.
    /// Everything appended so far is covered by segments `<=` that number.
    pub fn rotate(&mut self) -> io::Result<u64> {
        self.file.sync_data()?;
        let sealed = self.seq;
        self.seq += 1;
        self.file = create_segment(&self.dir, self.seq)?;
        self.segment_bytes = 0;
        Ok(sealed)
    }

    /// Bytes in the current segment, for metrics and tests.
    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Deletes every sealed segment numbered `<= seq` in `dir`.
    pub fn delete_through(dir: &Path, seq: u64) -> io::Result<()> {
        for (s, path) in list_segments(dir)? {
            if s <= seq {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, seq))?;
    // Make the new file's directory entry durable, or a power loss could forget the segment.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Segments in `dir`, oldest first. Files that are not segments are ignored.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every intact record of one segment; truncates a torn or corrupt tail.
fn replay_segment(path: &Path, out: &mut Vec<ReplayedRecord>) -> io::Result<()> {
    let bytes = fs::read(path)?;
    let mut offset = 0;
    loop {
        match decode(&bytes[offset..]) {
            Decoded::Record {
                signal,
                payload,
                len,
            } => {
                out.push(ReplayedRecord {
                    signal,
                    payload: payload.to_vec(),
                });
                offset += len;
            }
            Decoded::End => return Ok(()),
            Decoded::Corrupt(reason) => {
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    dropped_bytes = bytes.len() - offset,
                    "WAL segment has a torn or corrupt tail ({reason}); truncating it"
                );
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_after_reopen_and_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, replayed) = Wal::open(dir.path(), SyncPolicy::Always, None).unwrap();
        assert!(replayed.is_empty());
        wal.commit(&[(Signal::Traces, b"one"), (Signal::Logs, b"two")])
            .unwrap();
        drop(wal);
        // Simulate a crash in the middle of a third record.
        let seg = segment_path(dir.path(), 1);
        let mut torn = Vec::new();
        encode(Signal::Logs, b"three", &mut torn);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&torn[..torn.len() - 2]).unwrap();
        drop(f);

        let (mut wal, replayed) = Wal::open(dir.path(), SyncPolicy::Always, None).unwrap();
        let payloads: Vec<_> = replayed.iter().map(|r| r.payload.clone()).collect();
        assert_eq!(payloads, vec![b"one".to_vec(), b"two".to_vec()]);
        let sealed = wal.rotate().unwrap();
        assert_eq!(sealed, 2);
        Wal::delete_through(dir.path(), sealed).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path(), SyncPolicy::Always, None).unwrap();
        assert!(replayed.is_empty());
    }

    #[test]
    fn skips_segments_already_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), SyncPolicy::Never, None).unwrap();
        wal.commit(&[(Signal::Metrics, b"m")]).unwrap();
        let sealed = wal.rotate().unwrap();
        wal.commit(&[(Signal::Logs, b"after")]).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path(), SyncPolicy::Never, Some(sealed)).unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].payload, b"after");
    }
}
