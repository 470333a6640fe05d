//! Silences, as Alertmanager has them: matchers on an alert's labels and a time range. While a
//! silence is active, alerts whose labels match all its matchers send nothing; when it ends, an
//! alert that still fires is notified then.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::time::parse_time;

/// One matcher as Alertmanager's API writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    /// `false` turns the matcher into "not equal" / "does not match".
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as the API takes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceSpec {
    pub matchers: Vec<Matcher>,
    /// RFC 3339 or Unix time; default now.
    #[serde(default)]
    pub starts_at: Option<String>,
    pub ends_at: String,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// A checked silence: its matchers compiled.
#[derive(Debug, Clone)]
pub struct Silence {
    pub id: i64,
    matchers: Vec<(Matcher, Option<regex::Regex>)>,
    pub starts: i64,
    pub ends: i64,
}

/// Refuses with the field named.
fn refuse<T>(field: &str, problem: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{field}: {problem}"))
}

/// Compiles `matchers`, naming the one that is wrong.
pub fn compile(matchers: &[Matcher]) -> Result<Vec<(Matcher, Option<regex::Regex>)>, String> {
    if matchers.is_empty() {
        return refuse("matchers", "a silence needs at least one matcher");
    }
    matchers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if m.name.trim().is_empty() {
                return refuse(&format!("matchers[{i}].name"), "empty label name");
            }
            let re = if m.is_regex {
                // Anchored, as Alertmanager's matchers are.
                Some(
                    regex::Regex::new(&format!("^(?:{})$", m.value))
                        .or_else(|e| refuse(&format!("matchers[{i}].value"), e))?,
                )
            } else {
                None
            };
            Ok((m.clone(), re))
        })
        .collect()
}

/// Reads matchers as `amtool` and Alertmanager's UI write them: comma-separated
/// `name=value`, `name!=value`, `name=~regex`, `name!~regex`, values optionally in double
/// quotes (which may then hold commas). The error names the matcher that is wrong.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return refuse("matchers", "a quoted value is not closed");
    }
    parts.push(current);
    let matchers: Vec<Matcher> = parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, part)| {
            let at = part.find(['=', '!']).ok_or_else(|| {
                format!("matchers[{i}]: {part:?} has no operator (=, !=, =~, !~)")
            })?;
            let (name, rest) = part.split_at(at);
            let (op, value) = ["=~", "!~", "!=", "="]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
                .ok_or_else(|| {
                    format!("matchers[{i}]: {part:?} has no operator (=, !=, =~, !~)")
                })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Ok(Matcher {
                name: name.trim().to_string(),
                value: value.to_string(),
                is_regex: op.ends_with('~'),
                is_equal: op.starts_with('='),
            })
        })
        .collect::<Result<_, String>>()?;
    compile(&matchers)?;
    Ok(matchers)
}

