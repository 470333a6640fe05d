//! The rows behind a page, collected so that a pinned view keeps rendering after retention
//! deleted the raw data. Collecting only reads: `evidence::snapshot` writes them out as a
//! small data dir of its own and opens query engines over it.

use std::collections::HashSet;

use super::{QueryEngine, QueryError};
use crate::model::{LogRow, MetricPoint, Rows, SpanRow, TraceId};
use crate::rollup::{RollupRow, MINUTE};
use crate::store::Prefilter;

/// Rows behind one view.
#[derive(Debug, Default)]
pub struct Evidence {
    pub rows: Rows,
    pub rollups: Vec<RollupRow>,
}

impl Evidence {
    /// Records of all kinds, rollup rows included.
    pub fn len(&self) -> usize {
        self.rows.len() + self.rollups.len()
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `other`'s rows to these (a comparison's evidence is both sides').
    pub fn absorb(&mut self, other: Evidence) {
        self.rows.spans.extend(other.rows.spans);
        self.rows.logs.extend(other.rows.logs);
        self.rows.metrics.extend(other.rows.metrics);
        self.rollups.extend(other.rollups);
    }
}

impl QueryEngine {
    /// Everything a page over `[start, end)` reads: spans of every trace with a span in the
    /// window (whole traces, so span counts and durations stay the same), logs, metric points
    /// and rollups of the window. Fails with `TooLarge` past `max_rows` records.
    pub async fn evidence_of_window(
        &self,
        start: i64,
        end: i64,
        max_rows: usize,
    ) -> Result<Evidence, QueryError> {
        let in_window = move |t: i64| t >= start && t <= end;
        let mut budget = RowBudget(max_rows);
        let window_spans: Vec<SpanRow> = self
            .rows(
                Box::new(tantivy::query::AllQuery),
                Some(start),
                Some(end),
                Prefilter::none()
                    .at_least("start_time", Some(start))
                    .at_most("start_time", Some(end)),
                move |s: &SpanRow| in_window(s.start_time_unix_nano),
            )
            .await?;
        budget.take(window_spans.len())?;
        let ids: Vec<TraceId> = window_spans
            .iter()
            .map(|s| s.trace_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        drop(window_spans);
        let mut spans = Vec::new();
        for chunk in ids.chunks(512) {
            for (_, trace) in self.spans_of_traces(chunk).await? {
                budget.take(trace.len())?;
                spans.extend(trace);
            }
        }
        let logs: Vec<LogRow> = self
            .rows(
                Box::new(tantivy::query::AllQuery),
                Some(start),
                Some(end),
                Prefilter::none()
                    .at_least("time", Some(start))
                    .at_most("time", Some(end)),
                move |l: &LogRow| in_window(l.time_unix_nano),
            )
            .await?;
        budget.take(logs.len())?;
        // One step of baseline before the window, as metric queries read it.
        let metric_from = start - 5 * MINUTE;
        let metrics: Vec<MetricPoint> = self
            .rows(
                Box::new(tantivy::query::AllQuery),
                Some(metric_from),
                Some(end),
                Prefilter::none()
                    .at_least("time", Some(metric_from))
                    .at_most("time", Some(end)),
                move |p: &MetricPoint| p.time_unix_nano >= metric_from && p.time_unix_nano <= end,
            )
            .await?;
        budget.take(metrics.len())?;
        // With the baseline before the window: the events a page shows read it.
        let rollups = self
            .rollups(start.saturating_sub(crate::rollup::BASELINE_LOOKBACK), end)
            .await?;
        budget.take(rollups.len())?;
        Ok(Evidence {
            rows: Rows {
                spans,
                logs,
                metrics,
            },
            rollups,
        })
    }

    /// Everything the trace page of `trace_id` reads: the stitched trace's spans and logs.
    /// `None` when the trace is unknown.
    pub async fn evidence_of_trace(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<Evidence>, QueryError> {
        let Some(stitched) = self.stitched_trace(trace_id).await? else {
            return Ok(None);
        };
        let mut rows = Rows::default();
        for detail in
            std::iter::once(stitched.trace).chain(stitched.linked.into_iter().map(|l| l.trace))
        {
            rows.spans.extend(detail.spans);
            rows.logs.extend(detail.logs);
        }
        Ok(Some(Evidence {
            rows,
            rollups: Vec::new(),
        }))
    }
}

impl QueryEngine {
    /// The rows behind a correlation view (a logs page asking for `correlation_id:ID`): the
    /// spans and logs carrying that id, whatever their time — what the page shows, not every
    /// record of its window.
    pub async fn evidence_of_correlation(&self, id: &str) -> Result<Evidence, QueryError> {
        let rows = Rows {
            spans: self
                .rows_of_correlation(id, |s: &SpanRow| s.correlation_id.as_deref())
                .await?,
            logs: self
                .rows_of_correlation(id, |l: &LogRow| l.correlation_id.as_deref())
                .await?,
            ..Rows::default()
        };
        let mut budget = RowBudget(MAX_CORRELATION_ROWS);
        budget.take(rows.len())?;
        Ok(Evidence {
            rows,
            rollups: Vec::new(),
        })
    }
}

/// Most records a correlation view's pin keeps (one request's records are a few hundred).
const MAX_CORRELATION_ROWS: usize = 100_000;

/// Counts rows against the most a snapshot may hold.
struct RowBudget(usize);

impl RowBudget {
    fn take(&mut self, n: usize) -> Result<(), QueryError> {
        self.0 = self.0.checked_sub(n).ok_or_else(|| {
            QueryError::TooLarge(
                "this view covers more records than a pin may keep; narrow its time range".into(),
            )
        })?;
        Ok(())
    }
}
