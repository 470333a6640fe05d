//! "What is different about these requests?": a selection of spans (the failed ones, the slow
//! ones, one attribute value, a stretch of time) against a baseline (the rest of the same
//! window, or another window), every attribute value ranked by how much more often it occurs
//! in the selection — the question Honeycomb's BubbleUp answers, over Sightline's columns.
//!
//! Decisions, written down:
//! - The unit is the span: each span counts once for each of its attribute values (resource
//!   attributes, span attributes, its operation, kind and status).
//! - A value is ranked by the two-proportion z of its shares (share of selected spans that
//!   carry it against share of baseline spans that do): how surely it is over-represented.
//!   Sorting by the bare difference of shares (BubbleUp's order) put `span.kind=SERVER`
//!   (75 % against 37 %) above `service.version=2.5.0` (25 % against 0.8 %) in the demo's
//!   incident; the z keeps the rare value that nearly only the selection carries on top.
//!   Only values at least [`MIN_DIFFERENCE`] more common in the selection are listed, so a
//!   huge window cannot rank a tiny difference first on its sample size alone.
//! - When the selection is "errors", attributes that only describe a failure (status, HTTP and
//!   gRPC status codes, `error.type`, `exception.*`) are set apart in `describes_selection`:
//!   they are what "failed" means, not what sets the failing requests apart. The same holds
//!   for the key of an attribute selection.
//! - Keys with more than [`MAX_VALUES_PER_KEY`] values (ids, timestamps, free text) are not
//!   ranked: no single value of them can explain a group; they are named in `skipped_keys`.
//! - A window of at most [`MAX_BLOCKS`] stored blocks (≈ 500 000 spans at the default 16 384
//!   rows per row group) is read whole. Past that, [`MAX_BLOCKS`] blocks spread evenly over the
//!   window are read, and the answer says so (`blocks_read` of `blocks_matched`; shares are
//!   ratios, so a sample estimates them): a 1 M-span window then answers in about 2 s on this
//!   machine class instead of 4 (BENCHMARKS.md). A window over the engine's range limit is
//!   refused before any read.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::stats::two_proportion;
use super::{QueryEngine, QueryError};
use crate::model::{value_text, LiftedKey, SpanRow};
use crate::rollup::latency::LatencyHistogram;
use crate::store::Prefilter;

/// Most stored blocks one side of a comparison reads (see the module documentation).
pub const MAX_BLOCKS: usize = 32;
/// Keys with more distinct values than this are not ranked.
pub const MAX_VALUES_PER_KEY: usize = 200;
/// Least difference of shares (selection minus baseline) a listed value shows.
pub const MIN_DIFFERENCE: f64 = 0.05;
/// Most attribute values and operations an answer lists.
const MAX_LISTED: usize = 40;

/// Attribute keys that describe a failure rather than explain one.
const FAILURE_KEYS: &[&str] = &[
    "status",
    "otel.status_code",
    "otel.status_description",
    "error",
    "error.type",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "http.response.status_code",
    "http.status_code",
    "rpc.grpc.status_code",
];

/// What sets the selected spans apart within the population.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only spans that failed.
    pub errors: bool,
    pub min_duration_nano: Option<i64>,
    pub max_duration_nano: Option<i64>,
    /// Spans carrying this attribute value (resource or span attribute).
    pub attribute: Option<(String, String)>,
    /// Spans that started in this part of the window (a region of the scatter plot).
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Selection {
    /// Whether the selection sets anything apart at all.
    pub fn is_empty(&self) -> bool {
        !self.errors
            && self.min_duration_nano.is_none()
            && self.max_duration_nano.is_none()
            && self.attribute.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }

    fn matches(&self, s: &SpanRow) -> bool {
        (!self.errors || s.is_error())
            && self.min_duration_nano.is_none_or(|d| s.duration_nano >= d)
            && self.max_duration_nano.is_none_or(|d| s.duration_nano <= d)
            && self.from.is_none_or(|t| s.start_time_unix_nano >= t)
            && self.to.is_none_or(|t| s.start_time_unix_nano <= t)
            && self
                .attribute
                .as_ref()
                .is_none_or(|(k, v)| s.attribute_text(k).is_some_and(|a| a == *v))
    }

    /// Keys the selection itself is made of (set apart, not ranked).
    fn defining(&self, key: &str) -> bool {
        (self.errors && (FAILURE_KEYS.contains(&key) || key.starts_with("exception.")))
            || self.attribute.as_ref().is_some_and(|(k, _)| k == key)
    }
}

