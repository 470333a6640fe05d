//! The log query language: parsed by tantivy's query grammar, then turned into two things —
//! a tantivy query over block documents that finds every block that *may* hold a match, and
//! a row predicate that decides exactly, on each row of those blocks.
//!
//! Syntax (documented in the README): free words (all must appear, as in grep, Loki and
//! Datadog; use `OR` for either), `"exact phrase"`, `field:value` for `service`, `instance`,
//! `severity`, `trace_id`, `span_id`, `correlation_id`, `body` and any attribute key,
//! `severity>=WARN` (also `>`, `<`, `<=`), `AND`/`OR`/`NOT`/`-`, parentheses, `/regex/` on the
//! body.

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur as TOccur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;
use tantivy_query_grammar::{Occur, UserInputAst, UserInputBound, UserInputLeaf};

use super::body_words::BodyWords;
use super::query_size::MAX_TERMS;
use crate::index::{text, BlockIndex, KeyKind};
use std::sync::Arc;

use crate::model::{severity_floor, severity_name, value_text, LogRow, TraceId};
use crate::store::prefilter::{Prefilter, TextTest};

/// Longest compiled regex program accepted, so a hostile pattern cannot eat the server.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A parsed log query.
#[derive(Debug, Clone)]
pub enum LogFilter {
    /// Matches every record.
    All,
    And(Vec<LogFilter>),
    Or(Vec<LogFilter>),
    Not(Box<LogFilter>),
    /// Body tokens; with `phrase`, they must appear consecutively.
    Text {
        tokens: Vec<String>,
        phrase: bool,
    },
    Service(String),
    Instance(String),
    /// Severity number within `[min, max]`.
    Severity {
        min: i32,
        max: i32,
    },
    /// Severity text equal to the value (or the canonical level name of the number).
    SeverityText(String),
    TraceId(String),
    SpanId(String),
    CorrelationId(String),
    /// An attribute with this exact value (text form).
    Attr {
        key: String,
        value: String,
    },
    Regex(regex::Regex),
}

/// A query the user must fix, with a message saying how.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QuerySyntaxError(pub String);

/// Where a query that does not parse goes wrong, as a character position in `query` itself
/// (for a caret under it); `None` when it parses, or when the error is not about one place.
pub fn syntax_error_position(query: &str) -> Option<usize> {
    let trimmed = query.trim_start();
    let lead = query.len() - trimmed.len();
    let rewritten = rewrite_comparisons(trimmed.trim_end());
    // Positions are only meaningful in the text as typed.
    if rewritten != trimmed.trim_end() || tantivy_query_grammar::parse_query(&rewritten).is_ok() {
        return None;
    }
    let (_, errors) = tantivy_query_grammar::parse_query_lenient(&rewritten);
    let byte = lead + errors.first()?.pos;
    Some(query.get(..byte.min(query.len()))?.chars().count())
}

/// Parses a query string. An empty query matches everything.
pub fn parse(query: &str) -> Result<LogFilter, QuerySyntaxError> {
    super::query_size::check_query_text(query).map_err(QuerySyntaxError)?;
    let query = rewrite_comparisons(query.trim());
    if query.is_empty() {
        return Ok(LogFilter::All);
    }
    let ast = match tantivy_query_grammar::parse_query(&query) {
        Ok(ast) => ast,
        Err(_) => {
            let (_, errors) = tantivy_query_grammar::parse_query_lenient(&query);
            let detail = errors
                .first()
                .map(|e| format!("{} at position {}", e.message, e.pos))
                .unwrap_or_else(|| "unbalanced quotes, brackets or parentheses".into());
            return Err(QuerySyntaxError(format!("invalid query: {detail}")));
        }
    };
    let mut analyzer = text::analyzer();
    let filter = convert(ast, &mut analyzer)?;
    let terms = filter.terms();
    if terms > MAX_TERMS {
        return Err(QuerySyntaxError(format!(
            "the query combines {terms} terms; at most {MAX_TERMS} are accepted"
        )));
    }
    Ok(filter)
}

impl LogFilter {
    /// The filter of body text as the query language reads a quoted value: its words, as
    /// a phrase when there are several (tokenized as the index tokenizes bodies).
    pub fn body_text(text: &str) -> LogFilter {
        let tokens = text::tokens(&mut text::analyzer(), text);
        if tokens.is_empty() {
            LogFilter::All
        } else {
            let phrase = tokens.len() > 1;
            LogFilter::Text { tokens, phrase }
        }
    }

