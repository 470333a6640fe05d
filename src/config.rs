//! Server settings from flags, `SIGHTLINE_…` environment variables and an optional TOML file.
//! Precedence: flag, then environment, then file, then the built-in default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::providers::Serialized;
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::ingest::correlation::DEFAULT_CORRELATION_KEYS;
use crate::wal::SyncPolicy;

/// `serve` options as given; every field is optional so that unset ones fall through to the
/// file and then to the defaults. The TOML file uses the same names with underscores.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flag names, with underscores).
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Folder for the WAL, Parquet files and index [default: ./sightline-data].
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Address of the web UI and query API [default: 127.0.0.1:8080]; port 0 picks a free one.
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// Address of the OTLP/gRPC receiver [default: 127.0.0.1:4317].
    #[arg(long, env = "SIGHTLINE_OTLP_GRPC_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// Address of the OTLP/HTTP receiver [default: 127.0.0.1:4318].
    #[arg(long, env = "SIGHTLINE_OTLP_HTTP_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_http_addr: Option<SocketAddr>,
    /// Largest accepted OTLP request body or message, before and after gzip [default: 16 MiB].
    #[arg(long, env = "SIGHTLINE_MAX_BODY_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Attribute keys holding a correlation id, first match wins, comma-separated
    /// [default: correlation_id,correlation.id,request_id,request.id,x-request-id,x-correlation-id].
    #[arg(long, env = "SIGHTLINE_CORRELATION_KEYS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_keys: Option<Vec<String>>,
    /// When WAL appends reach the disk: `always` fsyncs before every acknowledgement;
    /// `never` survives a process crash but not a power loss [default: always].
    #[arg(long, env = "SIGHTLINE_WAL_SYNC", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_sync: Option<SyncPolicy>,
    /// Flush in-memory rows to Parquet when this many are buffered [default: 100000].
    #[arg(long, env = "SIGHTLINE_FLUSH_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_rows: Option<usize>,
    /// …or when they hold this many bytes of Arrow buffers [default: 67108864 (64 MiB)].
    #[arg(long, env = "SIGHTLINE_FLUSH_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_bytes: Option<usize>,
    /// …or when the oldest buffered row is this many milliseconds old [default: 10000].
    #[arg(long, env = "SIGHTLINE_FLUSH_AGE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_age_ms: Option<u64>,
    /// Keep the Parquet files in an S3 bucket instead of the data dir: `s3://bucket/prefix`
    /// (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; the WAL, the index and
    /// meta.sqlite stay in the data dir) [default: none, files in <data-dir>/store].
    #[arg(long, env = "SIGHTLINE_OBJECT_STORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store: Option<String>,
    /// Endpoint of an S3-compatible server for `--object-store`, e.g. `http://127.0.0.1:9000`
    /// (`http://` allows plain HTTP) [default: AWS].
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store_endpoint: Option<String>,
    /// PEM certificates the `--object-store` endpoint's TLS may chain to, besides the
    /// system's roots (a private CA) [default: none].
    #[arg(long, env = "AWS_CA_BUNDLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store_ca_bundle: Option<PathBuf>,
    /// Region of the `--object-store` bucket [default: us-east-1].
    #[arg(long, env = "AWS_REGION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store_region: Option<String>,
    /// Bytes of `--object-store` reads kept on local disk (`<data-dir>/read-cache`, least
    /// recently used dropped first, kept across restarts; 0 = none) [default: 1073741824].
    #[arg(long, env = "SIGHTLINE_READ_CACHE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_cache_bytes: Option<u64>,
    /// Cluster mode: the NATS JetStream queue in front of indexing, `nats://host:4222`
    /// (needs `--metastore` and `--object-store`; see docs/deployment.md) [default: none,
    /// the single binary].
    #[arg(long, env = "SIGHTLINE_QUEUE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The JetStream stream (and subject prefix) of the queue [default: sightline].
    #[arg(long, env = "SIGHTLINE_QUEUE_STREAM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_stream: Option<String>,
    /// Replicas of the queue's stream when it is created (3 on a NATS cluster) [default: 1].
    #[arg(long, env = "SIGHTLINE_QUEUE_REPLICAS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_replicas: Option<usize>,
    /// Bytes of not yet indexed exports the stream may hold before ingest refuses exports as
    /// retryable [default: 10737418240].
    #[arg(long, env = "SIGHTLINE_QUEUE_MAX_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_max_bytes: Option<i64>,
    /// Seconds an index node may hold a message before it is given to another node; also
    /// how long a dead index node's exports wait to be taken over [default: 30].
    #[arg(long, env = "SIGHTLINE_QUEUE_ACK_WAIT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_ack_wait_secs: Option<u64>,
    /// Cluster mode: the PostgreSQL holding the catalog of files and the metadata every node
    /// shares (views, post-mortems, users, keys, alert rules), `postgres://user@host/db` (a
    /// `search_path` in `options` selects, and creates, a schema) [default: none].
    #[arg(long, env = "SIGHTLINE_METASTORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metastore: Option<String>,
    /// Cluster mode: what this node does, any of `ingest,index,query` [default: all three].
    #[arg(long, env = "SIGHTLINE_ROLES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Rows per Parquet row group, which is also the unit the index points at [default: 16384].
    #[arg(long, env = "SIGHTLINE_ROW_GROUP_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group_rows: Option<usize>,
    /// Bytes of requests allowed to wait for the WAL before exports are refused as
    /// retryable [default: 268435456].
    #[arg(long, env = "SIGHTLINE_INFLIGHT_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflight_bytes: Option<usize>,
    /// Hours to keep spans (0 = forever) [default: 168].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_TRACES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_hours_traces: Option<u64>,
    /// Hours to keep log records (0 = forever) [default: 168].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_LOGS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_hours_logs: Option<u64>,
    /// Hours to keep metric points (0 = forever) [default: 720].
    #[arg(long, env = "SIGHTLINE_RETENTION_HOURS_METRICS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_hours_metrics: Option<u64>,
    /// Seconds between retention passes [default: 60].
    #[arg(long, env = "SIGHTLINE_RETENTION_EVERY_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_every_secs: Option<u64>,
    /// Total Parquet bytes to keep; the oldest hour partitions go first (0 = no cap)
    /// [default: 0].
    #[arg(long, env = "SIGHTLINE_MAX_STORE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_store_bytes: Option<u64>,
    /// Seconds between compaction passes over span, log and metric files [default: 300].
    /// Rollup files are merged every 30 s (or at this interval if it is shorter).
    #[arg(long, env = "SIGHTLINE_COMPACTION_INTERVAL_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction_interval_secs: Option<u64>,
    /// Largest size of the data dir in bytes; beyond it exports are refused as retryable
    /// until space returns (0 = no budget) [default: 0].
    #[arg(long, env = "SIGHTLINE_DISK_BUDGET_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_budget_bytes: Option<u64>,
    /// Resident memory (bytes) at which exports are refused as retryable until flushing
    /// brings it down (0 = no limit) [default: 0].
    #[arg(long, env = "SIGHTLINE_MAX_RSS_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rss_bytes: Option<u64>,
    /// Longest time range one query may cover, in days (0 = no limit) [default: 31].
    #[arg(long, env = "SIGHTLINE_MAX_QUERY_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_days: Option<u64>,
    /// Most records one query may gather in memory before it is refused (HTTP 413, gRPC
    /// `RESOURCE_EXHAUSTED`, the limit named) [default: 1000000].
    #[arg(long, env = "SIGHTLINE_MAX_QUERY_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_query_rows: Option<usize>,
    /// PEM certificate chain: with `--tls-key`, every listener speaks TLS.
    #[arg(long, env = "SIGHTLINE_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "SIGHTLINE_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: OTLP clients must present a certificate signed by one of them.
    #[arg(long, env = "SIGHTLINE_TLS_CLIENT_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// Header OTLP clients send their API key in; `authorization` means
    /// `Authorization: Bearer <key>` [default: authorization].
    #[arg(long, env = "SIGHTLINE_API_KEY_HEADER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// Listen on non-loopback addresses although no authentication is configured (anyone who
    /// can reach the ports can read and write everything).
    #[arg(long, env = "SIGHTLINE_INSECURE")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Seconds without any data after which an instance is shown as down [default: 120].
    #[arg(long, env = "SIGHTLINE_INSTANCE_DOWN_AFTER_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_down_after_secs: Option<u64>,
    /// Seconds between evaluations of the alert rules [default: 15].
    #[arg(long, env = "SIGHTLINE_ALERT_EVAL_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_eval_secs: Option<u64>,
    /// Seconds between repeated notifications of an alert that keeps firing [default: 14400].
    #[arg(long, env = "SIGHTLINE_ALERT_REPEAT_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_repeat_secs: Option<u64>,
    /// Alert rules to load at start (TOML `[[rules]]` tables, or YAML with a `rules:` list when
    /// the name ends in .yaml/.yml, with the API's fields); a rule
    /// of the file replaces a stored rule of the same name. A bad rule stops the start,
    /// naming the rule and the field.
    #[arg(long, env = "SIGHTLINE_ALERT_RULES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_rules: Option<PathBuf>,
    /// SMTP server for email alert receivers: `smtp://[user:pass@]host:port` (add
    /// `?tls=required` for STARTTLS) or `smtps://host:port`. Without it, rules with an email
    /// receiver are refused.
    #[arg(long, env = "SIGHTLINE_SMTP_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// `From:` of alert mail [default: Sightline <sightline@localhost>].
    #[arg(long, env = "SIGHTLINE_SMTP_FROM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    /// This server's address as notifications link to it [default: http://HTTP_ADDR].
    #[arg(long, env = "SIGHTLINE_EXTERNAL_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Load the demo scenario (an hour of a small shop with an incident, ending now) into
    /// the data dir, once, and keep its traffic going in real time.
    #[arg(long, env = "SIGHTLINE_DEMO")]
    #[serde(skip)]
    pub demo: bool,
    /// Minutes between replays of the demo's incident in its live traffic (at least 30; the
    /// last 25 minutes of each cycle are the canary deploy, the incident and the recovery).
    #[arg(
        long,
        env = "SIGHTLINE_DEMO_INCIDENT_EVERY",
        default_value_t = 60,
        requires = "demo"
    )]
    #[serde(skip)]
    pub demo_incident_every: u64,
    /// Load the demo's recorded hour only, with no live traffic after it (the data stays the
    /// same from one run to the next: for screenshots and tests).
    #[arg(long, env = "SIGHTLINE_DEMO_FROZEN", requires = "demo")]
    #[serde(skip)]
    pub demo_frozen: bool,
}

