//! Finding a record's business correlation id among its attributes.

use std::borrow::Cow;

use serde_json::Value;

use super::attribute_text::{is_null, lookup, text};
use super::view::KeyValue;
use crate::model::{value_text, Attributes};

/// Attribute keys searched, in order, for a correlation id when none are configured.
pub const DEFAULT_CORRELATION_KEYS: &[&str] = &[
    "correlation_id",
    "correlation.id",
    "request_id",
    "request.id",
    "x-request-id",
    "x-correlation-id",
];

/// The ordered list of attribute keys that carry a correlation id.
#[derive(Debug, Clone)]
pub struct CorrelationKeys(Vec<String>);

impl Default for CorrelationKeys {
    fn default() -> Self {
        Self(
            DEFAULT_CORRELATION_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

impl CorrelationKeys {
    /// Uses `keys` in the given order; an empty list disables correlation ids.
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys)
    }

    /// The correlation id of a record with OTLP key-values `record` (as received) from a
    /// resource with `resource`: the first key present wins; the record's own attributes are
    /// searched before its resource's, so a per-request id beats a process-wide one.
    pub fn find_in<'a>(
        &self,
        record: &[KeyValue<'a>],
        resource: &'a Attributes,
    ) -> Option<Cow<'a, str>> {
        let in_record = self.0.iter().find_map(|key| {
            let value = lookup(record, key).filter(|v| !is_null(v))?;
            Some(text(value)).filter(|t| !t.is_empty())
        });
        in_record.or_else(|| self.find_in_map(resource).map(Cow::Owned))
    }

    /// [`CorrelationKeys::find_in`] over attribute objects: the row model's way, kept as
    /// the oracle the in-place lookup is tested against.
    #[cfg(test)]
    pub fn find_in_attributes(&self, record: &Attributes, resource: &Attributes) -> Option<String> {
        self.find_in_map(record)
            .or_else(|| self.find_in_map(resource))
    }

    /// The first configured key with a non-empty value in `attrs`.
    fn find_in_map(&self, attrs: &Attributes) -> Option<String> {
        self.0.iter().find_map(|key| match attrs.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(value_text(v)).filter(|t| !t.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::view::AnyValue;
    use serde_json::json;

    #[test]
    fn record_attributes_win_over_resource() {
        let keys = CorrelationKeys::default();
        let rec = vec![KeyValue {
            key: "request_id",
            value: AnyValue::Str("r-1"),
        }];
        let res = json!({"correlation_id": "c-9"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(keys.find_in(&rec, &res).as_deref(), Some("r-1"));
        assert_eq!(keys.find_in(&[], &res).as_deref(), Some("c-9"));
        assert_eq!(keys.find_in(&[], &Attributes::new()), None);
    }
}
