//! Evaluation of the PromQL subset over fetched series, at every step of a range at once.
//!
//! Supported (README "Use with Grafana"): vector selectors with `=`, `!=`, `=~`, `!~` and
//! `offset`; `rate`, `irate`, `increase` over a range selector; `sum`, `avg`, `min`, `max`,
//! `count` with `by`/`without`; `histogram_quantile`; arithmetic and comparisons between a
//! vector and a scalar (or two scalars); parentheses and unary minus. Anything else is an
//! [`Unsupported`] error naming the construct, never a wrong answer.

use std::collections::BTreeMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector, Offset, VectorSelector,
};

use super::series::{Labels, RawSeries};

/// How far back an instant selector looks for the latest sample (Prometheus' default).
pub const LOOKBACK_NANO: i64 = 300_000_000_000;

/// A query this evaluator does not support or cannot run; the message names what.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

fn unsupported<T>(what: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported(what.into()))
}

/// An evaluated expression: one value per step.
#[derive(Debug, Clone)]
pub enum Value {
    Scalar(Vec<f64>),
    Vector(Vec<StepSeries>),
}

/// A result series: a value (or none) at each step.
#[derive(Debug, Clone)]
pub struct StepSeries {
    pub labels: Labels,
    pub values: Vec<Option<f64>>,
}

/// A selector's data: what the evaluator needs fetched before it runs.
#[derive(Debug, Clone)]
pub struct Need {
    /// The selector as written (its key in the fetched map).
    pub key: String,
    pub selector: VectorSelector,
    /// How far before each step samples are needed (range or lookback, plus offset).
    pub reach_nano: i64,
    /// Offset: positive looks back.
    pub offset_nano: i64,
}

fn offset_nano(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_nanos() as i64,
        Some(Offset::Neg(d)) => -(d.as_nanos() as i64),
        None => 0,
    }
}

/// Whether a selector's matchers (name included, as `__name__`) accept `labels`.
pub fn matches(selector: &VectorSelector, labels: &Labels) -> bool {
    let value = |name: &str| labels.get(name).map(String::as_str).unwrap_or("");
    if let Some(name) = &selector.name {
        if value("__name__") != name {
            return false;
        }
    }
    let all = |ms: &[promql_parser::label::Matcher]| ms.iter().all(|m| m.is_match(value(&m.name)));
    all(&selector.matchers.matchers)
        && (selector.matchers.or_matchers.is_empty()
            || selector.matchers.or_matchers.iter().any(|ms| all(ms)))
}

/// Whether a metric name can satisfy a selector (its name and `__name__` matchers).
pub fn name_matches(selector: &VectorSelector, name: &str) -> bool {
    if selector.name.as_deref().is_some_and(|n| n != name) {
        return false;
    }
    let ok = |ms: &[promql_parser::label::Matcher]| {
        ms.iter()
            .filter(|m| m.name == "__name__")
            .all(|m| m.is_match(name))
    };
    ok(&selector.matchers.matchers)
        && (selector.matchers.or_matchers.is_empty()
            || selector.matchers.or_matchers.iter().any(|ms| ok(ms)))
}

/// The selectors of `expr` and how far back each needs data; also rejects unsupported
/// constructs before anything is fetched.
pub fn needs(expr: &Expr) -> Result<Vec<Need>, Unsupported> {
    let mut out = Vec::new();
    collect(expr, &mut out)?;
    Ok(out)
}

fn need(vs: &VectorSelector, reach: i64) -> Result<Need, Unsupported> {
    if vs.at.is_some() {
        return unsupported("the @ modifier is not supported");
    }
    let has_name = vs.name.is_some()
        || vs
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal | MatchOp::Re(_)));
    if !has_name {
        return unsupported("a selector must name a metric (a name or __name__=/=~)");
    }
    let offset = offset_nano(&vs.offset);
    Ok(Need {
        key: vs.to_string(),
        selector: vs.clone(),
        reach_nano: reach + offset.max(0),
        offset_nano: offset,
    })
}

