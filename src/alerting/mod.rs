//! Alerting: rules evaluated on a fixed cadence from the rollups and indexes, alert states
//! kept in the metadata store (a restart resumes them without sending anything twice), and
//! notifications receivers already understand.
//!
//! The five rule kinds, `for`, grouping by instance or version, states and history, flap
//! damping, webhook (Alertmanager v4), Slack and email notifications with retries and a log,
//! repeat while firing, a resolved message, silences, rule files (TOML or YAML), the JSON and
//! Prometheus-compatible API. The `/alerts` page lives in `web`.

pub mod api;
pub mod email;
pub mod evaluate;
pub mod notify;
pub mod rule;
pub mod silence;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::meta::alerts::{AlertState, NotificationRecord, Phase};
use crate::meta::lease::{LeaseHolder, LeaseTask};
use crate::meta::MetaStore;
use crate::query::QueryEngine;
use crate::telemetry;
use rule::{Measure, Rule, RuleSpec};

/// How alerting runs.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Between evaluations (default 15 s).
    pub every: Duration,
    /// Between repeated notifications of an alert that keeps firing (default 4 h, as
    /// Alertmanager's `repeat_interval`).
    pub repeat: Duration,
    /// This server's address as receivers should link to it (`generatorURL`).
    pub external_url: String,
    /// Rules to load at start (`--alert-rules`).
    pub rules_file: Option<std::path::PathBuf>,
    /// The SMTP server email receivers go through (`--smtp-url`, `--smtp-from`); without it
    /// a rule with an email receiver is refused.
    pub email: Option<email::EmailSettings>,
}

/// A rules file: `[[rules]]` tables (TOML) or a `rules:` list (YAML) with the API's fields.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

impl RulesFile {
    /// Reads a rules file: YAML when its name ends in `.yaml` or `.yml`, TOML otherwise.
    fn read(path: &std::path::Path) -> anyhow::Result<RulesFile> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read alert rules {}", path.display()))?;
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml {
            serde_saphyr::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "alert rules {} are not valid YAML rules: {e}",
                    path.display()
                )
            })
        } else {
            toml::from_str(&text)
                .with_context(|| format!("alert rules {} are not valid TOML rules", path.display()))
        }
    }
}

/// Checks a rule as the API and rule files take it: the rule itself, then that every
/// receiver can be reached from this server (an email receiver needs `--smtp-url`).
pub fn check_rule(
    spec: RuleSpec,
    id: i64,
    settings: &AlertSettings,
) -> Result<Rule, rule::RuleError> {
    let rule = spec.check(id)?;
    if settings.email.is_none() {
        if let Some(i) = rule
            .spec
            .receivers
            .iter()
            .position(|r| matches!(r, rule::Receiver::Email(_)))
        {
            return Err(rule::RuleError {
                field: format!("receivers[{i}].email"),
                problem: "no SMTP server is configured: start the server with --smtp-url".into(),
            });
        }
    }
    Ok(rule)
}

/// Loads `path`'s rules into `meta`: a rule of the file replaces a stored rule of the same
/// name, others are added. Every rule is checked before any is stored; a bad one is an error
/// naming the file, the rule and the field. Returns how many rules were loaded.
pub async fn load_rules_file(
    meta: &MetaStore,
    path: &std::path::Path,
    settings: &AlertSettings,
) -> anyhow::Result<usize> {
    let file = RulesFile::read(path)?;
    let mut checked = Vec::new();
    for (i, spec) in file.rules.into_iter().enumerate() {
        let name = spec.name.clone();
        let rule = check_rule(spec, 0, settings).map_err(|e| {
            anyhow::anyhow!(
                "alert rules {}: rule {} ({name:?}): {e}",
                path.display(),
                i + 1
            )
        })?;
        checked.push(rule);
    }
    let stored = meta.alert_rules().await?;
    for rule in &checked {
        let body = serde_json::to_string(&rule.spec)?;
        match stored
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(&rule.spec.name))
        {
            Some(old) if old.body == body => {}
            Some(old) => {
                meta.replace_alert_rule(old.id, &rule.spec.name, body)
                    .await?;
            }
            None => match meta.create_alert_rule(&rule.spec.name, body.clone()).await {
                // Another node of the cluster loaded its rules file at the same moment.
                Err(crate::meta::MetaError::Conflict(_)) => {
                    let now = meta.alert_rules().await?;
                    if let Some(old) = now
                        .iter()
                        .find(|s| s.name.eq_ignore_ascii_case(&rule.spec.name) && s.body != body)
                    {
                        meta.replace_alert_rule(old.id, &rule.spec.name, body)
                            .await?;
                    }
                }
                other => {
                    other?;
                }
            },
        }
    }
    Ok(checked.len())
}

