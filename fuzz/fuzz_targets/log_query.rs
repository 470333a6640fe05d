//! Arbitrary text as a log query: parse, build the block query, match a row.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sightline::index::Fields;
use sightline::model::{LogRow, Resource};
use sightline::query::log_query::{parse, RowMatcher};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(filter) = parse(&text) {
        let (_, fields) = Fields::schema();
        let _ = filter.block_query(&fields);
        let row = LogRow {
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: "payment declined for order 42 <b>x</b>".into(),
            attributes: Default::default(),
            trace_id: None,
            span_id: None,
            flags: 0,
            event_name: String::new(),
            resource: Arc::new(Resource {
                service_name: "payment".into(),
                ..Default::default()
            }),
            scope_name: String::new(),
            correlation_id: Some("order-42".into()),
        };
        let _ = RowMatcher::new(filter).matches(&row);
    }
});
