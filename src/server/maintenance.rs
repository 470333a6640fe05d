//! What runs beside the front ends: retention, compaction of records and of rollups, and the
//! quarantine of corrupt files queries report. Every loop listens to the server's stop token,
//! so shutdown ends them between passes instead of abandoning them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::index::BlockIndex;
use crate::meta::lease::{LeaseHolder, LeaseTask};
use crate::meta::MetaStore;
use crate::metastore::Catalog;
use crate::query::CorruptFileReports;
use crate::store::Store;

/// How long a file the catalog removed stays in the bucket: query nodes see the removal
/// within a catalog poll, and a query that began before it runs at most the request time
/// limit.
const REMOVAL_GRACE: Duration =
    Duration::from_secs(crate::hardening::REQUEST_TIMEOUT.as_secs() + 2);

/// Longest a shutdown waits for a compaction pass under way to finish (it is crash-safe if
/// cut off: new file, one index commit, old files deleted later).
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// The running maintenance tasks.
pub struct Maintenance {
    /// Where queries report corrupt files.
    pub corrupt_files: CorruptFileReports,
    retention: Option<tokio::task::JoinHandle<()>>,
    compaction: Vec<std::thread::JoinHandle<()>>,
}

impl Maintenance {
    /// Starts every maintenance loop over `store` and `index`; they stop once `stop` is
    /// cancelled.
    pub fn start(
        config: &ServeConfig,
        store: &Store,
        index: &Arc<BlockIndex>,
        stop: &CancellationToken,
    ) -> anyhow::Result<Maintenance> {
        let (corrupt_files, reports) = CorruptFileReports::channel();
        if let Some(cluster) = &config.cluster {
            // The files and the catalog are shared: one index node at a time (the holder of
            // the maintenance lease) applies retention and compaction to the catalog; a
            // corrupt file leaves the catalog (and so every query node) before it is moved.
            tokio::spawn(cluster_quarantine(
                reports,
                cluster.metastore.clone(),
                store.clone(),
            ));
            let compaction = if cluster.roles.index {
                vec![spawn_low_priority(
                    "cluster-maintenance",
                    cluster_maintenance_loop(
                        ClusterMaintenance {
                            metastore: cluster.metastore.clone(),
                            node: cluster.node.clone(),
                            store: store.clone(),
                            fields: index.fields().clone(),
                            policy: config.retention,
                            compaction_every: config.compaction_interval,
                        },
                        stop.clone(),
                    ),
                )?]
            } else {
                Vec::new()
            };
            return Ok(Maintenance {
                corrupt_files,
                retention: None,
                compaction,
            });
        }
        // Ends once the last query engine (the last reporting handle) is gone.
        tokio::spawn(crate::quarantine::run(
            reports,
            store.clone(),
            index.clone(),
        ));
        let retention = config.retention.is_active().then(|| {
            tokio::spawn(retention_loop(
                store.clone(),
                index.clone(),
                config.retention,
                stop.clone(),
            ))
        });
        let compaction = vec![
            spawn_low_priority(
                "compaction",
                compaction_loop(
                    store.clone(),
                    index.clone(),
                    config.compaction_interval,
                    crate::compaction::Scope::Records,
                    stop.clone(),
                ),
            )?,
            spawn_low_priority(
                "rollup-compact",
                compaction_loop(
                    store.clone(),
                    index.clone(),
                    config
                        .compaction_interval
                        .min(crate::compaction::ROLLUP_EVERY),
                    crate::compaction::Scope::Rollups,
                    stop.clone(),
                ),
            )?,
        ];
        Ok(Maintenance {
            corrupt_files,
            retention,
            compaction,
        })
    }

    /// Waits (up to a limit) for the loops to see the cancelled stop token and end.
    pub async fn stopped(self) {
        let Maintenance {
            retention,
            compaction,
            ..
        } = self;
        let all = async move {
            if let Some(task) = retention {
                let _ = task.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                for thread in compaction {
                    let _ = thread.join();
                }
            })
            .await;
        };
        if tokio::time::timeout(STOP_LIMIT, all).await.is_err() {
            tracing::warn!("a maintenance pass is still running at shutdown; leaving it");
        }
    }
}

/// Applies the retention policy at start and then every minute, until `stop`.
async fn retention_loop(
    store: Store,
    index: Arc<BlockIndex>,
    policy: crate::retention::RetentionPolicy,
    stop: CancellationToken,
) {
    loop {
        let now = crate::model::time::now_ns();
        if let Err(e) = crate::retention::sweep(&store, &index, &policy, now).await {
            tracing::error!("retention pass failed: {e:#}");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(policy.every) => {}
        }
    }
}

