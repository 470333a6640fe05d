//! Saved views through the notebook: reading, editing and (re)pinning them; saving and
//! deleting are in `mod.rs` because they touch the evidence too.

use super::Notebook;
use crate::evidence::PinError;
use crate::meta::views::{SavedView, ViewEdit, ViewFilter};
use crate::meta::MetaError;
use crate::query::QueryEngine;

impl Notebook {
    /// One saved view.
    pub async fn view(&self, id: i64) -> Result<SavedView, MetaError> {
        self.meta.view(id).await
    }

    /// The saved views `filter` lets through.
    pub async fn views(&self, filter: ViewFilter) -> Result<Vec<SavedView>, MetaError> {
        self.meta.views(filter).await
    }

    /// Renames, re-notes or re-tags a view.
    pub async fn edit_view(&self, id: i64, edit: ViewEdit) -> Result<SavedView, MetaError> {
        self.meta.edit_view(id, edit).await
    }

    /// The post-mortems (id, title) that show a view.
    pub async fn postmortems_using(&self, view_id: i64) -> Result<Vec<(i64, String)>, MetaError> {
        self.meta.postmortems_using(view_id).await
    }

    /// A query engine over a pinned view's evidence.
    pub fn pinned_engine(&self, id: i64) -> Result<QueryEngine, PinError> {
        self.pins.engine(id)
    }
}
