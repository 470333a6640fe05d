//! The HTTP client of the S3 store: `object_store`'s connector trait over hyper's client, with
//! TLS by rustls on `ring` (as the listeners use it).
//!
//! `object_store`'s own connector is `reqwest` with its TLS turned on, and turning that on
//! makes every `reqwest` client of the process (the alert notifier's, every test's) need a
//! process-wide rustls provider installed first, or pulls in a second crypto library beside
//! `ring`. This connector trusts the system's root certificates plus those of
//! `--object-store-ca-bundle` (`AWS_CA_BUNDLE`, as the AWS SDKs name it), for an S3-compatible
//! server with a private CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as PlainConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
    HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Longest wait for a TCP connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a response's headers (the body streams after them).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes [`HyperService`] clients for `object_store`.
#[derive(Debug, Default)]
pub struct HyperConnector {
    /// PEM certificates trusted besides the system's roots.
    pub ca_bundle: Option<PathBuf>,
}

impl HttpConnector for HyperConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let tls =
            tls_config(self.ca_bundle.as_deref()).map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: e.into(),
            })?;
        let mut plain = PlainConnector::new();
        plain.enforce_http(false);
        plain.set_connect_timeout(Some(CONNECT_TIMEOUT));
        plain.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(plain);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient::new(HyperService { client }))
    }
}

/// The client's TLS settings: the system's roots and the bundle's certificates.
fn tls_config(ca_bundle: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    // A system without a certificate store still reaches a server of the bundle.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA bundle {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// One pooled hyper client.
#[derive(Debug)]
struct HyperService {
    client: Client<HttpsConnector<PlainConnector>, HttpRequestBody>,
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(request))
            .await
            .map_err(|elapsed| HttpError::new(HttpErrorKind::Timeout, elapsed))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
