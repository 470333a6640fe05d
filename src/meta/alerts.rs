//! Alerting's records: rules (their validated JSON body), the state of each alert (one per
//! rule and group), every state change, and every notification attempt. States live here so
//! a restart resumes them: an alert firing before the restart is still firing after it, and
//! its notification is not sent again.

use serde::Serialize;

use super::sql::{params, DbError, Param, Row, Tx};
use super::{check_name, MetaError, MetaStore};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, not yet for the rule's `for` duration.
    Pending,
    Firing,
    /// It fired and the condition no longer holds.
    Resolved,
}

impl Phase {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        }
    }

    fn parse(s: &str) -> Phase {
        match s {
            "pending" => Phase::Pending,
            "firing" => Phase::Firing,
            "resolved" => Phase::Resolved,
            _ => Phase::Inactive,
        }
    }
}

/// A stored rule.
#[derive(Debug, Clone, Serialize)]
pub struct StoredRule {
    pub id: i64,
    pub name: String,
    /// The rule as JSON text (validated by `alerting` before it is stored).
    pub body: String,
    pub created: i64,
    pub updated: i64,
}

/// One alert: a rule's state for one group (e.g. one instance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    pub rule_id: i64,
    /// `key=value` pairs joined by `,`; empty for an ungrouped rule.
    pub group_key: String,
    pub phase: Phase,
    pub value: Option<f64>,
    /// When the current phase began.
    pub since: i64,
    pub fired: Option<i64>,
    pub resolved: Option<i64>,
    /// When the last notification of the current firing or resolution went out (0: none).
    pub notified: i64,
}

/// A change of phase, with the value that caused it.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub rule_id: i64,
    pub group_key: String,
    pub at: i64,
    pub from: Phase,
    pub to: Phase,
    pub value: Option<f64>,
}

/// One notification attempt.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    pub rule_id: i64,
    pub group_key: String,
    pub at: i64,
    /// `firing` or `resolved`.
    pub status: String,
    /// The receiver's address (webhook URL or email address).
    pub receiver: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// `sent`, or why it failed.
    pub outcome: String,
}

fn rule_of(r: &Row) -> Result<StoredRule, DbError> {
    Ok(StoredRule {
        id: r.get(0)?,
        name: r.get(1)?,
        body: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
    })
}

const RULE_COLUMNS: &str = "id, name, body, created_ns, updated_ns";

/// Every row `sql` selects with `params`, each read by `row`.
fn all_rows<T>(
    tx: &Tx,
    sql: &str,
    params: &[&dyn Param],
    row: impl FnMut(&Row) -> Result<T, DbError>,
) -> Result<Vec<T>, MetaError> {
    Ok(tx.query_map(sql, params, row)?)
}

