//! Post-mortems: the write-up of an incident, built from saved views in order, with action
//! items and a timeline. Edits of the text are versioned: an edit made from an older version
//! is refused (409) so two people never silently overwrite each other.

use serde::{Deserialize, Serialize};

use super::sql::{params, Tx};
use super::{check_name, check_text, now_ns, MetaError, MetaStore};

/// Draft while being written, final once reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Final,
}

impl Status {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Final => "final",
        }
    }

    /// Inverse of [`Status::as_str`]; anything else is a draft.
    fn parse(s: &str) -> Status {
        if s == "final" {
            Status::Final
        } else {
            Status::Draft
        }
    }
}

/// A view in a post-mortem, with the note that explains it there.
#[derive(Debug, Clone, Serialize)]
pub struct ViewEntry {
    /// Id of this entry (not of the view).
    pub id: i64,
    /// `None` once the view was deleted; `view_name` then still says what it was.
    pub view_id: Option<i64>,
    pub view_name: String,
    pub note: String,
}

/// Something to do so it does not happen again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionItem {
    #[serde(default)]
    pub owner: String,
    pub text: String,
    #[serde(default)]
    pub done: bool,
}

/// One timestamped line of the incident's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub time: i64,
    pub text: String,
    /// `manual`, or the kind of suggestion it was accepted from.
    pub source: String,
    pub suggestion_key: Option<String>,
}

/// A post-mortem with everything in it.
#[derive(Debug, Clone, Serialize)]
pub struct PostMortem {
    pub id: i64,
    pub title: String,
    pub status: Status,
    pub incident_start: Option<i64>,
    pub incident_end: Option<i64>,
    pub impact: String,
    pub summary: String,
    pub root_cause: String,
    /// Bumped by every edit of the fields above or the action items.
    pub version: i64,
    pub created: i64,
    pub updated: i64,
    pub views: Vec<ViewEntry>,
    pub action_items: Vec<ActionItem>,
    pub timeline: Vec<TimelineEntry>,
}

/// The editable fields; absent ones stay as they are. `version` is the version the editor
/// started from.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PostMortemEdit {
    pub version: Option<i64>,
    pub title: Option<String>,
    pub status: Option<Status>,
    pub incident_start: Option<Option<i64>>,
    pub incident_end: Option<Option<i64>>,
    pub impact: Option<String>,
    pub summary: Option<String>,
    pub root_cause: Option<String>,
    pub action_items: Option<Vec<ActionItem>>,
}

/// A line of the post-mortem list.
#[derive(Debug, Clone, Serialize)]
pub struct PostMortemSummary {
    pub id: i64,
    pub title: String,
    pub status: Status,
    pub incident_start: Option<i64>,
    pub incident_end: Option<i64>,
    pub views: i64,
    pub updated: i64,
}

const MAX_ACTION_ITEMS: usize = 200;

fn check_edit(edit: &PostMortemEdit) -> Result<(), MetaError> {
    if let Some(t) = &edit.title {
        check_name("a post-mortem's title", t)?;
    }
    for (what, text) in [
        ("impact", &edit.impact),
        ("summary", &edit.summary),
        ("root cause", &edit.root_cause),
    ] {
        if let Some(t) = text {
            check_text(what, t)?;
        }
    }
    if let Some(items) = &edit.action_items {
        if items.len() > MAX_ACTION_ITEMS {
            return Err(MetaError::Invalid(format!(
                "at most {MAX_ACTION_ITEMS} action items"
            )));
        }
        for item in items {
            check_text("an action item", &item.text)?;
            check_text("an action item's owner", &item.owner)?;
        }
    }
    if let (Some(Some(s)), Some(Some(e))) = (edit.incident_start, edit.incident_end) {
        if s > e {
            return Err(MetaError::Invalid(
                "the incident must start before it ends".into(),
            ));
        }
    }
    Ok(())
}

