//! Finding a record's business correlation id among its attributes.

use serde_json::Value;

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

    /// The first key present wins; the record's own attributes are searched before its
    /// resource's, so a per-request id beats a process-wide one.
    pub fn find(&self, record: &Attributes, resource: &Attributes) -> Option<String> {
        for attrs in [record, resource] {
            for key in &self.0 {
                match attrs.get(key) {
                    None | Some(Value::Null) => continue,
                    Some(v) => {
                        let text = value_text(v);
                        if !text.is_empty() {
                            return Some(text);
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_attributes_win_over_resource() {
        let keys = CorrelationKeys::default();
        let rec = json!({"request_id": "r-1"}).as_object().unwrap().clone();
        let res = json!({"correlation_id": "c-9"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(keys.find(&rec, &res).as_deref(), Some("r-1"));
        assert_eq!(keys.find(&Attributes::new(), &res).as_deref(), Some("c-9"));
        assert_eq!(keys.find(&Attributes::new(), &Attributes::new()), None);
    }
}
