//! The cluster's catalog in PostgreSQL (`--metastore postgres://…`): which Parquet files the
//! object store holds and which queue messages they cover, so that query nodes find new files
//! and a redelivered message is never indexed twice.
//!
//! The single binary needs none of this: its block index is its catalog. Schema migrations
//! live in `metastore/migrations/`, applied in order at connect under an advisory lock (so
//! nodes starting together apply each once); `schema_migrations` records them. A
//! `search_path` given in the URL's `options` (`?options=-c%20search_path%3Dname`) is created
//! when missing, so clusters (and tests) can share one database in separate schemas.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::model::Signal;

/// Migrations in order; the number is the version `schema_migrations` records.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_catalog.sql")),
    (2, include_str!("migrations/0002_removals.sql")),
    (3, include_str!("migrations/0003_swaps.sql")),
];

/// Advisory lock keys (arbitrary constants, one per purpose).
const MIGRATION_LOCK: i64 = 0x5167_6874_0001;
/// Registrations and removals take this lock so that catalog and removal ids become visible
/// in the order they are assigned: a query node reading "ids after the last one I saw" then
/// misses none.
const REGISTER_LOCK: i64 = 0x5167_6874_0002;

/// How long a call waits for a connection (PostgreSQL unreachable: fail, and retry later).
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// Why a metastore call failed.
#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error("invalid metastore URL: {0}")]
    Url(String),
    #[error("the metastore (PostgreSQL) is unreachable: {0}")]
    Unreachable(String),
    #[error("the metastore (PostgreSQL): {0}")]
    Query(#[from] tokio_postgres::Error),
}

impl From<deadpool_postgres::PoolError> for MetastoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        MetastoreError::Unreachable(e.to_string())
    }
}

/// A pool of `size` connections to the PostgreSQL at `url`, whose connections work in the
/// URL's `search_path` schema (created here when missing). The catalog has one; the metadata
/// store (`meta`) another, so that people's edits never wait behind registrations.
pub async fn connect_pool(url: &str, size: usize) -> Result<Pool, MetastoreError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|e| MetastoreError::Url(e.to_string()))?;
    config.connect_timeout(CONNECT_LIMIT);
    let schema = config.get_options().and_then(search_path);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_LIMIT))
        .create_timeout(Some(CONNECT_LIMIT))
        .recycle_timeout(Some(CONNECT_LIMIT))
        .build()
        .map_err(|e| MetastoreError::Url(e.to_string()))?;
    if let Some(schema) = schema {
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        pool.get()
            .await?
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
            .await?;
    }
    Ok(pool)
}

/// A file in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFile {
    /// Assigned in registration order.
    pub id: i64,
    /// Object path under the store's prefix.
    pub path: String,
    pub signal: Signal,
    /// The node that registered it.
    pub node: String,
    /// Written by a compaction (which replaced other files) rather than by a flush.
    pub compacted: bool,
}

/// A file taken out of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// In removal order.
    pub id: i64,
    pub path: String,
    /// The catalog id of the compacted file that replaced it (`None`: retention).
    pub replaced_by: Option<i64>,
}

/// What changed in the catalog after a follower's position, read in one snapshot.
#[derive(Debug, Default)]
pub struct Changes {
    /// Files registered, oldest first (at most the page asked for).
    pub files: Vec<CatalogFile>,
    /// Every removal recorded, oldest first.
    pub removals: Vec<Removal>,
}

/// The catalog, over a small pool of connections. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    pool: Pool,
}

impl Catalog {
    /// Connects to `url` and applies the migrations this version knows.
    pub async fn connect(url: &str) -> Result<Catalog, MetastoreError> {
        let catalog = Catalog {
            pool: connect_pool(url, 4).await?,
        };
        catalog.migrate().await?;
        Ok(catalog)
    }

