//! OTLP messages read in place from the request's bytes: every string and id a slice of the
//! request, nothing owned but the lists that hold them.
//!
//! These are the shapes the trace and log decoders ([`super::traces`], [`super::logs`]) walk
//! to build their columns. They read what prost's generated messages read (same field
//! numbers, wire types and UTF-8 rule; unknown fields skipped; a repeated singular field's
//! last value wins), so a request decodes the same either way — the tests here check it
//! against prost on every value kind. Fields no column keeps (`schema_url`, dropped counts,
//! entity references) are checked for their wire type only.

pub mod blocks;
pub mod logs;
pub mod metrics;
pub mod trace;

use super::wire::{Field, Fields, WireError};
use crate::model::Attributes;

/// Deepest nesting of arrays and key-value lists inside one attribute value; deeper is refused
/// (a hostile request could otherwise exhaust the stack).
const MAX_VALUE_DEPTH: u32 = 64;

/// `common.v1.KeyValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: AnyValue<'a>,
}

/// `common.v1.AnyValue`; an absent value, an empty one and a profiles string-table index
/// (meaningless outside profiles) are all [`AnyValue::Empty`].
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue<'a> {
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(Vec<AnyValue<'a>>),
    KvList(Vec<KeyValue<'a>>),
}

/// `common.v1.InstrumentationScope`: the name and version the columns keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

const fn field<'m>(message: &'m str, name: &'m str) -> Field<'m> {
    Field { message, name }
}

/// Appends the key-value encoded in `bytes` to `list`.
pub fn push_key_value<'a>(list: &mut Vec<KeyValue<'a>>, bytes: &'a [u8]) -> Result<(), WireError> {
    list.push(key_value(bytes, 0)?);
    Ok(())
}

fn key_value(bytes: &[u8], depth: u32) -> Result<KeyValue<'_>, WireError> {
    const KEY: Field = field("KeyValue", "key");
    const VALUE: Field = field("KeyValue", "value");
    let mut kv = KeyValue {
        key: "",
        value: AnyValue::Empty,
    };
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => kv.key = v.str(&KEY)?,
            (2, v) => {
                // A repeated message field merges: a later value with no kind set keeps this one.
                let value = any_value(v.bytes(&VALUE)?, depth)?;
                if value != AnyValue::Empty {
                    kv.value = value;
                }
            }
            (3, v) => {
                v.varint(&field("KeyValue", "key_strindex"))?;
            }
            _ => {}
        }
    }
    Ok(kv)
}

/// The value encoded in `bytes`, `depth` lists deep.
pub fn any_value(bytes: &[u8], depth: u32) -> Result<AnyValue<'_>, WireError> {
    const M: &str = "AnyValue";
    if depth > MAX_VALUE_DEPTH {
        return Err(WireError(format!(
            "attribute value nested deeper than {MAX_VALUE_DEPTH} levels"
        )));
    }
    let mut value = AnyValue::Empty;
    for f in Fields::new(bytes) {
        value = match f? {
            (1, v) => AnyValue::Str(v.str(&field(M, "string_value"))?),
            (2, v) => AnyValue::Bool(v.varint(&field(M, "bool_value"))? != 0),
            (3, v) => AnyValue::Int(v.varint(&field(M, "int_value"))? as i64),
            (4, v) => AnyValue::Double(f64::from_bits(v.fixed64(&field(M, "double_value"))?)),
            (5, v) => {
                let mut items = Vec::new();
                for item in Fields::new(v.bytes(&field(M, "array_value"))?) {
                    match item? {
                        (1, v) => items.push(any_value(
                            v.bytes(&field("ArrayValue", "values"))?,
                            depth + 1,
                        )?),
                        _ => continue,
                    }
                }
                AnyValue::Array(items)
            }
            (6, v) => {
                let mut entries = Vec::new();
                for entry in Fields::new(v.bytes(&field(M, "kvlist_value"))?) {
                    match entry? {
                        (1, v) => entries.push(key_value(
                            v.bytes(&field("KeyValueList", "values"))?,
                            depth + 1,
                        )?),
                        _ => continue,
                    }
                }
                AnyValue::KvList(entries)
            }
            (7, v) => AnyValue::Bytes(v.bytes(&field(M, "bytes_value"))?),
            (8, v) => {
                v.varint(&field(M, "string_value_strindex"))?;
                AnyValue::Empty
            }
            _ => continue,
        };
    }
    Ok(value)
}

