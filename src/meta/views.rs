//! Saved views: a page's URL state with a name, a note, tags, the absolute time range it was
//! saved for, and (when pinned) how much evidence it keeps.

use serde::{Deserialize, Serialize};

use super::sql::{params, DbError, Row, Tx};
use super::{check_name, check_text, now_ns, MetaError, MetaStore};
use crate::model::TraceId;

/// The page a view opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    Overview,
    Map,
    Service,
    Errors,
    TraceSearch,
    Trace,
    Logs,
    Metrics,
    /// Two traces side by side (`/compare?a=&b=`).
    CompareTraces,
    /// A selection of spans against a baseline (`/compare/groups`).
    CompareGroups,
    /// A canary version judged against its baseline (`/canary`).
    Canary,
}

impl ViewKind {
    /// Every kind, in the order the UI lists pages.
    pub const ALL: [ViewKind; 11] = [
        ViewKind::Overview,
        ViewKind::Map,
        ViewKind::Service,
        ViewKind::Errors,
        ViewKind::TraceSearch,
        ViewKind::Trace,
        ViewKind::Logs,
        ViewKind::Metrics,
        ViewKind::CompareTraces,
        ViewKind::CompareGroups,
        ViewKind::Canary,
    ];

    /// The page's route, as the web router registers it (`{…}` is one path segment): the
    /// one table both the router and [`ViewKind::of_path`] read.
    pub fn route(self) -> &'static str {
        match self {
            ViewKind::Overview => "/",
            ViewKind::Map => "/map",
            ViewKind::Service => "/services/{name}",
            ViewKind::Errors => "/errors",
            ViewKind::TraceSearch => "/traces",
            ViewKind::Trace => "/traces/{id}",
            ViewKind::Logs => "/logs",
            ViewKind::Metrics => "/explore",
            ViewKind::CompareTraces => "/compare",
            ViewKind::CompareGroups => "/compare/groups",
            ViewKind::Canary => "/canary",
        }
    }

    /// The kind of page at `path` (matched against each kind's [`ViewKind::route`]), or
    /// `None` for a path that is not a savable page.
    pub fn of_path(path: &str) -> Option<ViewKind> {
        let segments = |p: &'static str| p.trim_start_matches('/').split('/');
        Self::ALL.into_iter().find(|kind| {
            let mut wanted = segments(kind.route());
            let mut given = path.trim_start_matches('/').split('/');
            loop {
                match (wanted.next(), given.next()) {
                    (None, None) => return true,
                    (Some(w), Some(g)) if w.starts_with('{') => {
                        if g.is_empty() {
                            return false;
                        }
                    }
                    (Some(w), Some(g)) if w == g => {}
                    _ => return false,
                }
            }
        })
    }

    /// Stable name, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewKind::Overview => "overview",
            ViewKind::Map => "map",
            ViewKind::Service => "service",
            ViewKind::Errors => "errors",
            ViewKind::TraceSearch => "trace_search",
            ViewKind::Trace => "trace",
            ViewKind::Logs => "logs",
            ViewKind::Metrics => "metrics",
            ViewKind::CompareTraces => "compare_traces",
            ViewKind::CompareGroups => "compare_groups",
            ViewKind::Canary => "canary",
        }
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            ViewKind::Overview => "Services",
            ViewKind::Map => "Service map",
            ViewKind::Service => "Service",
            ViewKind::Errors => "Errors",
            ViewKind::TraceSearch => "Trace search",
            ViewKind::Trace => "Trace",
            ViewKind::Logs => "Logs",
            ViewKind::Metrics => "Metrics",
            ViewKind::CompareTraces => "Trace comparison",
            ViewKind::CompareGroups => "Group comparison",
            ViewKind::Canary => "Canary verdict",
        }
    }

    fn parse(s: &str) -> ViewKind {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(ViewKind::Overview)
    }

    /// Whether the page has a time range picker (a trace page shows one trace, whenever; a
    /// trace comparison two).
    pub fn has_time_range(self) -> bool {
        !matches!(self, ViewKind::Trace | ViewKind::CompareTraces)
    }
}

/// How much evidence a pinned view keeps.
#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub pinned_at: i64,
    pub rows: u64,
    pub bytes: u64,
}

/// A saved view.
#[derive(Debug, Clone, Serialize)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    pub note: String,
    pub tags: Vec<String>,
    pub kind: ViewKind,
    /// Path and query of the page, with an absolute `from`/`to` unless `relative`.
    pub url: String,
    /// Opens with the relative range it was saved with ("last 1h" from now).
    pub relative: bool,
    /// The window the view was saved for (Unix ns).
    pub start: i64,
    pub end: i64,
    pub pin: Option<Pin>,
    pub created: i64,
    pub updated: i64,
}

