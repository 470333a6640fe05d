//! Post-mortem logic above the metadata store: timeline suggestions from the incident's data
//! and the Markdown export.

pub mod markdown;
pub mod suggest;

use crate::meta::postmortems::PostMortem;
use crate::meta::MetaError;
use crate::notebook::Notebook;
use crate::query::{QueryEngine, QueryError};

pub use suggest::Suggestion;

/// The note shown with a view in a post-mortem: the note written on the view when it was
/// saved and the one written when it was added to this post-mortem, both when they differ.
pub fn evidence_note(view_note: &str, entry_note: &str) -> String {
    let (view_note, entry_note) = (view_note.trim(), entry_note.trim());
    match (view_note.is_empty(), entry_note.is_empty()) {
        (true, _) => entry_note.to_string(),
        (false, true) => view_note.to_string(),
        (false, false) if view_note == entry_note => view_note.to_string(),
        (false, false) => format!("{view_note}\n\n{entry_note}"),
    }
}

/// Why suggestions could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// Suggestions for a post-mortem's incident window that were neither accepted nor dismissed.
/// Empty until the incident's start and end are set.
pub async fn pending_suggestions(
    notebook: &Notebook,
    engine: &QueryEngine,
    pm: &PostMortem,
) -> Result<Vec<Suggestion>, SuggestError> {
    let (Some(start), Some(end)) = (pm.incident_start, pm.incident_end) else {
        return Ok(Vec::new());
    };
    let rollups = engine.rollups(start - suggest::LOOKBACK, end).await?;
    let settled = notebook.settled_suggestions(pm.id).await?;
    Ok(suggest::suggest(&rollups, start, end)
        .into_iter()
        .filter(|s| !settled.contains(&s.key))
        .collect())
}

/// Accepts every pending suggestion into the timeline ("accept all", instead of a click per
/// suggestion); returns the post-mortem and how many were accepted.
pub async fn accept_all_suggestions(
    notebook: &Notebook,
    engine: &QueryEngine,
    id: i64,
) -> Result<(PostMortem, usize), SuggestError> {
    let mut pm = notebook.postmortem(id).await?;
    let pending = pending_suggestions(notebook, engine, &pm).await?;
    let accepted = pending.len();
    for suggestion in pending {
        pm = add_to_timeline(notebook, id, suggestion).await?;
    }
    Ok((pm, accepted))
}

/// Writes an accepted suggestion into post-mortem `id`'s timeline, keyed so it is settled.
async fn add_to_timeline(
    notebook: &Notebook,
    id: i64,
    suggestion: Suggestion,
) -> Result<PostMortem, MetaError> {
    notebook
        .add_timeline_entry(
            id,
            suggestion.time,
            suggestion.text,
            suggestion.kind.to_string(),
            Some(suggestion.key),
        )
        .await
}

/// Accepts one pending suggestion into the timeline.
pub async fn accept_suggestion(
    notebook: &Notebook,
    engine: &QueryEngine,
    id: i64,
    key: &str,
) -> Result<PostMortem, SuggestError> {
    let pm = notebook.postmortem(id).await?;
    let suggestion = pending_suggestions(notebook, engine, &pm)
        .await?
        .into_iter()
        .find(|s| s.key == key)
        .ok_or_else(|| {
            MetaError::NotFound(format!(
                "no pending suggestion {key:?} for post-mortem {id} (already settled, or the \
                 data behind it is gone)"
            ))
        })?;
    Ok(add_to_timeline(notebook, id, suggestion).await?)
}
