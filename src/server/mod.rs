//! Starting and stopping a server, in named parts: refusing unsafe exposure
//! (`exposure.rs`), crash recovery (`recovery.rs`), the write path, maintenance beside it
//! (`maintenance.rs`), the web port's routes (`routes.rs`), the listeners (`listeners.rs`)
//! and an orderly stop (`shutdown.rs`). `run` only says in which order.

mod cluster_node;
mod exposure;
mod listeners;
mod maintenance;
mod recovery;
mod routes;
mod shutdown;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use listeners::BoundAddrs;
pub use shutdown::shutdown_signal;

use crate::config::ServeConfig;
use crate::ingest::{CorrelationKeys, QueueSink, Receiver, Sink};
use crate::pipeline::{Journal, Pipeline, PipelineConfig};
use crate::query::QueryEngine;
use listeners::{ListenerTls, Listeners};
use maintenance::Maintenance;

/// Connections a cluster node keeps to the metastore for the metadata store (beside the
/// catalog's own): enough for logins, edits and alert states side by side.
const META_CONNECTIONS: usize = 4;

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
    let cluster = match &config.cluster {
        Some(settings) => Some(cluster_node::ClusterNode::connect(settings).await?),
        None => None,
    };
    let meta = match &config.cluster {
        // A cluster's nodes share one metadata store: the metastore's PostgreSQL.
        Some(settings) => crate::meta::MetaStore::postgres(
            crate::metastore::connect_pool(&settings.metastore, META_CONNECTIONS).await?,
        )
        .await
        .context("could not open the metadata tables in the metastore")?,
        None => crate::meta::MetaStore::open(data).context("could not open meta.sqlite")?,
    };
    let notebook = crate::notebook::Notebook::open(data, meta.clone()).await?;
    let ingest_auth =
        crate::ingest::auth::IngestAuth::start(meta.clone(), &config.api_key_header).await?;
    let access = crate::access::Access::start(
        meta.clone(),
        notebook.form_token.clone(),
        config.tls.is_some(),
    )
    .await?;
    let tls = ListenerTls::of(&config)?;
    exposure::check_exposure(&config, ingest_auth.enforced(), access.enforced())?;

    let keys = CorrelationKeys::new(config.correlation_keys.clone());
    let recovered = recovery::recover(&config, &keys).await?;
    let journal = match (&cluster, recovered.wal) {
        (Some(node), _) => Journal::Queue(node.journal()),
        (None, Some(wal)) => Journal::Wal {
            wal,
            dir: data.join("wal"),
        },
        (None, None) => anyhow::bail!("the single binary opened no WAL"),
    };
    let (pipeline, threads) = Pipeline::start(
        PipelineConfig {
            flush_rows: config.flush_rows,
            flush_bytes: config.flush_bytes,
            flush_age: config.flush_age,
            inflight_bytes: config.inflight_bytes,
            disk_budget_bytes: config.disk_budget_bytes,
            max_rss_bytes: config.max_rss_bytes,
        },
        journal,
        data.clone(),
        recovered.live.clone(),
        recovered.store.clone(),
        recovered.index.clone(),
    )?;
    let stop = CancellationToken::new();
    let sink = match &cluster {
        Some(node) => Sink::Queue(QueueSink::new(node.queue.clone(), config.inflight_bytes)),
        None => Sink::Pipeline(pipeline.clone()),
    };
    let receiver = Receiver::new(sink, keys.clone(), ingest_auth);
    let maintenance = Maintenance::start(&config, &recovered.store, &recovered.index, &stop)?;
    if let Some(node) = &cluster {
        let parts = (
            recovered.store.clone(),
            recovered.index.clone(),
            recovered.live.clone(),
        );
        node.start_roles(
            pipeline,
            std::sync::Arc::new(keys),
            parts,
            maintenance.corrupt_files.clone(),
            &stop,
        )
        .await?;
    } else {
        // The receiver holds the write path; the writer stops once it is gone.
        drop(pipeline);
    }
    let mut demo_hour = None;
    if let Some(demo) = config.demo {
        demo_hour = load_demo(&receiver, data, demo, &stop).await?;
        ship_demo_rule(&meta).await?;
    }
    let engine = QueryEngine::new(recovered.live, recovered.index, recovered.store)
        .with_down_after(config.instance_down_after.as_nanos() as i64)
        .with_max_range(config.max_query_range)
        .with_max_rows(config.max_query_rows)
        .with_corrupt_file_reports(maintenance.corrupt_files.clone());

    if let Some(file) = &config.alerting.rules_file {
        let loaded = crate::alerting::load_rules_file(&meta, file, &config.alerting).await?;
        tracing::info!(rules = loaded, file = %file.display(), "loaded alert rules");
    }
    let alerting = crate::alerting::Alerting::new(meta, engine.clone(), config.alerting.clone())?;
    let evaluating = alerting.clone();
    let stop_evaluating = stop.clone();
    // Only a node that answers queries sees the data rules are about.
    let querying = config.cluster.as_ref().is_none_or(|c| c.roles.query);
    tokio::spawn(async move {
        if !querying {
            return;
        }
        // The demo's recorded hour is evaluated first, so its incident's alert is in the
        // history at the minute it happened (once, when the hour is loaded).
        if let Some((from, to)) = demo_hour {
            if let Err(e) = evaluating.backfill(from, to).await {
                tracing::warn!("the demo's alert history could not be replayed: {e}");
            }
        }
        evaluating.run(stop_evaluating).await
    });

    let listeners = Listeners::bind(&config).await?;
    let addrs = listeners.addrs;
    let app = routes::app(engine, notebook, alerting, access, data.clone())?;
    let ingesting = config.cluster.as_ref().is_none_or(|c| c.roles.ingest);
    let servers = listeners.serve(
        tls,
        app,
        ingesting.then_some(receiver),
        config.max_body_bytes,
        &stop,
    )?;
    on_ready(addrs);

    shutdown.await;
    shutdown::stop_all(stop, servers, maintenance, threads).await
}

