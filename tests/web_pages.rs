//! HTML-level tests of every page, without a browser: status, key elements, escaping. The
//! tests share one demo server (`common::shared_demo`); only the hostile-text case adds
//! records, under services no other case looks at.

mod common;

use common::demo::{count, ids, link_with, page, send_log, unescape};
use common::{enc, shared_demo};

/// Trace search: rows, the scatter plot, and the error filter showing the incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_lists_rows_plots_dots_and_filters_errors() {
    let server = shared_demo();
    let demo = ids(server).await;
    let (status, html) = page(server, "/traces").await;
    assert_eq!(status, 200);
    assert!(count(&html, "class=\"trace-row\"") >= 20, "result rows");
    assert!(
        html.contains("<svg") && html.contains("class=\"dot"),
        "scatter plot"
    );
    assert!(
        html.contains("class=\"dot err\""),
        "the incident's failed traces are red dots"
    );
    let (_, html) = page(server, "/traces?service=payment&status=error").await;
    assert!(
        html.contains(&demo.failed_trace),
        "the failed checkout is found"
    );
    assert!(html.contains("badge err"));
    let (status, html) = page(server, "/traces?min_ms=abc").await;
    assert_eq!(status, 400);
    assert!(html.contains("role=\"alert\"") && html.contains("milliseconds"));
}

/// Trace view: a row per span, the error, the critical path, span logs inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_shows_its_spans_error_critical_path_and_span_logs() {
    let server = shared_demo();
    let demo = ids(server).await;
    let (status, html) = page(server, &format!("/traces/{}", demo.failed_trace)).await;
    assert_eq!(status, 200);
    assert_eq!(
        count(&html, "<details class=\"span"),
        demo.failed_span_count
    );
    assert!(html.contains("span-error") && html.contains("critical"));
    assert!(
        html.contains("CardProcessorTimeout") && html.contains("CardClient.java"),
        "exception and stack trace"
    );
    assert!(
        html.contains("class=\"span-log\""),
        "logs inline under their span"
    );
}

/// Stitched view: both trace ids, the linked trace marked as separate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stitched_trace_shows_both_ids_and_marks_the_linked_one() {
    let server = shared_demo();
    let demo = ids(server).await;
    let (_, html) = page(server, &format!("/traces/{}", demo.stitched_trace)).await;
    assert!(html.contains(&demo.stitched_trace) && html.contains(&demo.linked_trace));
    assert_eq!(count(&html, "class=\"wf-trace\""), 1);
    assert_eq!(
        count(&html, "<details class=\"span"),
        demo.stitched_span_count
    );
}

/// Unknown and malformed trace ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_trace_ids_are_404_and_400() {
    let server = shared_demo();
    let (status, html) = page(server, &format!("/traces/{}", "ab".repeat(16))).await;
    assert_eq!(status, 404);
    assert!(html.contains("Trace not found"));
    let (status, _) = page(server, "/traces/not-a-trace").await;
    assert_eq!(status, 400);
}

/// Logs: a correlation id gives every log of the request in time order, and the trace link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correlation_id_finds_every_log_of_the_request() {
    let server = shared_demo();
    let demo = ids(server).await;
    let (status, html) = page(
        server,
        &format!(
            "/logs?q={}",
            enc(&format!("correlation_id:{}", demo.correlation_id))
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(count(&html, "class=\"log-row\""), demo.correlation_logs);
    assert!(html.contains("Open the stitched trace"));
}

/// A word search highlights the word and draws the histogram; a bad query or a miss says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_search_highlights_words_and_explains_misses() {
    let server = shared_demo();
    let (_, html) = page(server, &format!("/logs?q={}", enc("timed out"))).await;
    assert!(html.contains("<mark>timed</mark>") && html.contains("class=\"bar\""));
    // Bad query: inline error, not a 500. No match: says so.
    let (status, html) = page(server, &format!("/logs?q={}", enc("\"unclosed"))).await;
    assert_eq!(status, 400);
    assert!(html.contains("role=\"alert\"") && html.contains("invalid query"));
    // The query is shown again with a caret under where it stops parsing.
    let caret = &html[html.find("id=\"query-caret\">").expect("a caret")..];
    assert!(
        caret.contains("&#34;unclosed") || caret.contains("&quot;unclosed"),
        "{caret}"
    );
    assert!(caret.contains('^'), "{caret}");
    let (_, html) = page(server, "/logs?q=zzznomatchzzz").await;
    assert!(html.contains("No log record matches"));
    assert!(!html.contains("field-hint"));
    // `field=value` finds nothing and offers `field:value`, in the same window.
    let (_, html) = page(
        server,
        &format!("/logs?q={}&range=1h", enc("service=zzznone")),
    )
    .await;
    assert!(html.contains("No log record matches"), "{html}");
    assert!(
        html.contains("href=\"/logs?q=service%3Azzznone&#38;range=1h\""),
        "{html}"
    );
}

