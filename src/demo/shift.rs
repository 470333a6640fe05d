//! Moving every timestamp of an OTLP request by a fixed amount.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// Adds `by` to a timestamp that is set (0 means unset in OTLP).
fn add(t: &mut u64, by: u64) {
    if *t != 0 {
        *t += by;
    }
}

pub fn traces(request: &mut ExportTraceServiceRequest, by: u64) {
    for span in request
        .resource_spans
        .iter_mut()
        .flat_map(|r| r.scope_spans.iter_mut())
        .flat_map(|s| s.spans.iter_mut())
    {
        add(&mut span.start_time_unix_nano, by);
        add(&mut span.end_time_unix_nano, by);
        for event in &mut span.events {
            add(&mut event.time_unix_nano, by);
        }
    }
}

pub fn logs(request: &mut ExportLogsServiceRequest, by: u64) {
    for record in request
        .resource_logs
        .iter_mut()
        .flat_map(|r| r.scope_logs.iter_mut())
        .flat_map(|s| s.log_records.iter_mut())
    {
        add(&mut record.time_unix_nano, by);
        add(&mut record.observed_time_unix_nano, by);
    }
}

pub fn metrics(request: &mut ExportMetricsServiceRequest, by: u64) {
    for metric in request
        .resource_metrics
        .iter_mut()
        .flat_map(|r| r.scope_metrics.iter_mut())
        .flat_map(|s| s.metrics.iter_mut())
    {
        macro_rules! shift_points {
            ($points:expr) => {
                for p in $points {
                    add(&mut p.time_unix_nano, by);
                    add(&mut p.start_time_unix_nano, by);
                }
            };
        }
        match metric.data.as_mut() {
            Some(Data::Gauge(g)) => shift_points!(&mut g.data_points),
            Some(Data::Sum(s)) => shift_points!(&mut s.data_points),
            Some(Data::Histogram(h)) => shift_points!(&mut h.data_points),
            Some(Data::ExponentialHistogram(h)) => shift_points!(&mut h.data_points),
            Some(Data::Summary(s)) => shift_points!(&mut s.data_points),
            None => {}
        }
    }
}
