//! Finding the interesting parts of the demo scenario through the query API.
#![allow(dead_code)]

use serde_json::Value;

use super::{enc, Server};

/// Ids the UI tests look at, found through the JSON API (not hard-coded).
pub struct DemoIds {
    /// A failed checkout of the incident (payment canary timing out).
    pub failed_trace: String,
    pub failed_span_count: usize,
    /// A successful checkout whose order shipping consumed in a trace of its own.
    pub stitched_trace: String,
    pub linked_trace: String,
    pub stitched_span_count: usize,
    /// The correlation id of that order and the number of log records carrying it.
    pub correlation_id: String,
    pub correlation_logs: usize,
}

/// Looks the ids up in a server started with `--demo`.
pub async fn ids(server: &Server) -> DemoIds {
    let (_, failed) = server
        .get("/api/v1/traces?service=payment&status=error&limit=1")
        .await;
    let failed_trace = failed["traces"][0]["trace_id"]
        .as_str()
        .expect("a failed checkout")
        .to_string();
    let failed_span_count = failed["traces"][0]["span_count"].as_u64().unwrap() as usize;
    let (_, ok) = server
        .get(&format!(
            "/api/v1/traces?operation={}&status=ok&limit=20",
            enc("POST /checkout")
        ))
        .await;
    for t in ok["traces"].as_array().expect("checkouts") {
        let id = t["trace_id"].as_str().unwrap();
        let (_, stitched) = server
            .get(&format!("/api/v1/traces/{id}?stitch=true"))
            .await;
        let linked = stitched["linked"].as_array().cloned().unwrap_or_default();
        let Some(link) = linked.iter().find(|l| l["relation"] == "linked_from") else {
            continue;
        };
        let correlation_id = stitched["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["correlation_id"].as_str())
            .expect("checkout spans carry the order id")
            .to_string();
        let (_, corr) = server
            .get(&format!("/api/v1/correlations/{}", enc(&correlation_id)))
            .await;
        return DemoIds {
            failed_trace,
            failed_span_count,
            stitched_trace: id.to_string(),
            linked_trace: link["trace"]["trace_id"].as_str().unwrap().to_string(),
            stitched_span_count: stitched["spans"].as_array().unwrap().len()
                + link["trace"]["spans"].as_array().unwrap().len(),
            correlation_id,
            correlation_logs: corr["logs"].as_array().unwrap().len(),
        };
    }
    panic!("no stitched checkout in the demo data: {ok}");
}

/// Counts non-overlapping occurrences of `needle` in `haystack`.
pub fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Fetches a page: (status, HTML).
pub async fn page(server: &Server, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{}{path}", server.api))
        .await
        .expect("UI reachable");
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The `href` of the first `<a …>` tag that contains `marker`.
pub fn link_with(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind("<a ")?;
    let tag = &html[tag_start..];
    let start = tag.find("href=\"")? + 6;
    let end = tag[start..].find('"')?;
    Some(
        tag[start..start + end]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// Sends one log record with the given body and attribute over OTLP/HTTP JSON.
pub async fn send_log(server: &Server, service: &str, body: &str, attr: (&str, &str)) {
    let now = super::otlp::now_ns();
    let request: Value = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": now.to_string(),
            "severityNumber": 17,
            "body": {"stringValue": body},
            "attributes": [{"key": attr.0, "value": {"stringValue": attr.1}}]
        }]}]
    }]});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.otlp_http))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Decodes the entities an HTML escaper produces, to compare shown text with what was sent.
pub fn unescape(html: &str) -> String {
    [
        ("&#60;", "<"),
        ("&lt;", "<"),
        ("&#62;", ">"),
        ("&gt;", ">"),
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&#x2f;", "/"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(html.to_string(), |acc, (from, to)| acc.replace(from, to))
}
