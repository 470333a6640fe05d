//! The live demo: after the recorded hour, `serve --demo` goes on generating the same shop's
//! traffic in real time, so instances stay up, live tail moves and the incident comes back.
//!
//! Real time after the recorded hour is cut into cycles of `--demo-incident-every` minutes
//! (60 by default). The last 25 minutes of a cycle replay minutes 35–60 of the scenario (the
//! canary deploy at 35, the incident from 40 to 52, the recovery); the minutes before them are
//! quiet minutes of the scenario's first 35. With 60-minute cycles every cycle is the
//! scenario's hour again. Records are sent through the receiver as real time passes them
//! (spans when they end, logs and metric points at their time), as exporters would.

use prost::Message;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use tokio_util::sync::CancellationToken;

use super::scenario::{self, Generator, Scenario};
use super::shift;
use crate::ingest::{Receiver, Sender};

const MINUTE: u64 = 60_000_000_000;
/// Minutes of the scenario a cycle ends with: the canary deploy (35) to the end of the hour.
const INCIDENT_MINUTES: u64 = scenario::SCENARIO_MINUTES - scenario::CANARY_DEPLOY_MINUTE;
/// The shortest cycle: the incident part and five quiet minutes before it.
pub const MIN_CYCLE_MINUTES: u64 = INCIDENT_MINUTES + 5;
/// Seed of the live traffic (the recorded hour uses [`super::DEFAULT_SEED`]).
const LIVE_SEED: u64 = 4242;

/// How real minutes after the recorded hour map onto minutes of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    minutes: u64,
}

impl Cycle {
    /// A cycle of `minutes`, refused when too short to hold the incident.
    pub fn new(minutes: u64) -> anyhow::Result<Cycle> {
        anyhow::ensure!(
            minutes >= MIN_CYCLE_MINUTES,
            "--demo-incident-every must be at least {MIN_CYCLE_MINUTES} minutes (the incident \
             replays minutes {}–{} of the scenario), got {minutes}",
            scenario::CANARY_DEPLOY_MINUTE,
            scenario::SCENARIO_MINUTES
        );
        Ok(Cycle { minutes })
    }

    /// The scenario minute played `live_minute` minutes after the recorded hour ended.
    pub fn scenario_minute(self, live_minute: u64) -> u64 {
        let in_cycle = live_minute % self.minutes;
        let quiet = self.minutes - INCIDENT_MINUTES;
        if in_cycle < quiet {
            in_cycle % scenario::CANARY_DEPLOY_MINUTE
        } else {
            scenario::CANARY_DEPLOY_MINUTE + (in_cycle - quiet)
        }
    }

    /// Whether `live_minute` starts a new cycle (the request counters start over).
    fn starts_cycle(self, live_minute: u64) -> bool {
        live_minute.is_multiple_of(self.minutes)
    }
}

/// Generated records not yet sent, because real time has not reached them.
#[derive(Default)]
struct Pending {
    traces: Vec<ExportTraceServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    metrics: Vec<(u64, ExportMetricsServiceRequest)>,
}

/// The live traffic: which minute comes next and what is still waiting for its time.
pub struct LiveTraffic {
    generator: Generator,
    cycle: Cycle,
    /// Real time (Unix ns) at which live minute 0 starts: the end of the recorded hour.
    anchor_nano: u64,
    next_minute: u64,
    requests: Vec<i64>,
    pending: Pending,
}

impl LiveTraffic {
    /// Live traffic after a recorded hour that ended at `anchor_nano`, starting with the minute
    /// that holds `now_nano` (a restart picks the cycle up where the clock is).
    pub fn new(cycle: Cycle, anchor_nano: u64, now_nano: u64) -> LiveTraffic {
        LiveTraffic {
            generator: Generator::new(LIVE_SEED),
            cycle,
            anchor_nano,
            next_minute: now_nano.saturating_sub(anchor_nano) / MINUTE,
            requests: vec![0; scenario::INSTANCE_COUNT],
            pending: Pending::default(),
        }
    }

