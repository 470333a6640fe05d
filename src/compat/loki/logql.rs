//! The LogQL subset Sightline answers, parsed by hand: the maintained Rust LogQL parsers are
//! AGPL-licensed or unmaintained, and the subset is small. Everything outside it is an error
//! that names the construct.
//!
//! ```text
//! query    = metric | log
//! log      = selector { line-filter | "|" stage }
//! selector = "{" matcher { "," matcher } "}"          matcher = label ("="|"!="|"=~"|"!~") string
//! line-filter = ("|=" | "!=" | "|~" | "!~") string
//! stage    = "json" | label ("="|"!="|"=~"|"!~"|">"|">="|"<"|"<=") (string | number)
//! metric   = [agg [grouping] "("] range-fn [")" [grouping]]
//! range-fn = ("count_over_time" | "rate") "(" log "[" duration "]" ")"
//! agg      = "sum" | "avg" | "min" | "max" | "count"      grouping = ("by" | "without") "(" labels ")"
//! ```

use regex::Regex;

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Query {
    Log(LogQuery),
    Metric(MetricQuery),
}

/// A stream selector and its pipeline.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub matchers: Vec<Matcher>,
    pub pipeline: Vec<Stage>,
}

/// A label compared with a value.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
    /// For `=~`/`!~`: the value anchored, as Loki matches whole label values.
    pub regex: Option<Regex>,
}

/// Comparison operators of matchers and label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `|= "text"` (or `!=` with `negate`): substring of the line.
    Contains { text: String, negate: bool },
    /// `|~ "re"` (or `!~`): the regex matches somewhere in the line.
    Regex { regex: Regex, negate: bool },
    /// `| json`: the line's JSON fields become labels.
    Json,
    /// `| label op value`.
    LabelFilter(Matcher),
}

/// `[agg by (...)] (count_over_time|rate)(log [range])`.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub function: RangeFunction,
    pub log: LogQuery,
    pub range_nano: i64,
    pub aggregation: Option<Aggregation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFunction {
    CountOverTime,
    Rate,
}

#[derive(Debug, Clone)]
pub struct Aggregation {
    /// `sum`, `avg`, `min`, `max` or `count`.
    pub op: String,
    /// `by` labels (`without == false`) or `without` labels.
    pub labels: Vec<String>,
    pub without: bool,
}

impl Matcher {
    /// Whether `value` (absent = empty, as in Loki) passes.
    pub fn accepts(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        let numeric = || Some((v.parse::<f64>().ok()?, self.value.parse::<f64>().ok()?));
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotRe => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            Op::Gt => numeric().is_some_and(|(a, b)| a > b),
            Op::Ge => numeric().is_some_and(|(a, b)| a >= b),
            Op::Lt => numeric().is_some_and(|(a, b)| a < b),
            Op::Le => numeric().is_some_and(|(a, b)| a <= b),
        }
    }
}

/// A LogQL error: the message says where and what.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogqlError(pub String);

/// Parses `text`.
pub fn parse(text: &str) -> Result<Query, LogqlError> {
    crate::query::query_size::check_query_text(text).map_err(LogqlError)?;
    let mut p = Parser {
        tokens: lex(text)?,
        pos: 0,
    };
    let query = p.query()?;
    if let Some(t) = p.peek() {
        return Err(LogqlError(format!(
            "parse error: unexpected {t} after the query"
        )));
    }
    Ok(query)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(String),
    Duration(String),
    Sym(&'static str),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "{s:?}"),
            Token::Str(s) => write!(f, "string {s:?}"),
            Token::Number(s) => write!(f, "number {s}"),
            Token::Duration(s) => write!(f, "[{s}]"),
            Token::Sym(s) => write!(f, "{s:?}"),
        }
    }
}

const SYMBOLS: &[&str] = &[
    "|=", "|~", "!=", "!~", "=~", ">=", "<=", "{", "}", "(", ")", ",", "|", "=", ">", "<",
];

