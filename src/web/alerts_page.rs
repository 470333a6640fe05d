//! `/alerts`: every rule with the state of its alerts, the value that decided it and a link
//! to the evidence, the silences, and the notification log.

use askama::Template;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::forms::{meta_error, pin_error, see_other, FormFields, PageToken};
use super::{format, message, render, WebState};
use crate::alerting::Alerting;
use crate::meta::alerts::Phase;

/// The page's state: the web state (for the page chrome) and alerting.
#[derive(Clone)]
struct AlertsState {
    web: WebState,
    alerting: Alerting,
}

impl FromRef<AlertsState> for WebState {
    fn from_ref(state: &AlertsState) -> WebState {
        state.web.clone()
    }
}

/// The `/alerts` route.
pub fn router(web: WebState, alerting: Alerting) -> Router {
    Router::new()
        .route("/alerts", get(handler))
        .route("/alerts/{rule}/postmortem", post(start_postmortem))
        .route("/alerts/silences", post(create_silence))
        .route("/alerts/silences/{id}/expire", post(expire_silence))
        .with_state(AlertsState { web, alerting })
}

/// One alert as listed under its rule.
pub struct AlertRow {
    pub rule_id: i64,
    /// The alert's group (`key=value,…`), as the "start post-mortem" form sends it.
    pub group: String,
    /// Firing or resolved: a post-mortem can start from it.
    pub startable: bool,
    pub labels: String,
    pub state: &'static str,
    pub value: String,
    pub since: String,
    pub evidence: String,
    pub silenced: bool,
    /// The alert's labels as silence matchers, for the "silence" link.
    pub matchers: String,
}

/// One rule.
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub condition: String,
    pub state: &'static str,
    pub receivers: usize,
    pub alerts: Vec<AlertRow>,
    /// The rule's value over the last hour, its threshold and firing spans.
    pub chart: Option<super::service_page::TitledChart>,
    /// The newest changes of its alerts.
    pub history: Vec<ChangeRow>,
}

/// One state change of an alert, as the rule's history lists it.
pub struct ChangeRow {
    pub time: String,
    pub group: String,
    pub from: &'static str,
    pub to: &'static str,
    pub value: String,
}

/// How many state changes each rule lists.
const HISTORY_ROWS: usize = 8;

/// One silence.
pub struct SilenceRow {
    pub id: i64,
    pub matchers: String,
    pub state: &'static str,
    pub ends: String,
    pub comment: String,
    pub created_by: String,
}

/// One notification attempt.
pub struct NoticeRow {
    pub time: String,
    pub rule: String,
    pub status: String,
    pub receiver: String,
    pub attempt: u32,
    pub outcome: String,
    pub failed: bool,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    token: String,
    rules: Vec<RuleRow>,
    silences: Vec<SilenceRow>,
    notices: Vec<NoticeRow>,
    dims: super::charts::Dims,
    /// The new-silence form's matchers, filled in from an alert's "silence" link.
    new_silence: String,
    /// Choices of how long a new silence lasts: seconds and label.
    durations: &'static [(u64, &'static str)],
}

/// How long a silence made on the page lasts (Alertmanager's UI offers 2 h first).
const SILENCE_DURATIONS: &[(u64, &str)] = &[
    (7_200, "2 hours"),
    (3_600, "1 hour"),
    (14_400, "4 hours"),
    (28_800, "8 hours"),
    (86_400, "1 day"),
    (604_800, "1 week"),
];

/// The page's query: `silence` fills the new-silence form.
#[derive(serde::Deserialize, Default)]
struct AlertsQuery {
    silence: Option<String>,
}

/// How far back the rule charts look, and their step.
const CHART_SPAN: i64 = 3_600_000_000_000;
const CHART_STEP: i64 = 60_000_000_000;

