//! Small helpers to build and read Arrow columns, shared by the per-signal schemas.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::StoreError;
use crate::model::{Attributes, Resource};

/// Timestamps are stored as UTC nanoseconds so DuckDB and pyarrow show real times.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A non-null UTF-8 column.
pub fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

/// A nullable UTF-8 column.
pub fn utf8_null(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// The resource columns every signal's file ends with.
pub fn resource_fields() -> Vec<Field> {
    vec![
        utf8("service_name"),
        utf8("service_instance_id"),
        utf8("host_name"),
        utf8("service_version"),
        utf8("resource_attributes"),
    ]
}

/// Builds the resource columns for rows whose resources are given in order.
pub fn resource_columns<'a>(
    resources: impl Iterator<Item = &'a Resource> + Clone,
) -> Vec<ArrayRef> {
    let col = |f: fn(&Resource) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(resources.clone().map(f)))
    };
    vec![
        col(|r| r.service_name.clone()),
        col(|r| r.service_instance_id.clone()),
        col(|r| r.host_name.clone()),
        col(|r| r.service_version.clone()),
        col(|r| json_text(&r.attributes)),
    ]
}

/// A UTF-8 column from borrowed or owned strings.
pub fn strings<S: AsRef<str>>(values: impl Iterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A nullable UTF-8 column.
pub fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// A UTC nanosecond timestamp column.
pub fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(values).with_timezone("UTC"))
}

/// A fixed-size binary column (ids); `None` entries are null.
pub fn fixed_binary<const N: usize>(
    values: impl Iterator<Item = Option<[u8; N]>>,
) -> Result<ArrayRef, StoreError> {
    let array = FixedSizeBinaryArray::try_from_sparse_iter_with_size(values, N as i32)?;
    Ok(Arc::new(array))
}

/// Compact JSON text of nested values (events, links, distributions).
pub fn json_value<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// Compact JSON text of an attribute object (serialized in place, never cloned).
pub fn json_text(attrs: &Attributes) -> String {
    serde_json::to_string(attrs).unwrap_or_else(|_| "{}".to_string())
}

/// A record's attributes as stored: JSON text without the attribute that holds the record's
/// correlation id (the `correlation_id` column already has its value, ≈ 14 B a record), and
/// the key it was taken from (the `correlation_key` column), so reading puts it back exactly.
/// Only a string attribute equal to the correlation id is lifted; anything else stays.
pub fn lifted_attributes(
    attrs: &Attributes,
    correlation_id: Option<&str>,
) -> (String, Option<String>) {
    let lifted = correlation_id.and_then(|id| {
        attrs
            .iter()
            .find(|(_, v)| v.as_str() == Some(id))
            .map(|(k, _)| k.clone())
    });
    let text = match &lifted {
        Some(key) => {
            serde_json::to_string(&Without { attrs, key }).unwrap_or_else(|_| "{}".to_string())
        }
        None => json_text(attrs),
    };
    (text, lifted)
}

/// Serializes attributes without one key, without copying the map.
struct Without<'a> {
    attrs: &'a Attributes,
    key: &'a str,
}

impl serde::Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.attrs.iter().filter(|(k, _)| k.as_str() != self.key))
    }
}

/// Undoes [`lifted_attributes`] on a row read back.
pub fn restore_lifted(attrs: &mut Attributes, key: Option<String>, correlation_id: Option<&str>) {
    if let (Some(key), Some(id)) = (key, correlation_id) {
        attrs.insert(key, serde_json::Value::String(id.to_string()));
    }
}