/// The alerting service: rules, states and notifications over one query engine.
#[derive(Clone)]
pub struct Alerting {
    meta: MetaStore,
    engine: QueryEngine,
    settings: AlertSettings,
    channels: notify::Channels,
    /// Messages being delivered (rule, alert group, status): deliveries run beside the
    /// evaluations, so a slow or dead receiver holds back neither the other rules nor the
    /// next evaluation, and an alert still due while its message is on the way is not sent
    /// twice. A key stays until an evaluation finds the alert no longer due (delivered), or
    /// goes when the delivery failed (retried at the next evaluation).
    sending: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<Sending>>>,
}

/// A message on its way: rule id, alert group, status.
type Sending = (i64, String, &'static str);

/// `key=value` pairs joined by `,`: how an alert's group is stored.
pub fn group_key(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn labels_of(group_key: &str) -> BTreeMap<String, String> {
    group_key
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Alerting {
    /// Alerting over `engine`, keeping its records in `meta`; a bad SMTP setting is refused.
    pub fn new(
        meta: MetaStore,
        engine: QueryEngine,
        settings: AlertSettings,
    ) -> Result<Alerting, email::EmailSetupError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mail = settings
            .email
            .as_ref()
            .map(email::Mailer::new)
            .transpose()?;
        Ok(Alerting {
            meta,
            engine,
            settings,
            channels: notify::Channels { http, mail },
            sending: Default::default(),
        })
    }

    /// Checks a rule for this server (see [`check_rule`]).
    pub fn check_rule(&self, spec: RuleSpec, id: i64) -> Result<Rule, rule::RuleError> {
        check_rule(spec, id, &self.settings)
    }

    /// The stored rules, checked (a stored rule always passed the check; one that no longer
    /// does is logged and skipped).
    pub async fn rules(&self) -> Result<Vec<Rule>, crate::meta::MetaError> {
        Ok(self
            .meta
            .alert_rules()
            .await?
            .into_iter()
            .filter_map(|stored| {
                let checked = serde_json::from_str::<RuleSpec>(&stored.body)
                    .map_err(|e| e.to_string())
                    .and_then(|spec| spec.check(stored.id).map_err(|e| e.to_string()));
                match checked {
                    Ok(rule) => Some(rule),
                    Err(e) => {
                        tracing::error!(rule = stored.id, "stored alert rule no longer valid: {e}");
                        None
                    }
                }
            })
            .collect())
    }

    /// Replays evaluation over `[from, to]` at the evaluation cadence, as if the server had
    /// been running then: states and history record when alerts fired and resolved, and no
    /// notification is sent (what is due is marked told). Each rule's values come from one
    /// [`evaluate::series`] read. The demo runs this over its recorded hour, so `/alerts`
    /// shows its incident's alert at the minute it happened.
    pub async fn backfill(&self, from: i64, to: i64) -> Result<(), crate::meta::MetaError> {
        let step = (self.settings.every.as_nanos() as i64).max(1_000_000_000);
        // At most a day of steps, the last ones kept.
        let from = from.max(to - (evaluate::MAX_POINTS - 1) * step);
        let mut states = self.state_map().await?;
        for rule in &self.rules().await? {
            let series = match evaluate::series(&self.engine, rule, from, to, step).await {
                Ok(series) => series,
                Err(e) => {
                    tracing::warn!(rule = rule.id, "alert rule not replayed: {e}");
                    continue;
                }
            };
            let mut at: BTreeMap<i64, Vec<evaluate::GroupValue>> = BTreeMap::new();
            for (labels, points) in series {
                for (t, value) in points {
                    at.entry(t).or_default().push((labels.clone(), value));
                }
            }
            for (t, values) in at {
                self.apply(rule, values, t, None, &mut states).await?;
            }
        }
        Ok(())
    }

    /// Every stored alert state by rule and group.
    async fn state_map(
        &self,
    ) -> Result<HashMap<(i64, String), AlertState>, crate::meta::MetaError> {
        Ok(self
            .meta
            .alert_states()
            .await?
            .into_iter()
            .map(|s| ((s.rule_id, s.group_key.clone()), s))
            .collect())
    }

    /// Evaluates every rule now: new states and transitions stored, due notifications sent.
    pub async fn evaluate_once(&self, now: i64) -> Result<(), crate::meta::MetaError> {
        let rules = self.rules().await?;
        let silences = self.active_silences(now).await?;
        let mut states = self.state_map().await?;
        for rule in &rules {
            let values = match evaluate::values(&self.engine, rule, now).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(rule = rule.id, "alert rule not evaluated: {e}");
                    continue;
                }
            };
            self.apply(rule, values, now, Some(&silences), &mut states)
                .await?;
        }
        Ok(())
    }

    /// Advances `rule`'s alerts with the `values` read at `now`, stores what changed and
    /// sends what is due — or, with `silences` `None` (a replay), marks it told unsent.
    async fn apply(
        &self,
        rule: &Rule,
        values: Vec<evaluate::GroupValue>,
        now: i64,
        silences: Option<&[silence::Silence]>,
        states: &mut HashMap<(i64, String), AlertState>,
    ) -> Result<(), crate::meta::MetaError> {
        let mut seen = Vec::new();
        let mut readings: Vec<(String, state::Reading)> = values
            .into_iter()
            .map(|(labels, value)| {
                let key = group_key(&labels);
                seen.push(key.clone());
                let breached = value.is_some_and(|v| rule.breached(v));
                (key, state::Reading { value, breached })
            })
            .collect();
        // A group that measured nothing this time (an instance gone from a grouped rule)
        // no longer breaks the rule.
        for (rule_id, key) in states.keys() {
            if *rule_id == rule.id && !seen.contains(key) {
                readings.push((
                    key.clone(),
                    state::Reading {
                        value: None,
                        breached: false,
                    },
                ));
            }
        }
        let mut due: BTreeMap<&'static str, Vec<AlertState>> = BTreeMap::new();
        for (key, reading) in readings {
            let prev = states.get(&(rule.id, key.clone()));
            let (next, transition) = state::advance(
                prev,
                rule.id,
                &key,
                reading,
                rule.spec.for_secs * 1_000_000_000,
                2 * self.settings.every.as_nanos() as i64,
                now,
            );
            if prev != Some(&next) || transition.is_some() {
                self.meta.save_alert_state(next.clone(), transition).await?;
            }
            match state::due(&next, self.settings.repeat.as_nanos() as i64, now) {
                Some(status) if !self.is_sending(rule.id, &key, status) => {
                    due.entry(status).or_default().push(next.clone());
                }
                Some(_) => {}
                None => self.sent(rule.id, &key),
            }
            states.insert((rule.id, key), next);
        }
        for (status, alerts) in due {
            let Some(silences) = silences else {
                for mut alert in alerts {
                    alert.notified = now;
                    self.meta.save_alert_state(alert.clone(), None).await?;
                    states.insert((rule.id, alert.group_key.clone()), alert);
                }
                continue;
            };
            // Silenced alerts send nothing: a firing one stays due (it is told once the
            // silence ends), a resolution is dropped.
            let (silenced, told): (Vec<AlertState>, Vec<AlertState>) = alerts
                .into_iter()
                .partition(|a| silences.iter().any(|s| s.matches(&self.labels(rule, a))));
            for mut alert in silenced.into_iter().filter(|_| status == "resolved") {
                alert.notified = now;
                self.meta.save_alert_state(alert, None).await?;
            }
            if !told.is_empty() {
                self.send(rule, status, told, now).await?;
            }
        }
        Ok(())
    }

    /// Whether a `status` message about alert `group` of rule `rule_id` is on its way.
    fn is_sending(&self, rule_id: i64, group: &str, status: &'static str) -> bool {
        self.sending
            .lock()
            .is_ok_and(|s| s.contains(&(rule_id, group.to_string(), status)))
    }

    /// Forgets the messages about alert `group` of rule `rule_id`: it is no longer due.
    fn sent(&self, rule_id: i64, group: &str) {
        if let Ok(mut sending) = self.sending.lock() {
            sending.retain(|(r, g, _)| !(*r == rule_id && g == group));
        }
    }

    /// Tells `rule`'s receivers about `alerts` in a task of its own (a rule without
    /// receivers has them marked told at once).
    async fn send(
        &self,
        rule: &Rule,
        status: &'static str,
        alerts: Vec<AlertState>,
        now: i64,
    ) -> Result<(), crate::meta::MetaError> {
        if rule.spec.receivers.is_empty() {
            for alert in alerts {
                self.meta
                    .mark_alert_notified(rule.id, alert.group_key, now)
                    .await?;
            }
            return Ok(());
        }
        if let Ok(mut sending) = self.sending.lock() {
            sending.extend(
                alerts
                    .iter()
                    .map(|a| (rule.id, a.group_key.clone(), status)),
            );
        }
        let (this, rule) = (self.clone(), rule.clone());
        tokio::spawn(async move {
            let groups: Vec<String> = alerts.iter().map(|a| a.group_key.clone()).collect();
            let delivered = match this.notify(&rule, status, alerts, now).await {
                Ok(delivered) => delivered,
                Err(e) => {
                    tracing::error!(rule = rule.id, "alert notification not recorded: {e}");
                    false
                }
            };
            if !delivered {
                if let Ok(mut sending) = this.sending.lock() {
                    for group in groups {
                        sending.remove(&(rule.id, group, status));
                    }
                }
            }
        });
        Ok(())
    }

    /// Sends one message per receiver for `alerts` of `rule`; when every receiver took it,
    /// marks them notified (so neither the next evaluation nor a restart sends it again) and
    /// returns `true`.
    async fn notify(
        &self,
        rule: &Rule,
        status: &'static str,
        alerts: Vec<AlertState>,
        now: i64,
    ) -> Result<bool, crate::meta::MetaError> {
        let payload: Vec<notify::PayloadAlert> = alerts
            .iter()
            .map(|a| self.payload_alert(rule, a, status))
            .collect();
        let mut delivered = !rule.spec.receivers.is_empty();
        for receiver in &rule.spec.receivers {
            let (sent, attempts) = notify::deliver(
                &self.channels,
                receiver,
                rule,
                status,
                &payload,
                &self.settings.external_url,
            )
            .await;
            delivered &= sent;
            for alert in &alerts {
                for a in &attempts {
                    self.meta
                        .log_notification(NotificationRecord {
                            rule_id: rule.id,
                            group_key: alert.group_key.clone(),
                            at: a.at,
                            status: status.to_string(),
                            receiver: a.receiver.clone(),
                            attempt: a.attempt,
                            outcome: a.outcome.clone(),
                        })
                        .await?;
                }
            }
        }
        if delivered {
            for alert in alerts {
                self.meta
                    .mark_alert_notified(rule.id, alert.group_key, now)
                    .await?;
            }
        }
        Ok(delivered)
    }

    /// A rule's values over `[start, end]` every `step` ns, its threshold and when its
    /// alerts fired (from the history), for the `/alerts` chart and the values API.
    pub async fn chart(
        &self,
        rule: &Rule,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<RuleChart, String> {
        let series = evaluate::series(&self.engine, rule, start, end, step).await?;
        let history = self
            .meta
            .alert_history(rule.id, 1000)
            .await
            .map_err(|e| e.to_string())?;
        // History comes newest first; a firing span opens on `→ firing` and closes on the
        // next change of the same alert.
        let mut open: BTreeMap<String, i64> = BTreeMap::new();
        let mut firing = Vec::new();
        for t in history.iter().rev() {
            if t.to == Phase::Firing {
                open.entry(t.group_key.clone()).or_insert(t.at);
            } else if let Some(from) = open.remove(&t.group_key) {
                firing.push((labels_of(&t.group_key), from, Some(t.at)));
            }
        }
        firing.extend(
            open.into_iter()
                .map(|(key, from)| (labels_of(&key), from, None)),
        );
        firing.retain(|(_, from, to)| *from <= end && to.is_none_or(|to| to >= start));
        firing.sort_by_key(|f| f.1);
        let threshold = match rule.measure {
            Measure::Absence if rule.spec.threshold <= 0.0 => rule.spec.window_secs as f64,
            _ => rule.spec.threshold,
        };
        Ok(RuleChart {
            threshold,
            series,
            firing,
        })
    }

    /// The newest `limit` state changes of rule `id`'s alerts, newest first.
    pub async fn history(
        &self,
        id: i64,
        limit: usize,
    ) -> Result<Vec<crate::meta::alerts::Transition>, crate::meta::MetaError> {
        self.meta.alert_history(id, limit).await
    }

    /// Every alert's state.
    pub async fn states(&self) -> Result<Vec<AlertState>, crate::meta::MetaError> {
        self.meta.alert_states().await
    }

    /// Every silence, newest first.
    pub async fn silences(
        &self,
    ) -> Result<Vec<crate::meta::alerts::StoredSilence>, crate::meta::MetaError> {
        self.meta.silences().await
    }

    /// Stores a checked silence (see [`silence::SilenceSpec::check`]).
    pub async fn create_silence(
        &self,
        matchers: String,
        starts: i64,
        ends: i64,
        created_by: String,
        comment: String,
    ) -> Result<crate::meta::alerts::StoredSilence, crate::meta::MetaError> {
        self.meta
            .create_silence(matchers, starts, ends, created_by, comment)
            .await
    }

    /// Ends silence `id` now.
    pub async fn expire_silence(&self, id: i64) -> Result<(), crate::meta::MetaError> {
        self.meta.expire_silence(id).await
    }

    /// The newest `limit` notification attempts.
    pub async fn notifications(
        &self,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, crate::meta::MetaError> {
        self.meta.notifications(limit).await
    }

    /// Silences active at `now`.
    pub async fn active_silences(
        &self,
        now: i64,
    ) -> Result<Vec<silence::Silence>, crate::meta::MetaError> {
        Ok(self
            .meta
            .silences()
            .await?
            .iter()
            .filter_map(silence::Silence::of)
            .filter(|s| s.active(now))
            .collect())
    }

    /// An alert's labels: the rule's, `alertname`, `service`, and the group's.
    pub fn labels(&self, rule: &Rule, alert: &AlertState) -> BTreeMap<String, String> {
        let mut labels = rule.spec.labels.clone();
        labels.insert("alertname".into(), rule.spec.name.clone());
        if let Some(s) = &rule.spec.service {
            labels.insert("service".into(), s.clone());
        }
        labels.extend(labels_of(&alert.group_key));
        labels
    }

    /// One alert as the webhook payload carries it.
    fn payload_alert(
        &self,
        rule: &Rule,
        alert: &AlertState,
        status: &'static str,
    ) -> notify::PayloadAlert {
        let labels = self.labels(rule, alert);
        let annotations = rule
            .spec
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), rule.annotation(v, alert.value, &labels)))
            .collect();
        let started = alert.fired.unwrap_or(alert.since);
        notify::PayloadAlert {
            status,
            annotations,
            starts_at: notify::rfc3339(started),
            ends_at: match (status, alert.resolved) {
                ("resolved", Some(t)) => notify::rfc3339(t),
                _ => notify::NOT_ENDED.to_string(),
            },
            generator_url: self.evidence_url(rule, alert),
            fingerprint: notify::fingerprint(&labels),
            labels,
        }
    }

    /// The Sightline page that shows an alert's evidence over its incident window (see
    /// [`incident_window`]), as an absolute URL.
    pub fn evidence_url(&self, rule: &Rule, alert: &AlertState) -> String {
        let (from, to) = incident_window(alert, crate::model::time::now_ns());
        let first = evidence_pages(rule, from, to)
            .into_iter()
            .next()
            .map(|(_, url)| url)
            .unwrap_or_default();
        format!(
            "{}{first}",
            self.settings.external_url.trim_end_matches('/')
        )
    }

    /// Evaluates every `settings.every` until `stop` is cancelled — while this node holds the
    /// alert-evaluation lease: in a cluster one query node evaluates and notifies, and another
    /// takes over at its next tick when that one dies (the states it resumes from are shared).
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease = LeaseHolder::new(LeaseTask::AlertEvaluation);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let held = lease.holds(&self.meta).await;
            telemetry::get().alert_lease_held.set(i64::from(held));
            if !held {
                continue;
            }
            telemetry::get().alert_evaluations.inc();
            if let Err(e) = self.evaluate_once(crate::model::time::now_ns()).await {
                tracing::error!("alert evaluation failed: {e}");
            }
        }
    }
}