/// Matchers as [`parse_matchers`] reads them back.
pub fn matchers_text(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(|m| {
            let op = match (m.is_equal, m.is_regex) {
                (true, false) => "=",
                (false, false) => "!=",
                (true, true) => "=~",
                (false, true) => "!~",
            };
            format!("{}{op}\"{}\"", m.name, m.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl SilenceSpec {
    /// The matchers (as stored) and the time range, checked against `now`.
    pub fn check(self, now: i64) -> Result<(String, i64, i64, String, String), String> {
        compile(&self.matchers)?;
        let starts = match &self.starts_at {
            Some(t) if !t.trim().is_empty() => parse_time(t).or_else(|e| refuse("startsAt", e))?,
            _ => now,
        };
        let ends = parse_time(&self.ends_at).or_else(|e| refuse("endsAt", e))?;
        if ends <= starts {
            return refuse("endsAt", "the silence ends before it starts");
        }
        if ends <= now {
            return refuse("endsAt", "the silence would already be over");
        }
        let matchers = serde_json::to_string(&self.matchers).or_else(|e| refuse("matchers", e))?;
        Ok((matchers, starts, ends, self.created_by, self.comment))
    }
}

impl Silence {
    /// A stored silence, compiled (a stored one always compiled when it was stored).
    pub fn of(stored: &crate::meta::alerts::StoredSilence) -> Option<Silence> {
        let matchers: Vec<Matcher> = serde_json::from_str(&stored.matchers).ok()?;
        Some(Silence {
            id: stored.id,
            matchers: compile(&matchers).ok()?,
            starts: stored.starts,
            ends: stored.ends,
        })
    }

    /// Whether the silence holds at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.starts <= now && now < self.ends
    }

    /// Whether every matcher accepts `labels` (a missing label reads as empty).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|(m, re)| {
            let value = labels.get(&m.name).map(String::as_str).unwrap_or("");
            let hit = match re {
                Some(re) => re.is_match(value),
                None => value == m.value,
            };
            hit == m.is_equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: &str) -> Silence {
        let matchers: Vec<Matcher> = serde_json::from_str(matchers).unwrap();
        Silence {
            id: 1,
            matchers: compile(&matchers).unwrap(),
            starts: 0,
            ends: 10,
        }
    }

    #[test]
    fn matchers_read_as_amtool_writes_them_and_back() {
        let read = parse_matchers(
            r#"alertname="payment errors, canary", instance!=payment-1, version=~2\..*"#,
        )
        .unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].value, "payment errors, canary");
        assert!(read[0].is_equal && !read[0].is_regex);
        assert!(!read[1].is_equal && !read[1].is_regex);
        assert!(read[2].is_equal && read[2].is_regex);
        assert_eq!(parse_matchers(&matchers_text(&read)).unwrap(), read);
        let no_op = parse_matchers("service").unwrap_err();
        assert!(no_op.starts_with("matchers[0]:"), "{no_op}");
        let bad_re = parse_matchers("a=b, c=~(").unwrap_err();
        assert!(bad_re.starts_with("matchers[1].value:"), "{bad_re}");
        assert!(parse_matchers("a=\"b").is_err());
        assert!(parse_matchers(" ").unwrap_err().starts_with("matchers:"));
    }

    #[test]
    fn matchers_as_alertmanager_reads_them() {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "payment errors".to_string()),
            ("instance".to_string(), "payment-3".to_string()),
        ]);
        assert!(silence(r#"[{"name": "alertname", "value": "payment errors"}]"#).matches(&labels));
        assert!(
            silence(r#"[{"name": "instance", "value": "payment-[0-9]", "isRegex": true}]"#)
                .matches(&labels)
        );
        assert!(
            !silence(r#"[{"name": "instance", "value": "payment", "isRegex": true}]"#)
                .matches(&labels),
            "anchored"
        );
        assert!(
            !silence(r#"[{"name": "instance", "value": "payment-3", "isEqual": false}]"#)
                .matches(&labels)
        );
        assert!(!silence(
            r#"[{"name": "alertname", "value": "payment errors"}, {"name": "team", "value": "x"}]"#
        )
        .matches(&labels));
        let s = silence(r#"[{"name": "alertname", "value": "x"}]"#);
        assert!(s.active(0) && s.active(9) && !s.active(10));
    }

    #[test]
    fn bad_silences_name_the_field() {
        let spec = |json: &str| {
            serde_json::from_str::<SilenceSpec>(json)
                .unwrap()
                .check(100)
        };
        let cases = [
            (r#"{"matchers": [], "endsAt": "200"}"#, "matchers:"),
            (
                r#"{"matchers": [{"name": "a", "value": "(", "isRegex": true}], "endsAt": "200"}"#,
                "matchers[0].value:",
            ),
            (
                r#"{"matchers": [{"name": "a", "value": "b"}], "endsAt": "not a time"}"#,
                "endsAt:",
            ),
            (
                r#"{"matchers": [{"name": "a", "value": "b"}], "startsAt": "300", "endsAt": "200"}"#,
                "endsAt: the silence ends before",
            ),
        ];
        for (json, want) in cases {
            let got = spec(json).unwrap_err();
            assert!(got.starts_with(want), "{json}: {got}");
        }
    }
}
