//! Per-block record counts by log stream, so counts over time (Loki's `count_over_time` and
//! `rate`, the log histogram of a service) add up blocks instead of decoding records.
//!
//! A stream is what Loki calls one: a record's service, instance, host, version and severity
//! text ([`LOG_STREAM_COLUMNS`]). A log block holds a few dozen streams, so its counts cost a
//! few hundred bytes of stored text per block of thousands of records (well under 0.1 B a
//! record). They are read into memory with the block's filters (`cached.rs`), with the five
//! values of each stream shared by every block of the segment.
//!
//! Stored form: a JSON array of `[service, instance, host, version, severity_text, records]`.

use std::sync::Arc;

use foldhash::HashMap;
use serde_json::Value;

/// The log columns that make a record's stream, in the order of a stream's values.
pub const LOG_STREAM_COLUMNS: [&str; 5] = [
    "service_name",
    "service_instance_id",
    "host_name",
    "service_version",
    "severity_text",
];

/// The values of one stream, in the order of [`LOG_STREAM_COLUMNS`].
pub type StreamValues = [Box<str>; 5];

/// A block's records per stream, shared by the block cache and the queries that read it.
pub type BlockStreams = Arc<[StreamCount]>;

/// One stream of a block and how many of the block's records it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCount {
    /// The stream's values, shared by every block of the segment that has the stream.
    pub values: Arc<StreamValues>,
    /// How many of the block's records belong to the stream.
    pub records: u32,
}

impl StreamCount {
    /// The value of stream column `column` (one of [`LOG_STREAM_COLUMNS`]); `None` for any
    /// other column.
    pub fn value_of(&self, column: &str) -> Option<&str> {
        LOG_STREAM_COLUMNS
            .iter()
            .position(|c| *c == column)
            .map(|i| &*self.values[i])
    }
}

/// Counts the records of one block by stream, borrowing the values from its columns.
#[derive(Default)]
pub(super) struct StreamCounter<'a> {
    counts: HashMap<[&'a str; 5], u32>,
    /// The previous record's stream and its pending count (records of one export arrive
    /// together, so most records skip the hash).
    current: Option<([&'a str; 5], u32)>,
}

impl<'a> StreamCounter<'a> {
    /// Counts one record of stream `values`.
    pub fn add(&mut self, values: [&'a str; 5]) {
        match &mut self.current {
            Some((key, n)) if *key == values => *n += 1,
            _ => {
                self.flush_current();
                self.current = Some((values, 1));
            }
        }
    }

    fn flush_current(&mut self) {
        if let Some((key, n)) = self.current.take() {
            *self.counts.entry(key).or_default() += n;
        }
    }

    /// The stored form (sorted, so equal blocks store equal text).
    pub fn into_stored(mut self) -> String {
        self.flush_current();
        let mut rows: Vec<Value> = self
            .counts
            .into_iter()
            .map(|(v, n)| serde_json::json!([v[0], v[1], v[2], v[3], v[4], n]))
            .collect();
        rows.sort_by_cached_key(|r| r.to_string());
        Value::Array(rows).to_string()
    }
}

/// Shares the values of streams among the blocks of one segment.
#[derive(Default)]
pub(super) struct StreamInterner(HashMap<StreamValues, Arc<StreamValues>>);

impl StreamInterner {
    /// Reads the stored form; `None` when it does not parse (the block is then read record by
    /// record, never counted wrong).
    pub fn parse(&mut self, stored: &str) -> Option<BlockStreams> {
        let rows: Vec<(String, String, String, String, String, u32)> =
            serde_json::from_str(stored).ok()?;
        let counts: Vec<StreamCount> = rows
            .into_iter()
            .map(|(a, b, c, d, e, records)| {
                let values: StreamValues = [a.into(), b.into(), c.into(), d.into(), e.into()];
                let values = match self.0.get(&values) {
                    Some(shared) => shared.clone(),
                    None => {
                        let shared = Arc::new(values.clone());
                        self.0.insert(values, shared.clone());
                        shared
                    }
                };
                StreamCount { values, records }
            })
            .collect();
        Some(counts.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_their_stored_form_and_share_values() {
        let mut counter = StreamCounter::default();
        let a = ["pay", "pay-1", "h", "2.5.0", "ERROR"];
        let b = ["pay", "pay-1", "h", "2.5.0", "INFO"];
        for key in [a, a, b, a, b] {
            counter.add(key);
        }
        let stored = counter.into_stored();
        let mut interner = StreamInterner::default();
        let first = interner.parse(&stored).expect("parses");
        let second = interner.parse(&stored).expect("parses");
        let counts: Vec<(&str, u32)> = first
            .iter()
            .map(|s| (s.value_of("severity_text").unwrap_or("?"), s.records))
            .collect();
        assert_eq!(counts, [("ERROR", 3), ("INFO", 2)]);
        assert!(Arc::ptr_eq(&first[0].values, &second[0].values));
        assert_eq!(first[0].value_of("body"), None);
        assert!(interner.parse("[[1]]").is_none());
    }
}