impl MetaStore {
    /// Stores a new rule; a name already taken is a conflict.
    pub async fn create_alert_rule(
        &self,
        name: &str,
        body: String,
    ) -> Result<StoredRule, MetaError> {
        let name = check_name("a rule's name", name)?;
        self.tx(move |tx| {
            let now = crate::model::time::now_ns();
            let taken: Option<i64> = tx.query_opt(
                "SELECT id FROM alert_rules WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )?;
            if taken.is_some() {
                return Err(MetaError::Conflict(format!("a rule named {name:?} exists")));
            }
            let id = tx.insert(
                "INSERT INTO alert_rules (name, body, created_ns, updated_ns) VALUES (?1, ?2, ?3, ?3)",
                params![name, body, now],
            )?;
            Ok(StoredRule {
                id,
                name,
                body,
                created: now,
                updated: now,
            })
        })
        .await
    }

    /// Replaces rule `id`'s name and body (its alerts start over: a changed rule is a new
    /// question).
    pub async fn replace_alert_rule(
        &self,
        id: i64,
        name: &str,
        body: String,
    ) -> Result<StoredRule, MetaError> {
        let name = check_name("a rule's name", name)?;
        self.tx(move |tx| {
            let now = crate::model::time::now_ns();
            let taken: Option<i64> = tx.query_opt(
                "SELECT id FROM alert_rules WHERE name = ?1 AND id != ?2",
                params![name, id],
                |r| r.get(0),
            )?;
            if taken.is_some() {
                return Err(MetaError::Conflict(format!("a rule named {name:?} exists")));
            }
            let changed = tx.execute(
                "UPDATE alert_rules SET name = ?1, body = ?2, updated_ns = ?3 WHERE id = ?4",
                params![name, body, now, id],
            )?;
            if changed == 0 {
                return Err(MetaError::NotFound(format!("no alert rule {id}")));
            }
            tx.execute("DELETE FROM alert_states WHERE rule_id = ?1", params![id])?;
            tx.query_row(
                &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"),
                params![id],
                rule_of,
            )
            .map_err(MetaError::from)
        })
        .await
    }

    /// Deletes rule `id` with its alerts, history and notification log.
    pub async fn delete_alert_rule(&self, id: i64) -> Result<(), MetaError> {
        self.tx(move |tx| {
            if tx.execute("DELETE FROM alert_rules WHERE id = ?1", params![id])? == 0 {
                return Err(MetaError::NotFound(format!("no alert rule {id}")));
            }
            Ok(())
        })
        .await
    }

    /// One rule.
    pub async fn alert_rule(&self, id: i64) -> Result<StoredRule, MetaError> {
        self.read(move |tx| {
            tx.query_opt(
                &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"),
                params![id],
                rule_of,
            )?
            .ok_or_else(|| MetaError::NotFound(format!("no alert rule {id}")))
        })
        .await
    }

    /// Every rule, by id.
    pub async fn alert_rules(&self) -> Result<Vec<StoredRule>, MetaError> {
        self.read(|tx| {
            let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id");
            all_rows(tx, &sql, params![], rule_of)
        })
        .await
    }

    /// Every alert's state.
    pub async fn alert_states(&self) -> Result<Vec<AlertState>, MetaError> {
        self.read(|tx| {
            all_rows(
                tx,
                "SELECT rule_id, group_key, state, value, since_ns, fired_ns, resolved_ns, notified_ns \
                 FROM alert_states ORDER BY rule_id, group_key",
                params![],
                |r| {
                    Ok(AlertState {
                        rule_id: r.get(0)?,
                        group_key: r.get(1)?,
                        phase: Phase::parse(&r.get::<String>(2)?),
                        value: r.get(3)?,
                        since: r.get(4)?,
                        fired: r.get(5)?,
                        resolved: r.get(6)?,
                        notified: r.get(7)?,
                    })
                },
            )
        })
        .await
    }

    /// Saves an alert's state and, when its phase changed, the transition: one transaction.
    pub async fn save_alert_state(
        &self,
        state: AlertState,
        transition: Option<Transition>,
    ) -> Result<(), MetaError> {
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO alert_states (rule_id, group_key, state, value, since_ns, fired_ns, resolved_ns, notified_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (rule_id, group_key) DO UPDATE SET state = ?3, value = ?4, since_ns = ?5, \
                 fired_ns = ?6, resolved_ns = ?7, notified_ns = ?8",
                params![
                    state.rule_id,
                    state.group_key,
                    state.phase.as_str(),
                    state.value,
                    state.since,
                    state.fired,
                    state.resolved,
                    state.notified
                ],
            )?;
            if let Some(t) = transition {
                tx.execute(
                    "INSERT INTO alert_history (rule_id, group_key, at_ns, from_state, to_state, value) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![t.rule_id, t.group_key, t.at, t.from.as_str(), t.to.as_str(), t.value],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Records that alert (`rule_id`, `group_key`) was told at `at`, leaving the rest of its
    /// state as the evaluator last wrote it (a delivery runs beside the evaluations).
    pub async fn mark_alert_notified(
        &self,
        rule_id: i64,
        group_key: String,
        at: i64,
    ) -> Result<(), MetaError> {
        self.tx(move |tx| {
            tx.execute(
                "UPDATE alert_states SET notified_ns = CASE WHEN notified_ns > ?3 THEN notified_ns ELSE ?3 END \
                 WHERE rule_id = ?1 AND group_key = ?2",
                params![rule_id, group_key, at],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` transitions of rule `id`, newest first.
    pub async fn alert_history(&self, id: i64, limit: usize) -> Result<Vec<Transition>, MetaError> {
        self.read(move |tx| {
            all_rows(
                tx,
                "SELECT rule_id, group_key, at_ns, from_state, to_state, value FROM alert_history \
                 WHERE rule_id = ?1 ORDER BY at_ns DESC, id DESC LIMIT ?2",
                params![id, limit as i64],
                |r| {
                    Ok(Transition {
                        rule_id: r.get(0)?,
                        group_key: r.get(1)?,
                        at: r.get(2)?,
                        from: Phase::parse(&r.get::<String>(3)?),
                        to: Phase::parse(&r.get::<String>(4)?),
                        value: r.get(5)?,
                    })
                },
            )
        })
        .await
    }

    /// Records one notification attempt.
    pub async fn log_notification(&self, record: NotificationRecord) -> Result<(), MetaError> {
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO alert_notifications (rule_id, group_key, at_ns, status, receiver, attempt, outcome) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    record.rule_id,
                    record.group_key,
                    record.at,
                    record.status,
                    record.receiver,
                    record.attempt,
                    record.outcome
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` notification attempts, newest first.
    pub async fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, MetaError> {
        self.read(move |tx| {
            all_rows(
                tx,
                "SELECT rule_id, group_key, at_ns, status, receiver, attempt, outcome \
                 FROM alert_notifications ORDER BY at_ns DESC, id DESC LIMIT ?1",
                params![limit as i64],
                |r| {
                    Ok(NotificationRecord {
                        rule_id: r.get(0)?,
                        group_key: r.get(1)?,
                        at: r.get(2)?,
                        status: r.get(3)?,
                        receiver: r.get(4)?,
                        attempt: r.get(5)?,
                        outcome: r.get(6)?,
                    })
                },
            )
        })
        .await
    }
}

/// A stored silence.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSilence {
    pub id: i64,
    /// The matchers as JSON text (checked by `alerting` before it is stored).
    pub matchers: String,
    pub starts: i64,
    pub ends: i64,
    pub created_by: String,
    pub comment: String,
    pub created: i64,
}

impl MetaStore {
    /// Stores a silence.
    pub async fn create_silence(
        &self,
        matchers: String,
        starts: i64,
        ends: i64,
        created_by: String,
        comment: String,
    ) -> Result<StoredSilence, MetaError> {
        let comment = super::check_text("a silence's comment", &comment)?;
        self.tx(move |tx| {
            let now = crate::model::time::now_ns();
            let id = tx.insert(
                "INSERT INTO alert_silences (matchers, starts_ns, ends_ns, created_by, comment, created_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![matchers, starts, ends, created_by, comment, now],
            )?;
            Ok(StoredSilence {
                id,
                matchers,
                starts,
                ends,
                created_by,
                comment,
                created: now,
            })
        })
        .await
    }

    /// Ends silence `id` now (it stays listed, expired).
    pub async fn expire_silence(&self, id: i64) -> Result<(), MetaError> {
        self.tx(move |tx| {
            let now = crate::model::time::now_ns();
            let changed = tx.execute(
                "UPDATE alert_silences SET ends_ns = CASE WHEN ends_ns < ?1 THEN ends_ns ELSE ?1 END, \
                 starts_ns = CASE WHEN starts_ns < ?1 THEN starts_ns ELSE ?1 END WHERE id = ?2",
                params![now, id],
            )?;
            if changed == 0 {
                return Err(MetaError::NotFound(format!("no silence {id}")));
            }
            Ok(())
        })
        .await
    }

    /// Every silence, newest first.
    pub async fn silences(&self) -> Result<Vec<StoredSilence>, MetaError> {
        self.read(|tx| {
            all_rows(
                tx,
                "SELECT id, matchers, starts_ns, ends_ns, created_by, comment, created_ns \
                 FROM alert_silences ORDER BY id DESC",
                params![],
                |r| {
                    Ok(StoredSilence {
                        id: r.get(0)?,
                        matchers: r.get(1)?,
                        starts: r.get(2)?,
                        ends: r.get(3)?,
                        created_by: r.get(4)?,
                        comment: r.get(5)?,
                        created: r.get(6)?,
                    })
                },
            )
        })
        .await
    }
}
