//! The crash harness's counting, shared by the single-binary harness and the cluster test:
//! numbered batches of logs (correlation id `batch-N`), the acknowledged and the resent ones,
//! and per batch how many records a server holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prost::Message;

use super::otlp::logs;
use super::Server;

/// Batches with how many records were found: `(batch, records)`.
pub type BatchCounts = Vec<(u64, usize)>;

/// What a client sent and what came back.
#[derive(Default)]
pub struct Tally {
    /// Batches answered 200.
    pub acked: BTreeSet<u64>,
    /// Batches sent again because no answer (or an error) came: they may be stored twice.
    pub resent: BTreeSet<u64>,
}

/// Posts batch `batch` of `per_batch` logs of service `crash` to `server`'s OTLP/HTTP port;
/// whether it was acknowledged.
pub async fn post_batch(
    http: &reqwest::Client,
    server: &Server,
    batch: u64,
    per_batch: usize,
    label: &str,
) -> bool {
    let bodies: Vec<String> = (0..per_batch)
        .map(|i| format!("{label} batch {batch} line {i}"))
        .collect();
    let request = logs("crash", &format!("batch-{batch}"), &bodies).encode_to_vec();
    let sent = http
        .post(format!("{}/v1/logs", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .timeout(Duration::from_secs(5))
        .body(request)
        .send()
        .await;
    matches!(sent, Ok(r) if r.status() == 200)
}

/// Records of service `crash` per correlation id, through every page of the search.
pub async fn count_per_batch(server: &Server) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page = "/api/v1/logs?q=service:crash&limit=10000".to_string();
        if let Some(c) = &cursor {
            page.push_str(&format!("&before={c}"));
        }
        let (status, found) = server.get(&page).await;
        assert_eq!(status, 200, "{found}");
        for l in found["logs"].as_array().expect("logs") {
            *counts
                .entry(l["correlation_id"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        match found["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return counts,
        }
    }
}

impl Tally {
    /// Acknowledged batches with fewer records than sent (lost), and with more without a
    /// resend (doubled): `(batch, records found)`.
    pub fn lost_and_doubled(
        &self,
        counts: &BTreeMap<String, usize>,
        per_batch: usize,
    ) -> (BatchCounts, BatchCounts) {
        let (mut lost, mut doubled) = (Vec::new(), Vec::new());
        for &batch in &self.acked {
            let n = counts.get(&format!("batch-{batch}")).copied().unwrap_or(0);
            if n < per_batch {
                lost.push((batch, n));
            }
            if n > per_batch && !self.resent.contains(&batch) {
                doubled.push((batch, n));
            }
        }
        (lost, doubled)
    }
}
