//! Users and roles on the UI and API: from the first user on every page needs a login,
//! scripts use HTTP Basic on the API, viewers only read, editors also change saved views,
//! forms carry the session's own token, and logging out ends the session.

mod common;

use base64::Engine;

use std::process::{Command, Stdio};

use common::notebook::{client, form_fields};
use common::{add_user, Server};
use serde_json::json;

/// Logs in; returns the session cookie (`name=value`).
async fn login(server: &Server, name: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/login", server.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={name}&password={password}&next=%2Ferrors"))
        .send()
        .await
        .unwrap()
}

async fn get(server: &Server, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut r = client().get(format!("{}{path}", server.api));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

async fn post_form(server: &Server, path: &str, cookie: &str, body: String) -> reqwest::Response {
    client()
        .post(format!("{}{path}", server.api))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_roles_and_session_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "vera", "viewer", "viewer-password-1");
    add_user(&data, "eddie", "editor", "editor-password-1");
    let short = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["user", "add", "x", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!short.status.success(), "an empty password is refused");
    let server = Server::start(&data);

    // Not logged in: pages send to the login, the API answers 401, probes stay open.
    let r = get(&server, "/errors?range=1h", None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Ferrors%3Frange%3D1h"
    );
    let r = get(&server, "/api/v1/services", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(get(&server, "/healthz", None).await.status(), 200);
    assert_eq!(get(&server, "/static/style.css", None).await.status(), 200);

    // A wrong password, then the right one: an HttpOnly, SameSite=Strict session cookie.
    let r = login(&server, "vera", "wrong-password").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong name or password"));
    let r = login(&server, "vera", "viewer-password-1").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/errors");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let viewer = set_cookie.split(';').next().unwrap().to_string();

    // The account page says who is signed in and what the role allows.
    let account = get(&server, "/account", Some(&viewer))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("Signed in as <b>vera</b>, a <b>viewer</b>"),
        "{account}"
    );
    assert_eq!(get(&server, "/account", None).await.status(), 303);

    // The viewer reads, but may not change anything.
    assert_eq!(
        get(&server, "/?range=1h", Some(&viewer)).await.status(),
        200
    );
    let page = get(&server, "/traces?range=1h", Some(&viewer))
        .await
        .text()
        .await
        .unwrap();
    let fields = form_fields(&page, "/views");
    let body = format!(
        "token={}&url=%2Ftraces&name=mine&start=1&end=2",
        fields["token"]
    );
    assert_eq!(
        post_form(&server, "/views", &viewer, body).await.status(),
        403
    );
    let r = client()
        .post(format!("{}/api/v1/views", server.api))
        .header("cookie", &viewer)
        .json(&json!({"name": "mine", "url": "/logs", "start": 1, "end": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The editor saves a view with the token of their own session; another token is refused.
    let r = login(&server, "eddie", "editor-password-1").await;
    let editor = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = get(&server, "/traces?range=1h", Some(&editor))
        .await
        .text()
        .await
        .unwrap();
    let editor_token = form_fields(&page, "/views")["token"].clone();
    assert_ne!(
        editor_token, fields["token"],
        "each session has its own form token"
    );
    let body = |token: &str| format!("token={token}&url=%2Ftraces&name=saved&start=1&end=2");
    assert_eq!(
        post_form(&server, "/views", &editor, body(&fields["token"]))
            .await
            .status(),
        403,
        "the viewer's token does not work in the editor's session"
    );
    let r = post_form(&server, "/views", &editor, body(&editor_token)).await;
    assert_eq!(r.status(), 303);

    // Scripts: HTTP Basic on the API.
    let r = client()
        .get(format!("{}/api/v1/views", server.api))
        .basic_auth("eddie", Some("editor-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["views"][0]["name"],
        "saved"
    );
    let r = client()
        .get(format!("{}/api/v1/views", server.api))
        .basic_auth("eddie", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The open APIs need the same logins: Prometheus (a form POST is a read, so a viewer
    // may query), and gRPC queries with Basic credentials in the metadata.
    let prom = format!("{}/prometheus/api/v1/query", server.api);
    let r = client()
        .get(format!("{prom}?query=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&prom)
        .basic_auth("vera", Some("viewer-password-1"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    use sightline::api::grpc::proto::query_service_client::QueryServiceClient;
    use sightline::api::grpc::proto::ListServicesRequest;
    let mut grpc = QueryServiceClient::connect(server.api.clone())
        .await
        .unwrap();
    let err = grpc
        .list_services(ListServicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let mut request = tonic::Request::new(ListServicesRequest {});
    let credentials = base64::engine::general_purpose::STANDARD.encode("vera:viewer-password-1");
    request.metadata_mut().insert(
        "authorization",
        format!("Basic {credentials}").parse().unwrap(),
    );
    assert!(grpc.list_services(request).await.is_ok());

    // Logging out ends the session.
    let r = post_form(&server, "/logout", &editor, String::new()).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(get(&server, "/views", Some(&editor)).await.status(), 303);
    server.stop();

    // With logins required, the UI may listen on every interface without --insecure.
    assert!(common::starts_with_args(
        &data,
        &[
            "--http-addr",
            "0.0.0.0:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0"
        ]
    ));
}
