//! Pins as background jobs. Copying a view's rows (a query over its window, a Parquet encode,
//! an fsync, an index commit) can take longer than a request may; it runs on a thread of its
//! own, at most [`PIN_JOBS_AT_ONCE`] at a time, and reports its progress where the view page
//! and the API can show it. The request that started it waits a little ([`PIN_WAIT`]): a small
//! pin is answered as before, a large one is answered "still pinning" and goes on without it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};

use super::{PinError, Pins};
use crate::meta::views::SavedView;
use crate::meta::{MetaError, MetaStore};
use crate::model::time::now_ns;
use crate::query::QueryEngine;

/// Pins copying rows at once; more wait their turn ([`PinProgress::Queued`]).
pub const PIN_JOBS_AT_ONCE: usize = 2;

/// How long the request that starts a pin waits for it before answering "still pinning".
pub const PIN_WAIT: Duration = Duration::from_secs(10);

/// Where a view's pin job is. A finished pin leaves no progress behind (the view records
/// the pin itself); a failed one stays until the view is pinned again, unpinned or deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PinProgress {
    /// Waiting for one of the [`PIN_JOBS_AT_ONCE`] slots, since `since` (Unix ns).
    Queued { since: i64 },
    /// Reading the rows behind the view, since `since`.
    Collecting { since: i64 },
    /// Writing `rows` rows as the view's evidence, since `since`.
    Writing { since: i64, rows: u64 },
    /// Gave up at `at`, for the reason given; the view opens on the live data.
    Failed { at: i64, message: String },
}

impl PinProgress {
    /// Whether the job is still at work (not failed).
    pub fn is_running(&self) -> bool {
        self.running_since().is_some()
    }

    /// When the job entered its current stage, while it is at work.
    fn running_since(&self) -> Option<i64> {
        match self {
            PinProgress::Queued { since }
            | PinProgress::Collecting { since }
            | PinProgress::Writing { since, .. } => Some(*since),
            PinProgress::Failed { .. } => None,
        }
    }
}

/// The pin jobs of one notebook: their progress by view id, and the slots they run in.
#[derive(Clone)]
pub(super) struct PinJobs {
    progress: Arc<Mutex<HashMap<i64, PinProgress>>>,
    slots: Arc<Semaphore>,
}

impl Default for PinJobs {
    fn default() -> Self {
        PinJobs {
            progress: Arc::default(),
            slots: Arc::new(Semaphore::new(PIN_JOBS_AT_ONCE)),
        }
    }
}

/// What waiting for a pin job found.
pub enum PinOutcome {
    /// It finished within the wait: the pinned view, or why it failed.
    Done(Result<SavedView, PinError>),
    /// It is still at work; its progress shows on the view.
    Running,
}

/// A started pin job, to wait for.
pub struct PinTicket(oneshot::Receiver<Result<SavedView, PinError>>);

impl PinTicket {
    /// Waits for the job at most `within`.
    pub async fn wait(self, within: Duration) -> PinOutcome {
        match tokio::time::timeout(within, self.0).await {
            Ok(Ok(outcome)) => PinOutcome::Done(outcome),
            Ok(Err(_)) => PinOutcome::Done(Err(PinError::Write(anyhow::anyhow!(
                "the pin job stopped before it finished (the server is shutting down?)"
            )))),
            Err(_) => PinOutcome::Running,
        }
    }
}

impl PinJobs {
    /// The progress of view `id`'s pin job, if one runs or failed.
    pub(super) fn progress(&self, id: i64) -> Option<PinProgress> {
        self.lock().get(&id).cloned()
    }

    /// Forgets a failed job's report (the view is pinned again, unpinned or deleted).
    pub(super) fn forget_failure(&self, id: i64) {
        let mut jobs = self.lock();
        if jobs.get(&id).is_some_and(|p| !p.is_running()) {
            jobs.remove(&id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, PinProgress>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, id: i64, progress: PinProgress) {
        self.lock().insert(id, progress);
    }

    /// Starts pinning `view` on a thread of its own; refused while the view is being pinned
    /// already.
    pub(super) fn start(
        &self,
        pins: Pins,
        meta: MetaStore,
        engine: QueryEngine,
        view: SavedView,
    ) -> Result<PinTicket, PinError> {
        let id = view.id;
        {
            let mut jobs = self.lock();
            if let Some(since) = jobs.get(&id).and_then(PinProgress::running_since) {
                return Err(PinError::Meta(MetaError::Conflict(format!(
                    "view {id} is being pinned already (since {}); its page shows the progress",
                    crate::model::time::picker_text(since)
                ))));
            }
            jobs.insert(id, PinProgress::Queued { since: now_ns() });
        }
        let (tell, ticket) = oneshot::channel();
        let jobs = self.clone();
        let runtime = tokio::runtime::Handle::current();
        // A blocking-pool thread drives the job, so its Parquet encoding and index commit
        // never hold one of the async workers that acknowledge exports.
        tokio::task::spawn_blocking(move || {
            let outcome = runtime.block_on(jobs.run(&pins, &meta, &engine, &view));
            match &outcome {
                Ok(_) => {
                    jobs.lock().remove(&id);
                }
                Err(e) => {
                    tracing::warn!(view = id, "pinning failed: {e}");
                    jobs.set(
                        id,
                        PinProgress::Failed {
                            at: now_ns(),
                            message: e.to_string(),
                        },
                    );
                }
            }
            // Nobody waits any more when the request gave up waiting: the progress says it.
            let _ = tell.send(outcome);
        });
        Ok(PinTicket(ticket))
    }

    async fn run(
        &self,
        pins: &Pins,
        meta: &MetaStore,
        engine: &QueryEngine,
        view: &SavedView,
    ) -> Result<SavedView, PinError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| PinError::Write(e.into()))?;
        self.set(view.id, PinProgress::Collecting { since: now_ns() });
        let evidence = pins.collect(engine, view).await?;
        self.set(
            view.id,
            PinProgress::Writing {
                since: now_ns(),
                rows: evidence.len() as u64,
            },
        );
        pins.write(meta, view, evidence).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_served_with_its_state_named() {
        let p = PinProgress::Writing { since: 5, rows: 7 };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"state": "writing", "since": 5, "rows": 7})
        );
        assert!(p.is_running());
        let failed = PinProgress::Failed {
            at: 1,
            message: "no".into(),
        };
        assert!(!failed.is_running());
    }

    #[test]
    fn only_a_failed_report_is_forgotten() {
        let jobs = PinJobs::default();
        jobs.set(1, PinProgress::Collecting { since: 1 });
        jobs.set(
            2,
            PinProgress::Failed {
                at: 1,
                message: "disk full".into(),
            },
        );
        jobs.forget_failure(1);
        jobs.forget_failure(2);
        assert!(jobs.progress(1).is_some());
        assert_eq!(jobs.progress(2), None);
    }
}