/// Reads columns of a stored batch by name, with errors that name the missing column.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    /// Wraps a batch read from one of our files.
    pub fn new(batch: &'a RecordBatch) -> Self {
        Self { batch }
    }

    fn column(&self, name: &str) -> Result<&'a ArrayRef, StoreError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| StoreError::Schema(format!("missing column {name}")))
    }

    /// A UTF-8 column.
    pub fn str(&self, name: &str) -> Result<&'a StringArray, StoreError> {
        self.column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| StoreError::Schema(format!("column {name} is not utf8")))
    }

    /// A string column that files of earlier versions may lack (`None` then).
    pub fn str_if_present(&self, name: &str) -> Option<&'a StringArray> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
    }

    /// A fixed-size binary column.
    pub fn fixed(&self, name: &str) -> Result<&'a FixedSizeBinaryArray, StoreError> {
        self.column(name)?
            .as_fixed_size_binary_opt()
            .ok_or_else(|| StoreError::Schema(format!("column {name} is not fixed binary")))
    }

    /// A primitive column of the given Arrow type (timestamps, integers, floats).
    pub fn primitive<T: arrow::datatypes::ArrowPrimitiveType>(
        &self,
        name: &str,
    ) -> Result<&'a arrow::array::PrimitiveArray<T>, StoreError> {
        self.column(name)?
            .as_primitive_opt::<T>()
            .ok_or_else(|| StoreError::Schema(format!("column {name} has an unexpected type")))
    }

    /// A boolean column.
    pub fn boolean(&self, name: &str) -> Result<&'a arrow::array::BooleanArray, StoreError> {
        self.column(name)?
            .as_boolean_opt()
            .ok_or_else(|| StoreError::Schema(format!("column {name} is not boolean")))
    }

    /// A list column.
    pub fn list(&self, name: &str) -> Result<&'a arrow::array::ListArray, StoreError> {
        self.column(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| StoreError::Schema(format!("column {name} is not a list")))
    }
}

/// Parses a JSON object column value; anything else reads as empty attributes.
pub fn parse_attributes(text: &str) -> Attributes {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Attributes::new(),
    }
}

/// Rebuilds resources row by row, sharing one `Arc` between rows with identical resources.
pub struct ResourceReader<'a> {
    service: &'a StringArray,
    instance: &'a StringArray,
    host: &'a StringArray,
    version: &'a StringArray,
    attributes: &'a StringArray,
    cache: HashMap<[&'a str; 5], Arc<Resource>>,
    /// The previous row's resource: rows of one export sit together, so most rows repeat it.
    last: Option<([&'a str; 5], Arc<Resource>)>,
}

impl<'a> ResourceReader<'a> {
    /// Reads the resource columns of `cols`.
    pub fn new(cols: &Columns<'a>) -> Result<Self, StoreError> {
        Ok(Self {
            service: cols.str("service_name")?,
            instance: cols.str("service_instance_id")?,
            host: cols.str("host_name")?,
            version: cols.str("service_version")?,
            attributes: cols.str("resource_attributes")?,
            cache: HashMap::new(),
            last: None,
        })
    }

    /// The resource of row `i`.
    pub fn get(&mut self, i: usize) -> Arc<Resource> {
        let key = [
            self.service.value(i),
            self.instance.value(i),
            self.host.value(i),
            self.version.value(i),
            self.attributes.value(i),
        ];
        if let Some((last_key, resource)) = &self.last {
            if *last_key == key {
                return resource.clone();
            }
        }
        let resource = self
            .cache
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Resource {
                    service_name: key[0].to_string(),
                    service_instance_id: key[1].to_string(),
                    host_name: key[2].to_string(),
                    service_version: key[3].to_string(),
                    attributes: parse_attributes(key[4]),
                })
            })
            .clone();
        self.last = Some((key, resource.clone()));
        resource
    }
}

/// The value of a nullable fixed-size binary column at `i` as an array.
pub fn fixed_value<const N: usize>(col: &FixedSizeBinaryArray, i: usize) -> Option<[u8; N]> {
    if col.is_null(i) {
        None
    } else {
        col.value(i).try_into().ok()
    }
}

/// The value of a nullable UTF-8 column at `i`.
pub fn opt_str(col: &StringArray, i: usize) -> Option<String> {
    (!col.is_null(i)).then(|| col.value(i).to_string())
}

/// Like [`opt_str`], borrowed.
pub fn opt_str_ref(col: &StringArray, i: usize) -> Option<&str> {
    (!col.is_null(i)).then(|| col.value(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lifted_correlation_attribute_comes_back_exactly() {
        let attrs = json!({"request_id": "r-1", "http.route": "/pay", "n": 3})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let (text, key) = lifted_attributes(&attrs, Some("r-1"));
        assert_eq!(key.as_deref(), Some("request_id"));
        assert!(!text.contains("r-1"));
        let mut back = parse_attributes(&text);
        restore_lifted(&mut back, key, Some("r-1"));
        assert_eq!(back, attrs);
        // A correlation id that came from elsewhere (the resource) lifts nothing.
        let (text, key) = lifted_attributes(&attrs, Some("from-resource"));
        assert_eq!((parse_attributes(&text), key), (attrs.clone(), None));
    }
}
