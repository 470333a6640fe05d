//! API keys on OTLP ingest: which key a request carries, whether it is valid, and its
//! per-key rate limit (records per second, as a token bucket that may go into debt by one
//! request, so a batch larger than a second's allowance still passes when the bucket is full).
//!
//! The key table comes from the metadata store and is refreshed every few seconds, so keys
//! created or revoked with `sightline apikey` apply to a running server without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::IngestError;
use crate::meta::api_keys::{digest, KeyTable};
use crate::meta::MetaStore;

/// How often the key table is re-read.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// A key's allowance.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

/// The keys ingest accepts, with their buckets.
#[derive(Default)]
pub struct IngestAuth {
    table: RwLock<KeyTable>,
    /// Buckets by key digest; kept across refreshes.
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Header carrying the key; `authorization` means `Authorization: Bearer <key>`.
    header: String,
}

/// The key a request was admitted with (`None` while no key exists).
#[derive(Debug, Clone)]
pub struct Admitted(Option<String>);

impl IngestAuth {
    /// Loads the key table and keeps it fresh in the background.
    pub async fn start(meta: MetaStore, header: &str) -> anyhow::Result<Arc<IngestAuth>> {
        let auth = Arc::new(IngestAuth {
            table: RwLock::new(meta.key_table().await?),
            buckets: Mutex::default(),
            header: header.to_ascii_lowercase(),
        });
        let weak = Arc::downgrade(&auth);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let Some(auth) = weak.upgrade() else { return };
                match meta.key_table().await {
                    Ok(table) => *auth.table.write().unwrap_or_else(|e| e.into_inner()) = table,
                    Err(e) => tracing::warn!("could not refresh API keys: {e}"),
                }
            }
        });
        Ok(auth)
    }

    /// Whether ingest needs a key (some key was ever created).
    pub fn enforced(&self) -> bool {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .enforced
    }

    /// The header keys are read from (lower case).
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Checks the key given in the request's header (its raw value, if present).
    pub fn admit(&self, header_value: Option<&str>) -> Result<Admitted, IngestError> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        if !table.enforced {
            return Ok(Admitted(None));
        }
        let Some(value) = header_value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(IngestError::Unauthenticated(format!(
                "an API key is required: send it as {}",
                self.how()
            )));
        };
        let key = if self.header == "authorization" {
            match value.split_once(' ') {
                Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
                _ => {
                    return Err(IngestError::Unauthenticated(format!(
                        "send the API key as {}",
                        self.how()
                    )))
                }
            }
        } else {
            value
        };
        let hash = digest(key);
        if table.active.iter().any(|(h, _, _)| *h == hash) {
            Ok(Admitted(Some(hash)))
        } else {
            Err(IngestError::Unauthenticated(
                "unknown or revoked API key".into(),
            ))
        }
    }

    /// Admits the server's own exports (demo data) without a key.
    pub fn admit_internal(&self) -> Result<Admitted, IngestError> {
        Ok(Admitted(None))
    }

    /// Charges `records` to the key's allowance, or says how long to wait.
    pub fn charge(&self, admitted: &Admitted, records: usize) -> Result<(), IngestError> {
        let Some(hash) = &admitted.0 else {
            return Ok(());
        };
        let rate = {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            match table.active.iter().find(|(h, _, _)| h == hash) {
                Some((_, _, rate)) => *rate,
                None => return Ok(()),
            }
        };
        if rate == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let b = buckets.entry(hash.clone()).or_insert(Bucket {
            rate: rate as f64,
            tokens: rate as f64,
            at: now,
        });
        b.rate = rate as f64;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * b.rate).min(b.rate);
        b.at = now;
        if b.tokens <= 0.0 {
            let wait = (-b.tokens + 1.0) / b.rate;
            return Err(IngestError::RateLimited {
                message: format!("this API key may send {rate} records per second; slow down"),
                retry_after: Duration::from_secs_f64(wait.max(0.001)),
            });
        }
        b.tokens -= records as f64;
        Ok(())
    }

    fn how(&self) -> String {
        if self.header == "authorization" {
            "`Authorization: Bearer <key>`".into()
        } else {
            format!("the `{}` header", self.header)
        }
    }
}