fn collect(expr: &Expr, out: &mut Vec<Need>) -> Result<(), Unsupported> {
    match expr {
        Expr::NumberLiteral(_) => Ok(()),
        Expr::Paren(p) => collect(&p.expr, out),
        Expr::Unary(u) => collect(&u.expr, out),
        Expr::VectorSelector(vs) => {
            out.push(need(vs, LOOKBACK_NANO)?);
            Ok(())
        }
        Expr::MatrixSelector(_) => unsupported(
            "a range vector (selector[5m]) is only supported inside rate(), irate() or increase()",
        ),
        Expr::Call(call) => match call.func.name {
            "rate" | "irate" | "increase" => match call.args.args.first().map(|a| a.as_ref()) {
                Some(Expr::MatrixSelector(ms)) => {
                    out.push(need(&ms.vs, ms.range.as_nanos() as i64)?);
                    Ok(())
                }
                _ => unsupported(format!(
                    "{}() is supported over a range selector only (like {}(m[5m])); subqueries are not supported",
                    call.func.name, call.func.name
                )),
            },
            "histogram_quantile" => {
                for a in &call.args.args {
                    collect(a, out)?;
                }
                Ok(())
            }
            other => unsupported(format!("the function {other}() is not supported")),
        },
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !matches!(op.as_str(), "sum" | "avg" | "min" | "max" | "count") {
                return unsupported(format!("the aggregation {op} is not supported"));
            }
            collect(&a.expr, out)
        }
        Expr::Binary(b) => {
            let op = b.op.to_string();
            if b.op.is_set_operator() {
                return unsupported(format!("the set operator {op} is not supported"));
            }
            collect(&b.lhs, out)?;
            collect(&b.rhs, out)
        }
        Expr::StringLiteral(_) => unsupported("string literals are not supported"),
        Expr::Subquery(_) => unsupported("subqueries are not supported"),
        Expr::Extension(_) => unsupported("extensions are not supported"),
    }
}

/// Evaluates `expr` at `steps` (Unix ns) over `fetched` (selector key → its series).
pub fn eval(
    expr: &Expr,
    steps: &[i64],
    fetched: &BTreeMap<String, Vec<RawSeries>>,
) -> Result<Value, Unsupported> {
    let ev = Evaluator { steps, fetched };
    ev.eval(expr)
}

struct Evaluator<'a> {
    steps: &'a [i64],
    fetched: &'a BTreeMap<String, Vec<RawSeries>>,
}