/// A cluster node's quarantine: each corrupt file a query of this node reports leaves the
/// catalog (every query node drops its blocks at its next poll; the purge never deletes it)
/// and is then moved under the bucket's `quarantine/`, kept for inspection.
async fn cluster_quarantine(
    mut reports: tokio::sync::mpsc::UnboundedReceiver<String>,
    metastore: String,
    store: Store,
) {
    let mut catalog: Option<Catalog> = None;
    let mut handled = std::collections::HashSet::new();
    while let Some(path) = reports.recv().await {
        if handled.contains(&path) {
            continue;
        }
        if catalog.is_none() {
            catalog = Catalog::connect(&metastore).await.ok();
        }
        let Some(catalog) = &catalog else {
            tracing::error!(file = %path, "a query met a corrupt file; the metastore is unreachable, so it stays in the catalog for now");
            continue;
        };
        let first = match catalog.quarantine(&path).await {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(file = %path, "could not take a corrupt file out of the catalog: {e}");
                continue;
            }
        };
        handled.insert(path.clone());
        // Another query node reported it first and moves it.
        if !first {
            continue;
        }
        match store.quarantine(&path).await {
            Ok(()) => {
                tracing::error!(file = %path, "corrupt Parquet file taken out of the catalog and moved to quarantine")
            }
            Err(e) => {
                tracing::error!(file = %path, "corrupt file out of the catalog, but not moved: {e}")
            }
        }
    }
}

/// What a cluster index node's maintenance works on.
struct ClusterMaintenance {
    /// The metastore URL: the loop opens connections of its own, on its own runtime.
    metastore: String,
    node: String,
    store: Store,
    fields: crate::index::Fields,
    policy: crate::retention::RetentionPolicy,
    compaction_every: Duration,
}

/// A cluster's maintenance: while this node holds the maintenance lease, applies retention
/// to the catalog (at start and every `policy.every`), compacts rollup files (every
/// [`crate::compaction::ROLLUP_EVERY`] at most) and the other signals' (every
/// `compaction_every`) with catalog swaps, and deletes files out of the catalog from the
/// bucket after their grace time — until `stop`.
async fn cluster_maintenance_loop(work: ClusterMaintenance, stop: CancellationToken) {
    use crate::compaction::{compact_catalog, Scope, ROLLUP_EVERY};
    let connected = async {
        let catalog = Catalog::connect(&work.metastore).await?;
        let pool = crate::metastore::connect_pool(&work.metastore, 2).await?;
        anyhow::Ok((catalog, MetaStore::postgres(pool).await?))
    };
    let (catalog, meta) = tokio::select! {
        _ = stop.cancelled() => return,
        connected = connected => match connected {
            Ok(both) => both,
            Err(e) => {
                tracing::error!("cluster maintenance could not reach the metastore, so it is off: {e:#}");
                return;
            }
        },
    };
    let rollups_every = work.compaction_every.min(ROLLUP_EVERY);
    let tick = work.policy.every.min(rollups_every);
    let started = tokio::time::Instant::now();
    let (mut retention_at, mut rollups_at, mut records_at) = (
        started,
        started + rollups_every,
        started + work.compaction_every,
    );
    let mut lease = LeaseHolder::new(LeaseTask::Maintenance);
    loop {
        let now = tokio::time::Instant::now();
        if lease.holds(&meta).await {
            if now >= retention_at && work.policy.is_active() {
                retention_at = now + work.policy.every;
                let at = crate::model::time::now_ns();
                if let Err(e) =
                    crate::retention::sweep_catalog(&catalog, &work.store, &work.policy, at).await
                {
                    tracing::error!("cluster retention pass failed: {e:#}");
                }
            }
            for (due, every, scope) in [
                (&mut rollups_at, rollups_every, Scope::Rollups),
                (&mut records_at, work.compaction_every, Scope::Records),
            ] {
                if now >= *due {
                    *due = now + every;
                    let compacted =
                        compact_catalog(&catalog, &work.store, &work.fields, &work.node, scope);
                    if let Err(e) = compacted.await {
                        tracing::error!("cluster compaction failed: {e:#}");
                    }
                }
            }
            if let Err(e) =
                crate::retention::purge_removed(&catalog, &work.store, REMOVAL_GRACE).await
            {
                tracing::error!("deleting removed files failed: {e:#}");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Merges the small files of `scope` every `every` (the first pass one interval after start),
/// until `stop`.
async fn compaction_loop(
    store: Store,
    index: Arc<BlockIndex>,
    every: Duration,
    scope: crate::compaction::Scope,
    stop: CancellationToken,
) {
    // Longer than the request time limit, so no query still reads a swapped-out file.
    let mut retired = crate::compaction::Retired::with_grace(crate::hardening::REQUEST_TIMEOUT * 3);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = crate::compaction::compact(&store, &index, &mut retired, scope).await {
            tracing::error!("compaction failed: {e:#}");
        }
    }
}

/// Runs background maintenance on its own thread at a lower CPU priority (nice 10), with its
/// own small runtime. Compaction decodes and re-encodes whole files: on the shared runtime
/// it held a worker thread for hundreds of milliseconds at a time, and on two busy cores it
/// took CPU from ingest and queries (a RED overview took 9 s at p99 while the server merged
/// files beside a 10 M-record fill). Work that can wait now waits.
fn spawn_low_priority(
    name: &str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let thread_name = name.to_string();
    std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            lower_this_thread_priority();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(task),
                Err(e) => tracing::error!("could not start {thread_name}: {e}"),
            }
        })
        .with_context(|| format!("starting the {name} thread"))
}

/// Nice 10 for the calling thread (Linux nice values are per thread, and threads it starts
/// inherit them). Elsewhere, and if the call fails, the thread keeps normal priority.
fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` and `setpriority` take and return plain integers and touch no
        // memory of ours; `setpriority(PRIO_PROCESS, tid, …)` changes only this thread.
        let failed = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0
        };
        if failed {
            tracing::warn!("could not lower the priority of a background thread");
        }
    }
}