/// Stores the demo's example alert rule unless the data dir has rules of its own.
async fn ship_demo_rule(meta: &crate::meta::MetaStore) -> anyhow::Result<()> {
    if !meta.alert_rules().await?.is_empty() {
        return Ok(());
    }
    let spec: crate::alerting::rule::RuleSpec = serde_json::from_str(crate::demo::EXAMPLE_RULE)?;
    let rule = spec.check(0)?;
    meta.create_alert_rule(&rule.spec.name, serde_json::to_string(&rule.spec)?)
        .await?;
    Ok(())
}

/// Loads the demo scenario, shifted so that it ends now (once per data dir), then keeps its
/// traffic going in real time until `stop` unless the demo is frozen. Returns the recorded
/// hour (Unix ns) when it was loaded now.
async fn load_demo(
    receiver: &Receiver,
    data: &std::path::Path,
    demo: crate::config::DemoMode,
    stop: &CancellationToken,
) -> anyhow::Result<Option<(i64, i64)>> {
    let now = u64::try_from(crate::model::time::now_ns()).unwrap_or(0);
    let loaded = crate::demo::load(receiver, data, now).await?;
    match loaded {
        crate::demo::Loaded::Now { .. } => tracing::info!("loaded the demo scenario"),
        crate::demo::Loaded::Already { .. } => {
            tracing::info!("demo scenario already in this data dir")
        }
    }
    if let crate::config::DemoMode::Live(cycle) = demo {
        let traffic = crate::demo::live::LiveTraffic::new(cycle, loaded.recorded_end(now), now);
        tokio::spawn(crate::demo::live::run(
            receiver.clone(),
            traffic,
            stop.clone(),
        ));
    }
    let end = i64::try_from(loaded.recorded_end(now)).unwrap_or(i64::MAX);
    let hour = crate::demo::scenario::SCENARIO_MINUTES as i64 * 60_000_000_000;
    Ok(matches!(loaded, crate::demo::Loaded::Now { .. }).then_some((end - hour, end)))
}