    /// Generates every minute that has started by `now_nano`, and returns what is due by then.
    pub fn due(&mut self, now_nano: u64) -> Scenario {
        while self.anchor_nano + self.next_minute * MINUTE <= now_nano {
            self.generate_next();
        }
        let pending = &mut self.pending;
        let mut due = Scenario::default();
        for request in &mut pending.traces {
            due.traces.extend(take_due_spans(request, now_nano));
        }
        pending.traces.retain(|r| !r.resource_spans.is_empty());
        for request in &mut pending.logs {
            due.logs.extend(take_due_logs(request, now_nano));
        }
        pending.logs.retain(|r| !r.resource_logs.is_empty());
        let (ready, waiting) = std::mem::take(&mut pending.metrics)
            .into_iter()
            .partition(|(time, _)| *time <= now_nano);
        pending.metrics = waiting;
        due.metrics = ready.into_iter().map(|(_, request)| request).collect();
        due
    }

    fn generate_next(&mut self) {
        let live_minute = self.next_minute;
        self.next_minute += 1;
        if self.cycle.starts_cycle(live_minute) {
            self.requests.iter_mut().for_each(|r| *r = 0);
        }
        let minute = self.cycle.scenario_minute(live_minute);
        let mut generated = self.generator.live_minute(minute, &mut self.requests);
        let real_start = self.anchor_nano + live_minute * MINUTE;
        let Some(by) = real_start.checked_sub(scenario::SCENARIO_START + minute * MINUTE) else {
            return; // a clock before the scenario's own date: nothing sensible to send
        };
        for request in &mut generated.traces {
            shift::traces(request, by);
        }
        for request in &mut generated.logs {
            shift::logs(request, by);
        }
        for request in &mut generated.metrics {
            shift::metrics(request, by);
        }
        self.pending.traces.append(&mut generated.traces);
        self.pending.logs.append(&mut generated.logs);
        // An instance reports its minute's metrics as the minute ends.
        let report_at = real_start + MINUTE;
        self.pending
            .metrics
            .extend(generated.metrics.into_iter().map(|r| (report_at, r)));
    }
}

/// Moves the spans that have ended by `now` out of `request`, keeping their resource and scope.
fn take_due_spans(
    request: &mut ExportTraceServiceRequest,
    now: u64,
) -> Option<ExportTraceServiceRequest> {
    let mut resource_spans = Vec::new();
    for resource in &mut request.resource_spans {
        let mut scope_spans = Vec::new();
        for scope in &mut resource.scope_spans {
            let (due, rest) = std::mem::take(&mut scope.spans)
                .into_iter()
                .partition::<Vec<_>, _>(|s| s.end_time_unix_nano <= now);
            scope.spans = rest;
            if !due.is_empty() {
                scope_spans.push(ScopeSpans {
                    spans: due,
                    scope: scope.scope.clone(),
                    schema_url: scope.schema_url.clone(),
                });
            }
        }
        resource.scope_spans.retain(|s| !s.spans.is_empty());
        if !scope_spans.is_empty() {
            resource_spans.push(ResourceSpans {
                scope_spans,
                resource: resource.resource.clone(),
                schema_url: resource.schema_url.clone(),
            });
        }
    }
    request.resource_spans.retain(|r| !r.scope_spans.is_empty());
    (!resource_spans.is_empty()).then_some(ExportTraceServiceRequest { resource_spans })
}

/// Moves the log records whose time has come out of `request`, keeping resource and scope.
fn take_due_logs(
    request: &mut ExportLogsServiceRequest,
    now: u64,
) -> Option<ExportLogsServiceRequest> {
    let mut resource_logs = Vec::new();
    for resource in &mut request.resource_logs {
        let mut scope_logs = Vec::new();
        for scope in &mut resource.scope_logs {
            let (due, rest) = std::mem::take(&mut scope.log_records)
                .into_iter()
                .partition::<Vec<_>, _>(|r| r.time_unix_nano <= now);
            scope.log_records = rest;
            if !due.is_empty() {
                scope_logs.push(ScopeLogs {
                    log_records: due,
                    scope: scope.scope.clone(),
                    schema_url: scope.schema_url.clone(),
                });
            }
        }
        resource.scope_logs.retain(|s| !s.log_records.is_empty());
        if !scope_logs.is_empty() {
            resource_logs.push(ResourceLogs {
                scope_logs,
                resource: resource.resource.clone(),
                schema_url: resource.schema_url.clone(),
            });
        }
    }
    request.resource_logs.retain(|r| !r.scope_logs.is_empty());
    (!resource_logs.is_empty()).then_some(ExportLogsServiceRequest { resource_logs })
}

