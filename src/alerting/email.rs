//! Alert notifications by email: one SMTP message per rule and status, plain text and HTML
//! (`multipart/alternative`), sent with `lettre` to the server configured by `--smtp-url`.
//!
//! The subject follows Alertmanager's default (`[FIRING:2] payment errors`), so mail filters
//! written for Alertmanager's messages keep working.

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::notify::PayloadAlert;
use super::rule::Rule;

/// Where alert mail goes out: the SMTP server and the sender.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS), `smtps://host:port`
    /// (TLS from the start); user and password in the URL when the server needs a login.
    pub url: String,
    /// The `From:` of every message.
    pub from: String,
}

/// A bad `--smtp-url` or `--smtp-from`, named at start.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error(
        "--smtp-url {url:?} is not an SMTP URL (smtp://host:port or smtps://host:port): {problem}"
    )]
    Url { url: String, problem: String },
    #[error("--smtp-from {from:?} is not an email address: {problem}")]
    From { from: String, problem: String },
}

/// Sends alert mail; cheap to clone (the transport keeps one connection pool).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `settings`, or the setting that is wrong.
    pub fn new(settings: &EmailSettings) -> Result<Mailer, EmailSetupError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|e| EmailSetupError::Url {
                url: settings.url.clone(),
                problem: e.to_string(),
            })?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| EmailSetupError::From {
                from: settings.from.clone(),
                problem: e.to_string(),
            })?;
        Ok(Mailer { transport, from })
    }

    /// Sends one message about `alerts` of `rule` (all of `status`) to `to`.
    pub async fn send(
        &self,
        to: &str,
        rule: &Rule,
        status: &str,
        alerts: &[PayloadAlert],
    ) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("{to:?} is not an email address: {e}"))?;
        let html = EmailHtml {
            rule: &rule.spec.name,
            status,
            alerts,
        }
        .render()
        .map_err(|e| format!("the message could not be written: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject(rule, status, alerts.len()))
            .multipart(MultiPart::alternative_plain_html(
                plain_text(rule, status, alerts),
                html,
            ))
            .map_err(|e| format!("the message could not be written: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused it: {e}"))
    }
}

/// Alertmanager's default subject: `[FIRING:N] rule` / `[RESOLVED] rule`.
pub fn subject(rule: &Rule, status: &str, count: usize) -> String {
    match status {
        "firing" => format!("[FIRING:{count}] {}", rule.spec.name),
        _ => format!("[RESOLVED] {}", rule.spec.name),
    }
}

/// The plain-text part: per alert its summary, labels, start (and end) and evidence link.
pub fn plain_text(rule: &Rule, status: &str, alerts: &[PayloadAlert]) -> String {
    let mut out = format!("{} is {status}.\n", rule.spec.name);
    for alert in alerts {
        out.push('\n');
        if let Some(summary) = alert.annotations.get("summary") {
            out.push_str(&format!("{summary}\n"));
        }
        if let Some(description) = alert.annotations.get("description") {
            out.push_str(&format!("{description}\n"));
        }
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("Labels: {}\n", labels.join(", ")));
        out.push_str(&format!("Started: {}\n", alert.starts_at));
        if status == "resolved" {
            out.push_str(&format!("Ended: {}\n", alert.ends_at));
        }
        out.push_str(&format!("Evidence: {}\n", alert.generator_url));
    }
    out
}

/// The HTML part (every value escaped by the template).
#[derive(Template)]
#[template(path = "alert_email.html")]
struct EmailHtml<'a> {
    rule: &'a str,
    status: &'a str,
    alerts: &'a [PayloadAlert],
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(summary: &str) -> PayloadAlert {
        PayloadAlert {
            status: "firing",
            labels: BTreeMap::from([("alertname".into(), "<pay>".into())]),
            annotations: BTreeMap::from([("summary".into(), summary.into())]),
            starts_at: "2026-12-05T07:00:00.000Z".into(),
            ends_at: super::super::notify::NOT_ENDED.into(),
            generator_url: "http://sightline/services/pay?from=1&to=2".into(),
            fingerprint: "0123456789abcdef".into(),
        }
    }

    fn rule() -> Rule {
        serde_json::from_value::<super::super::rule::RuleSpec>(serde_json::json!({
            "name": "<pay> errors", "kind": "error_rate", "service": "pay", "threshold": 0.1
        }))
        .expect("a valid spec")
        .check(1)
        .expect("a valid rule")
    }

    #[test]
    fn the_html_part_escapes_what_users_wrote() {
        let html = EmailHtml {
            rule: "<pay> errors",
            status: "firing",
            alerts: &[alert("<script>x</script>")],
        }
        .render()
        .expect("renders");
        // askama writes `<` as `&#60;`.
        assert!(html.contains("&#60;script&#62;x"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;pay&#62; errors"), "{html}");
    }

    #[test]
    fn subjects_and_text_follow_alertmanager() {
        let r = rule();
        assert_eq!(subject(&r, "firing", 2), "[FIRING:2] <pay> errors");
        assert_eq!(subject(&r, "resolved", 2), "[RESOLVED] <pay> errors");
        let text = plain_text(&r, "firing", &[alert("errors above 10 %")]);
        assert!(text.contains("errors above 10 %\n"), "{text}");
        assert!(text.contains("Evidence: http://sightline/services/pay?from=1&to=2"));
        assert!(!text.contains("Ended:"), "{text}");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad_url = Mailer::new(&EmailSettings {
            url: "gopher://mail".into(),
            from: "a@b.example".into(),
        });
        assert!(matches!(bad_url, Err(EmailSetupError::Url { .. })));
        let bad_from = Mailer::new(&EmailSettings {
            url: "smtp://127.0.0.1:2525".into(),
            from: "not an address".into(),
        });
        assert!(matches!(bad_from, Err(EmailSetupError::From { .. })));
    }
}