impl Evaluator<'_> {
    fn eval(&self, expr: &Expr) -> Result<Value, Unsupported> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(vec![n.val; self.steps.len()])),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => Ok(match self.eval(&u.expr)? {
                Value::Scalar(v) => Value::Scalar(v.into_iter().map(|x| -x).collect()),
                Value::Vector(vs) => Value::Vector(
                    vs.into_iter()
                        .map(|s| StepSeries {
                            labels: without_name(s.labels),
                            values: s.values.into_iter().map(|v| v.map(|x| -x)).collect(),
                        })
                        .collect(),
                ),
            }),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant(vs))),
            Expr::Call(call) => self.call(call),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            other => unsupported(format!("unsupported expression {other}")),
        }
    }

    fn series_of(&self, vs: &VectorSelector) -> &[RawSeries] {
        self.fetched
            .get(&vs.to_string())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Each selected series evaluated at every step by `at(samples, time)` (the step moved
    /// back by the selector's offset); series without any value are left out.
    fn per_step(
        &self,
        vs: &VectorSelector,
        labels: impl Fn(&Labels) -> Labels,
        at: impl Fn(&[(i64, f64)], i64) -> Option<f64>,
    ) -> Vec<StepSeries> {
        let offset = offset_nano(&vs.offset);
        self.series_of(vs)
            .iter()
            .filter_map(|s| {
                let values: Vec<Option<f64>> = self
                    .steps
                    .iter()
                    .map(|&t| at(&s.samples, t - offset))
                    .collect();
                values.iter().any(Option::is_some).then(|| StepSeries {
                    labels: labels(&s.labels),
                    values,
                })
            })
            .collect()
    }

    /// The latest sample within the lookback at each step.
    fn instant(&self, vs: &VectorSelector) -> Vec<StepSeries> {
        self.per_step(vs, Labels::clone, |samples, t| {
            let i = samples.partition_point(|(ts, _)| *ts <= t);
            (i > 0 && samples[i - 1].0 > t - LOOKBACK_NANO).then(|| samples[i - 1].1)
        })
    }

    fn call(&self, call: &Call) -> Result<Value, Unsupported> {
        match call.func.name {
            "rate" | "irate" | "increase" => {
                let Some(Expr::MatrixSelector(ms)) = call.args.args.first().map(|a| a.as_ref())
                else {
                    return unsupported(format!("{}() needs a range selector", call.func.name));
                };
                Ok(Value::Vector(self.range_function(call.func.name, ms)))
            }
            "histogram_quantile" => {
                let [phi, vector] = call.args.args.as_slice() else {
                    return unsupported("histogram_quantile() takes two arguments");
                };
                let Value::Scalar(phi) = self.eval(phi)? else {
                    return unsupported("histogram_quantile()'s first argument must be a number");
                };
                let Value::Vector(buckets) = self.eval(vector)? else {
                    return unsupported("histogram_quantile()'s second argument must be a vector");
                };
                Ok(Value::Vector(histogram_quantile(&phi, buckets)))
            }
            other => unsupported(format!("the function {other}() is not supported")),
        }
    }

    fn range_function(&self, func: &str, ms: &MatrixSelector) -> Vec<StepSeries> {
        let range = ms.range.as_nanos() as i64;
        self.per_step(
            &ms.vs,
            |labels| without_name(labels.clone()),
            |samples, end| {
                let lo = samples.partition_point(|(ts, _)| *ts <= end - range);
                let hi = samples.partition_point(|(ts, _)| *ts <= end);
                let window = &samples[lo..hi];
                match func {
                    "irate" => irate(window),
                    _ => extrapolated_delta(window, end - range, end, func == "rate"),
                }
            },
        )
    }

    fn aggregate(&self, a: &AggregateExpr) -> Result<Value, Unsupported> {
        let op = a.op.to_string();
        let Value::Vector(input) = self.eval(&a.expr)? else {
            return unsupported(format!("{op}() needs a vector"));
        };
        let key = |labels: &Labels| -> Labels {
            match &a.modifier {
                Some(LabelModifier::Include(keep)) => labels
                    .iter()
                    .filter(|(k, _)| keep.labels.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                Some(LabelModifier::Exclude(drop)) => labels
                    .iter()
                    .filter(|(k, _)| *k != "__name__" && !drop.labels.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => Labels::new(),
            }
        };
        let n = self.steps.len();
        let mut groups: BTreeMap<Labels, Vec<Vec<f64>>> = BTreeMap::new();
        for s in input {
            let g = groups
                .entry(key(&s.labels))
                .or_insert_with(|| vec![Vec::new(); n]);
            for (i, v) in s.values.iter().enumerate() {
                if let Some(v) = v {
                    g[i].push(*v);
                }
            }
        }
        Ok(Value::Vector(
            groups
                .into_iter()
                .map(|(labels, per_step)| StepSeries {
                    labels,
                    values: per_step
                        .into_iter()
                        .map(|vs| (!vs.is_empty()).then(|| aggregate_values(&op, &vs)))
                        .collect(),
                })
                .filter(|s| s.values.iter().any(Option::is_some))
                .collect(),
        ))
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Value, Unsupported> {
        let op = b.op.to_string();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let comparison = b.op.is_comparison_operator();
        let apply = |l: f64, r: f64| -> Option<f64> {
            let truth = |c: bool| {
                if return_bool {
                    Some(if c { 1.0 } else { 0.0 })
                } else {
                    c.then_some(l)
                }
            };
            match op.as_str() {
                "+" => Some(l + r),
                "-" => Some(l - r),
                "*" => Some(l * r),
                "/" => Some(l / r),
                "%" => Some(l % r),
                "^" => Some(l.powf(r)),
                "==" => truth(l == r),
                "!=" => truth(l != r),
                ">" => truth(l > r),
                "<" => truth(l < r),
                ">=" => truth(l >= r),
                "<=" => truth(l <= r),
                _ => None,
            }
        };
        if !comparison && !matches!(op.as_str(), "+" | "-" | "*" | "/" | "%" | "^") {
            return unsupported(format!("the operator {op} is not supported"));
        }
        let (lhs, rhs) = (self.eval(&b.lhs)?, self.eval(&b.rhs)?);
        // A comparison without `bool` keeps the vector's own value, whichever side it is on.
        let keep_name = comparison && !return_bool;
        Ok(match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                if comparison && !return_bool {
                    return unsupported("comparisons between scalars need the bool modifier");
                }
                Value::Scalar(
                    l.iter()
                        .zip(&r)
                        .map(|(l, r)| apply(*l, *r).unwrap_or(f64::NAN))
                        .collect(),
                )
            }
            (Value::Vector(vs), Value::Scalar(r)) => {
                Value::Vector(with_scalar(vs, &r, true, keep_name, apply))
            }
            (Value::Scalar(l), Value::Vector(vs)) => {
                Value::Vector(with_scalar(vs, &l, false, keep_name, apply))
            }
            (Value::Vector(_), Value::Vector(_)) => {
                return unsupported(format!(
                    "binary operations between two vectors ({op}) are not supported; use a vector and a number"
                ))
            }
        })
    }
}

/// A vector combined with a scalar per step (`vector op scalar`, or `scalar op vector` when
/// not `vector_on_left`). With `keep_value` (a comparison without `bool`) a sample that
/// passes keeps the vector's own value and name, whichever side the vector is on.
fn with_scalar(
    vs: Vec<StepSeries>,
    scalars: &[f64],
    vector_on_left: bool,
    keep_value: bool,
    apply: impl Fn(f64, f64) -> Option<f64>,
) -> Vec<StepSeries> {
    vs.into_iter()
        .map(|s| StepSeries {
            labels: if keep_value {
                s.labels
            } else {
                without_name(s.labels)
            },
            values: s
                .values
                .iter()
                .zip(scalars)
                .map(|(v, x)| {
                    let v = (*v)?;
                    let out = if vector_on_left {
                        apply(v, *x)
                    } else {
                        apply(*x, v)
                    }?;
                    Some(if keep_value { v } else { out })
                })
                .collect(),
        })
        .filter(|s| s.values.iter().any(Option::is_some))
        .collect()
}

/// `sum`, `avg`, `min`, `max` or `count` of one step's values (shared with the Loki API).
pub fn aggregate_values(op: &str, vs: &[f64]) -> f64 {
    match op {
        "sum" => vs.iter().sum(),
        "avg" => vs.iter().sum::<f64>() / vs.len() as f64,
        "min" => vs.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => vs.len() as f64,
    }
}

fn without_name(mut labels: Labels) -> Labels {
    labels.remove("__name__");
    labels
}

/// `irate`: the per-second rate between the last two samples (a reset counts from zero).
fn irate(window: &[(i64, f64)]) -> Option<f64> {
    let [.., (t0, v0), (t1, v1)] = window else {
        return None;
    };
    let delta = if v1 < v0 { *v1 } else { v1 - v0 };
    let secs = (t1 - t0) as f64 / 1e9;
    (secs > 0.0).then(|| delta / secs)
}

/// `increase` (and `rate`, divided by the range): the counter's growth over the window with
/// resets added back, extrapolated to the window's edges as Prometheus does.
fn extrapolated_delta(
    window: &[(i64, f64)],
    start: i64,
    end: i64,
    per_second: bool,
) -> Option<f64> {
    if window.len() < 2 {
        return None;
    }
    let (first_t, first_v) = window[0];
    let (last_t, last_v) = window[window.len() - 1];
    let mut result = last_v - first_v;
    for pair in window.windows(2) {
        if pair[1].1 < pair[0].1 {
            result += pair[0].1;
        }
    }
    let secs = |ns: i64| ns as f64 / 1e9;
    let sampled = secs(last_t - first_t);
    if sampled <= 0.0 {
        return None;
    }
    let mut to_start = secs(first_t - start);
    let to_end = secs(end - last_t);
    let average_gap = sampled / (window.len() - 1) as f64;
    if result > 0.0 && first_v >= 0.0 {
        // A counter does not go below zero: do not extrapolate past the point it was zero.
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    let mut value = result * (interval / sampled);
    if per_second {
        value /= secs(end - start);
    }
    Some(value)
}

/// `histogram_quantile(φ, buckets)`: per label set without `le`, linear interpolation inside
/// the bucket holding the φ-th observation (Prometheus' algorithm).
fn histogram_quantile(phi: &[f64], buckets: Vec<StepSeries>) -> Vec<StepSeries> {
    /// Per label set: each bucket's bound and its value at every step.
    type Buckets = Vec<(f64, Vec<Option<f64>>)>;
    let mut groups: BTreeMap<Labels, Buckets> = BTreeMap::new();
    for s in buckets {
        let mut labels = without_name(s.labels);
        let Some(le) = labels.remove("le").and_then(|le| le.parse::<f64>().ok()) else {
            continue;
        };
        groups.entry(labels).or_default().push((le, s.values));
    }
    groups
        .into_iter()
        .map(|(labels, mut bs)| {
            bs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let values = phi
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let points: Vec<(f64, f64)> = bs
                        .iter()
                        .filter_map(|(le, vs)| vs[i].map(|v| (*le, v)))
                        .collect();
                    bucket_quantile(*q, &points)
                })
                .collect();
            StepSeries { labels, values }
        })
        .filter(|s| s.values.iter().any(Option::is_some))
        .collect()
}

fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let (last_le, total) = *buckets.last()?;
    if buckets.len() < 2 || last_le != f64::INFINITY {
        return Some(f64::NAN);
    }
    if total <= 0.0 {
        return Some(f64::NAN);
    }
    let mut rank = q * total;
    let b = buckets.iter().position(|(_, c)| *c >= rank)?;
    if b == buckets.len() - 1 {
        return Some(buckets[buckets.len() - 2].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (start, mut count) = if b == 0 {
        (0.0, buckets[0].1)
    } else {
        rank -= buckets[b - 1].1;
        (buckets[b - 1].0, buckets[b].1 - buckets[b - 1].1)
    };
    if count <= 0.0 {
        count = 1.0;
    }
    Some(start + (buckets[b].0 - start) * (rank / count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_extrapolates_to_the_window_edges() {
        // A counter growing 1/s sampled every 10 s from 5 s into a 60 s window.
        let window: Vec<(i64, f64)> = (0..6)
            .map(|i| ((5 + 10 * i) * 1_000_000_000, 100.0 + 10.0 * i as f64))
            .collect();
        let v = extrapolated_delta(&window, 0, 60_000_000_000, false).unwrap();
        assert!((v - 60.0).abs() < 1e-9, "{v}");
        let r = extrapolated_delta(&window, 0, 60_000_000_000, true).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn resets_are_added_back() {
        let window = [(0, 10.0), (10_000_000_000, 20.0), (20_000_000_000, 5.0)];
        assert_eq!(irate(&window), Some(0.5));
        let v = extrapolated_delta(&window, 0, 20_000_000_000, false).unwrap();
        assert!((v - 15.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn quantile_of_cumulative_buckets() {
        let b = [
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(bucket_quantile(0.5, &b), Some(0.1));
        let p90 = bucket_quantile(0.9, &b).unwrap();
        assert!((p90 - 0.5).abs() < 1e-9);
        let p95 = bucket_quantile(0.95, &b).unwrap();
        assert!((p95 - 0.75).abs() < 1e-9);
    }
}
