//! `--object-store s3://bucket/prefix`: the Parquet files go to a real S3-compatible server
//! over HTTP (`s3s-fs`, which keeps a bucket as a folder on disk; `.ci/run` installs it) or
//! HTTPS (through a TLS-terminating proxy with the test certificate), are read back from there
//! after a restart, and nothing Parquet lands in the data dir.
//!
//! Each test starts its own `s3s-fs` on an ephemeral port with its own root, and uses its own
//! key prefix, so tests run side by side.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::otlp::{logs, span, traces};
use common::s3::{S3Server, ENV, READ_CACHE_BYTES};
use common::{enc, parquet_files, Server};
use prost::Message;

fn start(data: &Path, s3: &S3Server, prefix: &str) -> Server {
    let flags = s3.flags(prefix);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_with_env(data, &flags, &ENV)
}

/// Polls until `folder` holds Parquet files of both `traces/` and `logs/`.
fn wait_for_files(folder: &Path) -> Vec<PathBuf> {
    wait_for_files_of(folder, &["traces", "logs"])
}

/// Polls until `folder` holds Parquet files of each of `signals`.
fn wait_for_files_of(folder: &Path, signals: &[&str]) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let files = parquet_files(folder);
        let has = |signal: &str| {
            files
                .iter()
                .any(|f| f.strip_prefix(folder).is_ok_and(|r| r.starts_with(signal)))
        };
        if signals.iter().all(|s| has(s)) {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "no {signals:?} files in the bucket after 30 s: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_to_the_bucket_and_are_read_back_after_a_restart() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let prefix = "cluster-a/files";
    let server = start(&data, &s3, prefix);

    let trace_id = vec![0x5a; 16];
    let spans: Vec<_> = (0..20u8)
        .map(|i| span(trace_id.clone(), vec![i + 1; 8], &format!("step-{i}")))
        .collect();
    let status = server
        .export_retrying("/v1/traces", traces("checkout", spans).encode_to_vec())
        .await;
    assert_eq!(status, 200);
    let bodies: Vec<String> = (0..50).map(|i| format!("parcel {i} weighed")).collect();
    let status = server
        .export_retrying(
            "/v1/logs",
            logs("checkout", "corr-s3-1", &bodies).encode_to_vec(),
        )
        .await;
    assert_eq!(status, 200);

    // Flushed within the flush age: the files are objects of the bucket, under the prefix.
    let files = wait_for_files(&s3.folder(prefix));
    assert!(files.len() >= 2, "{files:?}");
    assert!(
        parquet_files(&data).is_empty(),
        "no Parquet file in the data dir: {:?}",
        parquet_files(&data)
    );

    // After a restart the WAL is empty: every answer is read from the bucket.
    server.stop();
    let server = start(&data, &s3, prefix);
    let (status, body) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(&trace_id)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spans"].as_array().map(Vec::len), Some(20), "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(0), "{body}");
    let (status, body) = server
        .get(&format!("/api/v1/logs?limit=1000&q={}", enc("weighed")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(50), "{body}");
    let (status, body) = server.get("/api/v1/correlations/corr-s3-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(50), "{body}");
    // The ranges read were kept on local disk, within the bound.
    let cached = common::dir_bytes(&data.join("read-cache"));
    assert!(
        cached > 0 && cached <= READ_CACHE_BYTES,
        "{cached} bytes in the read cache"
    );
    server.stop();

    // Another prefix of the same bucket is another store: it sees none of it.
    let other = tempfile::tempdir().expect("temp dir");
    let server = start(&other.path().join("data"), &s3, "cluster-b");
    let (status, body) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(&trace_id)))
        .await;
    assert_eq!(status, 404, "{body}");
    server.stop();
}

/// The test certificate (for `127.0.0.1`) of `tests/fixtures/tls`.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A TLS-terminating proxy in front of `target` (an `http://` address) with the test
/// certificate; returns its `https://` address. Bytes pass through unchanged, so the S3
/// signatures made for the proxy's address hold.
async fn tls_proxy(target: &str) -> String {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::ServerConfig;
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(fixture("server.crt"))
        .expect("certificate")
        .map(|c| c.expect("certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).expect("key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let target = target.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    format!("https://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_is_trusted_through_the_ca_bundle() {
    let s3 = S3Server::start();
    let endpoint = tls_proxy(&s3.endpoint).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let prefix = "over-tls";
    let mut flags = s3.flags_through(&endpoint, prefix);
    let bundle = fixture("server.crt");
    flags.extend([
        "--object-store-ca-bundle".into(),
        bundle.display().to_string(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    let server = Server::start_with_env(&data, &flags, &ENV);
    let bodies: Vec<String> = (0..30).map(|i| format!("sealed crate {i}")).collect();
    let status = server
        .export_retrying(
            "/v1/logs",
            logs("packer", "corr-tls-1", &bodies).encode_to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    let files = wait_for_files_of(&s3.folder(prefix), &["logs"]);
    assert!(!files.is_empty());
    server.stop();

    let server = Server::start_with_env(&data, &flags, &ENV);
    let (status, body) = server
        .get(&format!("/api/v1/logs?limit=1000&q={}", enc("sealed")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(30), "{body}");
    server.stop();
}

#[test]
fn a_bucket_that_does_not_answer_stops_the_start_naming_it() {
    // A port nothing listens on: every connection is refused, which the S3 client retries
    // (ten times, quickly) before the start gives up; a silent endpoint meets the 20 s limit.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
        ])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .args(["--object-store", "s3://sightline/nowhere"])
        .args(["--object-store-endpoint", &endpoint])
        .envs(ENV)
        .output()
        .expect("run sightline serve");
    assert!(!out.status.success(), "started without its bucket");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the store at s3://sightline/nowhere"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_store_url_that_is_not_s3_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (url, says) in [
        ("gs://bucket/prefix", "only s3://bucket/prefix is supported"),
        ("s3://No_Such/x", "is not a bucket name"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--otlp-grpc-addr",
                "127.0.0.1:0",
            ])
            .args(["--otlp-http-addr", "127.0.0.1:0", "--object-store", url])
            .output()
            .expect("run sightline serve");
        assert!(!out.status.success(), "{url} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}