/// `resource.v1.Resource`: its attributes.
pub fn resource(bytes: &[u8]) -> Result<Vec<KeyValue<'_>>, WireError> {
    let mut attributes = Vec::new();
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => push_key_value(&mut attributes, v.bytes(&field("Resource", "attributes"))?)?,
            (2, v) => {
                v.varint(&field("Resource", "dropped_attributes_count"))?;
            }
            (3, v) => {
                v.bytes(&field("Resource", "entity_refs"))?;
            }
            _ => {}
        }
    }
    Ok(attributes)
}

/// `common.v1.InstrumentationScope` (its attributes are checked, not kept).
pub fn scope(bytes: &[u8]) -> Result<Scope<'_>, WireError> {
    const M: &str = "InstrumentationScope";
    let mut scope = Scope::default();
    let mut attributes = Vec::new();
    for f in Fields::new(bytes) {
        match f? {
            (1, v) => scope.name = v.str(&field(M, "name"))?,
            (2, v) => scope.version = v.str(&field(M, "version"))?,
            (3, v) => push_key_value(&mut attributes, v.bytes(&field(M, "attributes"))?)?,
            (4, v) => {
                v.varint(&field(M, "dropped_attributes_count"))?;
            }
            _ => {}
        }
    }
    Ok(scope)
}

/// The attribute object of `kvs` as the model holds it ([`crate::model::from_key_values`]):
/// the same JSON the attribute column gets ([`super::attribute_text`]), as a map.
pub fn attributes(kvs: &[KeyValue<'_>]) -> Attributes {
    match serde_json::to_value(super::attribute_text::KeyValuesJson::new(kvs)) {
        Ok(serde_json::Value::Object(map)) => map,
        // An object always serializes to one; nothing else can come back.
        _ => Attributes::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::from_key_values;
    use opentelemetry_proto::tonic::common::v1::{
        any_value::Value as V, AnyValue as PAnyValue, ArrayValue, KeyValue as PKeyValue,
        KeyValueList,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    pub fn kv(key: &str, value: V) -> PKeyValue {
        PKeyValue {
            key: key.into(),
            value: Some(PAnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    /// Every value kind, nested lists, an empty value, a repeated key and a strindex.
    pub fn every_kind() -> Vec<PKeyValue> {
        vec![
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
                    values: vec![PAnyValue {
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
            PKeyValue {
                key: "e".into(),
                value: None,
                ..Default::default()
            },
            kv("a", V::StringValue("later wins".into())),
            kv("s", V::StringValueStrindex(3)),
        ]
    }

    #[test]
    fn attributes_read_in_place_match_prost_and_the_model() {
        let kvs = every_kind();
        let bytes = Resource {
            attributes: kvs.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        let view = resource(&bytes).unwrap();
        assert_eq!(view.len(), kvs.len());
        assert_eq!(view[0].value, AnyValue::Str("quote \" and \u{1} and ü"));
        assert_eq!(view[9].value, AnyValue::Empty);
        assert_eq!(attributes(&view), from_key_values(kvs));
    }

    #[test]
    fn hostile_values_are_refused_not_followed() {
        let mut value = PAnyValue {
            value: Some(V::IntValue(1)),
        };
        for _ in 0..(MAX_VALUE_DEPTH + 2) {
            value = PAnyValue {
                value: Some(V::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let err = any_value(&value.encode_to_vec(), 0).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        // A string field holding bytes that are not UTF-8.
        let bad = [1 << 3 | 2, 1, 0xff];
        assert!(any_value(&bad, 0).is_err());
        assert_eq!(
            PAnyValue::decode(&bad[..]).is_err(),
            any_value(&bad, 0).is_err()
        );
    }
}
