//! TLS on every listener from PEM files; OTLP ingest additionally requires a client
//! certificate signed by `--tls-client-ca`, the UI does not.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::otlp::logs;
use common::Server;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn client_config(with_client_cert: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("server.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_client_cert {
        let chain = CertificateDer::pem_file_iter(fixture("client.crt"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        builder
            .with_client_auth_cert(
                chain,
                PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap(),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

/// One HTTP/1.1 request over TLS; the whole response as text, or the TLS/IO error.
async fn https(addr: &str, with_client_cert: bool, request: Vec<u8>) -> Result<String, String> {
    let hostport = addr.rsplit("://").next().unwrap();
    let tcp = tokio::net::TcpStream::connect(hostport)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(with_client_cert));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(&request).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post_logs() -> Vec<u8> {
    let body = logs("tls", "t-1", &["over tls".to_string()]).encode_to_vec();
    let mut request = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend(body);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls_and_ingest_checks_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        fixture("server.crt"),
        fixture("server.key"),
        fixture("client-ca.crt"),
    );
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(server.api.starts_with("https://"), "{}", server.api);

    // The UI/API: TLS, no client certificate needed; plain HTTP gets no answer.
    let answer = https(&server.api, false, get("/healthz")).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
        "{answer}"
    );
    let plain = reqwest::get(server.api.replace("https://", "http://") + "/healthz").await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "plain HTTP must not work"
    );

    // OTLP/HTTP: a client certificate signed by the configured CA is required.
    let answer = https(&server.otlp_http, true, post_logs()).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let refused = https(&server.otlp_http, false, post_logs()).await;
    assert!(
        refused
            .as_ref()
            .map(|a| !a.starts_with("HTTP/1.1 200"))
            .unwrap_or(true),
        "no client certificate, no ingest: {refused:?}"
    );

    // OTLP/gRPC: the same, through tonic's TLS.
    let tls = |identity: bool| {
        let mut c = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(
                std::fs::read(&cert).unwrap(),
            ))
            .domain_name("localhost");
        if identity {
            c = c.identity(tonic::transport::Identity::from_pem(
                std::fs::read(fixture("client.crt")).unwrap(),
                std::fs::read(fixture("client.key")).unwrap(),
            ));
        }
        c
    };
    let endpoint = server.otlp_grpc.clone();
    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
        .unwrap()
        .tls_config(tls(true))
        .unwrap()
        .connect()
        .await
        .expect("gRPC over TLS with a client certificate");
    LogsServiceClient::new(channel)
        .export(logs("tls", "t-2", &["over grpc tls".to_string()]))
        .await
        .expect("export over gRPC/TLS");
    let without = match tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .tls_config(tls(false))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => LogsServiceClient::new(channel)
            .export(logs("tls", "t-3", &["refused".to_string()]))
            .await
            .is_err(),
    };
    assert!(without, "gRPC without a client certificate is refused");

    // Both accepted records are stored.
    let answer = https(&server.api, false, get("/api/v1/logs?q=service:tls"))
        .await
        .unwrap();
    assert!(
        answer.contains("over tls") && answer.contains("over grpc tls"),
        "{answer}"
    );
    assert!(!answer.contains("refused"));
    server.stop();
}
