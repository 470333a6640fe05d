//! The metadata store in PostgreSQL, for a cluster (`--metastore postgres://…`): every node
//! sees the same views, post-mortems, annotations, users and their sessions, API keys and
//! alert rules. The tables come from the metastore's migrations (`metastore/migrations/`,
//! the same schema as SQLite's `meta/migrations/`, in PostgreSQL's types).
//!
//! Store calls are synchronous closures on the blocking pool (see [`super::sql`]); here each
//! statement is handed to the runtime with `Handle::block_on`, which a blocking-pool thread
//! may do.

use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::Pool;
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::sql::{DbError, Row, Value};

/// Writers take this transaction-level advisory lock first, so that — as with SQLite's one
/// writer — a read-then-write never meets another node's commit halfway.
const WRITE_LOCK: i64 = 0x5167_6874_0010;

/// Held while migrations run, so nodes starting together apply each once.
const MIGRATION_LOCK: i64 = 0x5167_6874_0011;

/// PostgreSQL migrations in order; `meta_schema_migrations` records which ran. Never edit a
/// released one: add the next (and its SQLite twin in `meta/migrations/`).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/postgres/0001_meta.sql"))];

/// How long a call waits for a connection before answering "busy".
const CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// Applies the migrations this version knows, under an advisory lock.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS meta_schema_migrations (
             version BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(db_error)?;
    let applied: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM meta_schema_migrations",
            &[],
        )
        .await
        .map_err(db_error)?
        .get(0);
    if applied > MIGRATIONS.len() as i64 {
        return Err(DbError::Other(format!(
            "the metastore's metadata has schema version {applied}, newer than this binary \
             knows ({}); use a newer sightline",
            MIGRATIONS.len()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO meta_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(db_error)?;
        tracing::info!(version, "applied a metadata migration to the metastore");
    }
    tx.commit().await.map_err(db_error)
}

/// One open transaction.
pub struct PgTx<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    handle: Handle,
}

/// Whether a transaction writes (serialized across the cluster) or only reads (one snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Write,
    Read,
}

/// Runs `f` in one transaction on a pooled connection; commits only if `f` succeeds. Call it
/// on the blocking pool.
pub fn run<T, E: From<DbError>>(
    pool: &Pool,
    handle: &Handle,
    access: Access,
    f: impl FnOnce(&super::sql::Tx) -> Result<T, E>,
) -> Result<T, E> {
    let mut client = handle
        .block_on(tokio::time::timeout(CONNECTION_WAIT, pool.get()))
        .map_err(|_| DbError::Unavailable("no PostgreSQL connection came free in 5 s".into()))?
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let builder = client.build_transaction();
    let builder = match access {
        Access::Write => builder,
        Access::Read => builder
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true),
    };
    let tx = handle.block_on(builder.start()).map_err(db_error)?;
    if access == Access::Write {
        handle
            .block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]))
            .map_err(db_error)?;
    }
    let out = f(&super::sql::Tx::Postgres(PgTx {
        tx: &tx,
        handle: handle.clone(),
    }))?;
    handle.block_on(tx.commit()).map_err(db_error)?;
    Ok(out)
}

impl PgTx<'_> {
    /// Runs a statement; rows changed.
    pub fn execute(&self, sql: &str, values: &[Value]) -> Result<usize, DbError> {
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        self.handle.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await.map_err(db_error)?;
            let n = self.tx.execute(&stmt, &params).await.map_err(db_error)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Runs a query; its rows.
    pub fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>, DbError> {
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = self.handle.block_on(async {
            let stmt = self.tx.prepare_cached(sql).await.map_err(db_error)?;
            self.tx.query(&stmt, &params).await.map_err(db_error)
        })?;
        rows.iter().map(row).collect()
    }
}

fn row(r: &tokio_postgres::Row) -> Result<Row, DbError> {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            let bad = |e: tokio_postgres::Error| DbError::Column {
                column: i,
                problem: e.to_string(),
            };
            Ok(match *ty {
                Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int),
                Type::INT4 => r
                    .try_get::<_, Option<i32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::INT2 => r
                    .try_get::<_, Option<i16>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::BOOL => r
                    .try_get::<_, Option<bool>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Int(v.into())),
                Type::FLOAT8 => r
                    .try_get::<_, Option<f64>>(i)
                    .map_err(bad)?
                    .map(Value::Real),
                Type::FLOAT4 => r
                    .try_get::<_, Option<f32>>(i)
                    .map_err(bad)?
                    .map(|v| Value::Real(v.into())),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => r
                    .try_get::<_, Option<String>>(i)
                    .map_err(bad)?
                    .map(Value::Text),
                _ => {
                    return Err(DbError::Column {
                        column: i,
                        problem: format!("PostgreSQL type {ty} is not one the metadata uses"),
                    })
                }
            }
            .unwrap_or(Value::Null))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Row)
}

fn db_error(e: tokio_postgres::Error) -> DbError {
    // The server's own words (message, detail, hint), which `Error`'s display leaves out.
    let said = e
        .as_db_error()
        .map_or_else(|| e.to_string(), ToString::to_string);
    match e.code() {
        Some(code)
            if *code == SqlState::UNIQUE_VIOLATION
                || *code == SqlState::FOREIGN_KEY_VIOLATION
                || *code == SqlState::CHECK_VIOLATION
                || *code == SqlState::NOT_NULL_VIOLATION =>
        {
            DbError::Constraint(said)
        }
        Some(_) => DbError::Other(said),
        // No answer from the server at all: the connection broke or never opened.
        None => DbError::Unavailable(said),
    }
}

/// A [`Value`] is bound as whatever type PostgreSQL expects the parameter to be, so an
/// integer fits an `INT4` as well as a `BIGINT` and `NULL` fits anything.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(v), &Type::INT8) => v.to_sql(ty, out),
            (Value::Int(v), &Type::INT4) => i32::try_from(*v)?.to_sql(ty, out),
            (Value::Int(v), &Type::INT2) => i16::try_from(*v)?.to_sql(ty, out),
            (Value::Int(v), &Type::BOOL) => (*v != 0).to_sql(ty, out),
            (Value::Int(v), &Type::FLOAT8) => (*v as f64).to_sql(ty, out),
            (Value::Int(v), _) => v.to_string().to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT4) => (*v as f32).to_sql(ty, out),
            (Value::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Value::Real(v), _) => v.to_string().to_sql(ty, out),
            (Value::Text(v), _) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Takes session-level advisory lock `key` on a connection of its own, if no other session
/// holds it; the connection (and with it the lock) is kept by the returned client.
pub async fn try_lock(pool: &Pool, key: i64) -> Result<Option<deadpool_postgres::Object>, DbError> {
    let client = pool
        .get()
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))?;
    let taken: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .map_err(db_error)?
        .get(0);
    Ok(taken.then_some(client))
}

/// Whether the connection that holds a lock still answers (a broken one has lost it).
pub async fn still_answers(client: &deadpool_postgres::Object) -> bool {
    tokio::time::timeout(CONNECTION_WAIT, client.simple_query("SELECT 1"))
        .await
        .is_ok_and(|r| r.is_ok())
}