async fn handler(
    State(state): State<AlertsState>,
    PageToken(token): PageToken,
    axum::extract::Query(query): axum::extract::Query<AlertsQuery>,
) -> Response {
    let alerting = &state.alerting;
    let now = crate::model::time::now_ns();
    let loaded = async {
        Ok::<_, crate::meta::MetaError>((
            alerting.rules().await?,
            alerting.states().await?,
            alerting.active_silences(now).await?,
            alerting.silences().await?,
            alerting.notifications(30).await?,
        ))
    }
    .await;
    let (rules, states, active, silences, notices) = match loaded {
        Ok(all) => all,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Alerts unavailable",
                e.to_string(),
            )
        }
    };
    let rank = |p: Phase| match p {
        Phase::Firing => 3,
        Phase::Pending => 2,
        Phase::Resolved => 1,
        Phase::Inactive => 0,
    };
    let mut charts = Vec::with_capacity(rules.len());
    let mut histories = Vec::with_capacity(rules.len());
    for rule in &rules {
        charts.push(rule_chart(alerting, rule, now).await);
        let changes = match alerting.history(rule.id, HISTORY_ROWS).await {
            Ok(changes) => changes,
            Err(e) => {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Alerts unavailable",
                    e.to_string(),
                )
            }
        };
        histories.push(
            changes
                .iter()
                .map(|t| ChangeRow {
                    time: format::time(t.at),
                    group: t.group_key.clone(),
                    from: t.from.as_str(),
                    to: t.to.as_str(),
                    value: t.value.map(|v| format!("{v:.4}")).unwrap_or_default(),
                })
                .collect(),
        );
    }
    let rule_rows: Vec<RuleRow> = rules
        .iter()
        .zip(charts.into_iter().zip(histories))
        .map(|(rule, (chart, history))| {
            let mine: Vec<_> = states.iter().filter(|s| s.rule_id == rule.id).collect();
            let worst = mine
                .iter()
                .map(|s| s.phase)
                .max_by_key(|p| rank(*p))
                .unwrap_or(Phase::Inactive);
            RuleRow {
                id: rule.id,
                name: rule.spec.name.clone(),
                kind: rule.spec.kind.clone(),
                condition: crate::alerting::api::condition(rule),
                state: worst.as_str(),
                receivers: rule.spec.receivers.len(),
                chart,
                history,
                alerts: mine
                    .iter()
                    .filter(|s| s.phase != Phase::Inactive)
                    .map(|s| {
                        let labels = alerting.labels(rule, s);
                        AlertRow {
                            rule_id: rule.id,
                            group: s.group_key.clone(),
                            startable: matches!(s.phase, Phase::Firing | Phase::Resolved),
                            labels: crate::alerting::group_key(&labels),
                            state: s.phase.as_str(),
                            value: s.value.map(|v| format!("{v:.4}")).unwrap_or_default(),
                            since: format::time(s.since),
                            evidence: alerting.evidence_url(rule, s),
                            silenced: active.iter().any(|x| x.matches(&labels)),
                            matchers: silence_matchers(&labels),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let page = AlertsPage {
        title: "Alerts".into(),
        active: "alerts",
        save: None,
        token,
        rules: rule_rows,
        silences: silences
            .iter()
            .map(|s| SilenceRow {
                id: s.id,
                matchers: serde_json::from_str::<Vec<crate::alerting::silence::Matcher>>(
                    &s.matchers,
                )
                .map(|m| crate::alerting::silence::matchers_text(&m))
                .unwrap_or_else(|_| s.matchers.clone()),
                state: if now < s.starts {
                    "pending"
                } else if now < s.ends {
                    "active"
                } else {
                    "expired"
                },
                ends: format::time(s.ends),
                comment: s.comment.clone(),
                created_by: s.created_by.clone(),
            })
            .collect(),
        notices: notices
            .iter()
            .map(|n| NoticeRow {
                time: format::time(n.at),
                rule: rules
                    .iter()
                    .find(|r| r.id == n.rule_id)
                    .map(|r| r.spec.name.clone())
                    .unwrap_or_default(),
                status: n.status.clone(),
                receiver: n.receiver.clone(),
                attempt: n.attempt,
                failed: n.outcome != "sent",
                outcome: n.outcome.clone(),
            })
            .collect(),
        dims: super::charts::Dims::default(),
        new_silence: query.silence.unwrap_or_default(),
        durations: SILENCE_DURATIONS,
    };
    render(&page, StatusCode::OK)
}

/// An alert's labels as silence matchers (`name="value", …`).
fn silence_matchers(labels: &std::collections::BTreeMap<String, String>) -> String {
    let matchers: Vec<crate::alerting::silence::Matcher> = labels
        .iter()
        .map(|(name, value)| crate::alerting::silence::Matcher {
            name: name.clone(),
            value: value.clone(),
            is_regex: false,
            is_equal: true,
        })
        .collect();
    crate::alerting::silence::matchers_text(&matchers)
}

/// A rule's value over the last hour as a chart: one line per alert group (at most eight),
/// the threshold across, the firing spans shaded. `None` (the page still shows the rule)
/// when the value cannot be read.
async fn rule_chart(
    alerting: &Alerting,
    rule: &crate::alerting::rule::Rule,
    now: i64,
) -> Option<super::service_page::TitledChart> {
    use crate::alerting::rule::Measure;
    let (start, end) = (now - CHART_SPAN, now);
    let chart = match alerting.chart(rule, start, end, CHART_STEP).await {
        Ok(chart) => chart,
        Err(e) => {
            tracing::warn!(rule = rule.id, "alert rule chart not drawn: {e}");
            return None;
        }
    };
    let series: Vec<super::charts::LineSeries> = chart
        .series
        .iter()
        .take(super::charts::SERIES_COLORS.len())
        .enumerate()
        .map(|(i, (labels, points))| {
            let label = match crate::alerting::group_key(labels) {
                key if key.is_empty() => rule.spec.name.clone(),
                key => key,
            };
            (
                label,
                super::charts::SERIES_COLORS[i],
                points
                    .iter()
                    .filter_map(|(t, v)| v.map(|v| (*t, v)))
                    .collect(),
            )
        })
        .collect();
    let firing: Vec<(i64, Option<i64>, String)> = chart
        .firing
        .iter()
        .map(|(labels, from, to)| {
            let what = crate::alerting::group_key(labels);
            let when = match to {
                Some(to) => format!("{} to {}", format::time(*from), format::time(*to)),
                None => format!("since {}", format::time(*from)),
            };
            (
                *from,
                *to,
                format!("firing {what} {when}").replace("  ", " "),
            )
        })
        .collect();
    let fmt: &dyn Fn(f64) -> String = match rule.measure {
        Measure::ErrorRate => &|v| format!("{:.1} %", v * 100.0),
        Measure::Latency(_) => &|v| format!("{v:.0} ms"),
        Measure::Absence => &|v| format!("{v:.0} s"),
        _ => &|v| format!("{v}"),
    };
    Some(super::service_page::TitledChart {
        title: format!(
            "{} — last hour, threshold dashed, firing shaded",
            rule.spec.name
        ),
        chart: super::charts::threshold_lines(&series, chart.threshold, &firing, start, end, fmt),
    })
}

/// Creates a silence from the page's form: `matchers` (as amtool writes them), `duration`
/// (seconds), `created_by`, `comment`. A bad one is shown with the field named.
async fn create_silence(State(state): State<AlertsState>, form: FormFields) -> Response {
    if let Err(refused) = form.check_token(&state.web.notebook) {
        return *refused;
    }
    let refused =
        |problem: String| message(StatusCode::BAD_REQUEST, "Silence not created", problem);
    let matchers = match crate::alerting::silence::parse_matchers(form.get("matchers")) {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    let Some(seconds) = form
        .get("duration")
        .parse::<u64>()
        .ok()
        .filter(|s| SILENCE_DURATIONS.iter().any(|(d, _)| d == s))
    else {
        return refused(format!(
            "duration: {:?} is not one of the offered durations",
            form.get("duration")
        ));
    };
    let now = crate::model::time::now_ns();
    let spec = crate::alerting::silence::SilenceSpec {
        matchers,
        starts_at: None,
        ends_at: (now + seconds as i64 * 1_000_000_000).to_string(),
        created_by: form.get("created_by").trim().to_string(),
        comment: form.get("comment").trim().to_string(),
    };
    let (matchers, starts, ends, created_by, comment) = match spec.check(now) {
        Ok(checked) => checked,
        Err(e) => return refused(e),
    };
    match state
        .alerting
        .create_silence(matchers, starts, ends, created_by, comment)
        .await
    {
        Ok(_) => see_other("/alerts#silences"),
        Err(e) => meta_error(e),
    }
}

/// Ends a silence now, from the page.
async fn expire_silence(
    State(state): State<AlertsState>,
    Path(id): Path<i64>,
    form: FormFields,
) -> Response {
    if let Err(refused) = form.check_token(&state.web.notebook) {
        return *refused;
    }
    match state.alerting.expire_silence(id).await {
        Ok(()) => see_other("/alerts#silences"),
        Err(e) => meta_error(e),
    }
}

/// "Start post-mortem" on a firing or resolved alert: a post-mortem whose incident window is
/// the alert's (15 minutes before it fired to its resolution, or now), with the pages that show
/// its evidence over that window saved, pinned and added; the post-mortem page then suggests
/// the timeline of that window. Redirects to the new post-mortem.
async fn start_postmortem(
    State(state): State<AlertsState>,
    Path(rule_id): Path<i64>,
    form: FormFields,
) -> Response {
    let notebook = &state.web.notebook;
    if let Err(refused) = form.check_token(notebook) {
        return *refused;
    }
    let group = form.get("group").to_string();
    let alerting = &state.alerting;
    let found = async {
        let rule = alerting
            .rules()
            .await?
            .into_iter()
            .find(|r| r.id == rule_id);
        let alert = alerting
            .states()
            .await?
            .into_iter()
            .find(|s| s.rule_id == rule_id && s.group_key == group);
        Ok::<_, crate::meta::MetaError>(rule.zip(alert))
    }
    .await;
    let (rule, alert) = match found {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such alert",
                format!("Rule {rule_id} has no alert for {group:?}."),
            )
        }
        Err(e) => return meta_error(e),
    };
    if !matches!(alert.phase, Phase::Firing | Phase::Resolved) {
        return message(
            StatusCode::CONFLICT,
            "Not an incident yet",
            "Only a firing or resolved alert starts a post-mortem.",
        );
    }
    let (start, end) = crate::alerting::incident_window(&alert, crate::model::time::now_ns());
    let title = match alert.group_key.as_str() {
        "" => rule.spec.name.clone(),
        group => format!("{} ({group})", rule.spec.name),
    };
    let created = notebook
        .create_postmortem(crate::meta::postmortems::PostMortemEdit {
            version: None,
            title: Some(title),
            status: None,
            incident_start: Some(Some(start)),
            incident_end: Some(Some(end)),
            impact: None,
            summary: Some(format!(
                "Started from the alert \"{}\" ({}), value {} when it changed last.",
                rule.spec.name,
                alert.phase.as_str(),
                alert.value.map(|v| format!("{v:.4}")).unwrap_or_default()
            )),
            root_cause: None,
            action_items: None,
        })
        .await;
    let pm = match created {
        Ok(pm) => pm,
        Err(e) => return meta_error(e),
    };
    for (name, url) in crate::alerting::evidence_pages(&rule, start, end) {
        let view = notebook
            .save_view(
                &state.web.engine,
                crate::meta::views::NewView {
                    name,
                    note: format!(
                        "Saved when the post-mortem was started from alert \"{}\".",
                        rule.spec.name
                    ),
                    tags: vec!["alert".into()],
                    url,
                    start: Some(start),
                    end: Some(end),
                    relative: false,
                },
                true,
            )
            .await;
        match view {
            Ok(view) => {
                if let Err(e) = notebook
                    .add_postmortem_view(pm.id, view.id, String::new())
                    .await
                {
                    return meta_error(e);
                }
            }
            Err(e) => return pin_error(e),
        }
    }
    see_other(&format!("/postmortems/{}", pm.id))
}