/// What the selection is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The population's other spans in the same window.
    Rest,
    /// The population's spans in another window.
    Window { start: i64, end: i64 },
}

/// A group comparison question.
#[derive(Debug, Clone)]
pub struct GroupQuestion {
    /// The population: spans of this service and operation (when given) started in
    /// `[start, end]`.
    pub service: Option<String>,
    pub operation: Option<String>,
    pub start: i64,
    pub end: i64,
    pub selection: Selection,
    pub baseline: Baseline,
}

/// One attribute value, ranked.
#[derive(Debug, Clone, Serialize)]
pub struct RankedValue {
    pub key: String,
    pub value: String,
    pub selection_count: u64,
    pub baseline_count: u64,
    /// Shares (0–1) of the selected and of the baseline spans that carry the value.
    pub selection_share: f64,
    pub baseline_share: f64,
    /// `selection_share − baseline_share`.
    pub difference: f64,
    /// Two-proportion z of the difference (≥ 3: hardly chance): what the ranking sorts by.
    pub z: f64,
}

/// One operation's latency in the selection and in the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct OperationLatency {
    pub service: String,
    pub operation: String,
    pub selection_count: u64,
    pub baseline_count: u64,
    pub selection_p50_nano: Option<i64>,
    pub baseline_p50_nano: Option<i64>,
    pub selection_p95_nano: Option<i64>,
    pub baseline_p95_nano: Option<i64>,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct GroupComparison {
    pub selection_spans: u64,
    pub baseline_spans: u64,
    /// Spans read to answer.
    pub spans_read: u64,
    /// Stored blocks read, of those the windows hold: fewer than matched means the answer
    /// comes from an evenly spread sample of the blocks (the memtables are always read).
    pub blocks_read: usize,
    pub blocks_matched: usize,
    /// Values over-represented in the selection, most first.
    pub ranked: Vec<RankedValue>,
    /// Values of the keys the selection is made of (e.g. status codes of failed spans).
    pub describes_selection: Vec<RankedValue>,
    /// Keys not ranked for having more than [`MAX_VALUES_PER_KEY`] values.
    pub skipped_keys: Vec<String>,
    /// Operations with spans on both sides, the one slowed down most (p50 ratio) first.
    pub operations: Vec<OperationLatency>,
}

/// Counts per key and value on both sides, and latency per operation.
#[derive(Default)]
struct Tally {
    values: HashMap<String, HashMap<String, [u64; 2]>>,
    crowded: BTreeSet<String>,
    /// Service → operation → latency in the selection and in the baseline.
    operations: HashMap<String, HashMap<String, [LatencyHistogram; 2]>>,
    spans: [u64; 2],
    read: u64,
}

impl Tally {
    fn count(&mut self, key: &str, value: &str, side: usize) {
        if value.is_empty() || self.crowded.contains(key) {
            return;
        }
        let values = match self.values.get_mut(key) {
            Some(v) => v,
            None => self.values.entry(key.to_string()).or_default(),
        };
        if let Some(c) = values.get_mut(value) {
            c[side] += 1;
        } else if values.len() >= MAX_VALUES_PER_KEY {
            self.values.remove(key);
            self.crowded.insert(key.to_string());
        } else {
            let mut c = [0, 0];
            c[side] = 1;
            values.insert(value.to_string(), c);
        }
    }

