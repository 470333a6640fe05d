//! API keys for OTLP ingest: created with a name and a rate limit, shown once, stored only
//! as a SHA-256 digest (keys are 128 random bits, so a fast digest is enough), revoked by
//! name. Keys exist as soon as one was ever created; from then on ingest needs one.

use super::sql::{params, DbError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{check_name, now_ns, MetaError, MetaStore};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub name: String,
    /// 0 = unlimited.
    pub records_per_second: u64,
    pub created: i64,
    pub revoked: Option<i64>,
}

/// What the ingest path needs to know about the keys.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    /// True once any key was created (revoked ones included): ingest then needs a key.
    pub enforced: bool,
    /// Active keys: (digest, name, records per second).
    pub active: Vec<(String, String, u64)>,
}

/// Hex SHA-256 of a key.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl MetaStore {
    /// Creates a key; returns it (the only time it is seen) with its record.
    pub async fn create_api_key(
        &self,
        name: &str,
        records_per_second: u64,
    ) -> Result<(String, ApiKey), MetaError> {
        let name = check_name("a key's name", name)?;
        let key = format!(
            "sl_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hash = digest(&key);
        let rate = i64::try_from(records_per_second).unwrap_or(i64::MAX);
        self.tx(move |tx| {
            let created = now_ns();
            tx.execute(
                "INSERT INTO api_keys (name, key_hash, records_per_second, created_ns) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![name, hash, rate, created],
            )
            .map_err(|e| match e {
                DbError::Constraint(_) => {
                    MetaError::Conflict(format!("a key named {name:?} already exists"))
                }
                other => other.into(),
            })?;
            Ok((
                key,
                ApiKey {
                    name,
                    records_per_second,
                    created,
                    revoked: None,
                },
            ))
        })
        .await
    }

    /// Every key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, MetaError> {
        self.read(|tx| {
            Ok(tx.query_map(
                "SELECT name, records_per_second, created_ns, revoked_ns FROM api_keys ORDER BY id",
                params![],
                |r| {
                    Ok(ApiKey {
                        name: r.get(0)?,
                        records_per_second: r.get::<i64>(1)?.max(0) as u64,
                        created: r.get(2)?,
                        revoked: r.get(3)?,
                    })
                },
            )?)
        })
        .await
    }

    /// Revokes a key by name; requests with it are refused from the next refresh on.
    pub async fn revoke_api_key(&self, name: &str) -> Result<(), MetaError> {
        let name = name.to_string();
        self.tx(move |tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_ns = ?2 WHERE name = ?1 AND revoked_ns IS NULL",
                params![name, now_ns()],
            )?;
            if n == 0 {
                return Err(MetaError::NotFound(format!("no active key named {name:?}")));
            }
            Ok(())
        })
        .await
    }

    /// The keys the ingest path checks against.
    pub async fn key_table(&self) -> Result<KeyTable, MetaError> {
        self.read(|tx| {
            let total: i64 =
                tx.query_row("SELECT COUNT(*) FROM api_keys", params![], |r| r.get(0))?;
            let active = tx.query_map(
                "SELECT key_hash, name, records_per_second FROM api_keys WHERE revoked_ns IS NULL",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)?.max(0) as u64)),
            )?;
            Ok(KeyTable {
                enforced: total > 0,
                active,
            })
        })
        .await
    }
}
