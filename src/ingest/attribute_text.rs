//! OTLP key-values (read in place, [`super::view`]) written straight to the attribute JSON
//! text the files store, and looked up in place — no `serde_json` maps on the ingest path.
//!
//! The text is exactly what [`crate::model::from_key_values`] followed by `serde_json`
//! would write (keys in arrival order, a repeated key keeps its first place and takes its
//! last value, bytes as lower-case hex,
//! non-finite doubles as strings, an empty value as `null`), so a file reads the same whichever
//! path wrote it; only the maps and their per-entry allocations are gone.

use std::borrow::Cow;

use super::view::{AnyValue, KeyValue};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A list of key-values serialized as a JSON object (nested lists, span events and links;
/// a record's own attributes go through the faster [`write_object`]).
pub struct KeyValuesJson<'a> {
    kvs: &'a [KeyValue<'a>],
}

impl<'a> KeyValuesJson<'a> {
    /// All of `kvs`.
    pub fn new(kvs: &'a [KeyValue<'a>]) -> Self {
        Self { kvs }
    }
}

impl Serialize for KeyValuesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut entry = |kv: &KeyValue| map.serialize_entry(kv.key, &AnyJson(&kv.value));
        // Senders rarely repeat a key: such lists are written as they come.
        if distinct_keys(self.kvs) {
            self.kvs.iter().try_for_each(&mut entry)?;
        } else {
            ordered(self.kvs).into_iter().try_for_each(&mut entry)?;
        }
        map.end()
    }
}

/// Whether no key occurs twice (pairwise for the usual handful of attributes).
fn distinct_keys(kvs: &[KeyValue]) -> bool {
    if kvs.len() > 32 {
        let mut seen = std::collections::HashSet::with_capacity(kvs.len());
        return kvs.iter().all(|kv| seen.insert(kv.key));
    }
    kvs.iter()
        .enumerate()
        .all(|(i, kv)| kvs[..i].iter().all(|earlier| earlier.key != kv.key))
}

/// The entries of `kvs` as the attribute object holds them (`serde_json`'s insertion-ordered
/// map): each key where it first occurs, with the value of its last occurrence.
fn ordered<'k, 'a>(kvs: &'k [KeyValue<'a>]) -> Vec<&'k KeyValue<'a>> {
    let mut kept: Vec<&KeyValue> = Vec::with_capacity(kvs.len());
    for kv in kvs {
        match kept.iter_mut().find(|k| k.key == kv.key) {
            Some(slot) => *slot = kv,
            None => kept.push(kv),
        }
    }
    kept
}

/// The key of the first entry (in object order) whose value is the string `value`: the
/// attribute a correlation id is lifted from, as [`crate::store::columns::lifted_attributes`]
/// chooses it.
pub fn key_holding<'a>(kvs: &[KeyValue<'a>], value: &str) -> Option<&'a str> {
    let holds = |kv: &&KeyValue| matches!(kv.value, AnyValue::Str(s) if s == value);
    if distinct_keys(kvs) {
        kvs.iter().find(holds).map(|kv| kv.key)
    } else {
        ordered(kvs).into_iter().find(holds).map(|kv| kv.key)
    }
}

/// One OTLP value as JSON.
pub struct AnyJson<'v, 'a>(pub &'v AnyValue<'a>);

impl Serialize for AnyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AnyValue::Empty => serializer.serialize_unit(),
            AnyValue::Str(s) => serializer.serialize_str(s),
            AnyValue::Bool(b) => serializer.serialize_bool(*b),
            AnyValue::Int(i) => serializer.serialize_i64(*i),
            AnyValue::Double(d) if d.is_finite() => serializer.serialize_f64(*d),
            AnyValue::Double(d) => serializer.serialize_str(&d.to_string()),
            AnyValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&AnyJson(v))?;
                }
                seq.end()
            }
            AnyValue::KvList(entries) => KeyValuesJson::new(entries).serialize(serializer),
            AnyValue::Bytes(b) => serializer.serialize_str(&hex::encode(b)),
        }
    }
}