    fn add(&mut self, s: &SpanRow, side: usize) {
        self.spans[side] += 1;
        for key in LiftedKey::ALL {
            self.count(key.key(), s.resource.lifted(key), side);
        }
        for (k, v) in s.resource.attributes.iter().chain(s.attributes.iter()) {
            match v {
                serde_json::Value::String(text) => self.count(k, text, side),
                other => self.count(k, &value_text(other), side),
            }
        }
        self.count("operation", &s.name, side);
        self.count("span.kind", s.kind.as_str(), side);
        self.count("status", s.status_code.as_str(), side);
        let service = match self.operations.get_mut(s.resource.service_name.as_str()) {
            Some(ops) => ops,
            None => self
                .operations
                .entry(s.resource.service_name.clone())
                .or_default(),
        };
        match service.get_mut(s.name.as_str()) {
            Some(h) => h[side].add(s.duration_nano),
            None => {
                let mut h: [LatencyHistogram; 2] = Default::default();
                h[side].add(s.duration_nano);
                service.insert(s.name.clone(), h);
            }
        }
    }
}

impl QueryEngine {
    /// Compares the selection with the baseline (see the module documentation).
    pub async fn compare_groups(&self, q: &GroupQuestion) -> Result<GroupComparison, QueryError> {
        check(q)?;
        let in_population = |s: &SpanRow, start: i64, end: i64| {
            s.start_time_unix_nano >= start
                && s.start_time_unix_nano <= end
                && q.service
                    .as_ref()
                    .is_none_or(|v| s.resource.service_name == *v)
                && q.operation.as_ref().is_none_or(|v| s.name == *v)
        };
        let tally = std::sync::Mutex::new(Tally::default());
        let mut blocks = super::scan::BlocksRead::default();
        let add = |s: &SpanRow, side: usize| {
            if let Ok(mut t) = tally.lock() {
                t.add(s, side);
            }
        };
        let read = self
            .scan_population(q, q.start, q.end, |s| {
                if let Ok(mut t) = tally.lock() {
                    t.read += 1;
                }
                if !in_population(s, q.start, q.end) {
                    return;
                }
                if q.selection.matches(s) {
                    add(s, 0);
                } else if q.baseline == Baseline::Rest {
                    add(s, 1);
                }
            })
            .await?;
        blocks.read += read.read;
        blocks.matched += read.matched;
        if let Baseline::Window { start, end } = q.baseline {
            let read = self
                .scan_population(q, start, end, |s| {
                    if let Ok(mut t) = tally.lock() {
                        t.read += 1;
                    }
                    if in_population(s, start, end) {
                        add(s, 1);
                    }
                })
                .await?;
            blocks.read += read.read;
            blocks.matched += read.matched;
        }
        let tally = tally
            .into_inner()
            .map_err(|_| QueryError::BadRequest("the comparison was interrupted".into()))?;
        if tally.spans[0] == 0 {
            return Err(QueryError::NotFound(
                "no span in the window matches the selection; widen the window or the selection"
                    .into(),
            ));
        }
        if tally.spans[1] == 0 {
            return Err(QueryError::NotFound(
                "the baseline holds no span to compare with; choose another baseline window".into(),
            ));
        }
        Ok(rank(q, tally, blocks))
    }

    /// Calls `each` for every span of the population's service and operation (when given)
    /// overlapping `[start, end]` (of at most [`MAX_BLOCKS`] stored blocks), collecting
    /// nothing; says how many blocks it read.
    async fn scan_population(
        &self,
        q: &GroupQuestion,
        start: i64,
        end: i64,
        each: impl Fn(&SpanRow) + Send + Sync,
    ) -> Result<super::scan::BlocksRead, QueryError> {
        let f = self.index.fields();
        let mut prefilter = Prefilter::none()
            .at_least("start_time", Some(start))
            .at_most("start_time", Some(end));
        let mut terms: Vec<(tantivy::query::Occur, Box<dyn tantivy::query::Query>)> = Vec::new();
        if let Some(s) = &q.service {
            prefilter = prefilter.text_is("service_name", s);
            terms.push((tantivy::query::Occur::Must, self.index.term(f.service, s)));
        }
        if let Some(o) = &q.operation {
            prefilter = prefilter.text_is("name", o);
            terms.push((tantivy::query::Occur::Must, self.index.term(f.name, o)));
        }
        let block_query: Box<dyn tantivy::query::Query> = if terms.is_empty() {
            Box::new(tantivy::query::AllQuery)
        } else {
            Box::new(tantivy::query::BooleanQuery::new(terms))
        };
        let (_, read): (Vec<SpanRow>, _) = self
            .rows_thinned(
                block_query,
                Some(start),
                Some(end),
                prefilter,
                |s: &SpanRow| {
                    each(s);
                    false
                },
                Some(MAX_BLOCKS),
            )
            .await?;
        Ok(read)
    }
}

