//! Cheap checks on one column each, evaluated by the Parquet reader before a row is decoded
//! in full.
//!
//! A row group the block index selected may hold 16 384 rows of which a query wants three
//! (one trace, one correlation id, the last minute). Decoding every row — strings, JSON
//! attributes, events — to throw almost all of them away was most of the cost of an id
//! look-up. With a prefilter the reader decodes the id or time column first and then only the
//! selected rows of the other columns (skipping whole pages through the offset index). The
//! caller's exact row check still runs afterwards, so a prefilter may only ever keep too much,
//! never too little.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ArrowPredicate, ArrowPredicateFn, RowFilter};
use parquet::arrow::ProjectionMask;
use parquet::schema::types::SchemaDescriptor;

/// Column checks that every kept row passes (all of them: they are ANDed).
#[derive(Debug, Clone, Default)]
pub struct Prefilter {
    checks: Vec<Check>,
}

/// A test on the text of one column, for conditions only the caller can decide (words of
/// a full-text query).
pub type TextTest = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
enum Check {
    /// A time (or int64) column is at least this value.
    AtLeast(&'static str, i64),
    /// A time (or int64) column is at most this value.
    AtMost(&'static str, i64),
    /// A fixed-size binary id column holds one of these ids (null never matches).
    IdIn(&'static str, Arc<HashSet<Vec<u8>>>),
    /// A text column equals this value (null never matches).
    TextIs(&'static str, Arc<str>),
    /// A text column passes a test (null never matches).
    TextPasses(&'static str, TextTest),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::AtLeast(c, v) => write!(f, "{c} >= {v}"),
            Check::AtMost(c, v) => write!(f, "{c} <= {v}"),
            Check::IdIn(c, ids) => write!(f, "{c} in {} ids", ids.len()),
            Check::TextIs(c, v) => write!(f, "{c} = {v:?}"),
            Check::TextPasses(c, _) => write!(f, "{c} passes a test"),
        }
    }
}

impl Prefilter {
    /// No checks: every row is decoded.
    pub fn none() -> Self {
        Self::default()
    }

    /// Keeps rows whose `column` (timestamp or int64) is at least `value`, when given.
    pub fn at_least(mut self, column: &'static str, value: Option<i64>) -> Self {
        if let Some(v) = value {
            self.checks.push(Check::AtLeast(column, v));
        }
        self
    }

    /// Keeps rows whose `column` (timestamp or int64) is at most `value`, when given.
    pub fn at_most(mut self, column: &'static str, value: Option<i64>) -> Self {
        if let Some(v) = value {
            self.checks.push(Check::AtMost(column, v));
        }
        self
    }

    /// Keeps rows whose id `column` is one of `ids`.
    pub fn id_in<'a>(
        mut self,
        column: &'static str,
        ids: impl IntoIterator<Item = &'a [u8]>,
    ) -> Self {
        let ids: HashSet<Vec<u8>> = ids.into_iter().map(<[u8]>::to_vec).collect();
        self.checks.push(Check::IdIn(column, Arc::new(ids)));
        self
    }

    /// Keeps rows whose text `column` equals `value`.
    pub fn text_is(mut self, column: &'static str, value: &str) -> Self {
        self.checks.push(Check::TextIs(column, Arc::from(value)));
        self
    }

    /// Keeps rows whose text `column` passes `test`.
    pub fn text_passes(mut self, column: &'static str, test: TextTest) -> Self {
        self.checks.push(Check::TextPasses(column, test));
        self
    }

    /// The reader's row filter for a file with `schema`; `None` without checks. A check on a
    /// column the file lacks is left out (it keeps everything, which is always safe).
    pub fn row_filter(&self, schema: &SchemaDescriptor) -> Option<RowFilter> {
        let predicates: Vec<Box<dyn ArrowPredicate>> = self
            .checks
            .iter()
            .filter(|c| schema.columns().iter().any(|col| col.name() == c.column()))
            .map(|c| {
                let mask = ProjectionMask::columns(schema, [c.column()]);
                let check = c.clone();
                Box::new(ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
                    check.evaluate(&batch)
                })) as Box<dyn ArrowPredicate>
            })
            .collect();
        (!predicates.is_empty()).then(|| RowFilter::new(predicates))
    }

    /// The columns the checks read, in check order (a column may repeat).
    pub fn columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.checks.iter().map(Check::column)
    }

    /// Whether every record whose text columns hold what `value_of` says passes every check:
    /// `None` when a check is on a column `value_of` does not know (`None` from it) or is not
    /// a text check, so that only the record itself can tell.
    pub fn verdict<'v>(&self, value_of: impl Fn(&str) -> Option<&'v str>) -> Option<bool> {
        let mut passed = true;
        for check in &self.checks {
            let ok = match check {
                Check::TextIs(c, v) => value_of(c)? == v.as_ref(),
                Check::TextPasses(c, test) => test(value_of(c)?),
                Check::AtLeast(..) | Check::AtMost(..) | Check::IdIn(..) => return None,
            };
            passed &= ok;
        }
        Some(passed)
    }

    /// The rows of a whole batch (every column present, as in the memtable) that pass every
    /// check; `None` without checks. A check on a column the batch lacks keeps everything.
    pub fn mask(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>, ArrowError> {
        let mut mask: Option<BooleanArray> = None;
        for check in &self.checks {
            let Ok(index) = batch.schema().index_of(check.column()) else {
                continue;
            };
            let column = batch.project(&[index])?;
            let passed = check.evaluate(&column)?;
            mask = Some(match mask {
                Some(m) => arrow::compute::and(&m, &passed)?,
                None => passed,
            });
        }
        Ok(mask)
    }
}