fn get_in(tx: &Tx, id: i64) -> Result<PostMortem, MetaError> {
    let mut pm = tx
        .query_opt(
            "SELECT id, title, status, incident_start_ns, incident_end_ns, impact, summary, \
             root_cause, version, created_ns, updated_ns FROM postmortems WHERE id = ?1",
            params![id],
            |r| {
                let status: String = r.get(2)?;
                Ok(PostMortem {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    status: Status::parse(&status),
                    incident_start: r.get(3)?,
                    incident_end: r.get(4)?,
                    impact: r.get(5)?,
                    summary: r.get(6)?,
                    root_cause: r.get(7)?,
                    version: r.get(8)?,
                    created: r.get(9)?,
                    updated: r.get(10)?,
                    views: Vec::new(),
                    action_items: Vec::new(),
                    timeline: Vec::new(),
                })
            },
        )?
        .ok_or_else(|| MetaError::NotFound(format!("no post-mortem {id}")))?;
    pm.views = tx.query_map(
        "SELECT id, view_id, view_name, note FROM postmortem_views \
         WHERE postmortem_id = ?1 ORDER BY position, id",
        params![id],
        |r| {
            Ok(ViewEntry {
                id: r.get(0)?,
                view_id: r.get(1)?,
                view_name: r.get(2)?,
                note: r.get(3)?,
            })
        },
    )?;
    pm.action_items = tx.query_map(
        "SELECT owner, text, done FROM action_items WHERE postmortem_id = ?1 ORDER BY position",
        params![id],
        |r| {
            Ok(ActionItem {
                owner: r.get(0)?,
                text: r.get(1)?,
                done: r.get(2)?,
            })
        },
    )?;
    pm.timeline = tx.query_map(
        "SELECT id, time_ns, text, source, suggestion_key FROM timeline_entries \
         WHERE postmortem_id = ?1 ORDER BY time_ns, id",
        params![id],
        |r| {
            Ok(TimelineEntry {
                id: r.get(0)?,
                time: r.get(1)?,
                text: r.get(2)?,
                source: r.get(3)?,
                suggestion_key: r.get(4)?,
            })
        },
    )?;
    Ok(pm)
}

fn apply_edit(tx: &Tx, id: i64, edit: PostMortemEdit) -> Result<(), MetaError> {
    let old = get_in(tx, id)?;
    if let Some(v) = edit.version {
        if v != old.version {
            return Err(MetaError::Conflict(format!(
                "post-mortem {id} was changed since you opened it (you edited version {v}, \
                 it is now at version {}); reload it and apply your change again",
                old.version
            )));
        }
    }
    let title = match &edit.title {
        Some(t) => check_name("a post-mortem's title", t)?,
        None => old.title,
    };
    tx.execute(
        "UPDATE postmortems SET title = ?2, status = ?3, incident_start_ns = ?4, \
         incident_end_ns = ?5, impact = ?6, summary = ?7, root_cause = ?8, \
         version = version + 1, updated_ns = ?9 WHERE id = ?1",
        params![
            id,
            title,
            edit.status.unwrap_or(old.status).as_str(),
            edit.incident_start.unwrap_or(old.incident_start),
            edit.incident_end.unwrap_or(old.incident_end),
            edit.impact.unwrap_or(old.impact),
            edit.summary.unwrap_or(old.summary),
            edit.root_cause.unwrap_or(old.root_cause),
            now_ns()
        ],
    )?;
    if let Some(items) = edit.action_items {
        tx.execute(
            "DELETE FROM action_items WHERE postmortem_id = ?1",
            params![id],
        )?;
        for (i, item) in items.iter().enumerate() {
            if item.text.trim().is_empty() && item.owner.trim().is_empty() {
                continue;
            }
            tx.execute(
                "INSERT INTO action_items (postmortem_id, position, owner, text, done) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, i as i64, item.owner.trim(), item.text.trim(), item.done],
            )?;
        }
    }
    Ok(())
}

impl MetaStore {
    /// Creates a draft post-mortem with the given fields.
    pub async fn create_postmortem(&self, fields: PostMortemEdit) -> Result<PostMortem, MetaError> {
        check_edit(&fields)?;
        let title = check_name(
            "a post-mortem's title",
            fields.title.as_deref().unwrap_or_default(),
        )?;
        self.tx(move |tx| {
            let now = now_ns();
            let id = tx.insert(
                "INSERT INTO postmortems (title, status, created_ns, updated_ns) \
                 VALUES (?1, 'draft', ?2, ?2)",
                params![title, now],
            )?;
            apply_edit(
                tx,
                id,
                PostMortemEdit {
                    version: None,
                    ..fields
                },
            )?;
            // A new post-mortem starts at version 1.
            tx.execute(
                "UPDATE postmortems SET version = 1 WHERE id = ?1",
                params![id],
            )?;
            get_in(tx, id)
        })
        .await
    }

