//! Starting and stopping a server: recovery, the write path, and the three listeners.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServeConfig;
use crate::index::BlockIndex;
use crate::ingest::{self, CorrelationKeys, Receiver};
use crate::pipeline::{LiveData, Pipeline, PipelineConfig};
use crate::query::QueryEngine;
use crate::store::Store;
use crate::wal::Wal;

/// Serves `app` on `listener`, over TLS when a configuration is given, until `shutdown`.
fn serve_http(
    listener: TcpListener,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<futures::future::BoxFuture<'static, std::io::Result<()>>> {
    use std::future::IntoFuture;
    Ok(match tls {
        None => Box::pin(
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .into_future(),
        ),
        Some(config) => Box::pin(
            axum::serve(crate::tls::TlsListener::new(listener, config)?, app)
                .with_graceful_shutdown(shutdown)
                .into_future(),
        ),
    })
}

/// Without authentication anyone who reaches a port can read or write everything, so the
/// server only listens on loopback addresses unless `--insecure` says otherwise (and then
/// warns). The OTLP ports may listen publicly once ingest needs API keys, the UI/API once
/// logins are required (some user exists).
fn check_exposure(config: &ServeConfig, ingest_keys: bool, users: bool) -> anyhow::Result<()> {
    let public: Vec<String> = [
        ("UI/API", config.http_addr, users),
        ("OTLP/gRPC", config.otlp_grpc_addr, ingest_keys),
        ("OTLP/HTTP", config.otlp_http_addr, ingest_keys),
    ]
    .iter()
    .filter(|(_, a, protected)| !a.ip().is_loopback() && !protected)
    .map(|(what, a, _)| format!("{what} on {a}"))
    .collect();
    if public.is_empty() {
        return Ok(());
    }
    if !config.insecure {
        anyhow::bail!(
            "refusing to listen on a non-loopback address without authentication ({}); \
             bind to 127.0.0.1, or pass --insecure to accept that anyone who can reach these \
             ports can read and write all data",
            public.join(", ")
        );
    }
    tracing::warn!(
        "INSECURE: listening without authentication on {}; anyone who can reach these ports \
         can read and write all data",
        public.join(", ")
    );
    Ok(())
}

/// The addresses a started server actually listens on (ports may have been picked by the OS).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    /// Whether the listeners speak TLS.
    pub tls: bool,
    pub http: SocketAddr,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
}

