//! Annotations through the notebook: the marks (deploys, incidents, notes) pages draw on
//! their charts.

use super::Notebook;
use crate::meta::annotations::Annotation;
use crate::meta::MetaError;

impl Notebook {
    /// Adds an annotation at `time` (Unix ns), for one service or for all.
    pub async fn create_annotation(
        &self,
        time: i64,
        service: Option<String>,
        text: String,
    ) -> Result<Annotation, MetaError> {
        self.meta.create_annotation(time, service, text).await
    }

    /// The annotations in `[start, end]`, of `service` (and those for all services) or all.
    pub async fn annotations(
        &self,
        start: i64,
        end: i64,
        service: Option<String>,
    ) -> Result<Vec<Annotation>, MetaError> {
        self.meta.annotations(start, end, service).await
    }

    /// Deletes an annotation.
    pub async fn delete_annotation(&self, id: i64) -> Result<(), MetaError> {
        self.meta.delete_annotation(id).await
    }
}
