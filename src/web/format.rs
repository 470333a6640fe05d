//! Text helpers for pages: durations, times, truncation, highlighting, service colours.

use crate::model::{value_text, Attributes, Severity};
use std::collections::BTreeMap;

/// Longest value shown in full inline; longer ones are cut with a way to see everything.
pub const SHORT_VALUE: usize = 240;

/// `1.25 s`, `340 ms`, `12.5 µs`.
pub fn duration(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns == 0.0 {
        "0".to_string()
    } else if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// A request rate: per minute when slow, per second when fast.
pub fn rate(per_second: f64) -> String {
    if per_second <= 0.0 {
        "0".to_string()
    } else if per_second < 1.0 {
        format!("{:.1}/min", per_second * 60.0)
    } else {
        format!("{per_second:.1}/s")
    }
}

/// `4.3 %`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// `3m ago`, `45s ago`, `2h ago`.
pub fn ago(now: i64, then: i64) -> String {
    let s = ((now - then) / 1_000_000_000).max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// A duration that may be unknown.
pub fn opt_duration(ns: Option<i64>) -> String {
    ns.map(duration).unwrap_or_else(|| "–".to_string())
}

/// A metric value with its OTLP unit.
pub fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "By" if v >= 1e9 => format!("{:.2} GB", v / 1e9),
        "By" if v >= 1e6 => format!("{:.1} MB", v / 1e6),
        "By" => format!("{v:.0} B"),
        "1" => format!("{:.0} %", v * 100.0),
        "ms" if v.abs() >= 1000.0 => format!("{:.2} s", v / 1000.0),
        "ms" => format!("{v:.1} ms"),
        "s" => format!("{v:.2} s"),
        _ if v.abs() >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// A size in bytes as people read it: "812 B", "4.2 KB", "1.3 MB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// The CSS class that colours a log record's level, from its severity number (the text is
/// free-form; the number is OTLP's scale): the same on the logs page, the trace page and
/// the live tail.
pub fn severity_class(number: i32) -> &'static str {
    // Numbers past FATAL's range count as errors too, as the error rollups count them.
    if number >= Severity::Error.floor() {
        "sev-error"
    } else if number >= Severity::Warn.floor() {
        "sev-warn"
    } else {
        "sev-info"
    }
}

/// `2026-11-23 10:15` (UTC): a time known to the minute (rollup minutes, error bursts), shown
/// without digits it does not have.
pub fn minute(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// `2026-11-23 10:15:00.123` (UTC).
pub fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// `10:15:00` (UTC), for axis labels.
pub fn clock(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%H:%M:%S")
        .to_string()
}

/// A value that may be too long to show inline.
#[derive(Debug, Clone)]
pub struct ShownValue {
    /// What is shown inline (cut to [`SHORT_VALUE`] characters).
    pub short: String,
    /// The whole value when `short` is cut.
    pub full: Option<String>,
}

/// Cuts long text at a character boundary.
pub fn shown(text: &str) -> ShownValue {
    if text.chars().count() <= SHORT_VALUE {
        return ShownValue {
            short: text.to_string(),
            full: None,
        };
    }
    let short: String = text.chars().take(SHORT_VALUE).collect();
    ShownValue {
        short: short + "…",
        full: Some(text.to_string()),
    }
}

/// Attributes as (key, value) for a table, keys sorted.
pub fn attribute_rows(attrs: &Attributes) -> Vec<(String, ShownValue)> {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), shown(&value_text(v))))
        .collect()
}

/// An attribute row that links to the records sharing its value ("filter on this value").
#[derive(Debug, Clone)]
pub struct AttrRow {
    pub key: String,
    pub value: ShownValue,
    /// Where the records with this value are listed; none for values too long to filter on.
    pub href: Option<String>,
}

/// Attribute rows (keys sorted) with links made by `href(key, value)` for values shown whole.
pub fn linked_rows(
    rows: Vec<(String, ShownValue)>,
    href: impl Fn(&str, &str) -> Option<String>,
) -> Vec<AttrRow> {
    rows.into_iter()
        .map(|(key, value)| AttrRow {
            href: match value.full {
                None if !value.short.is_empty() => href(&key, &value.short),
                _ => None,
            },
            key,
            value,
        })
        .collect()
}

