//! The Prometheus HTTP API under `/prometheus` over metrics with known values: name and
//! label mapping, rate/increase/irate, aggregations, histogram_quantile, scalar arithmetic,
//! labels/series endpoints, form POSTs as Grafana sends them, and errors in Prometheus'
//! envelope naming what is unsupported.

mod common;

use common::otlp::kv;
use common::{enc, shared_server, Server};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};

const SEC: u64 = 1_000_000_000;

/// One instance's metrics: a counter growing `per_second`, a gauge, and a latency
/// histogram whose buckets grow 5:4:1 (p50 = 0.1 s, p90 = 0.5 s), sampled every 15 s
/// for 5 minutes from `t0`.
fn instance(
    service: &str,
    instance: &str,
    route: &str,
    per_second: f64,
    gauge: f64,
    t0: u64,
) -> ResourceMetrics {
    let times: Vec<u64> = (0..=20).map(|k| t0 + k * 15 * SEC).collect();
    let counter = Metric {
        name: "shop.requests".into(),
        unit: "{request}".into(),
        data: Some(Data::Sum(Sum {
            data_points: times
                .iter()
                .enumerate()
                .map(|(k, t)| NumberDataPoint {
                    attributes: vec![kv("http.route", route)],
                    start_time_unix_nano: t0 - 60 * SEC,
                    time_unix_nano: *t,
                    value: Some(number_data_point::Value::AsDouble(
                        1000.0 + per_second * 15.0 * k as f64,
                    )),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let cpu = Metric {
        name: "system.cpu.utilization".into(),
        unit: "1".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: times
                .iter()
                .map(|t| NumberDataPoint {
                    time_unix_nano: *t,
                    value: Some(number_data_point::Value::AsDouble(gauge)),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let latency = Metric {
        name: "shop.latency".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: times
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let k = k as u64 + 1;
                    HistogramDataPoint {
                        start_time_unix_nano: t0 - 60 * SEC,
                        time_unix_nano: *t,
                        count: 100 * k,
                        sum: Some(20.0 * k as f64),
                        bucket_counts: vec![50 * k, 40 * k, 10 * k, 0],
                        explicit_bounds: vec![0.1, 0.5, 1.0],
                        ..Default::default()
                    }
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service),
                kv("service.instance.id", instance),
            ],
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            metrics: vec![counter, cpu, latency],
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn prom(server: &Server, path: &str) -> (u16, Value) {
    server.get(&format!("/prometheus/api/v1/{path}")).await
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A sample value (Prometheus sends text) as a number.
fn num(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}

fn close(v: &Value, expected: f64) -> bool {
    (num(v) - expected).abs() < 1e-9
}

/// The shared server (`common::shared_server`) holding two instances' metrics from ten
/// minutes ago, sent once; returns it and the first minute of the data.
async fn fixture() -> (&'static Server, u64) {
    static LOADED: tokio::sync::OnceCell<u64> = tokio::sync::OnceCell::const_new();
    let server = shared_server(&["--flush-age-ms", "300"]);
    let t0 = *LOADED
        .get_or_init(|| async {
            let now = common::otlp::now_ns();
            let t0 = (now / (60 * SEC) - 10) * 60 * SEC;
            let request = ExportMetricsServiceRequest {
                resource_metrics: vec![
                    instance("checkout", "checkout-1", "/pay", 2.0, 0.25, t0),
                    instance("cart", "cart-1", "/add", 1.0, 0.75, t0),
                ],
            };
            let response = server
                .post_protobuf("/v1/metrics", request.encode_to_vec())
                .await;
            assert_eq!(response.status(), 200);
            server
                .wait_for("/prometheus/api/v1/label/job/values", |v| {
                    v["data"].as_array().is_some_and(|a| a.len() == 2)
                })
                .await;
            t0
        })
        .await;
    (server, t0)
}

/// Names by the OpenTelemetry rules; every one listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_follow_the_opentelemetry_rules() {
    let (server, _) = fixture().await;
    let (status, names) = prom(server, "label/__name__/values").await;
    assert_eq!(status, 200);
    assert_eq!(
        names,
        json!({"status": "success", "data": [
            "shop_latency_seconds_bucket", "shop_latency_seconds_count", "shop_latency_seconds_sum",
            "shop_requests_total", "system_cpu_utilization_ratio"]})
    );
}

/// An instant gauge selection: the full answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_gauge_selection() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    let (status, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("system_cpu_utilization_ratio{job=\"checkout\"}"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "vector", "result": [{
            "metric": {"__name__": "system_cpu_utilization_ratio", "job": "checkout", "instance": "checkout-1"},
            "value": [secs(mid), "0.25"],
        }]}})
    );
}

/// rate over a counter, summed by job, over a range: 2/s and 1/s at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_over_a_counter_summed_by_job() {
    let (server, t0) = fixture().await;
    let (status, v) = prom(
        server,
        &format!(
            "query_range?query={}&start={}&end={}&step=60",
            enc("sum by (job) (rate(shop_requests_total[1m]))"),
            secs(t0 + 2 * 60 * SEC),
            secs(t0 + 4 * 60 * SEC)
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{v}");
    for (series, rate) in result.iter().zip([1.0, 2.0]) {
        let values = series["values"].as_array().unwrap();
        assert_eq!(values.len(), 3, "{series}");
        assert!(values.iter().all(|p| close(&p[1], rate)), "{series}");
        assert_eq!(series["metric"].as_object().unwrap().len(), 1);
    }
    assert_eq!(result[0]["metric"], json!({"job": "cart"}));
    assert_eq!(result[0]["values"][0][0], json!(secs(t0 + 2 * 60 * SEC)));
}

/// increase and irate agree with the counter's slope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increase_and_irate_agree_with_the_slope() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("increase(shop_requests_total{job=\"checkout\"}[1m])"),
            secs(mid)
        ),
    )
    .await;
    assert!(close(&v["data"]["result"][0]["value"][1], 120.0), "{v}");
    assert_eq!(
        v["data"]["result"][0]["metric"],
        json!({"job": "checkout", "instance": "checkout-1", "http_route": "/pay"})
    );
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("irate(shop_requests_total{http_route=~\"/a.*\"}[1m])"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    assert!(close(&v["data"]["result"][0]["value"][1], 1.0), "{v}");
}

/// histogram_quantile over bucket rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_quantile_over_bucket_rates() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("histogram_quantile(0.9, sum by (le) (rate(shop_latency_seconds_bucket[1m])))"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"]["result"][0]["metric"], json!({}));
    assert!(close(&v["data"]["result"][0]["value"][1], 0.5), "{v}");
}

