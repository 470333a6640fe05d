//! The metadata store: saved views, post-mortems, timelines, annotations, users and their
//! sessions, API keys, alert rules and alert states. Unlike telemetry this is edited by
//! people, so it lives in a transactional SQL database: every change is one transaction, and a
//! crash mid-write leaves the previous state.
//!
//! Two databases behind the one [`MetaStore`]: SQLite (`<data>/meta.sqlite`), the single
//! binary's default, and PostgreSQL, which a cluster's nodes share (`--metastore`). The calls
//! are written once, against [`sql::Tx`]; each database has its own migrations
//! (`migrations/` and `migrations/postgres/`) describing the same tables.

pub mod alerts;
pub mod annotations;
pub mod api_keys;
pub mod lease;
pub mod postgres;
pub mod postmortems;
pub mod sql;
pub mod users;
pub mod views;

use std::path::Path;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

use crate::model::time::now_ns;
use sql::{params, DbError, Tx};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Never edit a released migration: add the next one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_api_keys.sql"),
    include_str!("migrations/0003_users.sql"),
    include_str!("migrations/0004_alerts.sql"),
    include_str!("migrations/0005_silences.sql"),
];

/// Longest name or title, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free text (notes, summaries), in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;

/// Why a metadata operation failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The input breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// No such record (404).
    #[error("{0}")]
    NotFound(String),
    /// The change collides with the current state: a duplicate name or a stale version (409).
    #[error("{0}")]
    Conflict(String),
    #[error("metadata database: {0}")]
    Database(DbError),
    #[error("metadata task failed: {0}")]
    Task(String),
    /// The database is unreachable, or no connection came free in time (503).
    #[error("metadata database busy: {0}")]
    Busy(String),
}

impl From<DbError> for MetaError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(why) => MetaError::Busy(why),
            other => MetaError::Database(other),
        }
    }
}

impl From<rusqlite::Error> for MetaError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::from(e).into()
    }
}

impl From<r2d2::Error> for MetaError {
    fn from(e: r2d2::Error) -> Self {
        MetaError::Busy(e.to_string())
    }
}

/// Connections in the pool. Under the WAL journal any number read side by side while one
/// writes, so a burst of session lookups no longer queues behind one connection; SQLite
/// itself serializes the writers (each waits up to [`BUSY_TIMEOUT`]).
const POOL_CONNECTIONS: u32 = 8;

/// How long a writer waits for another writer's transaction before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Handle to the metadata database. Cheap to clone; calls run on the blocking pool, each on
/// a connection of its own from a pool.
#[derive(Clone)]
pub struct MetaStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    /// `meta.sqlite`, over an `r2d2` pool.
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    /// A cluster's PostgreSQL, over a `deadpool` pool; statements are driven by `runtime`.
    Postgres {
        pool: deadpool_postgres::Pool,
        runtime: tokio::runtime::Handle,
    },
}

impl MetaStore {
    /// Opens (creating and migrating) `<data_dir>/meta.sqlite`.
    pub fn open(data_dir: &Path) -> Result<MetaStore, MetaError> {
        let path = data_dir.join("meta.sqlite");
        let mut conn = Connection::open(&path)?;
        // WAL journal: a setting of the file, made once; readers do not block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        configure(&mut conn)?;
        migrate(&mut conn)?;
        drop(conn);
        let manager = SqliteConnectionManager::file(&path).with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_CONNECTIONS)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        Ok(MetaStore {
            backend: Backend::Sqlite(pool),
        })
    }

    /// The metadata store in a cluster's PostgreSQL, over `pool` (whose connections select the
    /// cluster's schema); applies the migrations this version knows.
    pub async fn postgres(pool: deadpool_postgres::Pool) -> Result<MetaStore, MetaError> {
        postgres::migrate(&pool).await?;
        Ok(MetaStore {
            backend: Backend::Postgres {
                pool,
                runtime: tokio::runtime::Handle::current(),
            },
        })
    }

    /// Runs `f` in one write transaction on the blocking pool; it commits only if `f`
    /// succeeds. It takes SQLite's write lock when it begins (waiting up to
    /// [`BUSY_TIMEOUT`] for another writer), so a read-then-write never meets a newer commit
    /// halfway.
    pub async fn tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        self.run(true, f).await
    }

    /// Runs the lookups of `f` in one read transaction (one consistent snapshot) on the
    /// blocking pool; any number of these run side by side with each other and a writer.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        self.run(false, f).await
    }

    async fn run<T: Send + 'static>(
        &self,
        write: bool,
        f: impl FnOnce(&Tx) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || match backend {
            Backend::Sqlite(pool) => {
                let mut conn = pool.get()?;
                let behavior = if write {
                    TransactionBehavior::Immediate
                } else {
                    TransactionBehavior::Deferred
                };
                let tx = conn.transaction_with_behavior(behavior)?;
                let out = f(&Tx::Sqlite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres { pool, runtime } => {
                let access = if write {
                    postgres::Access::Write
                } else {
                    postgres::Access::Read
                };
                postgres::run(&pool, &runtime, access, f)
            }
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?
    }

    /// A random token that HTML forms must send back, created once per data dir.
    pub async fn form_token(&self) -> Result<String, MetaError> {
        self.tx(|tx| {
            let existing: Option<String> = tx.query_opt(
                "SELECT value FROM settings WHERE key = 'form_token'",
                params![],
                |r| r.get(0),
            )?;
            if let Some(token) = existing {
                return Ok(token);
            }
            let token = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('form_token', ?1)",
                params![token],
            )?;
            Ok(token)
        })
        .await
    }
}