    /// One post-mortem with its views, action items and timeline.
    pub async fn postmortem(&self, id: i64) -> Result<PostMortem, MetaError> {
        self.read(move |tx| get_in(tx, id)).await
    }

    /// Every post-mortem, most recently changed first.
    pub async fn postmortems(&self) -> Result<Vec<PostMortemSummary>, MetaError> {
        self.read(|tx| {
            let rows = tx.query_map(
                "SELECT p.id, p.title, p.status, p.incident_start_ns, p.incident_end_ns, \
                 (SELECT COUNT(*) FROM postmortem_views v WHERE v.postmortem_id = p.id), \
                 p.updated_ns FROM postmortems p ORDER BY p.updated_ns DESC, p.id DESC",
                params![],
                |r| {
                    let status: String = r.get(2)?;
                    Ok(PostMortemSummary {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        status: Status::parse(&status),
                        incident_start: r.get(3)?,
                        incident_end: r.get(4)?,
                        views: r.get(5)?,
                        updated: r.get(6)?,
                    })
                },
            )?;
            Ok(rows)
        })
        .await
    }

    /// Edits fields; refused with `Conflict` when `edit.version` is not the current one.
    pub async fn edit_postmortem(
        &self,
        id: i64,
        edit: PostMortemEdit,
    ) -> Result<PostMortem, MetaError> {
        check_edit(&edit)?;
        self.tx(move |tx| {
            apply_edit(tx, id, edit)?;
            get_in(tx, id)
        })
        .await
    }

