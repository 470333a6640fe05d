//! Pinned evidence: the rows behind a saved view, copied into `<data>/evidence/view-ID/` (a
//! snapshot data dir of its own, see [`snapshot`]) so the view opens the same
//! after retention deleted the raw data. Retention and compaction never look in there.

mod jobs;
mod snapshot;

use std::path::{Path, PathBuf};

use moka::sync::Cache;

use crate::meta::views::{PageAddress, Pin, SavedView};
use crate::meta::{MetaError, MetaStore};
use crate::query::snapshot::Evidence;
use crate::query::{QueryEngine, QueryError};
use jobs::PinJobs;
pub use jobs::{PinOutcome, PinProgress, PinTicket, PIN_JOBS_AT_ONCE, PIN_WAIT};
pub use snapshot::open_snapshot;
use snapshot::write_snapshot;

/// Most records one pin keeps (spans + logs + metric points + rollup rows).
pub const MAX_PIN_ROWS: usize = 2_000_000;

/// Why pinning or opening evidence failed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("{0}")]
    NothingToPin(String),
    #[error("writing the evidence: {0:#}")]
    Write(anyhow::Error),
}

/// Pinned views whose query engines stay open at once.
const OPEN_PINS: u64 = 32;

/// The evidence snapshots of pinned views, with their query engines opened on demand.
#[derive(Clone)]
pub struct Pins {
    dir: PathBuf,
    /// Query engines of the pins opened lately (each holds an index reader), the least used
    /// closed first.
    engines: Cache<i64, QueryEngine>,
    /// The pins being copied, and the failures not yet seen through.
    jobs: PinJobs,
}

impl Pins {
    /// Pins kept under `<data_dir>/evidence`.
    pub fn open(data_dir: &Path) -> std::io::Result<Pins> {
        let dir = data_dir.join("evidence");
        std::fs::create_dir_all(&dir)?;
        Ok(Pins {
            dir,
            engines: Cache::new(OPEN_PINS),
            jobs: PinJobs::default(),
        })
    }

    fn view_dir(&self, id: i64) -> PathBuf {
        self.dir.join(format!("view-{id}"))
    }

    /// Starts copying the rows behind `view` out of `engine` as a background job (see
    /// [`jobs`]), which records the pin when done. Pinning again replaces the earlier copy;
    /// refused while the view is being pinned already.
    pub fn start_pin(
        &self,
        meta: &MetaStore,
        engine: &QueryEngine,
        view: &SavedView,
    ) -> Result<PinTicket, PinError> {
        self.jobs
            .start(self.clone(), meta.clone(), engine.clone(), view.clone())
    }

    /// Where view `id`'s pin job is: running, or failed and not yet retried.
    pub fn progress(&self, id: i64) -> Option<PinProgress> {
        self.jobs.progress(id)
    }

    /// The rows behind `view`: its trace stitched, both traces of a comparison, a correlation
    /// view's request, or everything in its window.
    async fn collect(&self, engine: &QueryEngine, view: &SavedView) -> Result<Evidence, PinError> {
        let address = PageAddress::parse(&view.url)?;
        if let Some(id) = correlation_of(&address) {
            let evidence = engine.evidence_of_correlation(&id).await?;
            if evidence.is_empty() {
                return Err(PinError::NothingToPin(format!(
                    "no record carries correlation id {id:?} (any more)"
                )));
            }
            return Ok(evidence);
        }
        if let Some(pair) = address.compared_traces() {
            let mut both = crate::query::snapshot::Evidence::default();
            for id in pair? {
                both.absorb(engine.evidence_of_trace(id).await?.ok_or_else(|| {
                    PinError::NothingToPin(format!("trace {id} is not stored (any more)"))
                })?);
            }
            return Ok(both);
        }
        Ok(match address.trace_id() {
            Some(id) => {
                let id = id?;
                engine.evidence_of_trace(id).await?.ok_or_else(|| {
                    PinError::NothingToPin(format!("trace {id} is not stored (any more)"))
                })?
            }
            None => {
                engine
                    .evidence_of_window(view.start, view.end, MAX_PIN_ROWS)
                    .await?
            }
        })
    }

    /// Writes `evidence` as `view`'s pin and records it.
    async fn write(
        &self,
        meta: &MetaStore,
        view: &SavedView,
        evidence: Evidence,
    ) -> Result<SavedView, PinError> {
        let rows = evidence.len() as u64;
        // Written beside, then renamed: a crash leaves the old pin or the new one, never half.
        let final_dir = self.view_dir(view.id);
        let staging = self.dir.join(format!("view-{}.tmp", view.id));
        let _ = std::fs::remove_dir_all(&staging);
        write_snapshot(&staging, &evidence)
            .await
            .map_err(PinError::Write)?;
        drop(evidence);
        self.forget_engine(view.id);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| PinError::Write(e.into()))?;
        }
        std::fs::rename(&staging, &final_dir).map_err(|e| PinError::Write(e.into()))?;
        let bytes = crate::store::dir_size(&final_dir);
        let pin = Pin {
            pinned_at: crate::model::time::now_ns(),
            rows,
            bytes,
        };
        Ok(meta.set_pin(view.id, Some(pin)).await?)
    }

    /// Drops a view's evidence (after the view was deleted or unpinned).
    pub fn remove(&self, id: i64) {
        self.forget_engine(id);
        self.jobs.forget_failure(id);
        let dir = self.view_dir(id);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(view = id, "could not remove pinned evidence: {e}");
            }
        }
    }

    /// Removes snapshots no pinned view refers to (left by a crash between writing a
    /// snapshot and recording it, or between deleting a view and its snapshot).
    pub fn remove_unreferenced(&self, pinned: &[i64]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let referenced = name
                .strip_prefix("view-")
                .and_then(|id| id.parse::<i64>().ok())
                .is_some_and(|id| pinned.contains(&id));
            if !referenced {
                tracing::info!(dir = name, "removing unreferenced evidence");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// A query engine over a pinned view's evidence.
    pub fn engine(&self, id: i64) -> Result<QueryEngine, PinError> {
        if let Some(engine) = self.engines.get(&id) {
            return Ok(engine);
        }
        let engine = open_snapshot(&self.view_dir(id))?;
        self.engines.insert(id, engine.clone());
        Ok(engine)
    }

    fn forget_engine(&self, id: i64) {
        self.engines.invalidate(&id);
    }
}

/// The correlation id a logs view asks for alone (`/logs?q=correlation_id:X`), if it does.
fn correlation_of(address: &PageAddress<'_>) -> Option<String> {
    if address.kind != crate::meta::views::ViewKind::Logs {
        return None;
    }
    form_urlencoded::parse(address.query.as_bytes())
        .find(|(k, _)| k == "q")
        .and_then(|(_, q)| crate::query::log_query::correlation_only(&q))
}