fn lex(text: &str) -> Result<Vec<Token>, LogqlError> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let quote = c;
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(LogqlError("parse error: unterminated string".into()));
                };
                i += 1;
                if c == quote {
                    break;
                }
                if c == '\\' && quote == '"' {
                    let Some(&n) = chars.get(i) else {
                        return Err(LogqlError("parse error: unterminated string".into()));
                    };
                    i += 1;
                    s.push(match n {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(c);
                }
            }
            out.push(Token::Str(s));
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&c| c == ']')
                .ok_or_else(|| LogqlError("parse error: missing ']' after the range".into()))?;
            out.push(Token::Duration(chars[i + 1..i + end].iter().collect()));
            i += end + 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err(LogqlError(format!(
                    "parse error: unexpected character {c:?}"
                )));
            };
            out.push(Token::Sym(sym));
            i += sym.chars().count();
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), LogqlError> {
        match self.next() {
            Some(Token::Sym(s)) if s == sym => Ok(()),
            Some(t) => Err(LogqlError(format!(
                "parse error: expected {sym:?}, found {t}"
            ))),
            None => Err(LogqlError(format!(
                "parse error: expected {sym:?} at the end"
            ))),
        }
    }

    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Token::Sym(s)) if *s == sym)
    }

    fn query(&mut self) -> Result<Query, LogqlError> {
        match self.peek() {
            Some(Token::Sym("{")) => Ok(Query::Log(self.log()?)),
            Some(Token::Ident(_)) => Ok(Query::Metric(self.metric()?)),
            Some(t) => Err(LogqlError(format!(
                "parse error: a query starts with a stream selector {{...}} or a function, not {t}"
            ))),
            None => Err(LogqlError("parse error: the query is empty".into())),
        }
    }

    fn grouping(&mut self) -> Result<Option<(Vec<String>, bool)>, LogqlError> {
        let without = match self.peek() {
            Some(Token::Ident(w)) if w == "by" => false,
            Some(Token::Ident(w)) if w == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        self.expect("(")?;
        let mut labels = Vec::new();
        while !self.is_sym(")") {
            match self.next() {
                Some(Token::Ident(l)) => labels.push(l),
                other => {
                    return Err(LogqlError(format!(
                        "parse error: expected a label name in the grouping, found {}",
                        other.map_or("the end".into(), |t| t.to_string())
                    )))
                }
            }
            if self.is_sym(",") {
                self.next();
            }
        }
        self.expect(")")?;
        Ok(Some((labels, without)))
    }

    fn metric(&mut self) -> Result<MetricQuery, LogqlError> {
        let Some(Token::Ident(name)) = self.next() else {
            return Err(LogqlError("parse error: expected a function name".into()));
        };
        match name.as_str() {
            "sum" | "avg" | "min" | "max" | "count" => {
                let before = self.grouping()?;
                self.expect("(")?;
                let mut inner = self.range_function()?;
                self.expect(")")?;
                let after = self.grouping()?;
                let (labels, without) = before.or(after).unwrap_or_default();
                inner.aggregation = Some(Aggregation {
                    op: name,
                    labels,
                    without,
                });
                Ok(inner)
            }
            "count_over_time" | "rate" => {
                self.pos -= 1;
                self.range_function()
            }
            other => Err(LogqlError(format!(
                "unsupported by Sightline: the function {other}() (supported: count_over_time, rate, and sum/avg/min/max/count by (...))"
            ))),
        }
    }

    fn range_function(&mut self) -> Result<MetricQuery, LogqlError> {
        let function = match self.next() {
            Some(Token::Ident(f)) if f == "count_over_time" => RangeFunction::CountOverTime,
            Some(Token::Ident(f)) if f == "rate" => RangeFunction::Rate,
            Some(Token::Ident(f)) => {
                return Err(LogqlError(format!(
                    "unsupported by Sightline: the range function {f}() (supported: count_over_time, rate)"
                )))
            }
            other => {
                return Err(LogqlError(format!(
                    "parse error: expected count_over_time or rate, found {}",
                    other.map_or("the end".into(), |t| t.to_string())
                )))
            }
        };
        self.expect("(")?;
        let log = self.log()?;
        let range = match self.next() {
            Some(Token::Duration(d)) => promql_parser::util::parse_duration(&d)
                .map_err(|e| LogqlError(format!("parse error: invalid range [{d}]: {e}")))?,
            _ => {
                return Err(LogqlError(
                    "parse error: a range function needs a range like [5m] after the log query"
                        .into(),
                ))
            }
        };
        self.expect(")")?;
        Ok(MetricQuery {
            function,
            log,
            range_nano: range.as_nanos().min(i64::MAX as u128) as i64,
            aggregation: None,
        })
    }

    fn log(&mut self) -> Result<LogQuery, LogqlError> {
        self.expect("{")?;
        let mut matchers = Vec::new();
        while !self.is_sym("}") {
            matchers.push(self.matcher(false)?);
            if self.is_sym(",") {
                self.next();
            } else if !self.is_sym("}") {
                return Err(LogqlError(
                    "parse error: expected ',' or '}' in the selector".into(),
                ));
            }
        }
        self.expect("}")?;
        if matchers.is_empty() {
            return Err(LogqlError(
                "parse error: queries require at least one label matcher in the stream selector"
                    .into(),
            ));
        }
        let mut pipeline = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Sym(s @ ("|=" | "!=" | "|~" | "!~"))) => {
                    let op = *s;
                    self.next();
                    let Some(Token::Str(text)) = self.next() else {
                        return Err(LogqlError(format!("parse error: {op} needs a string")));
                    };
                    let negate = op.starts_with('!');
                    pipeline.push(if op.ends_with('~') {
                        Stage::Regex {
                            regex: compile(&text, false)?,
                            negate,
                        }
                    } else {
                        Stage::Contains { text, negate }
                    });
                }
                Some(Token::Sym("|")) => {
                    self.next();
                    match self.peek() {
                        Some(Token::Ident(j)) if j == "json" => {
                            self.next();
                            if matches!(self.peek(), Some(Token::Ident(_))) {
                                return Err(LogqlError(
                                    "unsupported by Sightline: json with parameters".into(),
                                ));
                            }
                            pipeline.push(Stage::Json);
                        }
                        Some(Token::Ident(s))
                            if matches!(
                                s.as_str(),
                                "logfmt"
                                    | "regexp"
                                    | "pattern"
                                    | "unpack"
                                    | "line_format"
                                    | "label_format"
                                    | "unwrap"
                                    | "drop"
                                    | "keep"
                                    | "decolorize"
                            ) =>
                        {
                            return Err(LogqlError(format!(
                                "unsupported by Sightline: the {s} stage (supported: json and label filters)"
                            )));
                        }
                        _ => pipeline.push(Stage::LabelFilter(self.matcher(true)?)),
                    }
                }
                _ => break,
            }
        }
        Ok(LogQuery { matchers, pipeline })
    }

    fn matcher(&mut self, filter: bool) -> Result<Matcher, LogqlError> {
        let label = match self.next() {
            Some(Token::Ident(l)) => l,
            other => {
                return Err(LogqlError(format!(
                    "parse error: expected a label name, found {}",
                    other.map_or("the end".into(), |t| t.to_string())
                )))
            }
        };
        let op = match self.next() {
            Some(Token::Sym("=")) => Op::Eq,
            Some(Token::Sym("!=")) => Op::Ne,
            Some(Token::Sym("=~")) => Op::Re,
            Some(Token::Sym("!~")) => Op::NotRe,
            Some(Token::Sym(">")) if filter => Op::Gt,
            Some(Token::Sym(">=")) if filter => Op::Ge,
            Some(Token::Sym("<")) if filter => Op::Lt,
            Some(Token::Sym("<=")) if filter => Op::Le,
            other => {
                return Err(LogqlError(format!(
                    "parse error: expected a comparison after {label:?}, found {}",
                    other.map_or("the end".into(), |t| t.to_string())
                )))
            }
        };
        let value = match self.next() {
            Some(Token::Str(s)) => s,
            Some(Token::Number(n)) if filter => n,
            other => {
                return Err(LogqlError(format!(
                    "parse error: expected a quoted value after {label:?}, found {}",
                    other.map_or("the end".into(), |t| t.to_string())
                )))
            }
        };
        let regex = match op {
            Op::Re | Op::NotRe => Some(compile(&value, true)?),
            _ => None,
        };
        Ok(Matcher {
            label,
            op,
            value,
            regex,
        })
    }
}