/// Vector and scalar arithmetic, comparisons, aggregations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_and_scalar_arithmetic_comparisons_aggregations() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("system_cpu_utilization_ratio{job=\"cart\"} * 100"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {"job": "cart", "instance": "cart-1"}, "value": [secs(mid), "75"]}])
    );
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("system_cpu_utilization_ratio > 0.5"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "cart");
    let (_, v) = prom(
        server,
        &format!(
            "query?query={}&time={}",
            enc("count(system_cpu_utilization_ratio) + 1"),
            secs(mid)
        ),
    )
    .await;
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [secs(mid), "3"]}])
    );
    let (_, v) = prom(
        server,
        &format!("query?query={}&time={}", enc("(1 + 2) * 3"), secs(mid)),
    )
    .await;
    assert_eq!(
        v["data"],
        json!({"resultType": "scalar", "result": [secs(mid), "9"]})
    );
}

/// Grafana POSTs its queries as forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_posts_its_queries_as_forms() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    let response = reqwest::Client::new()
        .post(format!("{}/prometheus/api/v1/query", server.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "query={}&time={}",
            enc("avg(system_cpu_utilization_ratio)"),
            secs(mid)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "0.5", "{v}");
}

/// labels and series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_series() {
    let (server, t0) = fixture().await;
    let window = format!("start={}&end={}", secs(t0), secs(t0 + 6 * 60 * SEC));
    let (_, v) = prom(
        server,
        &format!("labels?match[]=shop_requests_total&{window}"),
    )
    .await;
    assert_eq!(
        v,
        json!({"status": "success", "data": ["__name__", "http_route", "instance", "job"]})
    );
    let (_, v) = prom(server, &format!("label/job/values?{window}")).await;
    assert_eq!(v["data"], json!(["cart", "checkout"]));
    let (_, v) = prom(
        server,
        &format!(
            "series?match[]={}&{window}",
            enc("{__name__=\"shop_requests_total\",job!=\"cart\"}")
        ),
    )
    .await;
    assert_eq!(
        v,
        json!({"status": "success", "data": [{
            "__name__": "shop_requests_total", "http_route": "/pay", "instance": "checkout-1", "job": "checkout"}]})
    );
    let (_, v) = prom(server, "status/buildinfo").await;
    assert_eq!(v["status"], "success");
}

/// Errors: Prometheus' envelope, naming what is wrong or unsupported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_prometheus_envelope() {
    let (server, t0) = fixture().await;
    let mid = t0 + 3 * 60 * SEC;
    for (query, status, kind, needle) in [
        (
            "shop_requests_total{",
            400,
            "bad_data",
            "invalid parameter \"query\"",
        ),
        (
            "shop_requests_total and system_cpu_utilization_ratio",
            422,
            "execution",
            "and",
        ),
        ("topk(1, shop_requests_total)", 422, "execution", "topk"),
        (
            "shop_requests_total / system_cpu_utilization_ratio",
            422,
            "execution",
            "two vectors",
        ),
        ("abs(shop_requests_total)", 422, "execution", "abs"),
        ("shop_requests_total[5m]", 422, "execution", "range vector"),
    ] {
        let (got, v) = prom(
            server,
            &format!("query?query={}&time={}", enc(query), secs(mid)),
        )
        .await;
        assert_eq!(got, status, "{query}: {v}");
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], kind, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{query}: {v}"
        );
    }
    let (status, v) = prom(server, "query_range?query=up&start=10&end=5&step=1").await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));
    let (status, v) = prom(server, "series").await;
    assert_eq!((status, v["errorType"].as_str()), (400, Some("bad_data")));
}