/// A piece of text, highlighted or not.
#[derive(Debug, Clone)]
pub struct Segment {
    pub text: String,
    pub mark: bool,
}

/// Splits `text` so that words equal (case-insensitively) to a highlight token are marked.
pub fn highlight(text: &str, tokens: &[String]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut push = |piece: &str, mark: bool| match out.last_mut() {
        Some(last) if last.mark == mark => last.text.push_str(piece),
        _ => out.push(Segment {
            text: piece.to_string(),
            mark,
        }),
    };
    let mut rest = text;
    while !rest.is_empty() {
        let word_len = rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len());
        if word_len == 0 {
            let c = rest.chars().next().map(char::len_utf8).unwrap_or(1);
            push(&rest[..c], false);
            rest = &rest[c..];
            continue;
        }
        let word = &rest[..word_len];
        let mark = tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case(word) || *t == word.to_lowercase());
        push(word, mark);
        rest = &rest[word_len..];
    }
    out
}

/// The service colours: ten that stay apart from each other and from the error red.
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f",
    "#86bcb6", "#d37295",
];

/// Services given a colour so far (name → palette slot). Bounded: past this many names, a
/// service takes its hash slot, shared or not.
const MAX_ASSIGNED: usize = 10_000;

static ASSIGNED: std::sync::RwLock<BTreeMap<String, usize>> =
    std::sync::RwLock::new(BTreeMap::new());

fn hash_slot(service: &str) -> usize {
    // FNV-1a: spreads short, similar names (cart, checkout) over the palette.
    let hash = service.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash as usize % PALETTE.len()
}

/// Gives each of `services` (the ones known at start, in name order) its colour before any
/// page asks, so the same set of services gets the same colours on every run.
pub fn seed_service_colors(services: impl IntoIterator<Item = String>) {
    let mut names: Vec<String> = services.into_iter().collect();
    names.sort();
    for name in names {
        service_color(&name);
    }
}

/// A colour per service, the same on every page: its hash slot in the palette, or the next
/// free one when another service holds that slot, so up to ten services never share one.
pub fn service_color(service: &str) -> &'static str {
    if let Some(slot) = ASSIGNED.read().ok().and_then(|a| a.get(service).copied()) {
        return PALETTE[slot];
    }
    let Ok(mut assigned) = ASSIGNED.write() else {
        return PALETTE[hash_slot(service)];
    };
    if assigned.len() >= MAX_ASSIGNED {
        return PALETTE[hash_slot(service)];
    }
    let taken: std::collections::BTreeSet<usize> = assigned.values().copied().collect();
    let first = hash_slot(service);
    let slot = (0..PALETTE.len())
        .map(|i| (first + i) % PALETTE.len())
        .find(|s| !taken.contains(s))
        .unwrap_or(first);
    PALETTE[*assigned.entry(service.to_string()).or_insert(slot)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_whole_words_only() {
        let segs = highlight("Card declined; declined-ish <b>", &["declined".to_string()]);
        let marked: Vec<&str> = segs
            .iter()
            .filter(|s| s.mark)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(marked, ["declined", "declined"]);
        let joined: String = segs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, "Card declined; declined-ish <b>");
    }

    #[test]
    fn services_get_colours_of_their_own() {
        let shop = [
            "cart",
            "checkout",
            "frontend",
            "inventory",
            "payment",
            "shipping",
        ];
        seed_service_colors(shop.iter().map(|s| s.to_string()));
        let colours: std::collections::BTreeSet<&str> =
            shop.iter().map(|s| service_color(s)).collect();
        assert_eq!(colours.len(), shop.len(), "two services share a colour");
        assert_eq!(service_color("payment"), service_color("payment"));
    }

    #[test]
    fn cuts_long_values() {
        let v = shown(&"é".repeat(1000));
        assert_eq!(v.short.chars().count(), SHORT_VALUE + 1);
        assert_eq!(v.full.unwrap().chars().count(), 1000);
    }
}