/// A rule's values over a window, its threshold and its firing spans.
#[derive(Debug, Clone)]
pub struct RuleChart {
    /// The threshold in the value's unit (absence: seconds).
    pub threshold: f64,
    pub series: Vec<evaluate::GroupSeries>,
    /// Each firing span: the alert's group labels, from, to (`None` while it fires).
    pub firing: Vec<(BTreeMap<String, String>, i64, Option<i64>)>,
}

/// An alert's incident window: from 15 minutes before it fired to its resolution, or `now`
/// while it fires.
pub fn incident_window(alert: &AlertState, now: i64) -> (i64, i64) {
    let fired = alert.fired.unwrap_or(alert.since);
    let to = match alert.phase {
        Phase::Resolved => alert.resolved.unwrap_or(alert.since),
        _ => now,
    };
    (fired - 15 * 60 * 1_000_000_000, to.max(fired + 1))
}

/// The pages that show a rule's evidence over `[from, to]` (name, path with query), the most
/// telling first: the service page and the errors page for RED and absence rules, the log
/// query for log rules, the metrics explorer for metric rules.
pub fn evidence_pages(rule: &Rule, from: i64, to: i64) -> Vec<(String, String)> {
    let window = |path: &str, pairs: &[(&str, &str)]| {
        crate::meta::views::url_with_window(path, pairs, from, to)
    };
    let service = rule.spec.service.as_deref().unwrap_or_default();
    match &rule.measure {
        Measure::LogCount(q) => vec![(format!("Logs matching {q}"), window("/logs", &[("q", q)]))],
        Measure::Metric(_) => vec![("Metrics".into(), window("/explore", &[]))],
        _ => {
            let segment =
                percent_encoding::utf8_percent_encode(service, percent_encoding::NON_ALPHANUMERIC);
            vec![
                (
                    format!("{service} during the alert"),
                    window(&format!("/services/{segment}"), &[]),
                ),
                ("Errors during the alert".into(), window("/errors", &[])),
            ]
        }
    }
}