/// Compiles a LogQL regex (size-limited, so a hostile pattern cannot eat the server);
/// label matchers match the whole value.
fn compile(pattern: &str, anchored: bool) -> Result<Regex, LogqlError> {
    let full = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    regex::RegexBuilder::new(&full)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| LogqlError(format!("parse error: invalid regex {pattern:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_subset() {
        let Query::Log(q) =
            parse(r#"{service_name="checkout", level=~"warn|error"} |= "timeout" != "retry" | json | status >= 500"#)
                .unwrap()
        else {
            panic!("log query expected");
        };
        assert_eq!(q.matchers.len(), 2);
        assert_eq!(q.pipeline.len(), 4);
        let Query::Metric(m) =
            parse(r#"sum by (service_name) (count_over_time({job="x"} |~ "err.r" [5m]))"#).unwrap()
        else {
            panic!("metric query expected");
        };
        assert_eq!(m.range_nano, 300_000_000_000);
        assert_eq!(m.aggregation.unwrap().labels, vec!["service_name"]);
        let Query::Metric(m) = parse(r#"sum(rate({job="x"}[1m])) by (level)"#).unwrap() else {
            panic!("metric query expected");
        };
        assert_eq!(m.function, RangeFunction::Rate);
    }

    #[test]
    fn names_what_is_unsupported() {
        for (q, needle) in [
            (r#"{a="b"} | logfmt"#, "logfmt"),
            (r#"bytes_over_time({a="b"}[5m])"#, "bytes_over_time"),
            (r#"topk(3, count_over_time({a="b"}[5m]))"#, "topk"),
            (r#"{}"#, "at least one"),
            (r#"{a="b""#, "expected"),
        ] {
            let e = parse(q).unwrap_err().0;
            assert!(e.contains(needle), "{q}: {e}");
        }
    }
}
