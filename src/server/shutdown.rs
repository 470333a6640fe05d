//! Stopping: the signal that starts it, and the order it goes in — listeners stop taking
//! work, open requests drain, maintenance loops end between passes, the last memtables flush —
//! each step bounded so a stuck client or a long merge cannot keep the process alive.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::maintenance::Maintenance;
use crate::pipeline::PipelineThreads;

/// Longest a graceful shutdown waits for open connections to finish their requests.
const SHUTDOWN_DRAIN_LIMIT: Duration = Duration::from_secs(4);

/// Longest a graceful shutdown waits for the final flush (a full memtable of 200 000 spans
/// takes about 8 s on 2 cores); under the 30 s most service managers allow before SIGKILL.
const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(15);

/// Stops the server: `stop` tells listeners and loops to end, `servers` are the listeners'
/// task, `threads` the writer and flusher (they finish once the last receiver is gone).
pub async fn stop_all(
    stop: CancellationToken,
    mut servers: tokio::task::JoinHandle<anyhow::Result<()>>,
    maintenance: Maintenance,
    threads: PipelineThreads,
) -> anyhow::Result<()> {
    tracing::info!("shutting down: no new exports; flushing buffered data");
    stop.cancel();
    // Connections get a few seconds to finish their requests; one that does not (a client
    // that never reads its answer) must not keep the process from exiting.
    let served = match tokio::time::timeout(SHUTDOWN_DRAIN_LIMIT, &mut servers).await {
        Ok(joined) => joined.context("server task panicked")?,
        Err(_) => {
            tracing::warn!("connections still open after the drain limit; closing them");
            servers.abort();
            Ok(())
        }
    };
    maintenance.stopped().await;
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
