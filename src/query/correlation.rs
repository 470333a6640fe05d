//! Everything one business correlation id touched: its traces and its log records.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{QueryEngine, QueryError};
use crate::index::KeyKind;
use crate::model::{LogRow, SpanRow, TraceId};
use crate::pipeline::LiveRows;
use crate::store::Prefilter;

/// One trace that carries a correlation id.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelatedTrace {
    pub trace_id: TraceId,
    pub start_time_unix_nano: i64,
    pub services: Vec<String>,
}

/// Everything carrying one correlation id, in time order.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationResult {
    pub correlation_id: String,
    pub traces: Vec<CorrelatedTrace>,
    pub logs: Vec<LogRow>,
}

impl QueryEngine {
    /// The records of one signal whose correlation id (read by `of`) is `id`.
    pub(super) async fn rows_of_correlation<T: LiveRows>(
        &self,
        id: &str,
        of: fn(&T) -> Option<&str>,
    ) -> Result<Vec<T>, QueryError> {
        let wanted = id.to_string();
        self.rows(
            self.index
                .may_hold(KeyKind::CorrelationId, &[id.as_bytes()]),
            None,
            None,
            Prefilter::none().text_is("correlation_id", id),
            move |r: &T| of(r) == Some(wanted.as_str()),
        )
        .await
    }

    /// Every trace and log record carrying `correlation_id`, in time order.
    pub async fn correlation(&self, correlation_id: &str) -> Result<CorrelationResult, QueryError> {
        let id = correlation_id.to_string();
        let spans: Vec<SpanRow> = self
            .rows_of_correlation(&id, |s: &SpanRow| s.correlation_id.as_deref())
            .await?;
        let mut logs: Vec<LogRow> = self
            .rows_of_correlation(&id, |l: &LogRow| l.correlation_id.as_deref())
            .await?;
        logs.sort_by_key(|l| l.time_unix_nano);
        // Traces named by spans, plus traces only the logs point at.
        let mut traces: BTreeMap<TraceId, (i64, BTreeSet<String>)> = BTreeMap::new();
        for s in &spans {
            let entry = traces
                .entry(s.trace_id)
                .or_insert((i64::MAX, BTreeSet::new()));
            entry.0 = entry.0.min(s.start_time_unix_nano);
            entry.1.insert(s.resource.service_name.clone());
        }
        for l in &logs {
            if let Some(t) = l.trace_id {
                let entry = traces.entry(t).or_insert((i64::MAX, BTreeSet::new()));
                entry.0 = entry.0.min(l.time_unix_nano);
            }
        }
        let mut traces: Vec<CorrelatedTrace> = traces
            .into_iter()
            .map(|(trace_id, (start, services))| CorrelatedTrace {
                trace_id,
                start_time_unix_nano: start,
                services: services.into_iter().collect(),
            })
            .collect();
        traces.sort_by_key(|t| t.start_time_unix_nano);
        Ok(CorrelationResult {
            correlation_id: id,
            traces,
            logs,
        })
    }
}