/// What every connection sets when it opens: FULL sync (a committed change survives kill -9
/// and power loss), foreign keys, and the time a writer waits for another.
fn configure(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)
}

fn migrate(conn: &mut Connection) -> Result<(), MetaError> {
    let tx = conn.transaction()?;
    let done: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let done = usize::try_from(done).unwrap_or(usize::MAX);
    if done > MIGRATIONS.len() {
        return Err(MetaError::Invalid(format!(
            "meta.sqlite has schema version {done}, newer than this binary knows ({}); \
             use a newer sightline",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[done..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()?;
    Ok(())
}

/// Trims `text` and checks it is a usable name: 1 to [`MAX_NAME_CHARS`] characters.
pub fn check_name(what: &str, text: &str) -> Result<String, MetaError> {
    let text = text.trim();
    let n = text.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(MetaError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME_CHARS} characters (got {n})"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(MetaError::Invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(text.to_string())
}

/// Checks free text is at most [`MAX_TEXT_CHARS`] characters.
pub fn check_text(what: &str, text: &str) -> Result<String, MetaError> {
    let n = text.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(MetaError::Invalid(format!(
            "{what} must be at most {MAX_TEXT_CHARS} characters (got {n})"
        )));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        drop(MetaStore::open(dir.path()).unwrap());
        let again = MetaStore::open(dir.path()).unwrap();
        let Backend::Sqlite(pool) = &again.backend else {
            panic!("opened from a data dir, so SQLite")
        };
        let conn = pool.get().unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// With one shared connection a lookup waited for any open write; with the pool it reads
    /// the last committed state while the write is still open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_run_while_a_write_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let (opened, wait_opened) = tokio::sync::oneshot::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let writer = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .tx(move |tx| {
                        tx.execute(
                            "INSERT INTO settings (key, value) VALUES ('k', 'v')",
                            params![],
                        )?;
                        let _ = opened.send(());
                        let _ = wait_release.recv();
                        Ok(())
                    })
                    .await
            }
        });
        wait_opened.await.unwrap();
        // Bounded, so the old single connection (a lookup waiting for the open write, which
        // waits for this lookup) fails the test instead of hanging it.
        let count = |store: MetaStore| async move {
            let read = store.read(|tx| {
                Ok(tx.query_row(
                    "SELECT count(*) FROM settings WHERE key = 'k'",
                    params![],
                    |r| r.get::<i64>(0),
                )?)
            });
            tokio::time::timeout(std::time::Duration::from_secs(10), read)
                .await
                .expect("a lookup waited for the open write")
                .unwrap()
        };
        assert_eq!(
            count(store.clone()).await,
            0,
            "the write is not committed yet"
        );
        release.send(()).unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(count(store.clone()).await, 1);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("name", "  ").is_err());
        assert!(check_name("name", &"x".repeat(10_000)).is_err());
        assert!(check_name("name", "a\u{7}b").is_err());
        assert_eq!(check_name("name", " checkout ").unwrap(), "checkout");
    }
}
