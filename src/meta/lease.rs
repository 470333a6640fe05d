//! Leases: the right to run a task that one node of a cluster runs at a time (alert
//! evaluation: two evaluators would send every notification twice; retention over the
//! shared catalog). In PostgreSQL a lease is
//! a session-level advisory lock held by a connection of its own, so it ends when its holder
//! dies or loses the database, and another node takes it over at its next try. The single
//! binary is the only node, so its lease is always granted.

use super::{Backend, MetaError, MetaStore};

/// A task only one node runs at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTask {
    /// Evaluating alert rules and sending their notifications.
    AlertEvaluation,
    /// Retention over the catalog and deleting removed files from the bucket.
    Maintenance,
}

impl LeaseTask {
    /// The advisory lock key (an arbitrary constant per task).
    fn key(self) -> i64 {
        match self {
            LeaseTask::AlertEvaluation => 0x5167_6874_0020,
            LeaseTask::Maintenance => 0x5167_6874_0021,
        }
    }
}

/// A held lease; dropping it gives it up.
pub struct Lease {
    /// The connection holding the lock (`None`: the single binary's lease).
    holder: Option<deadpool_postgres::Object>,
}

impl MetaStore {
    /// Takes the lease of `task` if no other node holds it.
    pub async fn try_lease(&self, task: LeaseTask) -> Result<Option<Lease>, MetaError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(Lease { holder: None })),
            Backend::Postgres { pool, .. } => Ok(super::postgres::try_lock(pool, task.key())
                .await?
                .map(|client| Lease {
                    holder: Some(client),
                })),
        }
    }
}

impl Lease {
    /// Whether the lease is still held (its connection still answers).
    pub async fn still_held(&self) -> bool {
        match &self.holder {
            None => true,
            Some(client) => super::postgres::still_answers(client).await,
        }
    }
}

/// A node's hold on one task's lease from tick to tick: the one place that re-checks a held
/// lease and asks again for a missing one, for every task that runs under a lease.
pub struct LeaseHolder {
    task: LeaseTask,
    held: Option<Lease>,
}

impl LeaseHolder {
    /// Holds nothing yet.
    pub fn new(task: LeaseTask) -> LeaseHolder {
        LeaseHolder { task, held: None }
    }

    /// Whether this node holds the lease now: a held one is checked (a broken connection has
    /// lost it), a missing one asked for.
    pub async fn holds(&mut self, meta: &MetaStore) -> bool {
        if let Some(lease) = &self.held {
            if !lease.still_held().await {
                tracing::warn!(task = ?self.task, "lost the lease; this node stops the task");
                self.held = None;
            }
        }
        if self.held.is_none() {
            match meta.try_lease(self.task).await {
                Ok(taken) => self.held = taken,
                Err(e) => tracing::warn!(task = ?self.task, "could not ask for the lease: {e}"),
            }
        }
        self.held.is_some()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Taken out of the pool and closed, so the session — and its lock — ends; back in the
        // pool it would keep the lock for whoever borrows the connection next.
        if let Some(client) = self.holder.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}