/// What `--demo` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoMode {
    /// The recorded hour only.
    Frozen,
    /// The recorded hour, then live traffic in cycles.
    Live(crate::demo::live::Cycle),
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
    /// Where the Parquet files live (`<data_dir>/store` unless `--object-store`).
    pub store: crate::store::StoreLocation,
    /// Cluster mode (`--queue` and `--metastore`); `None` for the single binary.
    pub cluster: Option<crate::cluster::ClusterSettings>,
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
    pub alerting: crate::alerting::AlertSettings,
    /// `None` = no demo.
    pub demo: Option<DemoMode>,
}

/// Every setting with its built-in default, as the layers are merged (flag names with
/// underscores; the TOML file uses the same keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    data_dir: PathBuf,
    http_addr: SocketAddr,
    otlp_grpc_addr: SocketAddr,
    otlp_http_addr: SocketAddr,
    max_body_bytes: usize,
    correlation_keys: Vec<String>,
    wal_sync: SyncPolicy,
    flush_rows: usize,
    flush_bytes: usize,
    flush_age_ms: u64,
    row_group_rows: usize,
    object_store: Option<String>,
    object_store_endpoint: Option<String>,
    object_store_region: Option<String>,
    object_store_ca_bundle: Option<PathBuf>,
    read_cache_bytes: u64,
    queue: Option<String>,
    queue_stream: String,
    queue_replicas: usize,
    queue_max_bytes: i64,
    queue_ack_wait_secs: u64,
    metastore: Option<String>,
    roles: Option<Vec<String>>,
    inflight_bytes: usize,
    retention_hours_traces: u64,
    retention_hours_logs: u64,
    retention_hours_metrics: u64,
    max_store_bytes: u64,
    compaction_interval_secs: u64,
    retention_every_secs: u64,
    disk_budget_bytes: u64,
    max_rss_bytes: u64,
    max_query_days: u64,
    max_query_rows: usize,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    api_key_header: String,
    insecure: bool,
    instance_down_after_secs: u64,
    alert_eval_secs: u64,
    alert_repeat_secs: u64,
    alert_rules: Option<PathBuf>,
    smtp_url: Option<String>,
    smtp_from: String,
    external_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Settings {
            data_dir: "sightline-data".into(),
            http_addr: addr(8080),
            otlp_grpc_addr: addr(4317),
            otlp_http_addr: addr(4318),
            max_body_bytes: 16 << 20,
            correlation_keys: DEFAULT_CORRELATION_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            wal_sync: SyncPolicy::Always,
            flush_rows: 100_000,
            flush_bytes: 64 << 20,
            flush_age_ms: 10_000,
            row_group_rows: 16_384,
            object_store: None,
            object_store_endpoint: None,
            object_store_region: None,
            object_store_ca_bundle: None,
            read_cache_bytes: 1 << 30,
            queue: None,
            queue_stream: "sightline".into(),
            queue_replicas: 1,
            queue_max_bytes: 10 << 30,
            queue_ack_wait_secs: 30,
            metastore: None,
            roles: None,
            inflight_bytes: 256 << 20,
            retention_hours_traces: 168,
            retention_hours_logs: 168,
            retention_hours_metrics: 720,
            max_store_bytes: 0,
            compaction_interval_secs: 300,
            retention_every_secs: 60,
            disk_budget_bytes: 0,
            max_rss_bytes: 0,
            max_query_days: 31,
            max_query_rows: crate::query::DEFAULT_MAX_QUERY_ROWS,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            api_key_header: "authorization".into(),
            insecure: false,
            instance_down_after_secs: 120,
            alert_eval_secs: 15,
            alert_repeat_secs: 14_400,
            alert_rules: None,
            smtp_url: None,
            smtp_from: "Sightline <sightline@localhost>".into(),
            external_url: None,
        }
    }
}