impl Check {
    fn column(&self) -> &'static str {
        match self {
            Check::AtLeast(c, _)
            | Check::AtMost(c, _)
            | Check::IdIn(c, _)
            | Check::TextIs(c, _)
            | Check::TextPasses(c, _) => c,
        }
    }

    /// One boolean per row of `batch`, whose only column is this check's column.
    fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        let column = batch
            .columns()
            .first()
            .ok_or_else(|| ArrowError::SchemaError(format!("no column {}", self.column())))?;
        let wrong_type = || {
            ArrowError::SchemaError(format!(
                "column {} has type {}, which this check cannot read",
                self.column(),
                column.data_type()
            ))
        };
        let numbers = || -> Result<Vec<Option<i64>>, ArrowError> {
            if let Some(a) = column.as_primitive_opt::<TimestampNanosecondType>() {
                Ok(a.iter().collect())
            } else if let Some(a) = column.as_primitive_opt::<Int64Type>() {
                Ok(a.iter().collect())
            } else {
                Err(wrong_type())
            }
        };
        Ok(match self {
            Check::AtLeast(_, v) => numbers()?
                .into_iter()
                .map(|t| Some(t.is_some_and(|t| t >= *v)))
                .collect(),
            Check::AtMost(_, v) => numbers()?
                .into_iter()
                .map(|t| Some(t.is_some_and(|t| t <= *v)))
                .collect(),
            Check::IdIn(_, ids) => {
                let a = column.as_fixed_size_binary_opt().ok_or_else(wrong_type)?;
                (0..a.len())
                    .map(|i| Some(a.is_valid(i) && ids.contains(a.value(i))))
                    .collect()
            }
            Check::TextIs(_, value) => {
                let a = column.as_string_opt::<i32>().ok_or_else(wrong_type)?;
                a.iter().map(|s| Some(s == Some(value.as_ref()))).collect()
            }
            Check::TextPasses(_, test) => {
                let a = column.as_string_opt::<i32>().ok_or_else(wrong_type)?;
                // Files are sorted, so a value often repeats the row before (a service, a
                // level): test each run once.
                let mut last: Option<(&str, bool)> = None;
                a.iter()
                    .map(|s| {
                        Some(s.is_some_and(|s| match last {
                            Some((v, passed)) if v == s => passed,
                            _ => {
                                let passed = test(s);
                                last = Some((s, passed));
                                passed
                            }
                        }))
                    })
                    .collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{FixedSizeBinaryArray, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn one_column(field: Field, array: Arc<dyn Array>) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).unwrap()
    }

    #[test]
    fn a_verdict_needs_every_checked_column_and_text_checks_only() {
        let checks = Prefilter::none()
            .text_is("service_name", "pay")
            .text_passes("severity_text", Arc::new(|s: &str| s.starts_with('E')));
        let known = |c: &str| match c {
            "service_name" => Some("pay"),
            "severity_text" => Some("ERROR"),
            _ => None,
        };
        assert_eq!(checks.verdict(known), Some(true));
        assert_eq!(checks.verdict(|c| known(c).map(|_| "INFO")), Some(false));
        assert_eq!(
            checks.verdict(|c| (c == "service_name").then_some("pay")),
            None
        );
        let timed = Prefilter::none().at_least("time", Some(1));
        assert_eq!(timed.verdict(known), None);
        assert_eq!(Prefilter::none().verdict(|_| None), Some(true));
    }

    #[test]
    fn checks_keep_exactly_the_matching_rows() {
        let times = one_column(
            Field::new(
                "time",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Arc::new(TimestampNanosecondArray::from(vec![5, 10, 15]).with_timezone("UTC")),
        );
        let at_least = Check::AtLeast("time", 10).evaluate(&times).unwrap();
        assert_eq!(at_least, BooleanArray::from(vec![false, true, true]));
        let at_most = Check::AtMost("time", 10).evaluate(&times).unwrap();
        assert_eq!(at_most, BooleanArray::from(vec![true, true, false]));

        let ids = one_column(
            Field::new("trace_id", DataType::FixedSizeBinary(2), true),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some([1u8, 2]), None, Some([3, 4])].into_iter(),
                    2,
                )
                .unwrap(),
            ),
        );
        let wanted: HashSet<Vec<u8>> = [vec![3u8, 4], vec![9, 9]].into_iter().collect();
        let id_in = Check::IdIn("trace_id", Arc::new(wanted))
            .evaluate(&ids)
            .unwrap();
        assert_eq!(id_in, BooleanArray::from(vec![false, false, true]));

        let texts = one_column(
            Field::new("correlation_id", DataType::Utf8, true),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])),
        );
        let text_is = Check::TextIs("correlation_id", Arc::from("b"))
            .evaluate(&texts)
            .unwrap();
        assert_eq!(text_is, BooleanArray::from(vec![false, false, true]));

        // A number check on a text column is an error, not a silent "keep nothing".
        assert!(Check::AtLeast("correlation_id", 1)
            .evaluate(&texts)
            .is_err());
    }
}
