//! Every request has a budget checked before the work starts: what a client may hold open or
//! ask for is bounded, and past the bound it gets a clear error naming the limit.

mod common;

use common::demo::send_log;
use common::{add_user, Server};

/// The most live tails the server keeps open (`web::logs_page::MAX_LIVE_TAILS`).
const MAX_LIVE_TAILS: usize = 64;

/// Opens a live tail and returns its response (the stream stays open while it is held).
async fn open_tail(http: &reqwest::Client, server: &Server) -> reqwest::Response {
    http.get(format!("{}/logs/tail?q=error", server.api))
        .send()
        .await
        .expect("the tail request is answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tails_past_the_limit_are_refused_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let http = reqwest::Client::new();

    let mut open = Vec::new();
    for i in 0..MAX_LIVE_TAILS {
        let tail = open_tail(&http, &server).await;
        assert_eq!(tail.status(), 200, "tail {i} of {MAX_LIVE_TAILS} opens");
        open.push(tail);
    }

    let refused = open_tail(&http, &server).await;
    assert_eq!(refused.status(), 429, "one tail past the limit");
    let message = refused.text().await.unwrap();
    assert!(
        message.contains(&format!("{MAX_LIVE_TAILS} live tails are open")),
        "the refusal names the limit: {message}"
    );

    // Closing one tab gives its place back (the server notices the closed stream at its next
    // poll, within about a second): poll until a new tail opens.
    drop(open.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let tail = open_tail(&http, &server).await;
        if tail.status() == 200 {
            break;
        }
        assert_eq!(tail.status(), 429, "only the limit refuses a tail");
        assert!(
            std::time::Instant::now() < deadline,
            "a closed tail's place was never given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Pages and the API keep answering while the tails are held.
    let (status, _) = server.get("/api/v1/services").await;
    assert_eq!(status, 200);
}

/// Password checks one client address may make per minute (`access::PASSWORD_CHECKS_PER_MINUTE`).
const PASSWORD_CHECKS_PER_MINUTE: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_in_a_loop_are_refused_before_hashing_and_a_trusted_script_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "scripts", "viewer", "script-password-1");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    let services = format!("{}/api/v1/services", server.api);
    let call = |name: &'static str, password: &'static str| {
        http.get(&services).basic_auth(name, Some(password)).send()
    };

    // A script's credentials, checked once, stay trusted for a while.
    assert_eq!(
        call("scripts", "script-password-1").await.unwrap().status(),
        200
    );

    // The same address guessing: the first guesses are checked and wrong, then refused
    // before anything is hashed (a check comes back every 6 s: allow for a slow machine).
    let mut wrong = 0;
    let throttled = loop {
        let r = call("scripts", "guess").await.unwrap();
        if r.status() == 429 {
            break r;
        }
        assert_eq!(r.status(), 401, "a wrong guess");
        wrong += 1;
        assert!(
            wrong <= PASSWORD_CHECKS_PER_MINUTE + 2,
            "{wrong} guesses and none refused"
        );
    };
    assert!(
        wrong >= PASSWORD_CHECKS_PER_MINUTE - 1,
        "the script's own check counted, then {wrong} wrong guesses before the refusal"
    );
    assert_eq!(throttled.headers()["retry-after"], "60");
    let body: serde_json::Value = throttled.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many password checks") && e.contains("10 a minute")),
        "{body}"
    );

    // The login form from that address is refused the same way, with the reason on the page.
    let login = http
        .post(format!("{}/login", server.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=scripts&password=script-password-1&next=%2F")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 429);
    assert!(login
        .text()
        .await
        .unwrap()
        .contains("too many password checks"));

    // The script's trusted credentials still work: no hash, so no check is spent.
    assert_eq!(
        call("scripts", "script-password-1").await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_gathering_more_records_than_allowed_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--flush-age-ms", "300", "--max-query-rows", "20"],
    );
    for i in 0..25 {
        send_log(
            &server,
            "checkout",
            &format!("step {i}"),
            ("correlation_id", "order-1"),
        )
        .await;
    }
    send_log(&server, "checkout", "alone", ("correlation_id", "order-2")).await;

    // Polled until the records are acknowledged and searchable (the small one answers).
    server
        .wait_for("/api/v1/correlations/order-2", |v| {
            v["logs"].as_array().is_some_and(|l| l.len() == 1)
        })
        .await;
    let (status, body) = server.get("/api/v1/correlations/order-1").await;
    assert_eq!(status, 413, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("more than 20 records") && error.contains("--max-query-rows"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_query_texts_get_clear_errors_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    send_log(&server, "checkout", "payment declined", ("k", "v")).await;
    let deep = |open: &str, inner: &str, close: &str| {
        format!("{}{inner}{}", open.repeat(5000), close.repeat(5000))
    };
    let many_terms: Vec<String> = (0..1500).map(|i| format!("w{i}")).collect();
    let cases = [
        // Nested five thousand deep: once enough to overflow a worker's stack.
        (
            format!("/api/v1/logs?q={}", common::enc(&deep("(", "a", ")"))),
            400,
            "nests brackets 5000 deep",
        ),
        (
            format!(
                "/prometheus/api/v1/query?query={}",
                common::enc(&deep("(", "up", ")"))
            ),
            400,
            "nests brackets 5000 deep",
        ),
        (
            format!(
                "/loki/api/v1/query_range?query={}",
                common::enc(&deep("(", "{service_name=\"x\"}", ")"))
            ),
            400,
            "nests brackets 5001 deep; at most 64",
        ),
        // 1 500 alternatives.
        (
            format!("/api/v1/logs?q={}", common::enc(&many_terms.join(" OR "))),
            400,
            "combines 1500 terms",
        ),
        // A ten-year window.
        (
            "/api/v1/logs/histogram?q=payment&start=2016-01-01T00:00:00Z&end=2026-01-01T00:00:00Z"
                .to_string(),
            400,
            "--max-query-days",
        ),
        // Times 580 years apart: their difference overflowed nanoseconds in an i64.
        (
            "/prometheus/api/v1/query_range?query=up&start=-9000000000&end=9000000000&step=1"
                .to_string(),
            400,
            "maximum resolution",
        ),
        (
            format!(
                "/loki/api/v1/query_range?query={}&start=-9000000000&end=9000000000&step=1",
                common::enc("count_over_time({service_name=\"checkout\"}[1m])")
            ),
            400,
            "maximum resolution",
        ),
        // A time past what nanoseconds hold.
        (
            "/api/v1/logs?q=payment&start=99999999999.5".to_string(),
            400,
            "out of range",
        ),
    ];
    for (path, status, message) in cases {
        let (got, body) = server.get(&path).await;
        let text = body.to_string();
        assert_eq!(got, status, "{}: {text}", &path[..path.len().min(80)]);
        assert!(
            text.contains(message),
            "{}: wanted {message:?} in {text}",
            &path[..path.len().min(80)]
        );
    }
    // Still up, and the record is still there.
    let (status, body) = server.get("/api/v1/logs?q=payment").await;
    assert_eq!(status, 200);
    assert_eq!(body["logs"].as_array().map(Vec::len), Some(1), "{body}");
}
