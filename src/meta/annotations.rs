//! Annotations: a timestamped note on one service or on everything (a deploy, a config
//! change), drawn as a marker on every chart and timeline that covers its time.

use serde::Serialize;

use super::sql::params;
use super::{check_name, check_text, now_ns, MetaError, MetaStore};

/// One annotation.
#[derive(Debug, Clone, Serialize)]
pub struct Annotation {
    pub id: i64,
    pub time: i64,
    /// `None` for a global annotation.
    pub service: Option<String>,
    pub text: String,
    pub created: i64,
}

/// Longest annotation text, in characters.
const MAX_ANNOTATION_CHARS: usize = 2_000;

impl MetaStore {
    /// Adds an annotation.
    pub async fn create_annotation(
        &self,
        time: i64,
        service: Option<String>,
        text: String,
    ) -> Result<Annotation, MetaError> {
        let text = check_text("an annotation", text.trim())?;
        if text.is_empty() || text.chars().count() > MAX_ANNOTATION_CHARS {
            return Err(MetaError::Invalid(format!(
                "an annotation needs 1 to {MAX_ANNOTATION_CHARS} characters of text"
            )));
        }
        let service = service
            .filter(|s| !s.trim().is_empty())
            .map(|s| check_name("an annotation's service", &s))
            .transpose()?;
        self.tx(move |tx| {
            let id = tx.insert(
                "INSERT INTO annotations (time_ns, service, text, created_ns) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![time, service, text, now_ns()],
            )?;
            Ok(Annotation {
                id,
                time,
                service,
                text,
                created: now_ns(),
            })
        })
        .await
    }

    /// Annotations in `[start, end]`: global ones and, when `service` is given, that
    /// service's; with no service, every annotation of the window.
    pub async fn annotations(
        &self,
        start: i64,
        end: i64,
        service: Option<String>,
    ) -> Result<Vec<Annotation>, MetaError> {
        self.read(move |tx| {
            Ok(tx.query_map(
                "SELECT id, time_ns, service, text, created_ns FROM annotations \
                 WHERE time_ns >= ?1 AND time_ns <= ?2 \
                 AND (CAST(?3 AS TEXT) IS NULL OR service IS NULL OR service = ?3) ORDER BY time_ns, id",
                params![start, end, service],
                |r| {
                    Ok(Annotation {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        service: r.get(2)?,
                        text: r.get(3)?,
                        created: r.get(4)?,
                    })
                },
            )?)
        })
        .await
    }

    /// Deletes an annotation.
    pub async fn delete_annotation(&self, id: i64) -> Result<(), MetaError> {
        self.tx(move |tx| {
            let found: Option<i64> = tx.query_opt(
                "SELECT id FROM annotations WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )?;
            if found.is_none() {
                return Err(MetaError::NotFound(format!("no annotation {id}")));
            }
            tx.execute("DELETE FROM annotations WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }
}