/// Refuses questions that cannot be answered, naming the parameter.
fn check(q: &GroupQuestion) -> Result<(), QueryError> {
    let bad = |m: String| Err(QueryError::BadRequest(m));
    if q.end <= q.start {
        return bad(format!(
            "the window ends before it starts (start {} ≥ end {})",
            q.start, q.end
        ));
    }
    if q.selection.is_empty() {
        return bad(
            "the selection is empty: give errors, a duration bound, an attribute or a part of the window"
                .into(),
        );
    }
    if let (Some(min), Some(max)) = (q.selection.min_duration_nano, q.selection.max_duration_nano) {
        if min > max {
            return bad("the selection's minimum duration is above its maximum".into());
        }
    }
    if let (Some(from), Some(to)) = (q.selection.from, q.selection.to) {
        if to <= from {
            return bad("the selection's part of the window ends before it starts".into());
        }
    }
    if let Baseline::Window { start, end } = q.baseline {
        if end <= start {
            return bad("the baseline window ends before it starts".into());
        }
    }
    Ok(())
}

/// The ranking of a finished tally.
fn rank(q: &GroupQuestion, tally: Tally, blocks: super::scan::BlocksRead) -> GroupComparison {
    let [sel_total, base_total] = tally.spans;
    let mut ranked = Vec::new();
    let mut describes = Vec::new();
    for (key, values) in &tally.values {
        for (value, [sel, base]) in values {
            let (ss, bs) = (
                *sel as f64 / sel_total as f64,
                *base as f64 / base_total as f64,
            );
            if *sel == 0 || ss - bs < MIN_DIFFERENCE {
                continue;
            }
            let row = RankedValue {
                key: key.clone(),
                value: value.clone(),
                selection_count: *sel,
                baseline_count: *base,
                selection_share: ss,
                baseline_share: bs,
                difference: ss - bs,
                z: two_proportion(*base, base_total, *sel, sel_total).z,
            };
            if q.selection.defining(key) {
                describes.push(row);
            } else {
                ranked.push(row);
            }
        }
    }
    let order = |a: &RankedValue, b: &RankedValue| {
        b.z.total_cmp(&a.z)
            .then(b.difference.total_cmp(&a.difference))
            .then((&a.key, &a.value).cmp(&(&b.key, &b.value)))
    };
    ranked.sort_by(order);
    describes.sort_by(order);
    ranked.truncate(MAX_LISTED);
    describes.truncate(MAX_LISTED);
    let mut operations: Vec<OperationLatency> = tally
        .operations
        .into_iter()
        .flat_map(|(service, ops)| ops.into_iter().map(move |(op, h)| (service.clone(), op, h)))
        .filter(|(_, _, [s, b])| s.total() > 0 && b.total() > 0)
        .map(|(service, operation, [s, b])| OperationLatency {
            service,
            operation,
            selection_count: s.total(),
            baseline_count: b.total(),
            selection_p50_nano: s.quantile(0.5),
            baseline_p50_nano: b.quantile(0.5),
            selection_p95_nano: s.quantile(0.95),
            baseline_p95_nano: b.quantile(0.95),
        })
        .collect();
    let ratio = |o: &OperationLatency| {
        o.selection_p50_nano.unwrap_or(0) as f64 / o.baseline_p50_nano.unwrap_or(1).max(1) as f64
    };
    operations.sort_by(|a, b| ratio(b).total_cmp(&ratio(a)));
    operations.truncate(MAX_LISTED);
    GroupComparison {
        selection_spans: sel_total,
        baseline_spans: base_total,
        spans_read: tally.read,
        blocks_read: blocks.read,
        blocks_matched: blocks.matched,
        ranked,
        describes_selection: describes,
        skipped_keys: tally.crowded.into_iter().collect(),
        operations,
    }
}
