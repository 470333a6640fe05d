//! One GET of a running server's JSON API, for the commands that ask one: the answer parsed,
//! or the server's own `{"error": …}` message with the status.

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// An error answer: `{"error": "…"}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// GETs `url` and parses the JSON answer as `T`; a non-2xx answer is an error carrying the
/// status and the server's message.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> anyhow::Result<T> {
    let response = reqwest::get(url)
        .await
        .with_context(|| format!("could not reach {url}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorAnswer>(&body)
            .map_or_else(|_| "request failed".to_string(), |e| e.error);
        bail!("{status}: {message}");
    }
    serde_json::from_slice(&body).context("the server's answer is not the expected JSON")
}
