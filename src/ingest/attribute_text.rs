//! OTLP key-values written straight to the attribute JSON text the files store, and looked up
//! in place — no `serde_json` maps on the ingest path.
//!
//! The text is exactly what [`crate::model::from_key_values`] followed by `serde_json`
//! would write (keys in arrival order, a repeated key keeps its first place and takes its
//! last value, bytes as lower-case hex,
//! non-finite doubles as strings, an empty value as `null`), so a file reads the same whichever
//! path wrote it; only the maps and their per-entry allocations are gone.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A list of key-values serialized as a JSON object, optionally without one key.
pub struct KeyValuesJson<'a> {
    kvs: &'a [KeyValue],
    without: Option<&'a str>,
}

impl<'a> KeyValuesJson<'a> {
    /// All of `kvs`.
    pub fn new(kvs: &'a [KeyValue]) -> Self {
        Self { kvs, without: None }
    }

    /// `kvs` without the entry `key` (the attribute the correlation id was lifted from).
    pub fn without(kvs: &'a [KeyValue], key: Option<&'a str>) -> Self {
        Self { kvs, without: key }
    }
}

impl Serialize for KeyValuesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut entry = |kv: &KeyValue| {
            if Some(kv.key.as_str()) == self.without {
                return Ok(());
            }
            map.serialize_entry(&kv.key, &AnyJson(kv.value.as_ref()))
        };
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
        return kvs.iter().all(|kv| seen.insert(kv.key.as_str()));
    }
    kvs.iter()
        .enumerate()
        .all(|(i, kv)| kvs[..i].iter().all(|earlier| earlier.key != kv.key))
}

/// The entries of `kvs` as the attribute object holds them (`serde_json`'s insertion-ordered
/// map): each key where it first occurs, with the value of its last occurrence.
fn ordered(kvs: &[KeyValue]) -> Vec<&KeyValue> {
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
pub fn key_holding<'a>(kvs: &'a [KeyValue], value: &str) -> Option<&'a str> {
    let holds = |kv: &&KeyValue| {
        matches!(
            kv.value.as_ref().and_then(|v| v.value.as_ref()),
            Some(any_value::Value::StringValue(s)) if s == value
        )
    };
    if distinct_keys(kvs) {
        kvs.iter().find(holds).map(|kv| kv.key.as_str())
    } else {
        ordered(kvs)
            .into_iter()
            .find(holds)
            .map(|kv| kv.key.as_str())
    }
}

/// One OTLP value as JSON.
pub struct AnyJson<'a>(pub Option<&'a AnyValue>);

impl Serialize for AnyJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(value) = self.0.and_then(|v| v.value.as_ref()) else {
            return serializer.serialize_unit();
        };
        match value {
            any_value::Value::StringValue(s) => serializer.serialize_str(s),
            any_value::Value::BoolValue(b) => serializer.serialize_bool(*b),
            any_value::Value::IntValue(i) => serializer.serialize_i64(*i),
            any_value::Value::DoubleValue(d) if d.is_finite() => serializer.serialize_f64(*d),
            any_value::Value::DoubleValue(d) => serializer.serialize_str(&d.to_string()),
            any_value::Value::ArrayValue(a) => {
                let mut seq = serializer.serialize_seq(Some(a.values.len()))?;
                for v in &a.values {
                    seq.serialize_element(&AnyJson(Some(v)))?;
                }
                seq.end()
            }
            any_value::Value::KvlistValue(kv) => {
                KeyValuesJson::new(&kv.values).serialize(serializer)
            }
            any_value::Value::BytesValue(b) => serializer.serialize_str(&hex::encode(b)),
            // An index into a profiles string table; meaningless outside profiles.
            any_value::Value::StringValueStrindex(_) => serializer.serialize_unit(),
        }
    }
}

/// Appends the JSON object of `kvs` (minus `without`) to `out`.
pub fn write_object(out: &mut Vec<u8>, kvs: &[KeyValue], without: Option<&str>) {
    // Writing to a Vec cannot fail, and every value above serializes.
    let _ = serde_json::to_writer(&mut *out, &KeyValuesJson::without(kvs, without));
}

/// The value of `key` (the last one, as in the object), if present.
pub fn lookup<'a>(kvs: &'a [KeyValue], key: &str) -> Option<Option<&'a AnyValue>> {
    kvs.iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref())
}

/// Whether a value is absent or empty (JSON `null`).
pub fn is_null(value: Option<&AnyValue>) -> bool {
    matches!(
        value.and_then(|v| v.value.as_ref()),
        None | Some(any_value::Value::StringValueStrindex(_))
    )
}

/// The text form used for matching and display ([`crate::model::value_text`]): strings as
/// they are, everything else as compact JSON.
pub fn text(value: Option<&AnyValue>) -> Cow<'_, str> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Cow::Borrowed(s),
        _ => Cow::Owned(serde_json::to_string(&AnyJson(value)).unwrap_or_default()),
    }
}

/// The text of attribute `key`, when present and not empty.
pub fn text_of<'a>(kvs: &'a [KeyValue], key: &str) -> Option<Cow<'a, str>> {
    lookup(kvs, key).map(text).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::from_key_values;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn via_map(kvs: &[KeyValue]) -> String {
        serde_json::to_string(&from_key_values(kvs.to_vec())).unwrap()
    }

    fn direct(kvs: &[KeyValue], without: Option<&str>) -> String {
        let mut out = Vec::new();
        write_object(&mut out, kvs, without);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_matches_the_map_path_for_every_value_kind() {
        use any_value::Value as V;
        let kvs = vec![
            kv("z", V::StringValue("quote \" and \u{1} and ü".into())),
            kv("a", V::IntValue(-7)),
            kv("m", V::DoubleValue(1.0)),
            kv("n", V::DoubleValue(f64::NAN)),
            kv("i", V::DoubleValue(f64::NEG_INFINITY)),
            kv("b", V::BoolValue(true)),
            kv("h", V::BytesValue(vec![0xde, 0xad])),
            kv(
                "l",
                V::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(V::IntValue(1)),
                    }],
                }),
            ),
            kv(
                "o",
                V::KvlistValue(KeyValueList {
                    values: vec![kv("y", V::IntValue(2)), kv("x", V::IntValue(1))],
                }),
            ),
            KeyValue {
                key: "e".into(),
                value: None,
                ..Default::default()
            },
            kv("a", V::StringValue("later wins".into())),
            kv("s", V::StringValueStrindex(3)),
        ];
        assert_eq!(direct(&kvs, None), via_map(&kvs));
        let sorted = vec![kv("a", V::IntValue(1)), kv("b", V::IntValue(2))];
        assert_eq!(direct(&sorted, None), via_map(&sorted));
        assert_eq!(direct(&sorted, Some("a")), r#"{"b":2}"#);
        assert_eq!(direct(&[], None), "{}");
    }

    #[test]
    fn lookups_see_the_last_duplicate_and_render_text_like_the_model() {
        use any_value::Value as V;
        let kvs = vec![
            kv("k", V::StringValue("first".into())),
            kv("k", V::IntValue(5)),
            kv("empty", V::StringValue(String::new())),
        ];
        assert_eq!(text_of(&kvs, "k").as_deref(), Some("5"));
        assert_eq!(text_of(&kvs, "empty"), None);
        assert_eq!(text_of(&kvs, "missing"), None);
        assert!(is_null(None));
    }
}
