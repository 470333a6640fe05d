//! Server settings from flags, `SIGHTLINE_…` environment variables and an optional TOML file.
//! Precedence: flag, then environment, then file, then the built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::ingest::correlation::DEFAULT_CORRELATION_KEYS;
use crate::wal::SyncPolicy;

/// `serve` options as given; every field is optional so that unset ones fall through to the
/// file and then to the defaults. The TOML file uses the same names with underscores.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flag names, with underscores).
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Folder for the WAL, Parquet files and index [default: ./sightline-data].
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the web UI and query API [default: 127.0.0.1:8080]; port 0 picks a free one.
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Address of the OTLP/gRPC receiver [default: 127.0.0.1:4317].
    #[arg(long, env = "SIGHTLINE_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// Address of the OTLP/HTTP receiver [default: 127.0.0.1:4318].
    #[arg(long, env = "SIGHTLINE_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Largest accepted OTLP request body or message, before and after gzip [default: 16 MiB].
    #[arg(long, env = "SIGHTLINE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Attribute keys holding a correlation id, first match wins, comma-separated
    /// [default: correlation_id,correlation.id,request_id,request.id,x-request-id,x-correlation-id].
    #[arg(long, env = "SIGHTLINE_CORRELATION_KEYS", value_delimiter = ',')]
    pub correlation_keys: Option<Vec<String>>,
    /// When WAL appends reach the disk: `always` fsyncs before every acknowledgement;
    /// `never` survives a process crash but not a power loss [default: always].
    #[arg(long, env = "SIGHTLINE_WAL_SYNC", value_enum)]
    pub wal_sync: Option<SyncPolicy>,
    /// Flush in-memory rows to Parquet when this many are buffered [default: 100000].
    #[arg(long, env = "SIGHTLINE_FLUSH_ROWS")]
    pub flush_rows: Option<usize>,
    /// …or when they hold this many bytes of Arrow buffers [default: 67108864 (64 MiB)].
    #[arg(long, env = "SIGHTLINE_FLUSH_BYTES")]
    pub flush_bytes: Option<usize>,
    /// …or when the oldest buffered row is this many milliseconds old [default: 10000].
    #[arg(long, env = "SIGHTLINE_FLUSH_AGE_MS")]
    pub flush_age_ms: Option<u64>,
    /// Rows per Parquet row group, which is also the unit the index points at [default: 16384].
    #[arg(long, env = "SIGHTLINE_ROW_GROUP_ROWS")]
    pub row_group_rows: Option<usize>,
    /// Bytes of requests allowed to wait for the WAL before exports are refused as
    /// retryable [default: 268435456].
    #[arg(long, env = "SIGHTLINE_INFLIGHT_BYTES")]
    pub inflight_bytes: Option<usize>,
    /// Hours to keep spans (0 = forever) [default: 168].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_TRACES")]
    pub retention_hours_traces: Option<u64>,
    /// Hours to keep log records (0 = forever) [default: 168].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_LOGS")]
    pub retention_hours_logs: Option<u64>,
    /// Hours to keep metric points (0 = forever) [default: 720].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_METRICS")]
    pub retention_hours_metrics: Option<u64>,
    /// Total Parquet bytes to keep; the oldest hour partitions go first (0 = no cap)
    /// [default: 0].
    #[arg(long, env = "SIGHTLINE_MAX_STORE_BYTES")]
    pub max_store_bytes: Option<u64>,
    /// Seconds between compaction passes over span, log and metric files [default: 300].
    /// Rollup files are merged every 30 s (or at this interval if it is shorter).
    #[arg(long, env = "SIGHTLINE_COMPACTION_INTERVAL_SECS")]
    pub compaction_interval_secs: Option<u64>,
    /// Largest size of the data dir in bytes; beyond it exports are refused as retryable
    /// until space returns (0 = no budget) [default: 0].
    #[arg(long, env = "SIGHTLINE_DISK_BUDGET_BYTES")]
    pub disk_budget_bytes: Option<u64>,
    /// Resident memory (bytes) at which exports are refused as retryable until flushing
    /// brings it down (0 = no limit) [default: 0].
    #[arg(long, env = "SIGHTLINE_MAX_RSS_BYTES")]
    pub max_rss_bytes: Option<u64>,
    /// Longest time range one query may cover, in days (0 = no limit) [default: 31].
    #[arg(long, env = "SIGHTLINE_MAX_QUERY_DAYS")]
    pub max_query_days: Option<u64>,
    /// Most records one query may gather in memory before it is refused (HTTP 413, gRPC
    /// `RESOURCE_EXHAUSTED`, the limit named) [default: 1000000].
    #[arg(long, env = "SIGHTLINE_MAX_QUERY_ROWS")]
    pub max_query_rows: Option<usize>,
    /// PEM certificate chain: with `--tls-key`, every listener speaks TLS.
    #[arg(long, env = "SIGHTLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "SIGHTLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: OTLP clients must present a certificate signed by one of them.
    #[arg(long, env = "SIGHTLINE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Header OTLP clients send their API key in; `authorization` means
    /// `Authorization: Bearer <key>` [default: authorization].
    #[arg(long, env = "SIGHTLINE_API_KEY_HEADER")]
    pub api_key_header: Option<String>,
    /// Listen on non-loopback addresses although no authentication is configured (anyone who
    /// can reach the ports can read and write everything).
    #[arg(long, env = "SIGHTLINE_INSECURE")]
    pub insecure: bool,
    /// Seconds without any data after which an instance is shown as down [default: 120].
    #[arg(long, env = "SIGHTLINE_INSTANCE_DOWN_AFTER_SECS")]
    pub instance_down_after_secs: Option<u64>,
    /// Load the demo scenario (an hour of a small shop with an incident, ending now) into
    /// the data dir, once.
    #[arg(long, env = "SIGHTLINE_DEMO")]
    #[serde(skip)]
    pub demo: bool,
}