/// Pages: the next page continues where the first stopped, without overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_pages_continue_without_overlap() {
    let server = shared_demo();
    let (_, first) = page(server, "/logs?range=1h").await;
    assert_eq!(count(&first, "class=\"log-row\""), 100);
    let next = link_with(&first, "rel=\"next\"").expect("a next page");
    assert!(next.contains("before="), "{next}");
    let (status, second) = page(server, &next).await;
    assert_eq!(status, 200);
    assert!(count(&second, "class=\"log-row\"") > 0);
    let last_of_first = first
        .rfind("class=\"time\">")
        .map(|i| &first[i + 13..i + 36])
        .unwrap();
    let first_of_second = second
        .find("<tbody id=\"log-rows\">")
        .and_then(|t| {
            second[t..]
                .find("class=\"time\">")
                .map(|i| &second[t + i + 13..t + i + 36])
        })
        .unwrap();
    assert!(
        first_of_second <= last_of_first,
        "{first_of_second} after {last_of_first}"
    );
}

/// Hostile text is escaped everywhere and long values are cut with a way to see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_escaped_and_long_values_are_cut() {
    let server = shared_demo();
    send_log(
        server,
        "evil<svc>",
        "<script>window.__pwned=1</script> \u{1b}[31m pwned",
        ("x\"><img src=x onerror=alert(1)>", "v"),
    )
    .await;
    let huge = format!("pwnedhuge {}", "A".repeat(1_000_000));
    send_log(server, "bulk", &huge, ("k", "v")).await;
    let (status, html) = page(server, "/logs?q=pwned").await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("<script>window.__pwned"),
        "script tag must be escaped"
    );
    assert!(
        !html.contains("<img src=x"),
        "attribute keys are escaped too"
    );
    let shown = unescape(&html.replace("<mark>", "").replace("</mark>", ""));
    assert!(
        shown.contains("<script>window.__pwned=1</script>"),
        "the text is shown literally"
    );
    assert!(shown.contains("evil<svc>"));
    let (status, html) = page(server, "/logs?q=pwnedhuge").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("show all (1000010 bytes)"),
        "a 1 MB body is cut and expandable"
    );
}

/// Static assets are served from the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_assets_are_served_from_the_binary() {
    let server = shared_demo();
    let (status, js) = page(server, "/static/app.js").await;
    assert_eq!(status, 200);
    assert!(js.contains("EventSource"));
}

/// Trace search filters on resource attributes too: the canary's version and instance find
/// the incident's failed checkouts (both were kept in fields of their own and found nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_filters_on_resource_attributes() {
    let server = shared_demo();
    let demo = ids(server).await;
    let found = |attribute: &str| {
        let query = format!("status=error&limit=1000&attribute={}", enc(attribute));
        async move { trace_ids(server, &query).await }
    };
    for attribute in ["service.version=2.5.0", "service.instance.id=payment-3"] {
        let traces = found(attribute).await;
        assert!(
            traces.contains(&demo.failed_trace),
            "{attribute} finds the failed checkout among {} traces",
            traces.len()
        );
    }
    assert!(found("service.version=9.9.9").await.is_empty());
    // The traces page takes the same filter.
    let (status, html) = page(
        server,
        &format!(
            "/traces?status=error&attribute={}",
            enc("service.version=2.5.0")
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(count(&html, "class=\"trace-row\"") > 0, "rows on the page");
}

/// With a service and an operation chosen, the duration bounds are that span's: "cart
/// `GET /cart/{user}` over 500 ms" used to return traces whose cart spans took 9–14 ms
/// (because the whole trace took longer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_bound_applies_to_the_chosen_span() {
    let server = shared_demo();
    let search = |min_ms: u64| async move {
        let query = format!(
            "service=cart&operation={}&min_duration_ms={min_ms}&limit=200",
            enc("GET /cart/{user}")
        );
        trace_ids(server, &query).await
    };
    let slowest_cart_span = |trace: serde_json::Value| {
        trace["spans"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["resource"]["service_name"] == "cart" && s["name"] == "GET /cart/{user}")
            .map(|s| s["duration_nano"].as_i64().unwrap())
            .max()
            .unwrap_or(0)
    };
    for (min_ms, at_least_one) in [(1, true), (500, false)] {
        let traces = search(min_ms).await;
        assert!(
            !at_least_one || !traces.is_empty(),
            "cart spans over {min_ms} ms exist"
        );
        for id in traces {
            let (_, trace) = server.get(&format!("/api/v1/traces/{id}")).await;
            let slowest = slowest_cart_span(trace);
            assert!(
                slowest >= min_ms as i64 * 1_000_000,
                "trace {id} found for cart spans over {min_ms} ms, its slowest took {slowest} ns"
            );
        }
    }
}