    /// All of `parts` (which may be none: everything matches).
    pub fn all_of(mut parts: Vec<LogFilter>) -> LogFilter {
        parts.retain(|p| !matches!(p, LogFilter::All));
        match parts.len() {
            0 => LogFilter::All,
            1 => parts.remove(0),
            _ => LogFilter::And(parts),
        }
    }

    /// How many words, fields and values the filter combines.
    fn terms(&self) -> usize {
        match self {
            LogFilter::All => 0,
            LogFilter::And(parts) | LogFilter::Or(parts) => parts.iter().map(Self::terms).sum(),
            LogFilter::Not(inner) => inner.terms(),
            LogFilter::Text { tokens, .. } => tokens.len().max(1),
            _ => 1,
        }
    }
}

/// `severity>=WARN` is written without the colon the grammar wants (`severity:>=WARN`).
fn rewrite_comparisons(query: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\b(severity|level)\s*(>=|<=|>|<)\s*").expect("static regex")
    });
    re.replace_all(query, "$1:$2").into_owned()
}

fn convert(ast: UserInputAst, analyzer: &mut TextAnalyzer) -> Result<LogFilter, QuerySyntaxError> {
    match ast {
        UserInputAst::Leaf(leaf) => convert_leaf(*leaf, analyzer),
        UserInputAst::Boost(inner, _) => convert(*inner, analyzer),
        UserInputAst::Clause(clauses) => {
            let (mut must, mut should, mut not) = (Vec::new(), Vec::new(), Vec::new());
            for (occur, sub) in clauses {
                let f = convert(sub, analyzer)?;
                match occur {
                    // Words without an operator must all match (conjunction by default).
                    None | Some(Occur::Must) => must.push(f),
                    Some(Occur::Should) => should.push(f),
                    Some(Occur::MustNot) => not.push(LogFilter::Not(Box::new(f))),
                }
            }
            if !should.is_empty() {
                must.push(if should.len() == 1 {
                    should.remove(0)
                } else {
                    LogFilter::Or(should)
                });
            }
            must.extend(not);
            Ok(if must.len() == 1 {
                must.remove(0)
            } else {
                LogFilter::And(must)
            })
        }
    }
}