/// Sends the live traffic through `receiver` once a second until `stop`. A refused export
/// (the server shedding load, say) is logged and dropped, as a real exporter would after its
/// retries.
pub async fn run(receiver: Receiver, mut traffic: LiveTraffic, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = u64::try_from(crate::model::time::now_ns()).unwrap_or(0);
        let due = traffic.due(now);
        for request in due.traces {
            if let Err(e) = receiver
                .traces(request.encode_to_vec(), Sender::Internal)
                .await
            {
                tracing::warn!("live demo: spans not taken: {e}");
            }
        }
        for request in due.logs {
            if let Err(e) = receiver
                .logs(request.encode_to_vec(), Sender::Internal)
                .await
            {
                tracing::warn!("live demo: logs not taken: {e}");
            }
        }
        for request in due.metrics {
            if let Err(e) = receiver
                .metrics(request.encode_to_vec(), Sender::Internal)
                .await
            {
                tracing::warn!("live demo: metrics not taken: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_cycle_is_the_scenario_hour_and_a_short_one_ends_with_the_incident() {
        let hour = Cycle::new(60).unwrap();
        assert_eq!(
            (0..120)
                .map(|m| hour.scenario_minute(m))
                .collect::<Vec<_>>(),
            (0..60).chain(0..60).collect::<Vec<_>>()
        );
        let short = Cycle::new(30).unwrap();
        let minutes: Vec<u64> = (0..30).map(|m| short.scenario_minute(m)).collect();
        assert_eq!(&minutes[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(&minutes[5..], &(35..60).collect::<Vec<_>>()[..]);
        assert!(Cycle::new(29).is_err());
    }

    fn span_count(s: &Scenario) -> usize {
        s.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    #[test]
    fn traffic_is_released_as_time_passes_and_nothing_is_sent_early_or_twice() {
        let anchor = scenario::SCENARIO_START + 90 * MINUTE;
        let mut live = LiveTraffic::new(Cycle::new(60).unwrap(), anchor, anchor);
        let mut sent = 0;
        let mut each_minute = Vec::new();
        let mut now = anchor;
        for second in 0..(3 * 60) {
            now = anchor + second * 1_000_000_000;
            let due = live.due(now);
            for span in due
                .traces
                .iter()
                .flat_map(|r| &r.resource_spans)
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                assert!(
                    span.end_time_unix_nano <= now,
                    "a span sent before it ended"
                );
                assert!(
                    span.start_time_unix_nano >= anchor,
                    "a span from the recorded hour"
                );
            }
            for record in due
                .logs
                .iter()
                .flat_map(|r| &r.resource_logs)
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                assert!(record.time_unix_nano <= now, "a log record sent early");
            }
            sent += span_count(&due);
            if second % 60 == 59 {
                each_minute.push(sent);
                sent = 0;
            }
        }
        // Every minute carries traffic, and what was generated but not yet due is still held.
        assert!(each_minute.iter().all(|&n| n > 20), "{each_minute:?}");
        let held: usize = live
            .pending
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        assert!(live
            .pending
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .all(|s| s.end_time_unix_nano > now));
        assert!(held < 200, "{held} spans held back");
    }

    #[test]
    fn a_restart_picks_the_cycle_up_where_the_clock_is() {
        let anchor = scenario::SCENARIO_START + 90 * MINUTE;
        let now = anchor + 41 * MINUTE + 5_000_000_000;
        let mut live = LiveTraffic::new(Cycle::new(60).unwrap(), anchor, now);
        let due = live.due(now);
        assert_eq!(live.next_minute, 42);
        let spans = |s: &Scenario| -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
            s.traces
                .iter()
                .flat_map(|r| &r.resource_spans)
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| s.spans.clone())
                .collect()
        };
        assert!(spans(&due)
            .iter()
            .all(|s| s.start_time_unix_nano >= anchor + 41 * MINUTE));
        // Minutes 41 and 42 of the cycle are inside the incident: the canary fails charges.
        let later = live.due(anchor + 43 * MINUTE);
        let failed = spans(&later)
            .iter()
            .filter(|s| s.status.as_ref().is_some_and(|st| st.code == 2))
            .count();
        assert!(failed > 0, "no failed span in the replayed incident");
    }
}
