//! The hour partition a file lives in: `<folder>/date=YYYY-MM-DD/hour=HH/<uuid>.parquet`.
//! Written by the store and read back by retention through this one type, so the layout is
//! spelled in one place.

use std::fmt;
use std::str::FromStr;

/// Nanoseconds in an hour: the partition width.
pub const HOUR_NANOS: i64 = 3_600_000_000_000;

/// One UTC hour of one folder (a signal's, e.g. `logs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// `traces`, `logs`, `metrics`, `rollups`, …
    pub folder: String,
    /// Start of the hour, Unix ns.
    pub hour_start: i64,
}

impl Partition {
    /// The partition of `folder` holding the Unix-nanosecond time `time_ns`.
    pub fn of(folder: &str, time_ns: i64) -> Partition {
        Partition {
            folder: folder.to_string(),
            hour_start: time_ns.div_euclid(HOUR_NANOS) * HOUR_NANOS,
        }
    }

    /// The partition of a file's object path (`folder/date=…/hour=…/name.parquet`), or `None`
    /// for a path that is not laid out that way.
    pub fn of_path(path: &str) -> Option<Partition> {
        let mut parts = path.splitn(4, '/');
        let (folder, date, hour) = (parts.next()?, parts.next()?, parts.next()?);
        format!("{folder}/{date}/{hour}").parse().ok()
    }

    /// End of the hour (exclusive), Unix ns.
    pub fn end(&self) -> i64 {
        self.hour_start.saturating_add(HOUR_NANOS)
    }

    /// A fresh file name in this partition: files are never overwritten.
    pub fn new_file_path(&self) -> String {
        format!("{self}/{}.parquet", uuid::Uuid::new_v4())
    }
}

impl fmt::Display for Partition {
    /// `folder/date=YYYY-MM-DD/hour=HH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = chrono::DateTime::from_timestamp_nanos(self.hour_start);
        write!(f, "{}/{}", self.folder, t.format("date=%Y-%m-%d/hour=%H"))
    }
}

/// Why a partition path does not parse.
#[derive(Debug, thiserror::Error)]
#[error("not a partition path (folder/date=YYYY-MM-DD/hour=HH): {0:?}")]
pub struct NotAPartition(String);

impl FromStr for Partition {
    type Err = NotAPartition;

    /// Reads `folder/date=YYYY-MM-DD/hour=HH`.
    fn from_str(text: &str) -> Result<Partition, NotAPartition> {
        let bad = || NotAPartition(text.to_string());
        let mut parts = text.split('/');
        let (folder, date, hour) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        if parts.next().is_some() || folder.is_empty() {
            return Err(bad());
        }
        let date = date.strip_prefix("date=").ok_or_else(bad)?;
        let hour = hour.strip_prefix("hour=").ok_or_else(bad)?;
        let start = chrono::NaiveDateTime::parse_from_str(
            &format!("{date} {hour}:00:00"),
            "%Y-%m-%d %H:%M:%S",
        )
        .map_err(|_| bad())?;
        let hour_start = start.and_utc().timestamp_nanos_opt().ok_or_else(bad)?;
        Ok(Partition {
            folder: folder.to_string(),
            hour_start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_read_back_the_same() {
        let p = Partition::of("logs", 1_795_428_900_000_000_000);
        assert_eq!(p.to_string(), "logs/date=2026-11-23/hour=10");
        assert_eq!(p.to_string().parse::<Partition>().unwrap(), p);
        let file = p.new_file_path();
        assert!(file.starts_with("logs/date=2026-11-23/hour=10/") && file.ends_with(".parquet"));
        assert_eq!(Partition::of_path(&file), Some(p.clone()));
        assert_eq!(p.end() - p.hour_start, HOUR_NANOS);
        assert_eq!(Partition::of_path("logs/x.parquet"), None);
        assert_eq!(Partition::of_path("quarantine/x.parquet"), None);
        assert_eq!(p.end(), 1_795_431_600_000_000_000);
        assert!("logs/date=2026-13-01/hour=10".parse::<Partition>().is_err());
        assert!("logs/date=2026-11-23/hour=10/extra"
            .parse::<Partition>()
            .is_err());
    }
}
