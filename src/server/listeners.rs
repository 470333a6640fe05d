//! The three listeners — UI/API, OTLP/HTTP, OTLP/gRPC — bound before anything is announced
//! and served until the stop token is cancelled, over TLS when configured.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig as TlsConfig;
use tokio_util::sync::CancellationToken;

use crate::access::ClientAddr;
use crate::config::ServeConfig;
use crate::ingest::{self, Receiver};

/// The addresses a started server actually listens on (ports may have been picked by the OS).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    /// Whether the listeners speak TLS.
    pub tls: bool,
    pub http: SocketAddr,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
}

/// TLS settings of each listener (all `None` without `--tls-cert`).
pub struct ListenerTls {
    ui: Option<Arc<TlsConfig>>,
    ingest: Option<Arc<TlsConfig>>,
    grpc: Option<tonic::transport::ServerTlsConfig>,
}

impl ListenerTls {
    /// Reads the certificate files once for all three listeners.
    pub fn of(config: &ServeConfig) -> anyhow::Result<ListenerTls> {
        let Some(files) = config.tls.as_ref() else {
            return Ok(ListenerTls {
                ui: None,
                ingest: None,
                grpc: None,
            });
        };
        Ok(ListenerTls {
            ui: Some(crate::tls::server_config(files, false)?),
            ingest: Some(crate::tls::server_config(files, true)?),
            grpc: Some(crate::tls::grpc_config(files)?),
        })
    }
}

/// The bound listeners, not yet serving.
pub struct Listeners {
    http: TcpListener,
    otlp_grpc: TcpListener,
    otlp_http: TcpListener,
    pub addrs: BoundAddrs,
}

impl Listeners {
    /// Binds the three addresses of `config`.
    pub async fn bind(config: &ServeConfig) -> anyhow::Result<Listeners> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("could not listen for {what} on {addr}"))
        };
        let http = bind(config.http_addr, "the UI/API").await?;
        let otlp_grpc = bind(config.otlp_grpc_addr, "OTLP/gRPC").await?;
        let otlp_http = bind(config.otlp_http_addr, "OTLP/HTTP").await?;
        let addrs = BoundAddrs {
            tls: config.tls.is_some(),
            http: http.local_addr()?,
            otlp_grpc: otlp_grpc.local_addr()?,
            otlp_http: otlp_http.local_addr()?,
        };
        Ok(Listeners {
            http,
            otlp_grpc,
            otlp_http,
            addrs,
        })
    }

    /// Serves `app` on the UI/API port and `receiver` on both OTLP ports until `stop`; the
    /// task ends once all three have drained. Without a receiver (a cluster node without the
    /// ingest role) the OTLP ports are closed again.
    pub fn serve(
        self,
        tls: ListenerTls,
        app: axum::Router,
        receiver: Option<Receiver>,
        max_body_bytes: usize,
        stop: &CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
        let stopped = || stop.clone().cancelled_owned();
        let api = serve_http(self.http, tls.ui, app, stopped())?;
        let Some(receiver) = receiver else {
            return Ok(tokio::spawn(
                async move { api.await.context("UI/API server") },
            ));
        };
        let otlp_http = serve_http(
            self.otlp_http,
            tls.ingest,
            ingest::http::router(receiver.clone(), max_body_bytes),
            stopped(),
        )?;
        let grpc = ingest::grpc::serve(
            self.otlp_grpc,
            receiver,
            max_body_bytes,
            tls.grpc,
            stopped(),
        );
        Ok(tokio::spawn(async move {
            let (a, b, c) = tokio::join!(
                async { api.await.context("UI/API server") },
                async { otlp_http.await.context("OTLP/HTTP server") },
                async { grpc.await.context("OTLP/gRPC server") },
            );
            a.and(b).and(c)
        }))
    }
}

/// Serves `app` on `listener`, over TLS when a configuration is given, until `shutdown`.
fn serve_http(
    listener: TcpListener,
    tls: Option<Arc<TlsConfig>>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<futures::future::BoxFuture<'static, std::io::Result<()>>> {
    use std::future::IntoFuture;
    // Handlers and the login guard see the peer's address (`ConnectInfo<ClientAddr>`).
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    Ok(match tls {
        None => Box::pin(
            axum::serve(crate::tls::NoDelayListener(listener), app)
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

impl Connected<IncomingStream<'_, crate::tls::NoDelayListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::NoDelayListener>) -> ClientAddr {
        ClientAddr(stream.remote_addr().ip())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> ClientAddr {
        ClientAddr(stream.remote_addr().ip())
    }
}
