//! Percentiles never leave what was observed: a service whose requests all took 35.0 ms shows
//! 35.0 ms at p50, p95 and p99 (the histogram bucket's middle said 35.7 ms), and a p99 is never
//! above the slowest request (the bucket's bound said 2.72 s over spans of at most 2.538 s).

mod common;

use common::otlp::{span, traces};
use common::Server;
use prost::Message;

/// Server spans of `service` with the given durations (ms), each its own trace.
async fn send(server: &Server, service: &str, durations_ms: &[u64], seed: u8) {
    let spans = durations_ms
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let mut trace_id = vec![seed; 16];
            trace_id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let mut s = span(
                trace_id,
                vec![seed, 1, 2, 3, 4, 5, 6, i as u8 + 1],
                "GET /x",
            );
            s.end_time_unix_nano = s.start_time_unix_nano + ms * 1_000_000;
            s
        })
        .collect();
    let response = server
        .post_protobuf("/v1/traces", traces(service, spans).encode_to_vec())
        .await;
    assert_eq!(response.status(), 200);
}

/// p50, p95, p99 and request count of `service` over the last hour.
async fn percentiles(server: &Server, service: &str, requests: u64) -> [i64; 3] {
    let detail = server
        .wait_for(&format!("/api/v1/services/{service}"), |v| {
            v["overview"]["red"]["requests"].as_u64() == Some(requests)
        })
        .await;
    let red = &detail["overview"]["red"];
    ["p50_nano", "p95_nano", "p99_nano"].map(|p| red[p].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_stay_within_the_observed_durations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));

    send(&server, "shipping", &[35; 40], 1).await;
    assert_eq!(
        percentiles(&server, "shipping", 40).await,
        [35_000_000; 3],
        "every request took 35.0 ms"
    );

    // Five slow requests of 2.538 s: p99 falls in their bucket, whose middle is 2.72 s.
    let mut payment: Vec<u64> = (0..95).map(|i| 10 + i % 5).collect();
    payment.extend([2_538; 5]);
    send(&server, "payment", &payment, 2).await;
    let [p50, _, p99] = percentiles(&server, "payment", 100).await;
    assert!(
        (2_400_000_000..=2_538_000_000).contains(&p99),
        "p99 {p99} not at the slow requests or above the slowest"
    );
    assert!(
        (10_000_000..=14_000_000).contains(&p50),
        "p50 {p50} outside the 10–14 ms the requests took"
    );
    server.stop();
}

/// The nearest-rank `q`-quantile of `values`.
fn exact(values: &mut [i64], q: f64) -> i64 {
    values.sort_unstable();
    let rank = (q * values.len() as f64).ceil().max(1.0) as usize;
    values[rank - 1]
}

/// Every percentile the demo shows — each service's and each of its versions' p50/p95/p99 —
/// is within 1 % of the exact percentile of the spans the scenario generated, and never above
/// their maximum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_percentiles_are_within_one_percent_of_exact() {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--demo", "--demo-frozen"]);
    let scenario =
        sightline::demo::scenario::Generator::new(sightline::demo::DEFAULT_SEED).generate();
    // Durations of the server and consumer spans (RED's) per service and per (service, version).
    let mut of_service: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut of_version: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for rs in scenario.traces.iter().flat_map(|r| &r.resource_spans) {
        let attr = |key: &str| {
            rs.resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == key))
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let (service, version) = (attr("service.name"), attr("service.version"));
        for s in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            if s.kind == 2 || s.kind == 5 {
                let d = (s.end_time_unix_nano - s.start_time_unix_nano) as i64;
                of_service.entry(service.clone()).or_default().push(d);
                of_version
                    .entry((service.clone(), version.clone()))
                    .or_default()
                    .push(d);
            }
        }
    }
    let window = format!(
        "start={}&end={}",
        common::otlp::now_ns() - 3 * 3_600_000_000_000,
        common::otlp::now_ns() + 60_000_000_000
    );
    let check = |what: String, red: &serde_json::Value, durations: &mut Vec<i64>| {
        let max = *durations.iter().max().unwrap();
        for (field, q) in [("p50_nano", 0.5), ("p95_nano", 0.95), ("p99_nano", 0.99)] {
            let shown = red[field]
                .as_i64()
                .unwrap_or_else(|| panic!("{what}: no {field}"));
            let want = exact(durations, q);
            let error = (shown - want).abs() as f64 / want as f64;
            assert!(
                error <= 0.01,
                "{what} {field}: {shown} vs exact {want} ({:.2} %)",
                error * 100.0
            );
            assert!(
                shown <= max,
                "{what} {field}: {shown} above the slowest {max}"
            );
        }
    };
    for (service, durations) in &mut of_service {
        let path = format!("/api/v1/services/{service}?{window}");
        let detail = server
            .wait_for(&path, |v| {
                v["overview"]["red"]["requests"].as_u64() == Some(durations.len() as u64)
            })
            .await;
        check(service.clone(), &detail["overview"]["red"], durations);
        for version in detail["versions"].as_array().unwrap() {
            let key = version["key"].as_str().unwrap().to_string();
            let durations = of_version.get_mut(&(service.clone(), key.clone())).unwrap();
            check(format!("{service} {key}"), &version["red"], durations);
        }
    }
}
