//! Users of the UI and query API with their roles, and login sessions. Passwords are kept as
//! argon2id hashes; session cookies as SHA-256 digests (they are 256 random bits).

use std::time::Duration;

use super::sql::{params, DbError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use super::api_keys::digest;
use super::{check_name, now_ns, MetaError, MetaStore};

/// What a user may do; each role includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read every page and query.
    Viewer,
    /// Also save views, write post-mortems and annotations.
    Editor,
    /// Also manage users, keys and retention.
    Admin,
}

impl Role {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Role {
        match s {
            "admin" => Role::Admin,
            "editor" => Role::Editor,
            _ => Role::Viewer,
        }
    }
}

/// A user as listed.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created: i64,
}

/// The user behind a request, with the token their forms must carry.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

/// How long a login lasts.
pub const SESSION_LENGTH: Duration = Duration::from_secs(12 * 3600);

/// Shortest accepted password.
const MIN_PASSWORD_CHARS: usize = 10;

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn hash_password(password: &str) -> Result<String, MetaError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| MetaError::Task(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| MetaError::Task(e.to_string()))
}

impl MetaStore {
    /// Adds a user (or, with `replace`, sets an existing user's role and password).
    pub async fn put_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
        replace: bool,
    ) -> Result<User, MetaError> {
        let name = check_name("a user's name", name)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(MetaError::Invalid(format!(
                "a password needs at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| MetaError::Task(e.to_string()))??;
        self.tx(move |tx| {
            let created = now_ns();
            let sql = if replace {
                "INSERT INTO users (name, role, password_hash, created_ns) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET role = ?2, password_hash = ?3"
            } else {
                "INSERT INTO users (name, role, password_hash, created_ns) VALUES (?1, ?2, ?3, ?4)"
            };
            tx.execute(sql, params![name, role.as_str(), hash, created])
                .map_err(|e| match e {
                    DbError::Constraint(_) => {
                        MetaError::Conflict(format!("a user named {name:?} already exists"))
                    }
                    other => other.into(),
                })?;
            // A new password ends the user's sessions.
            tx.execute(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                params![name],
            )?;
            Ok(User {
                name,
                role,
                created,
            })
        })
        .await
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, MetaError> {
        self.read(|tx| {
            let users = tx.query_map(
                "SELECT name, role, created_ns FROM users ORDER BY name",
                params![],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(User {
                        name: r.get(0)?,
                        role: Role::parse(&role),
                        created: r.get(2)?,
                    })
                },
            )?;
            Ok(users)
        })
        .await
    }

    /// Removes a user and their sessions.
    pub async fn remove_user(&self, name: &str) -> Result<(), MetaError> {
        let name = name.to_string();
        self.tx(move |tx| {
            if tx.execute("DELETE FROM users WHERE name = ?1", params![name])? == 0 {
                return Err(MetaError::NotFound(format!("no user named {name:?}")));
            }
            Ok(())
        })
        .await
    }

    /// Whether any user exists (then the UI and API need a login).
    pub async fn has_users(&self) -> Result<bool, MetaError> {
        self.read(|tx| {
            let n: i64 = tx.query_row("SELECT COUNT(*) FROM users", params![], |r| r.get(0))?;
            Ok(n > 0)
        })
        .await
    }

    /// Checks a name and password; the user on success.
    pub async fn verify_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<User>, MetaError> {
        let name = name.to_string();
        let found: Option<(User, String)> = self
            .tx(move |tx| {
                Ok(tx.query_opt(
                    "SELECT name, role, created_ns, password_hash FROM users WHERE name = ?1",
                    params![name],
                    |r| {
                        let role: String = r.get(1)?;
                        Ok((
                            User {
                                name: r.get(0)?,
                                role: Role::parse(&role),
                                created: r.get(2)?,
                            },
                            r.get::<String>(3)?,
                        ))
                    },
                )?)
            })
            .await?;
        // Hash even for an unknown name, so timing does not tell which names exist.
        let (user, hash) = match found {
            Some((u, h)) => (Some(u), h),
            None => (
                None,
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$\
                 0000000000000000000000000000000000000000000"
                    .to_string(),
            ),
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?;
        Ok(user.filter(|_| ok))
    }

    /// Starts a session; returns the cookie value.
    pub async fn create_session(&self, name: &str) -> Result<String, MetaError> {
        let name = name.to_string();
        let token = random_token();
        let (hash, csrf) = (digest(&token), random_token());
        self.tx(move |tx| {
            tx.execute(
                "DELETE FROM sessions WHERE expires_ns < ?1",
                params![now_ns()],
            )?;
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, expires_ns) \
                 SELECT CAST(?1 AS TEXT), id, CAST(?2 AS TEXT), CAST(?3 AS BIGINT) FROM users \
                 WHERE name = ?4",
                params![
                    hash,
                    csrf,
                    now_ns() + SESSION_LENGTH.as_nanos() as i64,
                    name
                ],
            )?;
            Ok(())
        })
        .await?;
        Ok(token)
    }

    /// The user of a live session.
    pub async fn session(&self, token: &str) -> Result<Option<SessionUser>, MetaError> {
        let hash = digest(token);
        self.read(move |tx| {
            Ok(tx.query_opt(
                "SELECT u.name, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = ?1 AND s.expires_ns > ?2",
                params![hash, now_ns()],
                |r| {
                    let role: String = r.get(1)?;
                    Ok(SessionUser {
                        name: r.get(0)?,
                        role: Role::parse(&role),
                        csrf: r.get(2)?,
                    })
                },
            )?)
        })
        .await
    }

    /// Ends a session.
    pub async fn end_session(&self, token: &str) -> Result<(), MetaError> {
        let hash = digest(token);
        self.tx(move |tx| {
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", params![hash])?;
            Ok(())
        })
        .await
    }
}
