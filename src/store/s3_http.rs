//! The HTTP client of the S3 store: `object_store`'s connector trait over hyper's client.
//!
//! `object_store`'s own connector is `reqwest` with its TLS turned on, and turning that on
//! makes every `reqwest` client of the process (the alert notifier's, every test's) need a
//! process-wide rustls provider installed first, or pulls in a second crypto library beside
//! `ring`. This connector speaks plain HTTP (see `location.rs` for what that allows); HTTPS
//! is the next step here, through rustls on `ring` as the TLS listeners use it.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector as PlainConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest,
    HttpRequestBody, HttpResponse, HttpResponseBody, HttpService,
};

/// Longest wait for a TCP connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a response's headers (the body streams after them).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes [`HyperService`] clients for `object_store`.
#[derive(Debug, Default)]
pub struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut connector = PlainConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient::new(HyperService { client }))
    }
}

/// One pooled hyper client.
#[derive(Debug)]
struct HyperService {
    client: Client<PlainConnector, HttpRequestBody>,
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