/// The trace ids `GET /api/v1/traces?{query}` answers.
async fn trace_ids(server: &common::Server, query: &str) -> Vec<String> {
    let (status, body) = server.get(&format!("/api/v1/traces?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect()
}

/// The navigation reaches every section, annotations included, and says what its last link
/// does (it logs out; there is no account page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigation_reaches_every_section() {
    let server = shared_demo();
    let (status, html) = page(server, "/annotations").await;
    assert_eq!(status, 200);
    let nav = &html[html.find("<nav>").unwrap()..html.find("</nav>").unwrap()];
    for href in [
        "/",
        "/map",
        "/errors",
        "/traces",
        "/logs",
        "/explore",
        "/views",
        "/postmortems",
        "/annotations",
    ] {
        assert!(nav.contains(&format!("href=\"{href}\"")), "{href} in {nav}");
    }
    assert!(
        nav.contains("href=\"/annotations\" class=\"active\""),
        "the annotations page marks its own link: {nav}"
    );
    // "Account" opens the account page; logging out is its own link.
    assert!(
        nav.contains("href=\"/logout\" class=\"account\">Log out</a>"),
        "{nav}"
    );
    assert!(nav.contains("href=\"/account\" >Account</a>"), "{nav}");
}

/// A post-mortem reads like one: summary, impact, root cause and action items before the
/// timeline and the evidence; "accept all" takes every suggestion at once; printing needs no
/// inline script (the page's CSP would block it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postmortem_reads_in_order_and_accepts_all_suggestions() {
    let server = shared_demo();
    let now = common::otlp::now_ns() as i64;
    let (status, pm) = common::notebook::send_json(
        server,
        "POST",
        "/api/v1/postmortems",
        serde_json::json!({"title": "accept all", "incident_start": now - 3_600_000_000_000,
                           "incident_end": now}),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let id = pm["id"].as_i64().unwrap();
    let (_, pending) = server
        .get(&format!("/api/v1/postmortems/{id}/suggestions"))
        .await;
    let pending = pending["suggestions"].as_array().unwrap().len();
    assert!(pending > 0, "the demo incident suggests entries");

    let (status, html) = page(server, &format!("/postmortems/{id}")).await;
    assert_eq!(status, 200);
    let at = |marker: &str| {
        html.find(marker)
            .unwrap_or_else(|| panic!("{marker} on the page"))
    };
    assert!(at("id=\"pm-summary\"") < at("id=\"pm-impact\""));
    assert!(at("id=\"pm-impact\"") < at("id=\"pm-root-cause\""));
    assert!(at("id=\"pm-root-cause\"") < at("id=\"action-items\""));
    assert!(at("id=\"action-items\"") < at("<h2>Timeline"));
    assert!(at("<h2>Timeline") < at("<h2>Evidence"));
    assert!(
        html.contains(&format!("Accept all {pending}")),
        "one button for all"
    );
    assert!(html.contains("id=\"print-page\"") && !html.contains("onclick="));

    let (status, accepted) = common::notebook::send_json(
        server,
        "POST",
        &format!("/api/v1/postmortems/{id}/suggestions/accept-all"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["accepted"].as_u64(), Some(pending as u64));
    assert!(accepted["postmortem"]["timeline"].as_array().unwrap().len() >= pending);
    let (_, left) = server
        .get(&format!("/api/v1/postmortems/{id}/suggestions"))
        .await;
    assert_eq!(left["suggestions"].as_array().unwrap().len(), 0);
    let (_, html) = page(server, &format!("/postmortems/{id}")).await;
    assert!(
        !html.contains("id=\"accept-all\""),
        "nothing left to accept"
    );
}

/// The account page without users: nobody signs in, and the page says so and how to add one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_says_who_is_signed_in() {
    let server = shared_demo();
    let (status, html) = page(server, "/account").await;
    assert_eq!(status, 200);
    assert!(html.contains("Nobody is signed in"), "{html}");
    assert!(html.contains("sightline user add"));
    let (_, overview) = page(server, "/").await;
    assert!(
        overview.contains("<a href=\"/account\""),
        "no Account in the navigation"
    );
}

/// Trace search says how many traces it found and pages through all of them: over the demo's
/// hour every trace the scenario generated is on exactly one page and is one dot of the plot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_counts_and_pages_through_every_trace() {
    let server = shared_demo();
    let scenario =
        sightline::demo::scenario::Generator::new(sightline::demo::DEFAULT_SEED).generate();
    let generated: std::collections::BTreeSet<String> = scenario
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.trace_id.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert!(
        generated.len() > 50,
        "the demo has more than one page of traces"
    );
    let (status, html) = page(server, "/traces?range=6h").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("Traces 1–50 of {}, newest first", generated.len())),
        "the count of {} traces is not shown",
        generated.len()
    );
    assert_eq!(
        count(&html, "<circle class=\"dot"),
        generated.len(),
        "one dot per trace"
    );
    assert!(!html.contains("id=\"plot-cut\""));
    let mut seen = std::collections::BTreeSet::new();
    let mut html = html;
    let mut pages = 0;
    loop {
        pages += 1;
        for part in html.split("<tr class=\"trace-row\" data-trace=\"").skip(1) {
            let id = part.split('"').next().unwrap_or_default().to_string();
            assert!(seen.insert(id.clone()), "trace {id} listed twice");
        }
        let Some(older) = link_with(&html, "rel=\"next\"") else {
            break;
        };
        assert!(older.contains("range=6h"), "{older}");
        html = page(server, &older).await.1;
        assert!(pages < 100, "paging does not end");
    }
    assert_eq!(seen, generated, "the pages list every generated trace once");
    assert_eq!(pages, generated.len().div_ceil(50));
}