/// Runs the server until `shutdown` resolves, then stops accepting, flushes every
/// acknowledged row to Parquet and returns. `on_ready` is called once all listeners are up.
pub async fn run(
    config: ServeConfig,
    on_ready: impl FnOnce(BoundAddrs),
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("could not create data dir {}", data.display()))?;
    let notebook = crate::notebook::Notebook::open(data).await?;
    let ingest_auth =
        crate::ingest::auth::IngestAuth::start(notebook.meta.clone(), &config.api_key_header)
            .await?;
    let access = crate::access::Access::start(
        notebook.meta.clone(),
        notebook.form_token.clone(),
        config.tls.is_some(),
    )
    .await?;
    let ui_tls = config
        .tls
        .as_ref()
        .map(|f| crate::tls::server_config(f, false))
        .transpose()?;
    let ingest_tls = config
        .tls
        .as_ref()
        .map(|f| crate::tls::server_config(f, true))
        .transpose()?;
    let grpc_tls = config
        .tls
        .as_ref()
        .map(crate::tls::grpc_config)
        .transpose()?;
    check_exposure(&config, ingest_auth.enforced(), access.enforced())?;
    upgrade_indexes(data).await?;
    let index = Arc::new(
        BlockIndex::open(&data.join("index"))
            .with_context(|| format!("could not open index in {}", data.display()))?,
    );
    let store = Store::open_local(&data.join("store"), config.row_group_rows)
        .with_context(|| format!("could not open store in {}", data.display()))?;
    remove_uncommitted_files(&store, &index, &data.join("wal")).await?;

    let live = Arc::new(LiveData::default());
    for seen in index.all_instances()? {
        live.write().services.observe_seen(&seen);
    }
    let keys = CorrelationKeys::new(config.correlation_keys.clone());
    let wal_dir = data.join("wal");
    let (wal, replayed) = Wal::open(&wal_dir, config.wal_sync, index.wal_flushed_through()?)
        .with_context(|| format!("could not open WAL in {}", wal_dir.display()))?;
    let replayed_count = replayed.len();
    for record in replayed {
        let inserted = ingest::export_from_payload(record.signal, &record.payload, &keys)
            .map(|export| live.write().insert(export));
        // The checksum matched, so these are bytes we wrote: only a bug gets here.
        if let Err(e) = inserted {
            tracing::error!("skipping undecodable WAL record: {e}");
        }
    }
    if replayed_count > 0 {
        tracing::info!(records = replayed_count, "replayed the write-ahead log");
        let t = crate::telemetry::get();
        let live = live.read();
        t.memtable_rows.set(live.active.rows() as i64);
        t.memtable_bytes.set(live.active.bytes() as i64);
    }

    let (pipeline, threads) = Pipeline::start(
        PipelineConfig {
            flush_rows: config.flush_rows,
            flush_bytes: config.flush_bytes,
            flush_age: config.flush_age,
            inflight_bytes: config.inflight_bytes,
            disk_budget_bytes: config.disk_budget_bytes,
            max_rss_bytes: config.max_rss_bytes,
        },
        wal,
        wal_dir,
        data.clone(),
        live.clone(),
        store.clone(),
        index.clone(),
    )?;
    let receiver = Receiver::new(pipeline, keys, ingest_auth);
    let (corrupt_files, reports) = crate::query::CorruptFileReports::channel();
    tokio::spawn(crate::quarantine::run(
        reports,
        store.clone(),
        index.clone(),
    ));
    if config.retention.is_active() {
        tokio::spawn(retention_loop(
            store.clone(),
            index.clone(),
            config.retention,
        ));
    }
    spawn_low_priority(
        "compaction",
        compaction_loop(
            store.clone(),
            index.clone(),
            config.compaction_interval,
            crate::compaction::Scope::Records,
        ),
    )?;
    spawn_low_priority(
        "rollup-compact",
        compaction_loop(
            store.clone(),
            index.clone(),
            config
                .compaction_interval
                .min(crate::compaction::ROLLUP_EVERY),
            crate::compaction::Scope::Rollups,
        ),
    )?;
    if config.demo {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        match crate::demo::load(&receiver, data, now).await? {
            crate::demo::Loaded::Now { .. } => tracing::info!("loaded the demo scenario"),
            crate::demo::Loaded::Already => {
                tracing::info!("demo scenario already in this data dir")
            }
        }
    }
    let engine = QueryEngine::new(live, index, store)
        .with_down_after(config.instance_down_after.as_nanos() as i64)
        .with_max_range(config.max_query_range)
        .with_corrupt_file_reports(corrupt_files);

    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("could not listen for {what} on {addr}"))
    };
    let http_listener = bind(config.http_addr, "the UI/API").await?;
    let grpc_listener = bind(config.otlp_grpc_addr, "OTLP/gRPC").await?;
    let otlp_http_listener = bind(config.otlp_http_addr, "OTLP/HTTP").await?;
    let addrs = BoundAddrs {
        tls: config.tls.is_some(),
        http: http_listener.local_addr()?,
        otlp_grpc: grpc_listener.local_addr()?,
        otlp_http: otlp_http_listener.local_addr()?,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let data_dir = data.clone();
    let app = crate::api::router(engine.clone(), notebook.clone())
        .merge(crate::compat::jaeger::router(engine.clone()))
        .merge(crate::compat::prometheus::router(engine.clone()))
        .merge(crate::compat::loki::router(engine.clone()))
        .merge(crate::api::grpc::router(engine.clone())?)
        .merge(crate::web::router(engine, notebook))
        .route(
            "/metrics",
            axum::routing::get(|| async { crate::telemetry::render() }),
        )
        .route(
            "/readyz",
            axum::routing::get(move || readyz(data_dir.clone())),
        )
        .merge(access.router())
        .layer(axum::middleware::from_fn_with_state(
            access.clone(),
            crate::access::guard,
        ))
        .layer(axum::middleware::from_fn(crate::hardening::guard));
    let api = serve_http(http_listener, ui_tls, app, stopped())?;
    let otlp_http = serve_http(
        otlp_http_listener,
        ingest_tls,
        ingest::http::router(receiver.clone(), config.max_body_bytes),
        stopped(),
    )?;
    let grpc = ingest::grpc::serve(
        grpc_listener,
        receiver,
        config.max_body_bytes,
        grpc_tls,
        stopped(),
    );
    let servers = tokio::spawn(async move {
        let (a, b, c) = tokio::join!(
            async { api.await.context("UI/API server") },
            async { otlp_http.await.context("OTLP/HTTP server") },
            async { grpc.await.context("OTLP/gRPC server") },
        );
        a.and(b).and(c)
    });
    on_ready(addrs);

    shutdown.await;
    tracing::info!("shutting down: no new exports; flushing buffered data");
    let _ = stop_tx.send(true);
    // Connections get a few seconds to finish their requests; one that does not (a client
    // that never reads its answer) must not keep the process from exiting.
    let mut servers = servers;
    let served = match tokio::time::timeout(SHUTDOWN_DRAIN_LIMIT, &mut servers).await {
        Ok(joined) => joined.context("server task panicked")?,
        Err(_) => {
            tracing::warn!("connections still open after the drain limit; closing them");
            servers.abort();
            Ok(())
        }
    };
    // Every Receiver (and so every Pipeline handle) is gone with the servers: the writer
    // sees its queue close, freezes the rest, and the flusher stores it. If that takes too
    // long, stop anyway: everything acknowledged is in the WAL and is replayed on start.
    let joined = tokio::task::spawn_blocking(move || threads.join());
    if tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, joined)
        .await
        .is_err()
    {
        tracing::warn!("final flush did not finish in time; the WAL will be replayed on start");
    }
    served
}