    /// Deletes a post-mortem with its timeline (its views stay).
    pub async fn delete_postmortem(&self, id: i64) -> Result<(), MetaError> {
        self.tx(move |tx| {
            get_in(tx, id)?;
            tx.execute("DELETE FROM postmortems WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    /// Appends a saved view to a post-mortem; one without an incident window yet takes the
    /// view's.
    pub async fn add_postmortem_view(
        &self,
        id: i64,
        view_id: i64,
        note: String,
    ) -> Result<PostMortem, MetaError> {
        let note = check_text("a view's note", &note)?;
        self.tx(move |tx| {
            get_in(tx, id)?;
            let view = super::views::get_in(tx, view_id)?;
            tx.execute(
                "INSERT INTO postmortem_views (postmortem_id, position, view_id, view_name, note) \
                 VALUES (?1, (SELECT COALESCE(MAX(position), -1) + 1 FROM postmortem_views \
                 WHERE postmortem_id = ?1), ?2, ?3, ?4)",
                params![id, view_id, view.name, note],
            )?;
            // A post-mortem without an incident window takes the window of the evidence it is
            // given (a new version, so an editor opened before says it is stale).
            tx.execute(
                "UPDATE postmortems SET incident_start_ns = ?2, incident_end_ns = ?3, \
                 version = version + 1, updated_ns = ?4 \
                 WHERE id = ?1 AND incident_start_ns IS NULL AND incident_end_ns IS NULL",
                params![id, view.start, view.end, now_ns()],
            )?;
            get_in(tx, id)
        })
        .await
    }

    /// Removes one view entry, or moves it one place up (`-1`) or down (`1`).
    pub async fn change_postmortem_view(
        &self,
        id: i64,
        entry: i64,
        change: ViewChange,
    ) -> Result<PostMortem, MetaError> {
        self.tx(move |tx| {
            let pm = get_in(tx, id)?;
            let at = pm
                .views
                .iter()
                .position(|v| v.id == entry)
                .ok_or_else(|| MetaError::NotFound(format!("no view entry {entry} in {id}")))?;
            let mut order: Vec<i64> = pm.views.iter().map(|v| v.id).collect();
            match change {
                ViewChange::Remove => {
                    tx.execute("DELETE FROM postmortem_views WHERE id = ?1", params![entry])?;
                    order.remove(at);
                }
                ViewChange::Up if at > 0 => order.swap(at, at - 1),
                ViewChange::Down if at + 1 < order.len() => order.swap(at, at + 1),
                _ => {}
            }
            for (i, e) in order.iter().enumerate() {
                tx.execute(
                    "UPDATE postmortem_views SET position = ?2 WHERE id = ?1",
                    params![e, i as i64],
                )?;
            }
            get_in(tx, id)
        })
        .await
    }

    /// Adds a timeline entry. With a suggestion key, accepting the same suggestion twice
    /// keeps one entry.
    pub async fn add_timeline_entry(
        &self,
        id: i64,
        time: i64,
        text: String,
        source: String,
        suggestion_key: Option<String>,
    ) -> Result<PostMortem, MetaError> {
        let text = check_text("a timeline entry", text.trim())?;
        if text.is_empty() {
            return Err(MetaError::Invalid("a timeline entry needs text".into()));
        }
        self.tx(move |tx| {
            get_in(tx, id)?;
            tx.execute(
                "INSERT INTO timeline_entries \
                 (postmortem_id, time_ns, text, source, suggestion_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![id, time, text, source, suggestion_key],
            )?;
            get_in(tx, id)
        })
        .await
    }

    /// Deletes a timeline entry.
    pub async fn delete_timeline_entry(
        &self,
        id: i64,
        entry: i64,
    ) -> Result<PostMortem, MetaError> {
        self.tx(move |tx| {
            let n = tx.execute(
                "DELETE FROM timeline_entries WHERE id = ?1 AND postmortem_id = ?2",
                params![entry, id],
            )?;
            if n == 0 {
                return Err(MetaError::NotFound(format!(
                    "no timeline entry {entry} in post-mortem {id}"
                )));
            }
            get_in(tx, id)
        })
        .await
    }

    /// Remembers that a suggestion was dismissed, so it is not offered again.
    pub async fn dismiss_suggestion(&self, id: i64, key: String) -> Result<(), MetaError> {
        self.tx(move |tx| {
            get_in(tx, id)?;
            tx.execute(
                "INSERT INTO dismissed_suggestions (postmortem_id, suggestion_key) \
                 VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![id, key],
            )?;
            Ok(())
        })
        .await
    }

    /// Keys of the suggestions dismissed or accepted in a post-mortem.
    pub async fn settled_suggestions(&self, id: i64) -> Result<Vec<String>, MetaError> {
        self.read(move |tx| {
            let keys = tx.query_map(
                "SELECT suggestion_key FROM dismissed_suggestions WHERE postmortem_id = ?1 \
                 UNION SELECT suggestion_key FROM timeline_entries \
                 WHERE postmortem_id = ?1 AND suggestion_key IS NOT NULL",
                params![id],
                |r| r.get(0),
            )?;
            Ok(keys)
        })
        .await
    }
}

/// A change to a post-mortem's list of views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewChange {
    Remove,
    Up,
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_edits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        let pm = meta
            .create_postmortem(PostMortemEdit {
                title: Some("Checkout outage".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(pm.version, 1);
        let edit = |summary: &str| PostMortemEdit {
            version: Some(1),
            summary: Some(summary.into()),
            ..Default::default()
        };
        let first = meta.edit_postmortem(pm.id, edit("first")).await.unwrap();
        assert_eq!(first.version, 2);
        let second = meta.edit_postmortem(pm.id, edit("second")).await;
        assert!(matches!(second, Err(MetaError::Conflict(_))));
        assert_eq!(meta.postmortem(pm.id).await.unwrap().summary, "first");
    }

    /// The incident window is filled from the first view given, and only while unset.
    #[tokio::test]
    async fn the_first_view_fills_an_unset_incident_window() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(dir.path()).unwrap();
        let view = |name: &str, start: i64, end: i64| {
            let new = crate::meta::views::NewView {
                name: name.into(),
                note: String::new(),
                tags: Vec::new(),
                url: "/logs".into(),
                start: Some(start),
                end: Some(end),
                relative: false,
            };
            meta.create_view(new, start, end)
        };
        let (first, second) = (
            view("first", 100, 200).await.unwrap(),
            view("second", 50, 300).await.unwrap(),
        );
        let pm = meta
            .create_postmortem(PostMortemEdit {
                title: Some("no window yet".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((pm.incident_start, pm.incident_end), (None, None));
        let filled = meta
            .add_postmortem_view(pm.id, first.id, String::new())
            .await
            .unwrap();
        assert_eq!(
            (filled.incident_start, filled.incident_end),
            (Some(100), Some(200))
        );
        assert_eq!(
            filled.version,
            pm.version + 1,
            "an open editor is now stale"
        );
        let kept = meta
            .add_postmortem_view(pm.id, second.id, String::new())
            .await
            .unwrap();
        assert_eq!(
            (kept.incident_start, kept.incident_end),
            (Some(100), Some(200))
        );
    }
}
