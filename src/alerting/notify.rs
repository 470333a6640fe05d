//! Notifications in formats existing receivers understand: Alertmanager's webhook payload
//! (version 4), so any Alertmanager receiver takes Sightline's alerts unchanged, and Slack's
//! `{"text": …}`; email through [`super::email`]. Alerts of one rule due together go out as one message. Each attempt is
//! retried with backoff and logged with its outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sha2::Digest;

use super::rule::{Receiver, Rule};

/// Attempts per message within one evaluation, and the wait before the second and third.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// One alert as Alertmanager's webhook payload carries it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    /// Alertmanager's "not ended" time while firing.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// RFC 3339 with milliseconds, as Alertmanager writes times.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Alertmanager's "zero" end time of an alert that has not ended.
pub const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// A stable id of an alert: its labels, hashed (16 hex digits, as Alertmanager's).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash = sha2::Sha256::new();
    for (k, v) in labels {
        hash.update(k.as_bytes());
        hash.update([0xff]);
        hash.update(v.as_bytes());
        hash.update([0xff]);
    }
    hex::encode(&hash.finalize()[..8])
}

/// The Alertmanager webhook body (version 4) for `alerts` of `rule`, all of one `status`.
pub fn alertmanager_payload(
    rule: &Rule,
    status: &str,
    alerts: &[PayloadAlert],
    external_url: &str,
) -> serde_json::Value {
    let common = |pick: fn(&PayloadAlert) -> &BTreeMap<String, String>| {
        let mut shared: BTreeMap<String, String> =
            alerts.first().map(pick).cloned().unwrap_or_default();
        shared.retain(|k, v| alerts.iter().all(|a| pick(a).get(k) == Some(v)));
        shared
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", rule.spec.name),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "sightline",
        "groupLabels": { "alertname": rule.spec.name },
        "commonLabels": common(|a| &a.labels),
        "commonAnnotations": common(|a| &a.annotations),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// The Slack-compatible body: one line per alert.
pub fn slack_payload(rule: &Rule, status: &str, alerts: &[PayloadAlert]) -> serde_json::Value {
    let lines: Vec<String> = alerts
        .iter()
        .map(|a| {
            let what = a
                .annotations
                .get("summary")
                .cloned()
                .unwrap_or_else(|| rule.spec.name.clone());
            format!("[{}] {what} <{}>", status.to_uppercase(), a.generator_url)
        })
        .collect();
    json!({ "text": lines.join("\n") })
}

/// One delivery: the receiver, the attempt, and how it went (`sent` or the reason).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When the attempt was made (Unix ns).
    pub at: i64,
    pub receiver: String,
    pub attempt: u32,
    pub outcome: String,
}

/// How notifications leave: HTTP for webhooks and Slack, SMTP for email (when configured).
#[derive(Clone)]
pub struct Channels {
    pub http: reqwest::Client,
    /// `None` without `--smtp-url`: an email receiver is then refused when a rule is saved.
    pub mail: Option<super::email::Mailer>,
}

/// Sends one message to `receiver`, retrying with backoff; every attempt is returned for
/// the log. `true` when it was delivered.
pub async fn deliver(
    channels: &Channels,
    receiver: &Receiver,
    rule: &Rule,
    status: &str,
    alerts: &[PayloadAlert],
    external_url: &str,
) -> (bool, Vec<Attempt>) {
    let mut attempts = Vec::new();
    let mut wait = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let at = crate::model::time::now_ns();
        let result = match receiver {
            Receiver::Webhook(url) => {
                let body = alertmanager_payload(rule, status, alerts, external_url);
                post(&channels.http, url, &body).await
            }
            Receiver::Slack(url) => {
                post(&channels.http, url, &slack_payload(rule, status, alerts)).await
            }
            Receiver::Email(address) => match &channels.mail {
                Some(mailer) => mailer.send(address, rule, status, alerts).await,
                None => Err("no SMTP server is configured (--smtp-url)".into()),
            },
        };
        let sent = result.is_ok();
        attempts.push(Attempt {
            at,
            receiver: receiver.address().to_string(),
            attempt,
            outcome: match result {
                Ok(()) => "sent".to_string(),
                Err(e) => format!("failed: {e}"),
            },
        });
        if sent {
            return (true, attempts);
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    (false, attempts)
}

/// POSTs `body` as JSON; any 2xx is taken.
async fn post(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<(), String> {
    match client.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("the receiver answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_tell_labels_apart() {
        let a = BTreeMap::from([("alertname".to_string(), "x".to_string())]);
        let mut b = a.clone();
        b.insert("instance".into(), "i-1".into());
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
    }
}