    async fn migrate(&self) -> Result<(), MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
        let applied: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "applied a metastore migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers the files of one flush and the queue messages `seqs` of `stream` whose
    /// records they hold, in one transaction: after it, those messages count as indexed.
    pub async fn register(
        &self,
        node: &str,
        files: &[(String, Signal)],
        stream: &str,
        seqs: &[u64],
    ) -> Result<(), MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REGISTER_LOCK])
            .await?;
        let insert_file = tx
            .prepare(
                "INSERT INTO catalog_files (path, signal, node) VALUES ($1, $2, $3)
                 ON CONFLICT (path) DO NOTHING",
            )
            .await?;
        for (path, signal) in files {
            tx.execute(&insert_file, &[path, &signal.as_str(), &node])
                .await?;
        }
        let insert_range = tx
            .prepare(
                "INSERT INTO queue_indexed (stream, first_seq, last_seq) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        for (first, last) in ranges(seqs) {
            let (first, last) = (first as i64, last as i64);
            tx.execute(&insert_range, &[&stream, &first, &last]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether message `seq` of `stream` is in registered files already.
    pub async fn is_indexed(&self, stream: &str, seq: u64) -> Result<bool, MetastoreError> {
        let client = self.pool.get().await?;
        let seq = seq as i64;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM queue_indexed
                 WHERE stream = $1 AND first_seq <= $2 AND last_seq >= $2)",
                &[&stream, &seq],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Files registered after catalog id `after`, in id order, at most `limit`.
    pub async fn files_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<CatalogFile>, MetastoreError> {
        let client = self.pool.get().await?;
        let rows = client.query(FILES_AFTER, &[&after, &limit]).await?;
        Ok(rows.iter().filter_map(catalog_file).collect())
    }

    /// Files registered after id `file_after` (at most `limit`) and every removal after id
    /// `removal_after`, in one snapshot: a compaction's new file and the removals of the files
    /// it replaced are seen together or not at all.
    pub async fn changes_after(
        &self,
        file_after: i64,
        removal_after: i64,
        limit: i64,
    ) -> Result<Changes, MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let files = tx.query(FILES_AFTER, &[&file_after, &limit]).await?;
        let removals = tx
            .query(
                "SELECT id, path, replaced_by FROM catalog_removals WHERE id > $1 ORDER BY id",
                &[&removal_after],
            )
            .await?;
        tx.commit().await?;
        Ok(Changes {
            files: files.iter().filter_map(catalog_file).collect(),
            removals: removals
                .iter()
                .map(|r| Removal {
                    id: r.get(0),
                    path: r.get(1),
                    replaced_by: r.get(2),
                })
                .collect(),
        })
    }

    /// Replaces the files `old` by the compacted file `new` (of `signal`, written by `node`)
    /// in one transaction: `new` is registered, `old` leave the catalog into the removals
    /// feed. `false` (and nothing changed) when one of `old` is no longer in the catalog —
    /// retention took it meanwhile — so the caller drops `new`.
    pub async fn swap(
        &self,
        node: &str,
        new: &str,
        signal: Signal,
        old: &[String],
    ) -> Result<bool, MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REGISTER_LOCK])
            .await?;
        let gone = tx
            .execute("DELETE FROM catalog_files WHERE path = ANY($1)", &[&old])
            .await?;
        if gone != old.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO catalog_files (path, signal, node, compacted) \
                 VALUES ($1, $2, $3, true) RETURNING id",
                &[&new, &signal.as_str(), &node],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO catalog_removals (path, replaced_by) \
             SELECT path, $2 FROM unnest($1::text[]) AS path ORDER BY path",
            &[&old, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes `paths` out of the catalog and records each removal in the removals feed, in
    /// one transaction; returns how many were in the catalog.
    pub async fn remove(&self, paths: &[String]) -> Result<usize, MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REGISTER_LOCK])
            .await?;
        let removed = tx
            .execute(
                "WITH gone AS (DELETE FROM catalog_files WHERE path = ANY($1) RETURNING path) \
                 INSERT INTO catalog_removals (path) SELECT path FROM gone ORDER BY path",
                &[&paths],
            )
            .await?;
        tx.commit().await?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// Takes a corrupt file out of the catalog: its removal is recorded as already settled, so
    /// the purge never deletes it (the caller moves it aside for inspection). `false` when
    /// the catalog no longer held it (another query node reported it first).
    pub async fn quarantine(&self, path: &str) -> Result<bool, MetastoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REGISTER_LOCK])
            .await?;
        let gone = tx
            .execute("DELETE FROM catalog_files WHERE path = $1", &[&path])
            .await?;
        if gone > 0 {
            tx.execute(
                "INSERT INTO catalog_removals (path, deleted_at) VALUES ($1, now())",
                &[&path],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// The newest removal id (0: none yet), where a follower starting now begins.
    pub async fn last_removal(&self) -> Result<i64, MetastoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT COALESCE(MAX(id), 0) FROM catalog_removals", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Removed files whose objects are still in the bucket and were removed more than
    /// `grace` ago: (id, path).
    pub async fn removals_due(
        &self,
        grace: Duration,
    ) -> Result<Vec<(i64, String)>, MetastoreError> {
        let client = self.pool.get().await?;
        let seconds = grace.as_secs_f64();
        let rows = client
            .query(
                "SELECT id, path FROM catalog_removals WHERE deleted_at IS NULL \
                 AND removed_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000",
                &[&seconds],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records that the objects of removals `ids` are gone from the bucket.
    pub async fn mark_deleted(&self, ids: &[i64]) -> Result<(), MetastoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE catalog_removals SET deleted_at = now() WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
        Ok(())
    }

    /// The files of `listing` (path, bytes — a bucket listing) the catalog holds: a file
    /// not in it is still being registered, or left over, and maintenance leaves it alone.
    pub async fn only_registered(
        &self,
        listing: Vec<(String, u64)>,
    ) -> Result<Vec<(String, u64)>, MetastoreError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT path FROM catalog_files", &[]).await?;
        let registered: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(listing
            .into_iter()
            .filter(|(path, _)| registered.contains(path))
            .collect())
    }
}

/// Catalog files after an id, oldest first, at most a limit.
const FILES_AFTER: &str = "SELECT id, path, signal, node, compacted FROM catalog_files \
                           WHERE id > $1 ORDER BY id LIMIT $2";

fn catalog_file(row: &tokio_postgres::Row) -> Option<CatalogFile> {
    let signal: String = row.get(2);
    Some(CatalogFile {
        id: row.get(0),
        path: row.get(1),
        signal: Signal::from_folder(&signal)?,
        node: row.get(3),
        compacted: row.get(4),
    })
}

/// The schema named by `-c search_path=…` in a connection's options, if any.
fn search_path(options: &str) -> Option<String> {
    let (_, rest) = options.split_once("search_path=")?;
    let name = rest.split([' ', ',']).next()?.trim_matches('"');
    (!name.is_empty()).then(|| name.to_string())
}

/// Sorted sequences as inclusive runs: `[1, 2, 3, 7]` → `[(1, 3), (7, 7)]`.
fn ranges(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for seq in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == seq => *last = seq,
            _ => out.push((seq, seq)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_become_inclusive_runs() {
        assert_eq!(ranges(&[7, 1, 3, 2, 3]), vec![(1, 3), (7, 7)]);
        assert!(ranges(&[]).is_empty());
    }

    #[test]
    fn the_schema_comes_from_the_search_path_option() {
        assert_eq!(search_path("-c search_path=t1").as_deref(), Some("t1"));
        assert_eq!(search_path("-c statement_timeout=5"), None);
    }
}