/// Cluster mode's settings, or `None` for the single binary; the three shared services go
/// together.
fn cluster_settings(s: &Settings) -> anyhow::Result<Option<crate::cluster::ClusterSettings>> {
    let roles = match &s.roles {
        Some(names) => crate::cluster::Roles::parse(names).map_err(|e| anyhow::anyhow!(e))?,
        None => crate::cluster::Roles::default(),
    };
    let (queue, metastore) = match (&s.queue, &s.metastore) {
        (None, None) if roles == crate::cluster::Roles::default() => return Ok(None),
        (None, None) => anyhow::bail!(
            "--roles is for cluster mode: it needs --queue, --metastore and --object-store"
        ),
        (Some(queue), Some(metastore)) => (queue, metastore),
        _ => anyhow::bail!(
            "cluster mode needs both --queue (NATS JetStream) and --metastore (PostgreSQL), and --object-store"
        ),
    };
    if s.object_store.is_none() {
        anyhow::bail!(
            "cluster mode needs --object-store: every node reads the files the index nodes write"
        );
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let short = uuid::Uuid::new_v4().simple().to_string();
    Ok(Some(crate::cluster::ClusterSettings {
        roles,
        queue: crate::queue::QueueSettings {
            url: queue.clone(),
            stream: s.queue_stream.clone(),
            replicas: s.queue_replicas,
            max_bytes: s.queue_max_bytes,
            ack_wait: Duration::from_secs(s.queue_ack_wait_secs.max(1)),
        },
        metastore: metastore.clone(),
        node: format!("{}/{}", host.trim(), &short[..8]),
        catalog_poll: Duration::from_secs(1),
    }))
}

impl ServeArgs {
    /// Merges the layers with `figment` — built-in defaults, then the TOML file (if any),
    /// then the flags and `SIGHTLINE_…` variables (which clap has already merged) — and
    /// checks what depends on more than one setting.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let mut layers = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &self.config {
            layers = layers.merge(Serialized::defaults(load_file(path)?));
        }
        let s: Settings = layers
            .merge(Serialized::defaults(&self))
            .extract()
            .map_err(|e| match &self.config {
                Some(path) => anyhow::anyhow!("invalid setting ({}): {e}", path.display()),
                None => anyhow::anyhow!("invalid setting: {e}"),
            })?;
        let store = match &s.object_store {
            None => crate::store::StoreLocation::Local(s.data_dir.join("store")),
            Some(url) => crate::store::StoreLocation::S3(
                crate::store::S3Location {
                    endpoint: s.object_store_endpoint.clone(),
                    region: s.object_store_region.clone(),
                    ca_bundle: s.object_store_ca_bundle.clone(),
                    ..crate::store::S3Location::parse(url).map_err(|e| anyhow::anyhow!(e))?
                },
                crate::store::ReadCacheSettings {
                    dir: s.data_dir.join("read-cache"),
                    max_bytes: s.read_cache_bytes,
                },
            ),
        };
        let cluster = cluster_settings(&s)?;
        Ok(ServeConfig {
            store,
            cluster,
            data_dir: s.data_dir,
            http_addr: s.http_addr,
            otlp_grpc_addr: s.otlp_grpc_addr,
            otlp_http_addr: s.otlp_http_addr,
            max_body_bytes: s.max_body_bytes,
            correlation_keys: s.correlation_keys,
            wal_sync: s.wal_sync,
            flush_rows: s.flush_rows.max(1),
            flush_bytes: s.flush_bytes.max(1),
            flush_age: Duration::from_millis(s.flush_age_ms),
            row_group_rows: s.row_group_rows.max(1),
            inflight_bytes: s.inflight_bytes,
            disk_budget_bytes: s.disk_budget_bytes,
            max_rss_bytes: s.max_rss_bytes,
            max_query_range: Some(s.max_query_days)
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d * 24 * 3600)),
            max_query_rows: s.max_query_rows.max(1),
            insecure: s.insecure,
            tls: match (s.tls_cert, s.tls_key, s.tls_client_ca) {
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
            api_key_header: s.api_key_header.to_ascii_lowercase(),
            compaction_interval: Duration::from_secs(s.compaction_interval_secs.max(1)),
            retention: crate::retention::RetentionPolicy {
                traces: hours(s.retention_hours_traces),
                logs: hours(s.retention_hours_logs),
                metrics: hours(s.retention_hours_metrics),
                max_store_bytes: Some(s.max_store_bytes).filter(|b| *b > 0),
                every: Duration::from_secs(s.retention_every_secs.max(1)),
            },
            instance_down_after: Duration::from_secs(s.instance_down_after_secs),
            alerting: crate::alerting::AlertSettings {
                every: Duration::from_secs(s.alert_eval_secs.max(1)),
                repeat: Duration::from_secs(s.alert_repeat_secs.max(1)),
                rules_file: s.alert_rules.clone(),
                email: s
                    .smtp_url
                    .clone()
                    .map(|url| crate::alerting::email::EmailSettings {
                        url,
                        from: s.smtp_from.clone(),
                    }),
                external_url: s
                    .external_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", s.http_addr)),
            },
            demo: match (self.demo, self.demo_frozen) {
                (false, _) => None,
                (true, true) => Some(DemoMode::Frozen),
                (true, false) => Some(DemoMode::Live(crate::demo::live::Cycle::new(
                    self.demo_incident_every,
                )?)),
            },
        })
    }
}

/// `0` hours means "keep forever".
fn hours(h: u64) -> Option<Duration> {
    (h > 0).then(|| Duration::from_secs(h * 3600))
}

/// The settings a TOML file gives (its keys are checked when the layers are merged).
fn load_file(path: &Path) -> anyhow::Result<toml::Table> {
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

    #[test]
    fn a_file_with_an_unknown_key_or_a_bad_value_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            ServeArgs {
                config: Some(path.clone()),
                ..Default::default()
            }
            .resolve()
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        let unknown = resolve("flush_rowz = 5\n").unwrap_err();
        assert!(unknown.contains("flush_rowz"), "{unknown}");
        let bad = resolve("http_addr = \"nowhere\"\n").unwrap_err();
        assert!(bad.contains("http_addr"), "{bad}");
        assert!(resolve("wal_sync = \"never\"\ninsecure = true\n").is_ok());
    }
}