/// What a new view is made of.
#[derive(Debug, Clone, Deserialize)]
pub struct NewView {
    pub name: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The page's path and query, e.g. `/logs?q=error&range=1h`.
    pub url: String,
    /// The window shown when it was saved (Unix ns); the URL's own range at save time if absent.
    pub start: Option<i64>,
    pub end: Option<i64>,
    #[serde(default)]
    pub relative: bool,
}

/// A change to a view's name, note or tags; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ViewEdit {
    pub name: Option<String>,
    pub note: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Filters of the view list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ViewFilter {
    /// Substring of the name or note (case-insensitive).
    pub q: Option<String>,
    pub tag: Option<String>,
    pub kind: Option<String>,
}

const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;

fn check_tags(tags: &[String]) -> Result<Vec<String>, MetaError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > MAX_TAG_CHARS || t.chars().any(char::is_control) {
            return Err(MetaError::Invalid(format!(
                "a tag must be at most {MAX_TAG_CHARS} characters without control characters"
            )));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(MetaError::Invalid(format!(
            "a view has at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}

/// A saved view's address, parsed once: which page it names, its path and its query string.
/// Everything that needs a part of a view's URL (the trace id of a trace view, its window)
/// asks this instead of splitting the text again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAddress<'a> {
    pub kind: ViewKind,
    /// `/traces/ID`, `/logs`, …
    pub path: &'a str,
    /// The query string without `?` (may be empty).
    pub query: &'a str,
}

impl<'a> PageAddress<'a> {
    /// Reads `url`, checking it is a local path that names a savable page.
    pub fn parse(url: &'a str) -> Result<PageAddress<'a>, MetaError> {
        let url = url.trim();
        if !url.starts_with('/') || url.starts_with("//") {
            return Err(MetaError::Invalid(
                "a view's url must be a page path such as /logs?q=error".into(),
            ));
        }
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let kind = ViewKind::of_path(path).ok_or_else(|| {
            MetaError::Invalid(format!(
                "{path:?} is not a page that can be saved (/, /map, /services/NAME, /errors, \
                 /traces, /traces/ID, /logs, /explore, /compare, /compare/groups, /canary)"
            ))
        })?;
        Ok(PageAddress { kind, path, query })
    }

    /// The trace a trace page shows (`None` for other pages); an invalid id is an error
    /// naming it.
    pub fn trace_id(&self) -> Option<Result<TraceId, MetaError>> {
        if self.kind != ViewKind::Trace {
            return None;
        }
        let id = self.path.trim_start_matches("/traces/");
        Some(
            id.parse().map_err(|e| {
                MetaError::Invalid(format!("invalid trace id {id:?} in the url: {e}"))
            }),
        )
    }

    /// The two traces a trace comparison shows (`a` and `b` of its query; `None` for other
    /// pages); a missing or invalid id is an error naming it.
    pub fn compared_traces(&self) -> Option<Result<[TraceId; 2], MetaError>> {
        if self.kind != ViewKind::CompareTraces {
            return None;
        }
        let id = |name: &str| {
            let text = form_urlencoded::parse(self.query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            text.parse::<TraceId>().map_err(|e| {
                MetaError::Invalid(format!("invalid trace id {name}={text:?} in the url: {e}"))
            })
        };
        Some(id("a").and_then(|a| Ok([a, id("b")?])))
    }
}

/// The URL with its time range replaced by the absolute window `[start, end]` (RFC 3339 to the
/// nanosecond: readable in the address bar, and exactly the window the page showed).
pub fn absolute_url(path: &str, query: &str, start: i64, end: i64) -> String {
    let rfc = |ns: i64| {
        chrono::DateTime::from_timestamp_nanos(ns)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !matches!(k.as_ref(), "range" | "from" | "to" | "cursor") {
            ser.append_pair(&k, &v);
        }
    }
    ser.append_pair("from", &rfc(start));
    ser.append_pair("to", &rfc(end));
    format!("{path}?{}", ser.finish())
}

/// A link to page `path` with `pairs` over the absolute window `[start, end]`, as
/// [`absolute_url`] writes windows: for pages that link to the records behind a verdict or an
/// alert.
pub fn url_with_window(path: &str, pairs: &[(&str, &str)], start: i64, end: i64) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    absolute_url(path, &ser.finish(), start, end)
}

const COLUMNS: &str = "id, name, note, tags, kind, url, relative, start_ns, end_ns, \
                       pinned_at_ns, pinned_rows, pinned_bytes, created_ns, updated_ns";

fn from_row(r: &Row) -> Result<SavedView, DbError> {
    let tags: String = r.get(3)?;
    let kind: String = r.get(4)?;
    let pinned_at: Option<i64> = r.get(9)?;
    Ok(SavedView {
        id: r.get(0)?,
        name: r.get(1)?,
        note: r.get(2)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        kind: ViewKind::parse(&kind),
        url: r.get(5)?,
        relative: r.get(6)?,
        start: r.get(7)?,
        end: r.get(8)?,
        pin: match pinned_at {
            Some(at) => Some(Pin {
                pinned_at: at,
                rows: r.get::<i64>(10)?.max(0) as u64,
                bytes: r.get::<i64>(11)?.max(0) as u64,
            }),
            None => None,
        },
        created: r.get(12)?,
        updated: r.get(13)?,
    })
}

fn duplicate(name: &str) -> impl FnOnce(DbError) -> MetaError + '_ {
    move |e| match e {
        DbError::Constraint(_) => {
            MetaError::Conflict(format!("a view named {name:?} already exists"))
        }
        other => other.into(),
    }
}

/// One view inside a transaction.
pub fn get_in(tx: &Tx, id: i64) -> Result<SavedView, MetaError> {
    tx.query_opt(
        &format!("SELECT {COLUMNS} FROM views WHERE id = ?1"),
        params![id],
        from_row,
    )?
    .ok_or_else(|| MetaError::NotFound(format!("no saved view {id}")))
}

impl MetaStore {
    /// Saves a new view. `start`/`end` must be given by the caller (the page's window).
    pub async fn create_view(
        &self,
        new: NewView,
        start: i64,
        end: i64,
    ) -> Result<SavedView, MetaError> {
        let name = check_name("a view's name", &new.name)?;
        let note = check_text("a view's note", &new.note)?;
        let tags = check_tags(&new.tags)?;
        let address = PageAddress::parse(&new.url)?;
        if start >= end {
            return Err(MetaError::Invalid(
                "a view's start must be before its end".into(),
            ));
        }
        let kind = address.kind;
        let url = if new.relative || !kind.has_time_range() {
            new.url.trim().to_string()
        } else {
            absolute_url(address.path, address.query, start, end)
        };
        let now = now_ns();
        let tags_json = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
        self.tx(move |tx| {
            let id = tx
                .insert(
                    "INSERT INTO views (name, note, tags, kind, url, relative, start_ns, end_ns, \
                 created_ns, updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                    params![
                        name,
                        note,
                        tags_json,
                        kind.as_str(),
                        url,
                        new.relative && kind.has_time_range(),
                        start,
                        end,
                        now
                    ],
                )
                .map_err(duplicate(&name))?;
            get_in(tx, id)
        })
        .await
    }

    /// One view.
    pub async fn view(&self, id: i64) -> Result<SavedView, MetaError> {
        self.read(move |tx| get_in(tx, id)).await
    }

    /// Views matching `filter`, newest first.
    pub async fn views(&self, filter: ViewFilter) -> Result<Vec<SavedView>, MetaError> {
        self.read(move |tx| {
            let all = tx.query_map(
                &format!("SELECT {COLUMNS} FROM views ORDER BY created_ns DESC, id DESC"),
                params![],
                from_row,
            )?;
            let q = filter
                .q
                .as_deref()
                .map(str::to_lowercase)
                .unwrap_or_default();
            let tag = filter.tag.unwrap_or_default();
            let kind = filter.kind.unwrap_or_default();
            Ok(all
                .into_iter()
                .filter(|v| {
                    q.is_empty()
                        || v.name.to_lowercase().contains(&q)
                        || v.note.to_lowercase().contains(&q)
                })
                .filter(|v| tag.is_empty() || v.tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)))
                .filter(|v| kind.is_empty() || v.kind.as_str() == kind)
                .collect())
        })
        .await
    }

    /// Renames, re-notes or re-tags a view.
    pub async fn edit_view(&self, id: i64, edit: ViewEdit) -> Result<SavedView, MetaError> {
        let name = edit
            .name
            .as_deref()
            .map(|n| check_name("a view's name", n))
            .transpose()?;
        let note = edit
            .note
            .as_deref()
            .map(|n| check_text("a view's note", n))
            .transpose()?;
        let tags = edit.tags.as_deref().map(check_tags).transpose()?;
        self.tx(move |tx| {
            let old = get_in(tx, id)?;
            let name = name.unwrap_or(old.name);
            let tags_json =
                serde_json::to_string(&tags.unwrap_or(old.tags)).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "UPDATE views SET name = ?2, note = ?3, tags = ?4, updated_ns = ?5 WHERE id = ?1",
                params![id, name, note.unwrap_or(old.note), tags_json, now_ns()],
            )
            .map_err(duplicate(&name))?;
            // Post-mortems show the current name of the views they use.
            tx.execute(
                "UPDATE postmortem_views SET view_name = ?2 WHERE view_id = ?1",
                params![id, name],
            )?;
            get_in(tx, id)
        })
        .await
    }

    /// Records that the view's evidence is kept (after the snapshot is on disk).
    pub async fn set_pin(&self, id: i64, pin: Option<Pin>) -> Result<SavedView, MetaError> {
        self.tx(move |tx| {
            get_in(tx, id)?;
            tx.execute(
                "UPDATE views SET pinned_at_ns = ?2, pinned_rows = ?3, pinned_bytes = ?4 \
                 WHERE id = ?1",
                params![
                    id,
                    pin.as_ref().map(|p| p.pinned_at),
                    pin.as_ref().map(|p| p.rows as i64),
                    pin.as_ref().map(|p| p.bytes as i64)
                ],
            )?;
            get_in(tx, id)
        })
        .await
    }

    /// Deletes a view; post-mortems that used it keep its name and show it as deleted.
    pub async fn delete_view(&self, id: i64) -> Result<SavedView, MetaError> {
        self.tx(move |tx| {
            let view = get_in(tx, id)?;
            tx.execute("DELETE FROM views WHERE id = ?1", params![id])?;
            Ok(view)
        })
        .await
    }

    /// Titles of the post-mortems that use a view, for the delete confirmation.
    pub async fn postmortems_using(&self, view_id: i64) -> Result<Vec<(i64, String)>, MetaError> {
        self.read(move |tx| {
            let rows = tx.query_map(
                "SELECT DISTINCT p.id, p.title FROM postmortems p \
                 JOIN postmortem_views pv ON pv.postmortem_id = p.id WHERE pv.view_id = ?1",
                params![view_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(rows)
        })
        .await
    }

    /// Ids of every pinned view (to clean up snapshots nobody references).
    pub async fn pinned_view_ids(&self) -> Result<Vec<i64>, MetaError> {
        self.read(|tx| {
            let ids = tx.query_map(
                "SELECT id FROM views WHERE pinned_at_ns IS NOT NULL",
                params![],
                |r| r.get(0),
            )?;
            Ok(ids)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_paths() {
        assert_eq!(ViewKind::of_path("/"), Some(ViewKind::Overview));
        assert_eq!(ViewKind::of_path("/traces/abc"), Some(ViewKind::Trace));
        assert_eq!(
            ViewKind::of_path("/services/payment"),
            Some(ViewKind::Service)
        );
        assert_eq!(ViewKind::of_path("/static/app.js"), None);
        assert_eq!(ViewKind::of_path("/traces"), Some(ViewKind::TraceSearch));
        assert_eq!(ViewKind::of_path("/explore"), Some(ViewKind::Metrics));
        assert_eq!(ViewKind::of_path("/traces/"), None, "an empty id");
        assert_eq!(ViewKind::of_path("/services"), None);
        assert_eq!(ViewKind::of_path("/services/a/b"), None);
        assert!(PageAddress::parse("https://evil.example/").is_err());
        assert!(PageAddress::parse("//evil.example/logs").is_err());
        let trace = PageAddress::parse("/traces/0af7651916cd43dd8448eb211c80319c?x=1").unwrap();
        assert_eq!(trace.query, "x=1");
        assert_eq!(
            trace.trace_id().unwrap().unwrap().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(PageAddress::parse("/traces/zz")
            .unwrap()
            .trace_id()
            .unwrap()
            .is_err());
        assert!(PageAddress::parse("/logs?q=a")
            .unwrap()
            .trace_id()
            .is_none());
    }

    #[test]
    fn absolute_url_replaces_the_range() {
        let url = absolute_url("/logs", "q=error&range=1h&cursor=x", 0, 3_600_000_000_000);
        assert_eq!(
            url,
            "/logs?q=error&from=1970-01-01T00%3A00%3A00Z&to=1970-01-01T01%3A00%3A00Z"
        );
    }
}
