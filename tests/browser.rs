//! Browser tests: a real headless Chromium, driven through chromedriver, on the demo data.
//!
//! Without `chromedriver` on the PATH these tests print a loud notice and pass, unless
//! `SIGHTLINE_REQUIRE_BROWSER=1` (set by `.ci/run`), which turns a missing browser into a
//! failure. Screenshots of each page go to `target/screenshots/`.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::demo::{ids, send_log};
use common::{enc, Server};
use thirtyfour::prelude::*;

/// A chromedriver process on a free port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts chromedriver, or explains why browser tests are skipped (or fails under CI).
fn chromedriver() -> Option<ChromeDriver> {
    let Some(binary) = find_on_path("chromedriver") else {
        let notice = "BROWSER TESTS SKIPPED: chromedriver is not installed \
                      (apt-get install chromium chromium-driver; .ci/run does this)";
        if std::env::var("SIGHTLINE_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("{notice}, and SIGHTLINE_REQUIRE_BROWSER=1 requires them");
        }
        eprintln!("\n{}\n{notice}\n{}\n", "!".repeat(78), "!".repeat(78));
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(ChromeDriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &ChromeDriver) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    if let Some(chromium) = find_on_path("chromium") {
        caps.set_binary(chromium.to_str().unwrap()).unwrap();
    }
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ] {
        caps.add_arg(arg).unwrap();
    }
    WebDriver::new(&driver.url, caps)
        .await
        .expect("a Chromium session")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(web: &WebDriver, name: &str) {
    web.screenshot(&screenshot_dir().join(format!("{name}.png")))
        .await
        .expect("screenshot");
}

/// Waits until the browser has navigated to a URL containing `fragment`.
async fn wait_for_url(web: &WebDriver, fragment: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !web.current_url().await.unwrap().as_str().contains(fragment) {
        assert!(
            Instant::now() < deadline,
            "the browser did not navigate to …{fragment}…"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Chromedriver and a demo server for a browser test, or `None` when browser tests are
/// skipped (the temp dir lives as long as the test holds it).
fn demo_for_browser() -> Option<(ChromeDriver, tempfile::TempDir, Server)> {
    let driver = chromedriver()?;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--demo", "--demo-frozen", "--flush-age-ms", "500"],
    );
    Some((driver, dir, server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_the_demo_incident() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let demo = ids(&server).await;
    let web = browser(&driver).await;

    // Trace search → click the failed checkout → its waterfall.
    web.goto(format!(
        "{}/traces?service=payment&status=error",
        server.api
    ))
    .await
    .unwrap();
    shot(&web, "traces-search").await;
    let link = web
        .find(By::Css(format!(
            "tr[data-trace='{}'] a.trace-link",
            demo.failed_trace
        )))
        .await
        .unwrap();
    link.click().await.unwrap();
    wait_for_url(&web, &demo.failed_trace).await;
    let rows = web.find_all(By::Css("details.span")).await.unwrap();
    assert_eq!(
        rows.len(),
        demo.failed_span_count,
        "one waterfall row per span"
    );
    // Click the payment server span: its details and its logs open.
    let payment = web
        .find(By::XPath(
            "//details[contains(@class,'span')][.//span[@class='name' and text()='POST /charge']]",
        ))
        .await
        .unwrap();
    payment
        .find(By::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let logs = payment.find_all(By::Css("tr.span-log")).await.unwrap();
    assert!(!logs.is_empty(), "the span's logs are shown inline");
    assert!(
        logs[0].text().await.unwrap().contains("charge failed"),
        "the payment error log"
    );
    assert!(payment
        .text()
        .await
        .unwrap()
        .contains("CardProcessorTimeout"));
    shot(&web, "trace-failed-checkout").await;
    // Collapse the root: every other row disappears.
    web.find(By::Css("button.toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let visible = web
        .execute(
            "return [...document.querySelectorAll('details.span')].filter(e => !e.hidden).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        visible.json().as_u64(),
        Some(1),
        "collapsed to the root span"
    );

    // The stitched trace shows both trace ids.
    web.goto(format!("{}/traces/{}", server.api, demo.stitched_trace))
        .await
        .unwrap();
    let body = web
        .find(By::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(&demo.stitched_trace) && body.contains(&demo.linked_trace),
        "both trace ids"
    );
    assert_eq!(
        web.find_all(By::Css("details.span")).await.unwrap().len(),
        demo.stitched_span_count
    );
    shot(&web, "trace-stitched").await;

    // Logs by correlation id: exactly the request's lines.
    web.goto(format!("{}/logs", server.api)).await.unwrap();
    let q = web.find(By::Css("input[name=q]")).await.unwrap();
    q.send_keys(format!("correlation_id:{}", demo.correlation_id))
        .await
        .unwrap();
    web.find(By::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "correlation_id").await;
    let lines = web.find_all(By::Css("tr.log-row")).await.unwrap();
    assert_eq!(lines.len(), demo.correlation_logs);
    for line in &lines {
        let text = line.text().await.unwrap();
        assert!(
            text.contains(&demo.correlation_id) || text.contains("POST /checkout"),
            "{text}"
        );
    }
    shot(&web, "logs-correlation").await;

    // A hostile log body is shown as text and never runs.
    send_log(
        &server,
        "evil",
        "<script>window.__pwned=1</script>",
        ("k", "v"),
    )
    .await;
    web.goto(format!(
        "{}/logs?q={}",
        server.api,
        enc("\"window.__pwned\" OR script")
    ))
    .await
    .unwrap();
    let pwned = web
        .execute("return window.__pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(
        pwned.json().as_bool(),
        Some(true),
        "the injected script must not run"
    );
    let cell = web
        .find(By::Css("tr.log-row td.body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cell.contains("<script>window.__pwned=1</script>"),
        "shown literally: {cell}"
    );
    shot(&web, "logs-hostile").await;

    // Live tail: a record sent after the page opened streams in.
    web.goto(format!("{}/logs?q=tailme", server.api))
        .await
        .unwrap();
    web.find(By::Id("live-tail"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The tail shows what arrives after it connected: send until a record shows (polling, no
    // guess at how long the browser takes to open the stream).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        send_log(&server, "tail", "tailme arrived live", ("k", "v")).await;
        let live = web.find_all(By::Css("tr.live")).await.unwrap();
        if let Some(row) = live.first() {
            assert!(row.text().await.unwrap().contains("tailme arrived live"));
            // Styled like the rows the page rendered: an ERROR level, one unbroken word.
            let level = row.find(By::Css("td.level.sev-error")).await.unwrap();
            let white_space = level.css_value("white-space").await.unwrap();
            assert_eq!(white_space, "nowrap");
            // The service in its colour chip, as on the rendered rows.
            let chip = row.find(By::Css("span.svc")).await.unwrap();
            assert_eq!(chip.text().await.unwrap(), "tail");
            let colour = chip.css_value("border-left-color").await.unwrap();
            assert!(
                !colour.is_empty() && colour != "rgba(0, 0, 0, 0)",
                "{colour}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live tail did not show the new record"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shot(&web, "logs-live-tail").await;

    web.quit().await.unwrap();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_shows_on_overview_map_service_and_errors() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;

    // Overview: a row per service; the pulled canary instance is down.
    web.goto(format!("{}/", server.api)).await.unwrap();
    let rows = web.find_all(By::Css("tr.service-row")).await.unwrap();
    assert_eq!(rows.len(), 6, "six services");
    let payment = web
        .find(By::Css("tr[data-service='payment']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(payment.contains("payment-3 down, last seen"), "{payment}");
    shot(&web, "overview").await;

    // Map: the checkout → payment edge is red, the database is a leaf, nodes link to pages.
    web.goto(format!("{}/map", server.api)).await.unwrap();
    let edge = web
        .find(By::Css(
            "g.edge[data-caller='checkout'][data-callee='payment']",
        ))
        .await
        .unwrap();
    assert!(
        edge.class_name()
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("erroring"),
        "erroring edge is red"
    );
    let stroke = web
        .execute("return getComputedStyle(document.querySelector(\"g.edge[data-callee='payment'] path\")).stroke", vec![])
        .await
        .unwrap();
    assert_eq!(stroke.json().as_str(), Some("rgb(217, 45, 32)"));
    web.find(By::Css("g.node[data-node='postgresql']"))
        .await
        .unwrap();
    assert!(
        web.find_all(By::Css("g.edge.async")).await.unwrap().len() == 1,
        "the queue hop is drawn as async"
    );
    shot(&web, "service-map").await;

    // Service page: the canary version fails more than the stable one.
    web.find(By::Css("g.node[data-node='payment'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/services/payment").await;
    let rate = |version: &'static str| {
        let web = web.clone();
        async move {
            let row = web
                .find(By::Css(format!("tr.version-row[data-version='{version}']")))
                .await
                .unwrap();
            let errors: f64 = row
                .attr("data-errors")
                .await
                .unwrap()
                .unwrap()
                .parse()
                .unwrap();
            let requests: f64 = row
                .attr("data-requests")
                .await
                .unwrap()
                .unwrap()
                .parse()
                .unwrap();
            errors / requests
        }
    };
    let (canary, stable) = (rate("2.5.0").await, rate("2.4.0").await);
    assert!(
        canary > stable,
        "canary error rate {canary} above stable {stable}"
    );
    assert!(
        web.find_all(By::Css("section.instance"))
            .await
            .unwrap()
            .len()
            == 3
    );
    assert!(
        !web.find_all(By::Css("section.instance polyline.line"))
            .await
            .unwrap()
            .is_empty(),
        "per-instance charts"
    );
    shot(&web, "service-payment").await;

    // Errors page: the burst is marked and the canary's error group is listed.
    web.goto(format!("{}/errors", server.api)).await.unwrap();
    assert!(
        !web.find_all(By::Css("g.burst")).await.unwrap().is_empty(),
        "error burst marked"
    );
    let groups = web
        .find(By::Css("table.groups"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        groups.contains("CardProcessorTimeout") && groups.contains("payment-3"),
        "{groups}"
    );
    shot(&web, "errors").await;

    web.quit().await.unwrap();
    server.stop();
}

/// On the current page: "Save view" with `name` (and `note`), pinned; waits for the saved
/// view's page and checks its evidence is pinned. Screenshot `save-view-form` of the form.
async fn save_pinned_view(web: &WebDriver, name: &str, note: Option<&str>) {
    web.find(By::Css("details.save-view summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let form = web.find(By::Css("form.save-form")).await.unwrap();
    form.find(By::Css("input[name=name]"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    if let Some(note) = note {
        form.find(By::Css("textarea[name=note]"))
            .await
            .unwrap()
            .send_keys(note)
            .await
            .unwrap();
    }
    form.find(By::Css("input[name=pin]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(web, "save-view-form").await;
    form.find(By::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(web, "/views/").await;
    let evidence = web
        .find(By::Id("view-evidence"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(evidence.starts_with("pinned"), "{evidence}");
}

/// On a saved view's page: adds it to a new post-mortem titled `title` and waits for it.
async fn add_to_new_postmortem(web: &WebDriver, title: &str) {
    let add = web.find(By::Id("add-to-postmortem")).await.unwrap();
    add.find(By::Css("input[name=title]"))
        .await
        .unwrap()
        .send_keys(title)
        .await
        .unwrap();
    add.find(By::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(web, "/postmortems/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_a_trace_view_into_a_new_postmortem() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let demo = ids(&server).await;
    let web = browser(&driver).await;

    // On the failed checkout's trace page: "Save view", name it, pin it, save.
    web.goto(format!("{}/traces/{}", server.api, demo.failed_trace))
        .await
        .unwrap();
    save_pinned_view(
        &web,
        "Failed checkout during the canary",
        Some("payment-3 timed out after 2.5 s"),
    )
    .await;
    add_to_new_postmortem(&web, "Checkout failures during the payment canary").await;
    assert_eq!(
        web.find(By::Id("pm-title"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Checkout failures during the payment canary"
    );
    // The embedded waterfall: one row per span of the failed checkout, expandable.
    let rows = web
        .find_all(By::Css(".pm-view .embedded details.span"))
        .await
        .unwrap();
    assert_eq!(rows.len(), demo.failed_span_count, "the embedded waterfall");
    let charge = web
        .find(By::XPath(
            "//div[@class='embedded']//details[contains(@class,'span')][.//span[@class='name' and text()='POST /charge']]",
        ))
        .await
        .unwrap();
    charge
        .find(By::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(charge
        .text()
        .await
        .unwrap()
        .contains("CardProcessorTimeout"));
    shot(&web, "postmortem-with-waterfall").await;
    web.quit().await.unwrap();
    server.stop();
}

/// The window chosen on one page follows every link: services → a service → its traces → a
/// trace → the logs (each used to drop it and fall back to the last hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_window_follows_every_link() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;
    web.goto(format!("{}/?range=6h", server.api)).await.unwrap();
    let follow = |selector: &'static str, to: &'static str| {
        let web = web.clone();
        async move {
            web.find(By::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("{selector}: {e}"))
                .click()
                .await
                .unwrap();
            wait_for_url(&web, to).await;
            let url = web.current_url().await.unwrap().to_string();
            assert!(url.contains("range=6h"), "{to} lost the window: {url}");
        }
    };
    follow("a[href^='/services/payment']", "/services/payment").await;
    follow("a[href^='/traces?service=payment']", "/traces?").await;
    follow("tr.trace-row a[href^='/traces/']", "/traces/").await;
    follow("nav a[href^='/logs']", "/logs").await;
    shot(&web, "window-follows").await;
    web.quit().await.unwrap();
    server.stop();
}

/// The events of the window as the page lists them: (kind, service, text, link).
async fn listed_events(web: &WebDriver) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for row in web.find_all(By::Css("#events li.event-row")).await.unwrap() {
        let attr = |name: &'static str| {
            let row = row.clone();
            async move { row.attr(name).await.unwrap().unwrap_or_default() }
        };
        let link = row.find(By::Css("a")).await.unwrap();
        out.push((
            attr("data-kind").await,
            attr("data-service").await,
            row.text().await.unwrap(),
            link.attr("href").await.unwrap().unwrap_or_default(),
        ));
    }
    out
}

/// While triaging, the overview, service, errors and map pages show the canary's deploy, where
/// the errors started and the recovery, in that order, each a link to its records in the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_errors_and_recovery_show_while_triaging() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;
    for page in ["/", "/errors", "/map", "/services/payment"] {
        web.goto(format!("{}{page}?range=1h", server.api))
            .await
            .unwrap();
        let events = listed_events(&web).await;
        let at = |kind: &str| {
            events
                .iter()
                .position(|e| e.0 == kind && e.1 == "payment")
                .unwrap_or_else(|| panic!("{page}: no {kind} of payment in {events:?}"))
        };
        let (deploy, first, recovery) = (at("deploy"), at("first_error"), at("recovery"));
        assert!(deploy < first && first < recovery, "{page}: {events:?}");
        assert!(events[deploy].2.contains("payment 2.5.0"), "{events:?}");
        assert!(
            events.iter().all(|e| e.3.contains("range=1h")),
            "{page}: an event link without the window: {events:?}"
        );
    }
    // The service page marks them on its charts.
    let marks = web.find_all(By::Css("svg g.event")).await.unwrap();
    assert!(
        marks.len() >= 3,
        "{} event marks on payment's charts",
        marks.len()
    );
    shot(&web, "service-events").await;
    // The deploy links to the traces of the new version.
    web.find(By::Css("#events li.deploy a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/traces?").await;
    let url = web.current_url().await.unwrap().to_string();
    assert!(url.contains("service.version%3D2.5.0"), "{url}");
    let rows = web.find_all(By::Css("tr.trace-row")).await.unwrap();
    assert!(
        !rows.is_empty(),
        "no trace of payment 2.5.0 behind the deploy"
    );
    web.quit().await.unwrap();
    server.stop();
}

/// Every number of the triage pages opens the records behind it, in the same window: the
/// canary's error rate on the service page opens its failed traces, a trace's correlation id
/// opens every log of that request, the overview's error rate and an error group's count open
/// failed traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_open_the_records_behind_them() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;
    let click = |selector: String| {
        let web = web.clone();
        async move {
            web.find(By::Css(&selector))
                .await
                .unwrap_or_else(|e| panic!("{selector}: {e}"))
                .click()
                .await
                .unwrap();
        }
    };
    // Only failed traces, all of them payment 2.5.0's, in the window chosen.
    let assert_failed_traces = |what: &'static str| {
        let web = web.clone();
        async move {
            wait_for_url(&web, "/traces?").await;
            let url = web.current_url().await.unwrap().to_string();
            assert!(url.contains("status=error"), "{what}: {url}");
            let rows = web.find_all(By::Css("tr.trace-row")).await.unwrap();
            assert!(!rows.is_empty(), "{what}: no failed trace behind it");
            for row in rows {
                let text = row.text().await.unwrap();
                assert!(
                    text.contains("error"),
                    "{what}: a trace without errors: {text}"
                );
            }
            url
        }
    };

    web.goto(format!("{}/services/payment?range=6h", server.api))
        .await
        .unwrap();
    click("tr.version-row[data-version='2.5.0'] td:nth-child(3) a".into()).await;
    let url = assert_failed_traces("2.5.0's error rate").await;
    assert!(
        url.contains("service.version%3D2.5.0") && url.contains("range=6h"),
        "{url}"
    );

    // A failed checkout's span carries the order's correlation id: it opens the request's logs.
    click("tr.trace-row a.trace-link".into()).await;
    wait_for_url(&web, "/traces/").await;
    let corr = web
        .find(By::Css(
            "table.attrs a.filter[href^='/logs?q=correlation_id']",
        ))
        .await
        .expect("the failed trace's correlation id is a link");
    let id = corr.prop("textContent").await.unwrap().unwrap_or_default();
    assert!(!id.is_empty(), "an empty correlation id link");
    web.execute(
        "arguments[0].closest('details').open = true;",
        vec![corr.to_json().unwrap()],
    )
    .await
    .unwrap();
    corr.click().await.unwrap();
    wait_for_url(&web, "/logs?").await;
    let banner = web
        .find(By::Css("p.banner"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(banner.contains(&id), "{banner}");

    // The overview's error rate and an error group's count open failed traces.
    web.goto(format!("{}/?range=6h", server.api)).await.unwrap();
    click("tr[data-service='payment'] td:nth-child(3) a".into()).await;
    assert_failed_traces("payment's error rate on the overview").await;
    web.goto(format!("{}/errors?range=6h", server.api))
        .await
        .unwrap();
    click("tr.group-row td:nth-child(2) a".into()).await;
    assert_failed_traces("an error group's count").await;
    shot(&web, "failed-traces-of-a-group").await;
    web.quit().await.unwrap();
    server.stop();
}

/// A log record opens to show everything it holds, and any value narrows the search to the
/// records sharing it; the histogram is stacked by level with a legend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_open_and_filter_on_a_value() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;
    web.goto(format!("{}/logs?q=service:payment&range=6h", server.api))
        .await
        .unwrap();
    let mut levels = Vec::new();
    for key in web.find_all(By::Css(".level-key")).await.unwrap() {
        levels.push(key.attr("data-level").await.unwrap().unwrap_or_default());
    }
    assert!(
        levels.contains(&"ERROR".to_string()) && levels.contains(&"INFO".to_string()),
        "the histogram's levels: {levels:?}"
    );
    let bars = web
        .find_all(By::Css("figure.chart rect.bar"))
        .await
        .unwrap();
    let mut colours = std::collections::BTreeSet::new();
    for bar in &bars {
        colours.insert(bar.css_value("fill").await.unwrap());
    }
    assert!(colours.len() >= 2, "bars in one colour: {colours:?}");
    // Open the first ERROR record of the payment canary and filter on its instance.
    let row = web
        .find(By::XPath(
            "//tr[contains(@class,'log-row')][td[contains(@class,'sev-error')]][td[.='payment-3']]",
        ))
        .await
        .expect("an ERROR record of payment-3");
    row.find(By::Css("details.record summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let trace = row
        .find(By::Css("details.record a[href^='/traces/']"))
        .await
        .expect("the record links its trace");
    assert!(trace.is_displayed().await.unwrap());
    let instance = row
        .find(By::XPath(
            ".//details[contains(@class,'record')]//tr[th='service.instance.id']//a",
        ))
        .await
        .unwrap();
    instance.click().await.unwrap();
    wait_for_url(&web, "instance").await;
    let url = web.current_url().await.unwrap().to_string();
    assert!(url.contains("range=6h"), "{url}");
    let rows = web.find_all(By::Css("tr.log-row")).await.unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let instance = row.find(By::Css("td:nth-child(3)")).await.unwrap();
        assert_eq!(instance.text().await.unwrap(), "payment-3");
    }
    shot(&web, "logs-filtered-on-a-value").await;
    web.quit().await.unwrap();
    server.stop();
}

/// The live demo in the browser: with nothing sent by the test, live tail shows new lines of
/// the shop's traffic (the recorded hour alone would leave it empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_demo_moves_in_live_tail() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--demo"]);
    let web = browser(&driver).await;
    web.goto(format!("{}/logs?range=15m", server.api))
        .await
        .unwrap();
    web.find(By::Id("live-tail"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live = web.find_all(By::Css("tr.live")).await.unwrap();
        if let Some(row) = live.first() {
            let service = row.find(By::Css("span.svc")).await.unwrap();
            let name = service.text().await.unwrap();
            assert!(
                [
                    "frontend",
                    "cart",
                    "checkout",
                    "payment",
                    "inventory",
                    "shipping"
                ]
                .contains(&name.as_str()),
                "{name}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live line within a minute of the live demo"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shot(&web, "live-demo-tail").await;
    web.quit().await.unwrap();
    server.stop();
}

/// A shown duration ("2.52 s", "85.0 ms", "512 µs") in nanoseconds, with the half unit of its
/// last digit (what rounding for display may add).
fn shown_duration(text: &str) -> (f64, f64) {
    let (number, unit) = text.trim().split_once(' ').expect("a number and a unit");
    let scale = match unit {
        "s" => 1e9,
        "ms" => 1e6,
        "µs" => 1e3,
        "ns" => 1.0,
        other => panic!("unit {other:?}"),
    };
    let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
    let value: f64 = number.parse().expect("a number");
    (value * scale, 0.5 * 10f64.powi(-(decimals as i32)) * scale)
}

/// Reloads, paging, percentiles and axes as a person sees them: the errors page's bursts stay
/// put on reload; trace search counts and pages; the canary's p99 on the service page is within
/// 1 % of the exact p99 of its spans and not above the slowest; axes are labelled on round
/// values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_paging_percentiles_and_axes() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;
    let texts = |selector: &'static str| {
        let web = web.clone();
        async move {
            let mut out = Vec::new();
            for e in web.find_all(By::Css(selector)).await.unwrap() {
                out.push(e.text().await.unwrap());
            }
            out
        }
    };

    // Point 4: reload twice, the same bursts.
    web.goto(format!("{}/errors?range=1h", server.api))
        .await
        .unwrap();
    let bursts = texts("b.burst-start").await;
    assert!(!bursts.is_empty(), "the incident's bursts");
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        web.refresh().await.unwrap();
        assert_eq!(
            texts("b.burst-start").await,
            bursts,
            "a burst moved on reload"
        );
    }

    // Point 10: round values on the axes (there are labels to check).
    let (counts, times) = (
        texts("figure.chart text.tick.y").await,
        texts("figure.chart text.tick:not(.y)").await,
    );
    assert!(
        counts.len() >= 2 && times.len() >= 2,
        "{counts:?} {times:?}"
    );
    for label in counts {
        let v: f64 = label
            .parse()
            .unwrap_or_else(|_| panic!("count tick {label:?}"));
        assert_eq!(v.fract(), 0.0, "{label}");
    }
    for label in times {
        let minute: u32 = label
            .rsplit(':')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("time tick {label:?}"));
        assert_eq!(minute % 5, 0, "a time tick off the round minutes: {label}");
    }

    // Point 6: counts and pages.
    web.goto(format!("{}/traces?range=6h", server.api))
        .await
        .unwrap();
    let first = web
        .find(By::Id("paging"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(first.starts_with("Traces 1–50 of "), "{first}");
    let first_row = texts("tr.trace-row td.time").await;
    web.find(By::Css("#paging a[rel='next']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "page=2").await;
    let second = web
        .find(By::Id("paging"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(second.starts_with("Traces 51–100 of "), "{second}");
    assert_ne!(texts("tr.trace-row td.time").await, first_row);

    // Point 5: the canary's p99 against the exact one of its spans.
    let scenario =
        sightline::demo::scenario::Generator::new(sightline::demo::DEFAULT_SEED).generate();
    let mut canary: Vec<i64> = scenario
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .filter(|rs| {
            rs.resource.as_ref().is_some_and(|r| {
                r.attributes.iter().any(|a| {
                    a.key == "service.version"
                        && a.value.as_ref().is_some_and(|v| {
                            matches!(&v.value, Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) if s == "2.5.0")
                        })
                })
            })
        })
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|s| &s.spans))
        .filter(|s| s.kind == 2)
        .map(|s| (s.end_time_unix_nano - s.start_time_unix_nano) as i64)
        .collect();
    canary.sort_unstable();
    let rank = (0.99 * canary.len() as f64).ceil() as usize;
    let (exact, slowest) = (canary[rank - 1] as f64, *canary.last().unwrap() as f64);
    web.goto(format!("{}/services/payment?range=6h", server.api))
        .await
        .unwrap();
    let p99 = web
        .find(By::Css(
            "tr.version-row[data-version='2.5.0'] td:nth-child(6)",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (shown, rounding) = shown_duration(&p99);
    assert!(
        (shown - exact).abs() <= 0.01 * exact + rounding,
        "p99 {p99} against the exact {exact} ns"
    );
    assert!(
        shown - rounding <= slowest,
        "p99 {p99} above the slowest {slowest} ns"
    );
    shot(&web, "service-payment-versions").await;
    web.quit().await.unwrap();
    server.stop();
}

/// Point 9 in the browser: the post-mortem reads summary to action items before its evidence,
/// one click accepts every suggestion into the timeline, and a view's own note shows with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_reads_like_one_in_the_browser() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let now = common::otlp::now_ns() as i64;
    let hour = 3_600_000_000_000_i64;
    let (status, view) = common::notebook::send_json(
        &server,
        "POST",
        "/api/v1/views",
        serde_json::json!({"name": "payment", "note": "the canary only", "url": "/services/payment",
                           "start": now - hour, "end": now}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let (status, pm) = common::notebook::send_json(
        &server,
        "POST",
        "/api/v1/postmortems",
        serde_json::json!({"title": "checkout failures", "incident_start": now - hour,
                           "incident_end": now}),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let id = pm["id"].as_i64().unwrap();
    let (status, _) = common::notebook::send_json(
        &server,
        "POST",
        &format!("/api/v1/postmortems/{id}/views"),
        serde_json::json!({"view_id": view["id"], "note": "first seen here"}),
    )
    .await;
    assert!(status == 200 || status == 201);
    let web = browser(&driver).await;
    web.goto(format!("{}/postmortems/{id}", server.api))
        .await
        .unwrap();
    let top = |selector: &'static str| {
        let web = web.clone();
        async move {
            web.find(By::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("{selector}: {e}"))
                .rect()
                .await
                .unwrap()
                .y
        }
    };
    let evidence = top("section.pm-view").await;
    for part in ["#pm-summary", "#pm-root-cause", "#action-items"] {
        assert!(top(part).await < evidence, "{part} below the evidence");
    }
    let note = web
        .find(By::Css("section.pm-view p.note"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        note.contains("the canary only") && note.contains("first seen here"),
        "{note}"
    );
    let before = web
        .find_all(By::Css("tr.timeline-entry"))
        .await
        .unwrap()
        .len();
    let button = web.find(By::Css("#accept-all button")).await.unwrap();
    let label = button.text().await.unwrap();
    let pending: usize = label
        .trim_start_matches("Accept all ")
        .parse()
        .unwrap_or_else(|_| panic!("{label}"));
    assert!(pending > 0, "nothing to accept: {label}");
    button.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_entries = web
            .find_all(By::Css("tr.timeline-entry"))
            .await
            .unwrap()
            .len();
        if now_entries == before + pending {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{now_entries} timeline entries after accepting {pending} (had {before})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shot(&web, "postmortem-accepted").await;
    web.quit().await.unwrap();
    server.stop();
}

/// Issue 20 point 10, the last two charts lines: values on hover (a tip that shows the
/// points' titles beside the pointer) and map edge labels that never overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_values_on_hover_and_map_labels_apart() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let web = browser(&driver).await;

    // The service page's charts: hovering the middle of a chart shows every line's value at
    // the nearest minute, the same text as those points' titles.
    web.goto(format!("{}/services/payment?range=1h", server.api))
        .await
        .unwrap();
    let tip = web.find(By::Id("chart-tip")).await.expect("the tip exists");
    assert!(!tip.is_displayed().await.unwrap(), "hidden until hovered");
    let chart = web
        .find(By::Css("figure.chart svg"))
        .await
        .expect("a chart on the service page");
    web.action_chain()
        .move_to_element_center(&chart)
        .perform()
        .await
        .unwrap();
    assert!(tip.is_displayed().await.unwrap(), "the tip shows on hover");
    let shown: Vec<String> = tip
        .text()
        .await
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let titles: Vec<String> = web
        .execute(
            "return [...arguments[0].querySelectorAll('circle.mark title, rect.bar title, circle.dot title')].map(t => t.textContent)",
            vec![chart.to_json().unwrap()],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(!shown.is_empty(), "the tip names values");
    for line in &shown {
        assert!(
            titles.contains(line),
            "{line:?} is one of the chart's points"
        );
    }
    shot(&web, "service-hover").await;
    web.action_chain()
        .move_to_element_center(&web.find(By::Css("h1")).await.unwrap())
        .perform()
        .await
        .unwrap();
    assert!(!tip.is_displayed().await.unwrap(), "the tip hides on leave");

    // The map: no two edge labels' boxes overlap, and none covers a service.
    web.goto(format!("{}/map?range=1h", server.api))
        .await
        .unwrap();
    let overlaps: Vec<String> = web
        .execute(
            r#"const boxes = [...document.querySelectorAll('.edge-label text, .node rect')]
                 .map(e => [e, e.getBoundingClientRect()]);
               const out = [];
               boxes.forEach(([a, ra], i) => boxes.slice(i + 1).forEach(([b, rb]) => {
                 if (a.tagName === 'rect' && b.tagName === 'rect') return;
                 if (ra.left < rb.right && rb.left < ra.right && ra.top < rb.bottom && rb.top < ra.bottom)
                   out.push(a.textContent + ' / ' + (b.textContent || b.parentNode.parentNode.dataset.node));
               }));
               return out;"#,
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    // Each label sits by its own edge (within 16 px of its path), so it names one edge; where
    // another edge crosses it, the label's halo keeps it readable.
    let astray: Vec<String> = web
        .execute(
            r#"const out = [];
               document.querySelectorAll('.edge-label').forEach(label => {
                 const r = label.querySelector('text').getBoundingClientRect();
                 const edge = document.querySelector(`g.edge[data-caller="${label.dataset.caller}"][data-callee="${label.dataset.callee}"]`);
                 const path = edge.querySelector('path'), m = path.getScreenCTM();
                 let nearest = Infinity;
                 for (let d = 0; d <= path.getTotalLength(); d += 2) {
                   const at = path.getPointAtLength(d);
                   const p = new DOMPoint(at.x, at.y).matrixTransform(m);
                   const dx = Math.max(r.left - p.x, 0, p.x - r.right), dy = Math.max(r.top - p.y, 0, p.y - r.bottom);
                   nearest = Math.min(nearest, Math.hypot(dx, dy));
                 }
                 if (nearest > 16) out.push(label.textContent + ' is ' + Math.round(nearest) + ' px from its edge');
               });
               return out;"#,
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(
        astray.is_empty(),
        "map labels away from their edges: {astray:?}"
    );
    let halo: String = web
        .execute(
            "return getComputedStyle(document.querySelector('.edge-label text')).paintOrder",
            vec![],
        )
        .await
        .unwrap()
        .convert()
        .unwrap();
    assert!(halo.starts_with("stroke"), "labels have a halo: {halo}");
    let labels = web.find_all(By::Css(".edge-label text")).await.unwrap();
    assert!(labels.len() >= 4, "the demo's map has edges");
    assert!(overlaps.is_empty(), "overlapping map labels: {overlaps:?}");
    shot(&web, "map-labels").await;
}

/// The first `n` ranked attribute values of a group comparison page, as `key=value`.
async fn ranked_values(web: &WebDriver, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for row in web
        .find_all(By::Css("tr.ranked-value"))
        .await
        .unwrap()
        .iter()
        .take(n)
    {
        out.push(format!(
            "{}={}",
            row.attr("data-key").await.unwrap().unwrap_or_default(),
            row.attr("data-value").await.unwrap().unwrap_or_default()
        ));
    }
    out
}

/// Issue 17's three pages on the demo: the canary verdict from the service page's versions
/// table, "what is different" from a trace search of failed traces, and a failed trace
/// against the typical trace of its operation, saved and pinned into a post-mortem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_groups_and_trace_comparison_pages() {
    let Some((driver, _dir, server)) = demo_for_browser() else {
        return;
    };
    let demo = ids(&server).await;
    let web = browser(&driver).await;

    // The versions table: 2.5.0 fails against 2.4.0; its verdict opens the canary page.
    web.goto(format!("{}/services/payment?range=1h", server.api))
        .await
        .unwrap();
    let verdict = web
        .find(By::Css("tr[data-version='2.5.0'] a.canary-verdict"))
        .await
        .expect("a verdict for the canary version");
    assert_eq!(
        verdict.attr("data-verdict").await.unwrap().as_deref(),
        Some("fail")
    );
    verdict.click().await.unwrap();
    wait_for_url(&web, "/canary?").await;
    assert!(
        web.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("range=1h"),
        "the window follows"
    );
    let section = web.find(By::Id("verdict")).await.unwrap();
    assert_eq!(
        section.attr("data-verdict").await.unwrap().as_deref(),
        Some("fail")
    );
    let outcomes: Vec<String> = {
        let mut out = Vec::new();
        for row in web
            .find_all(By::Css("table.metrics tr.metric"))
            .await
            .unwrap()
        {
            out.push(row.class_name().await.unwrap().unwrap_or_default());
        }
        out
    };
    assert_eq!(
        outcomes,
        ["metric fail", "metric fail"],
        "error rate and latency both fail"
    );
    shot(&web, "canary").await;
    // Its evidence: the canary's failed traces.
    web.find(By::LinkText("failed traces of payment 2.5.0"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/traces?").await;
    // The search it opens is filtered on the canary's version (its form shows the filter) and
    // finds the canary's failed traces.
    let attr = web
        .find(By::Css("input[name=attr]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(attr, "service.version=2.5.0");
    assert!(!web
        .find_all(By::Css("table.results tbody tr"))
        .await
        .unwrap()
        .is_empty());

    // Failed traces → what is different about them: the canary's version and instance top.
    web.goto(format!("{}/traces?status=error&range=1h", server.api))
        .await
        .unwrap();
    web.find(By::Id("what-is-different"))
        .await
        .expect("the search selects failed traces: the link is offered")
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/compare/groups?").await;
    let mut top = ranked_values(&web, 2).await;
    top.sort();
    assert_eq!(
        top,
        ["service.instance.id=payment-3", "service.version=2.5.0"]
    );
    shot(&web, "compare-groups").await;

    // A region dragged on the trace plot: the slow band (over 2 s) of the last 70 % of the
    // hour. Its spans are the failed checkouts' (status ERROR) through the canary.
    web.goto(format!("{}/traces?range=1h", server.api))
        .await
        .unwrap();
    let plot = web.find(By::Css("svg[data-region-href]")).await.unwrap();
    let rect = plot.rect().await.unwrap();
    let (w, h) = (rect.width, rect.height);
    let (x0, y0) = ((0.3 - 0.5) * w, (0.05 - 0.5) * h);
    let (x1, y1) = ((0.99 - 0.5) * w, (0.28 - 0.5) * h);
    web.action_chain()
        .move_to_element_with_offset(&plot, x0 as i64, y0 as i64)
        .click_and_hold()
        .move_by_offset((x1 - x0) as i64, (y1 - y0) as i64)
        .release()
        .perform()
        .await
        .unwrap();
    wait_for_url(&web, "/compare/groups?").await;
    let url = web.current_url().await.unwrap().to_string();
    for part in ["sel_from=", "sel_to=", "min_ms=", "max_ms=", "range=1h"] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let summary = web
        .find(By::Id("groups-summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(summary.contains("started "), "{summary}");
    let ranked = ranked_values(&web, 4).await;
    assert!(
        ranked.contains(&"status=ERROR".to_string())
            && ranked.contains(&"service.version=2.5.0".to_string()),
        "{ranked:?}"
    );
    shot(&web, "compare-groups-region").await;

    // A failed trace against a typical one of its operation.
    web.goto(format!("{}/traces/{}", server.api, demo.failed_trace))
        .await
        .unwrap();
    web.find(By::Id("compare-typical"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/compare?a=").await;
    let url = web.current_url().await.unwrap().to_string();
    assert!(
        !url.contains("typical"),
        "the address names both traces: {url}"
    );
    let summary = web
        .find(By::Id("compare-summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        summary.starts_with("B took ") && summary.contains(" less ("),
        "the typical trace is faster: {summary}"
    );
    let rows = web.find_all(By::Css("#aligned tbody tr")).await.unwrap();
    assert!(
        rows.len() >= demo.failed_span_count,
        "every span of A has a row"
    );
    shot(&web, "compare-traces").await;

    // Saved and pinned like any page, then into a post-mortem.
    save_pinned_view(&web, "Failed checkout against a typical one", None).await;
    add_to_new_postmortem(&web, "Payment canary").await;
    let embedded = web
        .find_all(By::Css(".pm-view .embedded #aligned tbody tr"))
        .await
        .unwrap();
    assert_eq!(
        embedded.len(),
        rows.len(),
        "the comparison, embedded from its evidence"
    );
    web.quit().await.unwrap();
    server.stop();
}

/// Issue 16's page: `/alerts` lists the demo's shipped rule and a firing one (payment-3 went
/// silent when its canary was pulled), with the alert's evidence link and the notification
/// log of a receiver that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_shows_rules_states_and_notifications() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--demo", "--demo-frozen", "--alert-eval-secs", "1"],
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/alert-rules", server.api))
        .json(&serde_json::json!({
            "name": "payment instance silent", "kind": "absence", "service": "payment",
            "group_by": "instance", "threshold": 120, "receivers": [{"webhook": dead}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    server
        .wait_for("/api/v1/alert-notifications", |v| {
            v["notifications"].as_array().is_some_and(|n| n.len() >= 3)
        })
        .await;
    let web = browser(&driver).await;
    web.goto(format!("{}/alerts", server.api)).await.unwrap();
    let states: Vec<(String, String)> = {
        let mut out = Vec::new();
        for row in web.find_all(By::Css("tr.alert-rule")).await.unwrap() {
            out.push((
                row.attr("data-rule").await.unwrap().unwrap_or_default(),
                row.attr("data-state").await.unwrap().unwrap_or_default(),
            ));
        }
        out
    };
    assert_eq!(
        states,
        [
            (
                "payment error rate (demo)".to_string(),
                "resolved".to_string()
            ),
            ("payment instance silent".to_string(), "firing".to_string())
        ]
    );
    let firing = web
        .find(By::Css(
            "tr[data-rule='payment instance silent'] .alert-row[data-state='firing']",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(firing.contains("instance=payment-3"), "{firing}");
    let notices = web
        .find_all(By::Css("table.notices tbody tr"))
        .await
        .unwrap();
    assert!(notices.len() >= 3);
    assert!(notices[0].text().await.unwrap().contains("failed: "));
    // Attempts are logged at their own times: the backoff shows (0.5 s, then 1 s).
    let times: Vec<String> = {
        let mut out = Vec::new();
        for row in notices.iter().take(3) {
            out.push(row.find(By::Css("td")).await.unwrap().text().await.unwrap());
        }
        out
    };
    assert_eq!(
        times.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "{times:?}"
    );
    // Each rule's value over the last hour: the demo rule's chart has its threshold and the
    // incident's firing span (replayed from the recorded hour) shaded.
    let chart = "div.alert-chart[data-rule='payment error rate (demo)']";
    let band = web
        .find(By::Css(format!("{chart} rect.firing-band")))
        .await
        .expect("the incident's firing span is shaded");
    let width: f64 = band.attr("width").await.unwrap().unwrap().parse().unwrap();
    assert!(
        width > 10.0,
        "about twelve minutes of an hour wide: {width}"
    );
    let threshold = web
        .find(By::Css(format!("{chart} g.threshold text")))
        .await
        .unwrap();
    assert_eq!(threshold.text().await.unwrap(), "threshold 5.0 %");
    assert!(!web
        .find_all(By::Css(format!("{chart} polyline.line")))
        .await
        .unwrap()
        .is_empty());
    // Its history beside the chart: fired in the incident, resolved after it (newest first).
    let mut changes = Vec::new();
    for row in web
        .find_all(By::Css(format!("{chart} table.alert-history tbody tr")))
        .await
        .unwrap()
    {
        changes.push(row.text().await.unwrap());
    }
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes[0].contains("firing → resolved"), "{changes:?}");
    assert!(changes[1].contains("inactive → firing"), "{changes:?}");
    shot(&web, "alerts").await;
    // A silence from the page: the alert's "silence" link fills the form with its labels.
    web.find(By::Css(
        "tr[data-rule='payment instance silent'] .alert-row a.silence-link",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_url(&web, "/alerts?silence=").await;
    let matchers = web
        .find(By::Css("#new-silence input[name='matchers']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(matchers.contains("instance=\"payment-3\""), "{matchers}");
    web.find(By::Css("#new-silence input[name='comment']"))
        .await
        .unwrap()
        .send_keys("restarting payment-3")
        .await
        .unwrap();
    web.find(By::Css("#new-silence button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/alerts#silences").await;
    let silence = web
        .find(By::Css("tr.silence[data-state='active']"))
        .await
        .expect("the new silence is active")
        .text()
        .await
        .unwrap();
    assert!(silence.contains("restarting payment-3"), "{silence}");
    let firing = web
        .find(By::Css(
            "tr[data-rule='payment instance silent'] .alert-row[data-state='firing']",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(firing.contains("silenced"), "{firing}");
    let (_, listed) = server.get("/api/v1/silences").await;
    assert_eq!(listed["silences"][0]["comment"], "restarting payment-3");
    shot(&web, "alerts-silenced").await;
    // A bad silence from the form is refused naming the problem.
    web.find(By::Css("#new-silence input[name='matchers']"))
        .await
        .unwrap()
        .send_keys("service=~(")
        .await
        .unwrap();
    web.find(By::Css("#new-silence button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&web, "/alerts/silences").await;
    let refusal = web
        .find(By::Tag("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refusal.contains("matchers[0].value:"), "{refusal}");
    web.goto(format!("{}/alerts", server.api)).await.unwrap();
    // The evidence link opens payment's page over the alert's window.
    web.find(By::Css(
        "tr[data-rule='payment instance silent'] .alert-row a",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_url(&web, "/services/payment?from=").await;
    // The incident record starts itself: its window is the alert's, its evidence pinned.
    web.goto(format!("{}/alerts", server.api)).await.unwrap();
    web.find(By::Css(
        "tr[data-rule='payment instance silent'] form.start-postmortem button",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_for_url(&web, "/postmortems/").await;
    let title = web
        .find(By::Id("pm-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.starts_with("payment instance silent ("), "{title}");
    assert!(title.contains("instance=payment-3"), "{title}");
    let views = web.find_all(By::Css(".pm-view")).await.unwrap();
    assert_eq!(
        views.len(),
        2,
        "the service page and the errors page, pinned"
    );
    shot(&web, "postmortem-from-alert").await;
    web.quit().await.unwrap();
    server.stop();
}