/// Resolved settings of a running server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub max_body_bytes: usize,
    pub correlation_keys: Vec<String>,
    pub wal_sync: SyncPolicy,
    pub flush_rows: usize,
    pub flush_bytes: usize,
    pub flush_age: Duration,
    pub row_group_rows: usize,
    pub inflight_bytes: usize,
    pub disk_budget_bytes: u64,
    pub max_rss_bytes: u64,
    /// `None` = no limit.
    pub max_query_range: Option<Duration>,
    pub max_query_rows: usize,
    pub insecure: bool,
    pub api_key_header: String,
    pub tls: Option<crate::tls::TlsFiles>,
    pub retention: crate::retention::RetentionPolicy,
    pub compaction_interval: Duration,
    pub instance_down_after: Duration,
    pub demo: bool,
}

impl ServeArgs {
    /// Applies the file (if any) under the flags and the defaults under both.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => ServeArgs::default(),
        };
        let addr = |s: &str| s.parse::<SocketAddr>().expect("static address");
        Ok(ServeConfig {
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "sightline-data".into()),
            http_addr: self
                .http_addr
                .or(file.http_addr)
                .unwrap_or_else(|| addr("127.0.0.1:8080")),
            otlp_grpc_addr: self
                .otlp_grpc_addr
                .or(file.otlp_grpc_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4317")),
            otlp_http_addr: self
                .otlp_http_addr
                .or(file.otlp_http_addr)
                .unwrap_or_else(|| addr("127.0.0.1:4318")),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(16 << 20),
            correlation_keys: self
                .correlation_keys
                .or(file.correlation_keys)
                .unwrap_or_else(|| {
                    DEFAULT_CORRELATION_KEYS
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                }),
            wal_sync: self
                .wal_sync
                .or(file.wal_sync)
                .unwrap_or(SyncPolicy::Always),
            flush_rows: self
                .flush_rows
                .or(file.flush_rows)
                .unwrap_or(100_000)
                .max(1),
            flush_bytes: self
                .flush_bytes
                .or(file.flush_bytes)
                .unwrap_or(64 << 20)
                .max(1),
            flush_age: Duration::from_millis(
                self.flush_age_ms.or(file.flush_age_ms).unwrap_or(10_000),
            ),
            row_group_rows: self
                .row_group_rows
                .or(file.row_group_rows)
                .unwrap_or(16_384)
                .max(1),
            inflight_bytes: self
                .inflight_bytes
                .or(file.inflight_bytes)
                .unwrap_or(256 << 20),
            disk_budget_bytes: self
                .disk_budget_bytes
                .or(file.disk_budget_bytes)
                .unwrap_or(0),
            max_rss_bytes: self.max_rss_bytes.or(file.max_rss_bytes).unwrap_or(0),
            max_query_range: Some(self.max_query_days.or(file.max_query_days).unwrap_or(31))
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d * 24 * 3600)),
            max_query_rows: self
                .max_query_rows
                .or(file.max_query_rows)
                .unwrap_or(crate::query::DEFAULT_MAX_QUERY_ROWS)
                .max(1),
            insecure: self.insecure || file.insecure,
            tls: match (
                self.tls_cert.or(file.tls_cert),
                self.tls_key.or(file.tls_key),
                self.tls_client_ca.or(file.tls_client_ca),
            ) {
                (Some(cert), Some(key), client_ca) => Some(crate::tls::TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                (None, None, None) => None,
                _ => anyhow::bail!(
                    "TLS needs both --tls-cert and --tls-key (and --tls-client-ca only with them)"
                ),
            },
            api_key_header: self
                .api_key_header
                .or(file.api_key_header)
                .unwrap_or_else(|| "authorization".into())
                .to_ascii_lowercase(),
            compaction_interval: Duration::from_secs(
                self.compaction_interval_secs
                    .or(file.compaction_interval_secs)
                    .unwrap_or(300)
                    .max(1),
            ),
            retention: crate::retention::RetentionPolicy {
                traces: hours(
                    self.retention_hours_traces
                        .or(file.retention_hours_traces)
                        .unwrap_or(168),
                ),
                logs: hours(
                    self.retention_hours_logs
                        .or(file.retention_hours_logs)
                        .unwrap_or(168),
                ),
                metrics: hours(
                    self.retention_hours_metrics
                        .or(file.retention_hours_metrics)
                        .unwrap_or(720),
                ),
                max_store_bytes: Some(self.max_store_bytes.or(file.max_store_bytes).unwrap_or(0))
                    .filter(|b| *b > 0),
            },
            instance_down_after: Duration::from_secs(
                self.instance_down_after_secs
                    .or(file.instance_down_after_secs)
                    .unwrap_or(120),
            ),
            demo: self.demo,
        })
    }
}

/// `0` hours means "keep forever".
fn hours(h: u64) -> Option<Duration> {
    (h > 0).then(|| Duration::from_secs(h * 3600))
}

fn load_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "flush_rows = 5\nhttp_addr = \"127.0.0.1:9999\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            flush_rows: Some(7),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.flush_rows, 7);
        assert_eq!(c.http_addr.port(), 9999);
        assert_eq!(c.otlp_grpc_addr.port(), 4317);
        assert_eq!(c.wal_sync, SyncPolicy::Always);
    }
}
