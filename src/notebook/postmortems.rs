//! Post-mortems through the notebook: the document, its views of evidence and its timeline.

use super::Notebook;
use crate::meta::postmortems::{PostMortem, PostMortemEdit, PostMortemSummary, ViewChange};
use crate::meta::MetaError;

impl Notebook {
    /// Starts a post-mortem.
    pub async fn create_postmortem(&self, fields: PostMortemEdit) -> Result<PostMortem, MetaError> {
        self.meta.create_postmortem(fields).await
    }

    /// One post-mortem, whole.
    pub async fn postmortem(&self, id: i64) -> Result<PostMortem, MetaError> {
        self.meta.postmortem(id).await
    }

    /// Every post-mortem, newest first, without their contents.
    pub async fn postmortems(&self) -> Result<Vec<PostMortemSummary>, MetaError> {
        self.meta.postmortems().await
    }

    /// Replaces a post-mortem's fields (a new version of it).
    pub async fn edit_postmortem(
        &self,
        id: i64,
        edit: PostMortemEdit,
    ) -> Result<PostMortem, MetaError> {
        self.meta.edit_postmortem(id, edit).await
    }

    /// Deletes a post-mortem (its views stay).
    pub async fn delete_postmortem(&self, id: i64) -> Result<(), MetaError> {
        self.meta.delete_postmortem(id).await
    }

    /// Adds a saved view to a post-mortem's evidence, with a note.
    pub async fn add_postmortem_view(
        &self,
        id: i64,
        view_id: i64,
        note: String,
    ) -> Result<PostMortem, MetaError> {
        self.meta.add_postmortem_view(id, view_id, note).await
    }

    /// Moves or removes one of a post-mortem's views.
    pub async fn change_postmortem_view(
        &self,
        id: i64,
        entry: i64,
        change: ViewChange,
    ) -> Result<PostMortem, MetaError> {
        self.meta.change_postmortem_view(id, entry, change).await
    }

    /// Adds a timeline entry; `suggestion_key` marks an accepted suggestion as settled.
    pub async fn add_timeline_entry(
        &self,
        id: i64,
        time: i64,
        text: String,
        source: String,
        suggestion_key: Option<String>,
    ) -> Result<PostMortem, MetaError> {
        self.meta
            .add_timeline_entry(id, time, text, source, suggestion_key)
            .await
    }

    /// Deletes a timeline entry.
    pub async fn delete_timeline_entry(
        &self,
        id: i64,
        entry: i64,
    ) -> Result<PostMortem, MetaError> {
        self.meta.delete_timeline_entry(id, entry).await
    }

    /// Marks a suggestion as dismissed, so it is not offered again.
    pub async fn dismiss_suggestion(&self, id: i64, key: String) -> Result<(), MetaError> {
        self.meta.dismiss_suggestion(id, key).await
    }

    /// The keys of the suggestions accepted or dismissed on a post-mortem.
    pub async fn settled_suggestions(&self, id: i64) -> Result<Vec<String>, MetaError> {
        self.meta.settled_suggestions(id).await
    }
}