/// A view's own note (written when it was saved) stays with it in a post-mortem, beside the
/// note written when it was added there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_views_own_note_shows_in_the_postmortem() {
    let server = shared_demo();
    let now = common::otlp::now_ns() as i64;
    let (status, view) = common::notebook::send_json(
        server,
        "POST",
        "/api/v1/views",
        serde_json::json!({"name": "payment errors", "note": "2.5.0 only, on payment-3",
                           "url": "/services/payment", "start": now - 3_600_000_000_000,
                           "end": now}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let (status, pm) = common::notebook::send_json(
        server,
        "POST",
        "/api/v1/postmortems",
        serde_json::json!({"title": "notes kept"}),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let id = pm["id"].as_i64().unwrap();
    let (status, added) = common::notebook::send_json(
        server,
        "POST",
        &format!("/api/v1/postmortems/{id}/views"),
        serde_json::json!({"view_id": view["id"], "note": "the canary, seen first here"}),
    )
    .await;
    assert!(status == 200 || status == 201, "{added}");
    let (_, html) = page(server, &format!("/postmortems/{id}")).await;
    let evidence = &html[html.find("<h2>Evidence").unwrap()..];
    assert!(
        evidence.contains("2.5.0 only, on payment-3"),
        "the view's note is dropped"
    );
    assert!(evidence.contains("the canary, seen first here"));
}

/// Pinning a correlation view keeps that request's records, not every record of its window,
/// and the pinned copy shows the same lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_correlation_view_keeps_only_its_request() {
    let server = shared_demo();
    let demo = ids(server).await;
    let spans = server
        .get(&format!(
            "/api/v1/traces?correlation_id={}&limit=100",
            enc(&demo.correlation_id)
        ))
        .await
        .1;
    let now = common::otlp::now_ns() as i64;
    let url = format!(
        "/logs?q={}",
        enc(&format!("correlation_id:{}", demo.correlation_id))
    );
    let (status, view) = common::notebook::send_json(
        server,
        "POST",
        "/api/v1/views",
        serde_json::json!({"name": "one order", "url": url, "pin": true,
                           "start": now - 3 * 3_600_000_000_000_i64, "end": now}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let rows = view["pin"]["rows"].as_u64().expect("pinned at once");
    let span_count: u64 = spans["traces"]
        .as_array()
        .map(|t| t.len() as u64)
        .unwrap_or(0);
    assert!(span_count > 0, "{spans}");
    // Its logs and its spans (a handful per trace), against thousands in the window.
    assert!(
        rows >= demo.correlation_logs as u64 && rows < 200,
        "{rows} records pinned for {} log lines",
        demo.correlation_logs
    );
    let (status, html) = page(server, &format!("/views/{}/open", view["id"])).await;
    assert_eq!(status, 200);
    assert_eq!(count(&html, "<tr class=\"log-row\""), demo.correlation_logs);
}
