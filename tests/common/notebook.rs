//! Helpers for the saved-view and post-mortem tests: the Save form of a page, posting forms,
//! and a page's visible content for comparing two renderings.
#![allow(dead_code)]

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::demo::unescape;
use super::Server;

/// A client that does not follow redirects, so tests see the 303 and where it points.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The hidden fields of the first form posting to `action` in `html`.
pub fn form_fields(html: &str, action: &str) -> HashMap<String, String> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let end = start + html[start..].find("</form>").unwrap();
    let input = Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#).unwrap();
    input
        .captures_iter(&html[start..end])
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect()
}

/// Posts a form; returns (status, Location header, body).
pub async fn post_form(
    server: &Server,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let r = client()
        .post(format!("{}{path}", server.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

/// Sends JSON with `method` to the API; returns (status, body as JSON or null).
pub async fn send_json(server: &Server, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .request(method.parse().unwrap(), format!("{}{path}", server.api))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Fetches a page following redirects: (status, HTML).
pub async fn page(server: &Server, path: &str) -> (u16, String) {
    super::demo::page(server, path).await
}

/// What a person reads on a page: the text of its content (between the content markers),
/// without forms (search boxes, the time picker, the Save form), the pinned-evidence banner,
/// and tags; entities decoded, whitespace collapsed.
pub fn visible_content(html: &str) -> String {
    let start = html
        .find("<!--view-content-->")
        .expect("content start marker");
    let end = html
        .find("<!--/view-content-->")
        .expect("content end marker");
    let content = &html[start..end];
    let forms = Regex::new(r"(?s)<form.*?</form>").unwrap();
    let banner = Regex::new(r#"(?s)<p class="banner pinned-banner".*?</p>"#).unwrap();
    let tags = Regex::new(r"(?s)<[^>]*>").unwrap();
    let content = forms.replace_all(content, " ");
    let content = banner.replace_all(&content, " ");
    let content = tags.replace_all(&content, " ");
    unescape(&content)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts two renderings are the same text, showing where they first differ.
pub fn assert_same(left: &str, right: &str, what: &str) {
    if left == right {
        return;
    }
    let at = left
        .char_indices()
        .zip(right.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(left.len().min(right.len()));
    let from = left[..at]
        .char_indices()
        .rev()
        .nth(120)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let around = |s: &str| {
        s.get(from..)
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>()
    };
    panic!(
        "{what}: renderings differ\n  first: …{}\n second: …{}",
        around(left),
        around(right)
    );
}
