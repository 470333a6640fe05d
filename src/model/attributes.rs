//! Attribute values in the one shape the whole crate uses: a JSON object.
//!
//! OTLP's `AnyValue` maps one to one onto JSON (strings, booleans, integers, doubles, arrays,
//! key-value lists); bytes become lower-case hex and non-finite doubles become strings, so the
//! result is always valid JSON and can be stored in Parquet as text that any tool can read.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde_json::{Map, Number, Value};

/// Attributes of a record, ordered by key.
pub type Attributes = Map<String, Value>;

/// Converts OTLP key-values into an attribute object; later duplicates of a key win.
pub fn from_key_values(kvs: Vec<KeyValue>) -> Attributes {
    let mut out = Map::new();
    for kv in kvs {
        out.insert(kv.key, any_to_json(kv.value));
    }
    out
}

/// Converts one OTLP value to JSON; an empty value becomes `null`.
pub fn any_to_json(value: Option<AnyValue>) -> Value {
    let Some(value) = value.and_then(|v| v.value) else {
        return Value::Null;
    };
    match value {
        any_value::Value::StringValue(s) => Value::String(s),
        any_value::Value::BoolValue(b) => Value::Bool(b),
        any_value::Value::IntValue(i) => Value::Number(i.into()),
        any_value::Value::DoubleValue(d) => match Number::from_f64(d) {
            Some(n) => Value::Number(n),
            None => Value::String(d.to_string()),
        },
        any_value::Value::ArrayValue(a) => {
            Value::Array(a.values.into_iter().map(|v| any_to_json(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => Value::Object(from_key_values(kv.values)),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        // An index into a profiles string table; meaningless outside profiles.
        any_value::Value::StringValueStrindex(_) => Value::Null,
    }
}

/// The text form of a value used for matching and display: strings as they are, everything
/// else as compact JSON.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Removes a string-valued attribute and returns it, for lifting well-known keys into fields.
pub fn take_string(attrs: &mut Attributes, key: &str) -> Option<String> {
    match attrs.get(key) {
        Some(Value::String(_)) => match attrs.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        Some(Value::Null) | None => None,
        Some(other) => {
            let text = other.to_string();
            attrs.remove(key);
            Some(text)
        }
    }
}
