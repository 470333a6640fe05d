//! Bad metric points are stored by the documented rules and never break a query or a chart:
//! NaN/Inf values are skipped, histograms whose bucket counts do not match their bounds are
//! skipped, a cumulative counter that goes down counts as a reset.

mod common;

use common::otlp::kv;
use common::Server;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point::Value as NumberValue, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn number(t: u64, start: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: t,
        start_time_unix_nano: start,
        value: Some(NumberValue::AsDouble(v)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_inf_bad_buckets_and_resets_do_not_break_anything() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let now = common::otlp::now_ns();
    let s = 1_000_000_000u64;
    let t0 = now - 120 * s;
    let metrics = vec![
        Metric {
            name: "temperature".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![
                    number(t0, 0, 20.0),
                    number(t0 + s, 0, f64::NAN),
                    number(t0 + 2 * s, 0, f64::INFINITY),
                    number(t0 + 3 * s, 0, 22.0),
                ],
            })),
            ..Default::default()
        },
        Metric {
            name: "requests_total".into(),
            // 10 → 15 (+5), then a restart with the same start time but a lower value (reset: +4).
            data: Some(Data::Sum(Sum {
                data_points: vec![
                    number(t0, t0, 10.0),
                    number(t0 + 10 * s, t0, 15.0),
                    number(t0 + 20 * s, t0, 4.0),
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "latency".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        time_unix_nano: t0,
                        count: 3,
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![10.0, 20.0],
                        ..Default::default()
                    },
                    HistogramDataPoint {
                        time_unix_nano: t0 + s,
                        count: 4,
                        bucket_counts: vec![0, 4, 0],
                        explicit_bounds: vec![10.0, 20.0],
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
    ];
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "sensor")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = server
        .post_protobuf("/v1/metrics", request.encode_to_vec())
        .await;
    assert_eq!(r.status(), 200, "bad points are stored, not refused");

    let window = format!(
        "start={}&end={}&step=600",
        (t0 - 60 * s) / s,
        (now + 60 * s) / s
    );
    let (status, gauge) = server
        .get(&format!("/api/v1/metrics/query?name=temperature&{window}"))
        .await;
    assert_eq!(status, 200);
    let points = gauge["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(
        points[0][1].as_f64(),
        Some(21.0),
        "NaN and Inf are skipped: avg of 20 and 22"
    );

    let (_, counter) = server
        .get(&format!(
            "/api/v1/metrics/query?name=requests_total&{window}"
        ))
        .await;
    let increase: f64 = counter["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap() * 600.0)
        .sum();
    assert!(
        (increase - 19.0).abs() < 1e-6,
        "10 (started in the window) + 5 + 4 after the reset, got {increase}"
    );

    let (_, hist) = server
        .get(&format!("/api/v1/metrics/query?name=latency&{window}"))
        .await;
    let p50 = hist["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["value"] == "p50")
        .unwrap()["points"][0][1]
        .as_f64()
        .unwrap();
    assert_eq!(p50, 15.0, "only the well-formed histogram point counts");

    // After the flush, the same coarse queries read the one-minute points and agree.
    let before = [gauge, counter, hist];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !dir.path().join("data/store/metrics_1m").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "one-minute points were never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut after = Vec::new();
    for name in ["temperature", "requests_total", "latency"] {
        after.push(
            server
                .get(&format!("/api/v1/metrics/query?name={name}&{window}"))
                .await
                .1,
        );
    }
    assert_eq!(before.to_vec(), after);

    let (status, body) = server
        .get(&format!(
            "/api/v1/metrics/query?name=no_such_metric&{window}"
        ))
        .await;
    assert_eq!(status, 404, "{body}");
    let page = reqwest::get(format!("{}/services/sensor", server.api))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("NaN") && !html.contains("Infinity"),
        "charts never show non-finite numbers"
    );
    server.stop();
}