/// Appends the JSON object of `kvs` (minus `without`) to `out`: the text `serde_json` writes
/// for [`KeyValuesJson`], with the object's punctuation and the usual plain strings and
/// integers written straight to `out` — the serializer's per-byte escaping was a tenth of the
/// decoder's time — and anything that needs escaping or formatting written by `serde_json`.
pub fn write_object(out: &mut Vec<u8>, kvs: &[KeyValue<'_>], without: Option<&str>) {
    write_object_visiting(out, kvs, without, |_| {});
}

/// [`write_object`], calling `visit` with each entry of the object (`without` included) on
/// the way, so a caller that also needs the entries walks them once.
pub fn write_object_visiting<'k, 'a>(
    out: &mut Vec<u8>,
    kvs: &'k [KeyValue<'a>],
    without: Option<&str>,
    mut visit: impl FnMut(&'k KeyValue<'a>),
) {
    out.push(b'{');
    let mut first = true;
    let mut entry = |kv: &'k KeyValue<'a>| {
        visit(kv);
        if Some(kv.key) == without {
            return;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_string(out, kv.key);
        out.push(b':');
        match &kv.value {
            AnyValue::Str(s) => write_string(out, s),
            AnyValue::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            AnyValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            // Writing to a Vec cannot fail, and every value serializes.
            other => {
                let _ = serde_json::to_writer(&mut *out, &AnyJson(other));
            }
        }
    };
    if distinct_keys(kvs) {
        kvs.iter().for_each(&mut entry);
    } else {
        ordered(kvs).into_iter().for_each(&mut entry);
    }
    out.push(b'}');
}

/// Appends `s` as a JSON string: copied between quotes when no byte needs escaping (no
/// control character, quote or backslash — what `serde_json` escapes), else by `serde_json`.
fn write_string(out: &mut Vec<u8>, s: &str) {
    // A fold, not `any`: without an early exit the check runs over whole vectors of bytes.
    let escapes = s.bytes().fold(false, |seen, b| {
        seen | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escapes {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// The value of `key` (the last one, as in the object), if present.
pub fn lookup<'k, 'a>(kvs: &'k [KeyValue<'a>], key: &str) -> Option<&'k AnyValue<'a>> {
    kvs.iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

/// Whether a value is empty (JSON `null`).
pub fn is_null(value: &AnyValue<'_>) -> bool {
    matches!(value, AnyValue::Empty)
}

/// The text form used for matching and display ([`crate::model::value_text`]): strings as
/// they are, everything else as compact JSON.
pub fn text<'a>(value: &AnyValue<'a>) -> Cow<'a, str> {
    match value {
        AnyValue::Str(s) => Cow::Borrowed(s),
        other => Cow::Owned(serde_json::to_string(&AnyJson(other)).unwrap_or_default()),
    }
}

/// The text of a value as the block index lists it (`key=text`), which is what walking the
/// stored JSON gives ([`crate::index`]'s block builder): [`text`], except that bytes and
/// non-finite doubles, stored as JSON strings, are their string's content.
pub fn term_text<'a>(value: &AnyValue<'a>) -> Cow<'a, str> {
    match value {
        AnyValue::Bytes(b) => Cow::Owned(hex::encode(b)),
        AnyValue::Double(d) if !d.is_finite() => Cow::Owned(d.to_string()),
        other => text(other),
    }
}

/// The text of attribute `key`, when present and not empty.
pub fn text_of<'a>(kvs: &[KeyValue<'a>], key: &str) -> Option<Cow<'a, str>> {
    lookup(kvs, key).map(text).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::view::tests::{every_kind, kv};
    use crate::model::from_key_values;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, KeyValue as PKeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    fn encoded(kvs: &[PKeyValue]) -> Vec<u8> {
        Resource {
            attributes: kvs.to_vec(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn via_map(kvs: &[PKeyValue]) -> String {
        serde_json::to_string(&from_key_values(kvs.to_vec())).unwrap()
    }

    fn direct(kvs: &[PKeyValue], without: Option<&str>) -> String {
        let bytes = encoded(kvs);
        let view = crate::ingest::view::resource(&bytes).unwrap();
        let mut out = Vec::new();
        write_object(&mut out, &view, without);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_matches_the_map_path_for_every_value_kind() {
        let kvs = every_kind();
        assert_eq!(direct(&kvs, None), via_map(&kvs));
        let sorted = vec![kv("a", V::IntValue(1)), kv("b", V::IntValue(2))];
        assert_eq!(direct(&sorted, None), via_map(&sorted));
        assert_eq!(direct(&sorted, Some("a")), r#"{"b":2}"#);
        assert_eq!(direct(&[], None), "{}");
        let tricky = vec![
            kv("k\"ey\\", V::StringValue("tab\there".into())),
            kv("ctl", V::StringValue("\u{1f}\u{7f}é".into())),
            kv("min", V::IntValue(i64::MIN)),
            kv("no", V::BoolValue(false)),
            kv("only", V::StringValue("k".into())),
        ];
        assert_eq!(direct(&tricky, None), via_map(&tricky));
        assert_eq!(
            direct(&tricky, Some("only")),
            via_map(&tricky[..4]),
            "without the lifted key"
        );
        let first_lifted = vec![kv("only", V::IntValue(1)), kv("b", V::IntValue(2))];
        assert_eq!(direct(&first_lifted, Some("only")), r#"{"b":2}"#);
    }

    #[test]
    fn lookups_see_the_last_duplicate_and_render_text_like_the_model() {
        let kvs = vec![
            kv("k", V::StringValue("first".into())),
            kv("k", V::IntValue(5)),
            kv("empty", V::StringValue(String::new())),
        ];
        let bytes = encoded(&kvs);
        let view = crate::ingest::view::resource(&bytes).unwrap();
        assert_eq!(text_of(&view, "k").as_deref(), Some("5"));
        assert_eq!(text_of(&view, "empty"), None);
        assert_eq!(text_of(&view, "missing"), None);
        assert!(is_null(&AnyValue::Empty));
        // "k" holds 5 in the object (its last value), so no key holds "first".
        assert_eq!(key_holding(&view, "first"), None);
        assert_eq!(key_holding(&view, ""), Some("empty"));
    }
}