/// How often retention runs in the background.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Applies the retention policy at start and then every minute.
async fn retention_loop(
    store: Store,
    index: Arc<BlockIndex>,
    policy: crate::retention::RetentionPolicy,
) {
    loop {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if let Err(e) = crate::retention::sweep(&store, &index, &policy, now).await {
            tracing::error!("retention pass failed: {e:#}");
        }
        tokio::time::sleep(RETENTION_EVERY).await;
    }
}

/// Merges the small files of `scope` every `every` (the first pass one interval after start).
async fn compaction_loop(
    store: Store,
    index: Arc<BlockIndex>,
    every: std::time::Duration,
    scope: crate::compaction::Scope,
) {
    // Longer than the request time limit, so no query still reads a swapped-out file.
    let mut retired = crate::compaction::Retired::with_grace(crate::hardening::REQUEST_TIMEOUT * 3);
    loop {
        tokio::time::sleep(every).await;
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
) -> anyhow::Result<()> {
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
        .with_context(|| format!("starting the {name} thread"))?;
    Ok(())
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

/// Longest a graceful shutdown waits for open connections to finish their requests.
const SHUTDOWN_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(4);

/// Longest a graceful shutdown waits for the final flush (a full memtable of 200 000 spans
/// takes about 8 s on 2 cores); under the 30 s most service managers allow before SIGKILL.
const SHUTDOWN_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Ready when the WAL is replayed (it is, once the listeners answer) and the data dir takes
/// writes.
async fn readyz(data_dir: std::path::PathBuf) -> (axum::http::StatusCode, String) {
    let probe = data_dir.join(".readyz");
    match std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => (axum::http::StatusCode::OK, "ready".into()),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("data dir {} is not writable: {e}", data_dir.display()),
        ),
    }
}

/// Parquet files the index never committed are leftovers of a crash mid-flush: their rows
/// are still in the WAL and are flushed again, so the files would only duplicate them.
async fn remove_uncommitted_files(
    store: &Store,
    index: &BlockIndex,
    wal_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let committed = index.all_paths()?;
    let files = store.list_files().await?;
    // Leftovers of a crashed flush always have their rows still in the WAL (segments are
    // deleted only after the index commit). Files with an empty index and an empty WAL mean
    // the index was lost: never delete data for that.
    let wal_has_data = std::fs::read_dir(wal_dir)
        .map(|d| d.flatten().any(|e| e.metadata().is_ok_and(|m| m.len() > 0)))
        .unwrap_or(false);
    if committed.is_empty() && !files.is_empty() && !wal_has_data {
        anyhow::bail!(
            "the index is empty but the store holds {} Parquet files; run `sightline reindex --data-dir …` first",
            files.len()
        );
    }
    for path in files {
        if !committed.contains(&path) {
            tracing::warn!(file = %path, "removing Parquet file not committed to the index (crash leftover)");
            store.delete(&path).await?;
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives right after the server said "ready"
/// must start a graceful shutdown, not kill the process with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {},
                _ = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Rebuilds, from their Parquet files, the block indexes an earlier version wrote with other
/// fields: the data dir's own and those of pinned evidence.
async fn upgrade_indexes(data: &std::path::Path) -> anyhow::Result<()> {
    crate::reindex::upgrade_if_needed(data)
        .await
        .with_context(|| format!("could not rebuild the index in {}", data.display()))?;
    if let Ok(entries) = std::fs::read_dir(data.join("evidence")) {
        for entry in entries.flatten() {
            crate::reindex::upgrade_if_needed(&entry.path())
                .await
                .with_context(|| format!("could not rebuild {}", entry.path().display()))?;
        }
    }
    Ok(())
}