fn convert_leaf(
    leaf: UserInputLeaf,
    analyzer: &mut TextAnalyzer,
) -> Result<LogFilter, QuerySyntaxError> {
    match leaf {
        UserInputLeaf::All => Ok(LogFilter::All),
        UserInputLeaf::Literal(lit) => {
            field_filter(lit.field_name.as_deref(), &lit.phrase, analyzer)
        }
        UserInputLeaf::Set { field, elements } => Ok(LogFilter::Or(
            elements
                .iter()
                .map(|e| field_filter(field.as_deref(), e, analyzer))
                .collect::<Result<_, _>>()?,
        )),
        UserInputLeaf::Range {
            field,
            lower,
            upper,
        } => match field.as_deref() {
            Some("severity" | "level") => severity_range(&lower, &upper),
            other => Err(QuerySyntaxError(format!(
                "ranges are supported on severity only, not on {}",
                other.unwrap_or("the body")
            ))),
        },
        UserInputLeaf::Regex { field, pattern } => match field.as_deref() {
            None | Some("body") => regex::RegexBuilder::new(&pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(LogFilter::Regex)
                .map_err(|e| QuerySyntaxError(format!("invalid regex /{pattern}/: {e}"))),
            Some(other) => Err(QuerySyntaxError(format!(
                "regex is supported on the body only, not on {other}"
            ))),
        },
        UserInputLeaf::Exists { field } => Err(QuerySyntaxError(format!(
            "$exists({field}) is not supported; search for a value of {field} instead"
        ))),
    }
}

fn field_filter(
    field: Option<&str>,
    value: &str,
    analyzer: &mut TextAnalyzer,
) -> Result<LogFilter, QuerySyntaxError> {
    Ok(match field {
        None | Some("body") => {
            let tokens = text::tokens(analyzer, value);
            if tokens.is_empty() {
                LogFilter::All
            } else {
                // Quoted or not, one word is just that word; more are a phrase.
                let phrase = tokens.len() > 1;
                LogFilter::Text { tokens, phrase }
            }
        }
        Some("service" | "service.name") => LogFilter::Service(value.to_string()),
        Some("instance" | "service.instance.id") => LogFilter::Instance(value.to_string()),
        Some("severity" | "level") => LogFilter::SeverityText(value.to_string()),
        Some("trace_id" | "traceid" | "trace") => LogFilter::TraceId(value.to_ascii_lowercase()),
        Some("span_id" | "spanid") => LogFilter::SpanId(value.to_ascii_lowercase()),
        Some("correlation_id") => LogFilter::CorrelationId(value.to_string()),
        Some(key) => LogFilter::Attr {
            key: key.to_string(),
            value: value.to_string(),
        },
    })
}

/// The id of a query that asks for one request's records only (`correlation_id:X`, quoted
/// or not, and nothing else): the correlation view.
pub fn correlation_only(query: &str) -> Option<String> {
    let rest = query.trim().strip_prefix("correlation_id:")?;
    let id = rest.trim().trim_matches('"');
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// Severity numbers of a level name: `WARN` covers WARN..WARN4 (13..=16); a number is itself.
fn level_span(word: &str) -> Result<(i32, i32), QuerySyntaxError> {
    let floor = severity_floor(word).ok_or_else(|| {
        QuerySyntaxError(format!(
            "unknown severity {word:?}: use TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 1-24"
        ))
    })?;
    Ok(if word.parse::<i32>().is_ok() {
        (floor, floor)
    } else {
        (floor, floor + 3)
    })
}

fn severity_range(
    lower: &UserInputBound,
    upper: &UserInputBound,
) -> Result<LogFilter, QuerySyntaxError> {
    let min = match lower {
        UserInputBound::Inclusive(w) => level_span(w)?.0,
        UserInputBound::Exclusive(w) => level_span(w)?.1 + 1,
        UserInputBound::Unbounded => i32::MIN,
    };
    let max = match upper {
        UserInputBound::Inclusive(w) => level_span(w)?.1,
        UserInputBound::Exclusive(w) => level_span(w)?.0 - 1,
        UserInputBound::Unbounded => i32::MAX,
    };
    Ok(LogFilter::Severity { min, max })
}

impl LogFilter {
    /// A tantivy query over block documents matching every block that may hold a matching
    /// row. Parts that cannot be decided per block (NOT, regex) match every block.
    pub fn block_query(&self, index: &BlockIndex) -> Box<dyn Query> {
        self.block_query_opt(index)
            .unwrap_or_else(|| Box::new(AllQuery))
    }

    fn block_query_opt(&self, index: &BlockIndex) -> Option<Box<dyn Query>> {
        let f = index.fields();
        // Ids live in the blocks' filters; text that is not hex cannot be an id at all.
        let hex_id = |kind: KeyKind, text: &str| -> Option<Box<dyn Query>> {
            Some(match hex::decode(text) {
                Ok(bytes) => index.may_hold(kind, &[&bytes]),
                Err(_) => Box::new(EmptyQuery),
            })
        };
        let term = |field, value: &str| -> Option<Box<dyn Query>> {
            Some(Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            )))
        };
        let severity = |min: i32, max: i32| -> Option<Box<dyn Query>> {
            Some(Box::new(RangeQuery::new(
                std::ops::Bound::Included(Term::from_field_i64(f.severity, i64::from(min))),
                std::ops::Bound::Included(Term::from_field_i64(f.severity, i64::from(max))),
            )))
        };
        match self {
            LogFilter::All | LogFilter::Not(_) | LogFilter::Regex(_) => None,
            LogFilter::Text { tokens, .. } => {
                // Words are index terms, id-like tokens are in the blocks' filters; a whole
                // uuid is in neither (its first group, the token after it, stands for it).
                let terms: Vec<(TOccur, Box<dyn Query>)> = tokens
                    .iter()
                    .filter_map(|t| {
                        let q: Box<dyn Query> = if text::is_indexed(t) {
                            Box::new(TermQuery::new(
                                Term::from_field_text(f.body, t),
                                IndexRecordOption::Basic,
                            ))
                        } else if text::is_filter_key(t) {
                            index.may_hold(KeyKind::of_body_token(t), &[t.as_bytes()])
                        } else {
                            return None;
                        };
                        Some((TOccur::Must, q))
                    })
                    .collect();
                (!terms.is_empty()).then(|| Box::new(BooleanQuery::new(terms)) as Box<dyn Query>)
            }
            LogFilter::Service(s) => term(f.service, s),
            LogFilter::Instance(s) => term(f.instance, s),
            LogFilter::TraceId(s) => hex_id(KeyKind::TraceId, s),
            LogFilter::SpanId(s) => hex_id(KeyKind::SpanId, s),
            LogFilter::CorrelationId(s) => {
                Some(index.may_hold(KeyKind::CorrelationId, &[s.as_bytes()]))
            }
            LogFilter::Attr { key, value } => Some(Box::new(BooleanQuery::new(vec![
                (TOccur::Should, term(f.attr, &format!("{key}={value}"))?),
                (TOccur::Should, term(f.attr_overflow, key)?),
            ]))),
            LogFilter::Severity { min, max } => severity(*min, *max),
            LogFilter::SeverityText(word) => {
                level_span(word).ok().and_then(|(a, b)| severity(a, b))
            }
            LogFilter::And(parts) => {
                let subs: Vec<_> = parts
                    .iter()
                    .filter_map(|p| p.block_query_opt(index))
                    .map(|q| (TOccur::Must, q))
                    .collect();
                (!subs.is_empty()).then(|| Box::new(BooleanQuery::new(subs)) as Box<dyn Query>)
            }
            LogFilter::Or(parts) => {
                let subs: Option<Vec<_>> = parts
                    .iter()
                    .map(|p| p.block_query_opt(index).map(|q| (TOccur::Should, q)))
                    .collect();
                subs.map(|s| Box::new(BooleanQuery::new(s)) as Box<dyn Query>)
            }
        }
    }

    /// Adds to `base` the column checks every matching record must pass, so the reader
    /// decodes only those records in full: the top-level conditions on the body (words,
    /// phrases, regex), the correlation id, the trace id, the service and the instance. Conditions under
    /// `OR` or `NOT` are left to the exact row check.
    pub fn prefilter(&self, mut base: Prefilter) -> Prefilter {
        for c in self.conjuncts() {
            match c {
                LogFilter::CorrelationId(id) => base = base.text_is("correlation_id", id),
                LogFilter::Service(name) => base = base.text_is("service_name", name),
                LogFilter::Instance(name) => base = base.text_is("service_instance_id", name),
                LogFilter::TraceId(hex) => {
                    if let Ok(id) = hex.parse::<TraceId>() {
                        base = base.id_in("trace_id", [id.0.as_slice()]);
                    }
                }
                _ => {}
            }
        }
        match self.body_test() {
            Some(test) => base.text_passes("body", test),
            None => base,
        }
    }

    /// Column checks that a record passes exactly when it matches (so matching records can
    /// be counted from the columns alone, without decoding them); `None` when some condition
    /// has no exact column check (severity, span id, attributes, `OR`, `NOT`).
    pub fn exact_prefilter(&self, base: Prefilter) -> Option<Prefilter> {
        let exact = self.conjuncts().into_iter().all(|c| match c {
            LogFilter::All
            | LogFilter::Service(_)
            | LogFilter::Instance(_)
            | LogFilter::CorrelationId(_)
            | LogFilter::Text { .. }
            | LogFilter::Regex(_) => true,
            // The row check compares lower-case hex.
            LogFilter::TraceId(hex) => hex.parse::<TraceId>().is_ok_and(|id| id.to_hex() == *hex),
            _ => false,
        });
        exact.then(|| self.prefilter(base))
    }

    /// The word, when the whole query is one word that the block index holds as a term (not
    /// an id-like token): such a query is counted from the index's per-block word counts.
    pub fn single_indexed_word(&self) -> Option<&str> {
        match self.conjuncts().as_slice() {
            [LogFilter::Text { tokens, .. }] => match tokens.as_slice() {
                [word] if text::is_indexed(word) => Some(word),
                _ => None,
            },
            _ => None,
        }
    }

    /// The top-level `AND`ed conditions.
    fn conjuncts(&self) -> Vec<&LogFilter> {
        match self {
            LogFilter::And(parts) => parts.iter().collect(),
            other => vec![other],
        }
    }

    /// A test on the body that every matching record passes: its top-level words, phrases
    /// and regexes. `None` when the query has none.
    fn body_test(&self) -> Option<TextTest> {
        let on_body: Vec<LogFilter> = self
            .conjuncts()
            .into_iter()
            .filter(|c| matches!(c, LogFilter::Text { .. } | LogFilter::Regex(_)))
            .cloned()
            .collect();
        if on_body.is_empty() {
            return None;
        }
        let needles = RequiredText::of(&on_body);
        let on_body = LogFilter::And(on_body);
        Some(Arc::new(move |body: &str| {
            BODY_ANALYZER.with(|analyzer| {
                LOWERED.with(|scratch| {
                    let (mut analyzer, mut scratch) = (analyzer.borrow_mut(), scratch.borrow_mut());
                    let mut words = BodyWords::new(body, &mut analyzer, &mut scratch);
                    !needles.missing_from(&mut words) && eval_body(&on_body, &mut words)
                })
            })
        }))
    }

    /// The body words to highlight in results.
    pub fn highlight_tokens(&self) -> Vec<String> {
        match self {
            LogFilter::Text { tokens, .. } => tokens.clone(),
            LogFilter::And(p) | LogFilter::Or(p) => {
                p.iter().flat_map(LogFilter::highlight_tokens).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Decides the filter on single rows, reusing one analyzer and one lower-casing buffer.
pub struct RowMatcher {
    filter: LogFilter,
    analyzer: TextAnalyzer,
    scratch: Vec<u8>,
}

impl RowMatcher {
    /// A matcher for `filter`.
    pub fn new(filter: LogFilter) -> Self {
        Self {
            filter,
            analyzer: text::analyzer(),
            scratch: Vec::new(),
        }
    }

    /// Whether `row` matches.
    pub fn matches(&mut self, row: &LogRow) -> bool {
        let mut words = BodyWords::new(&row.body, &mut self.analyzer, &mut self.scratch);
        eval(&self.filter, row, &mut words)
    }
}

fn eval(f: &LogFilter, row: &LogRow, words: &mut BodyWords<'_>) -> bool {
    match f {
        LogFilter::All => true,
        LogFilter::And(p) => p.iter().all(|x| eval(x, row, words)),
        LogFilter::Or(p) => p.iter().any(|x| eval(x, row, words)),
        LogFilter::Not(p) => !eval(p, row, words),
        LogFilter::Text { .. } | LogFilter::Regex(_) => eval_body(f, words),
        LogFilter::Service(s) => row.resource.service_name == *s,
        LogFilter::Instance(s) => row.resource.service_instance_id == *s,
        LogFilter::Severity { min, max } => (*min..=*max).contains(&row.severity_number),
        LogFilter::SeverityText(s) => {
            row.severity_text.eq_ignore_ascii_case(s)
                || severity_name(row.severity_number).eq_ignore_ascii_case(s)
        }
        LogFilter::TraceId(s) => row.trace_id.is_some_and(|t| t.to_hex() == *s),
        LogFilter::SpanId(s) => row.span_id.is_some_and(|t| t.to_hex() == *s),
        LogFilter::CorrelationId(s) => row.correlation_id.as_deref() == Some(s.as_str()),
        LogFilter::Attr { key, value } => row
            .attributes
            .get(key)
            .or_else(|| row.resource.attributes.get(key))
            .is_some_and(|v| value_text(v) == *value),
    }
}

/// The conditions on the body alone (words, phrases, regex, and `AND`s of them); anything
/// else passes, as the prefilter only ever sees such conditions.
fn eval_body(f: &LogFilter, words: &mut BodyWords<'_>) -> bool {
    match f {
        LogFilter::And(p) => p.iter().all(|x| eval_body(x, words)),
        LogFilter::Text {
            tokens: want,
            phrase,
        } => {
            if *phrase {
                want.is_empty()
                    || words
                        .tokens()
                        .windows(want.len())
                        .any(|w| w == want.as_slice())
            } else {
                want.iter().all(|t| words.has(t))
            }
        }
        LogFilter::Regex(re) => re.is_match(words.body()),
        _ => true,
    }
}

thread_local! {
    /// The body tokenizer of the prefilter, one per reader thread.
    static BODY_ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(text::analyzer());
    /// A lower-cased copy of the body being checked, one per reader thread.
    static LOWERED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The ASCII words every matching body must hold as text: the tokens of the query's
/// top-level words and phrases. A body is tokenized only once it holds all of them, so a
/// rare token scans a block's bodies with `memmem` instead of splitting every one into words
/// (most bodies of a block a filter false positive sent us lack the token).
struct RequiredText(Vec<memchr::memmem::Finder<'static>>);

impl RequiredText {
    fn of(conjuncts: &[LogFilter]) -> Self {
        let tokens = conjuncts.iter().flat_map(|c| match c {
            LogFilter::Text { tokens, .. } => tokens.as_slice(),
            _ => &[],
        });
        Self(
            tokens
                .filter(|t| t.is_ascii() && !t.is_empty())
                .map(|t| memchr::memmem::Finder::new(t.as_bytes()).into_owned())
                .collect(),
        )
    }

    /// Whether the body surely lacks a required word. Only ASCII bodies are judged: there a
    /// token is a substring of the lower-cased body; elsewhere Unicode lower-casing may turn
    /// other characters into ASCII letters (the Kelvin sign into `k`), so the words decide.
    fn missing_from(&self, words: &mut BodyWords<'_>) -> bool {
        if self.0.is_empty() {
            return false;
        }
        match words.lowered_ascii() {
            Some(lowered) => self.0.iter().any(|f| f.find(lowered).is_none()),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_points_at_its_place_in_the_text_as_typed() {
        // tantivy's grammar reports where it stopped; the caret goes under that character.
        let at = syntax_error_position("  error AND \"unclosed").unwrap();
        assert!((2..22).contains(&at), "{at}");
        assert_eq!(
            syntax_error_position("service:payment error"),
            None,
            "parses"
        );
        assert_eq!(syntax_error_position(""), None);
    }

    fn row(body: &str, severity: i32) -> LogRow {
        LogRow {
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            severity_number: severity,
            severity_text: severity_name(severity).into(),
            body: body.into(),
            attributes: serde_json::json!({"http.method": "POST"})
                .as_object()
                .unwrap()
                .clone(),
            trace_id: None,
            span_id: None,
            flags: 0,
            event_name: String::new(),
            resource: std::sync::Arc::new(crate::model::Resource {
                service_name: "payment".into(),
                ..Default::default()
            }),
            scope_name: String::new(),
            correlation_id: Some("order-42".into()),
        }
    }

    fn hit(q: &str, r: &LogRow) -> bool {
        RowMatcher::new(parse(q).unwrap()).matches(r)
    }

    #[test]
    fn words_phrases_fields_and_booleans() {
        let r = row("Payment declined for card ending 4242", 17);
        assert!(hit("declined card", &r));
        assert!(!hit("declined timeout", &r));
        assert!(hit("declined OR timeout", &r));
        assert!(hit("\"payment declined\"", &r));
        assert!(!hit("\"declined payment\"", &r));
        assert!(hit("service:payment AND severity:error", &r));
        assert!(hit("NOT service:checkout", &r));
        assert!(hit("-timeout", &r));
        assert!(hit("http.method:POST", &r));
        assert!(hit("correlation_id:order-42", &r));
        assert!(hit("severity>=WARN", &r));
        assert!(!hit("severity<WARN", &r));
        assert!(hit("/ending \\d+/", &r));
    }

    #[test]
    fn the_body_prefilter_keeps_every_matching_record() {
        let bodies = [
            "Payment declined for card ending 4242",
            "payment DECLINED: timeout after 30s",
            "Zahlung abgelehnt: Überweisung fehlgeschlagen",
            "",
            // A token only as part of a longer one, and a non-ASCII letter that lower-cases
            // to an ASCII one (the Kelvin sign): the words decide, not the substring.
            "order X1B2C3D4E and tok 0a1b2c3d-4e5f",
            "\u{212A}ey rotated for ORDER-1216",
        ];
        let queries = [
            "x1b2c3d4",
            "0A1B2C3D",
            "key order-1216",
            "declined",
            "declined card",
            "\"payment declined\"",
            "DECLINED timeout",
            "declined OR abgelehnt",
            "NOT declined",
            "überweisung",
            "/ending \\d+/ payment",
            "service:payment declined",
            "service:checkout",
        ];
        for q in queries {
            let filter = parse(q).unwrap();
            let test = filter.body_test();
            let mut matcher = RowMatcher::new(filter.clone());
            let mut prefilter_kept_something_out = false;
            for body in bodies {
                let r = row(body, 17);
                let passes = test.as_ref().is_none_or(|t| t(body));
                assert!(passes || !matcher.matches(&r), "{q:?} would lose {body:?}");
                prefilter_kept_something_out |= !passes;
            }
            // Queries with top-level words do prune (the test is not `|_| true`).
            if matches!(q, "declined card" | "überweisung" | "x1b2c3d4") {
                assert!(prefilter_kept_something_out, "{q:?} prunes nothing");
            }
        }
        let passes = |q: &str, body: &str| parse(q).unwrap().body_test().is_some_and(|t| t(body));
        assert!(passes("0A1B2C3D", bodies[4]));
        assert!(!passes("x1b2c3d4", bodies[4]), "a part of a longer token");
        assert!(
            passes("key order-1216", bodies[5]),
            "the Kelvin sign is a k"
        );
    }

    #[test]
    fn bad_queries_explain_themselves() {
        assert!(parse("\"unclosed").is_err());
        assert!(parse("/(unclosed/").is_err());
        assert!(parse("severity>=LOUD").is_err());
    }
}
