//! Finding caller → callee edges between services as spans arrive, the way a service-graph
//! processor does: a CLIENT or PRODUCER span meets the SERVER or CONSUMER span that is its
//! child (or that links to it), whichever arrives first waits for the other.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::{value_text, SpanId, SpanRow, TraceId};

/// How long an unmatched span waits for its other half (ingest time).
const WAIT: Duration = Duration::from_secs(120);
/// Most spans kept waiting; the oldest are dropped first beyond this.
const MAX_WAITING: usize = 200_000;

/// The kind of hop an edge stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// A request between two instrumented services.
    Rpc,
    /// A message through a queue (producer → consumer).
    Messaging,
    /// A call to something that does not report itself (database, third party).
    Uninstrumented,
}

impl EdgeKind {
    /// Name stored in rollups.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Rpc => "rpc",
            EdgeKind::Messaging => "messaging",
            EdgeKind::Uninstrumented => "uninstrumented",
        }
    }
}

/// One observed call.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeCall {
    pub caller: String,
    pub callee: String,
    pub kind: EdgeKind,
    pub time: i64,
    pub duration: i64,
    pub error: bool,
}

/// The caller side waiting for its callee.
struct Waiting {
    service: String,
    /// Named peer of a client span (`peer.service`, `server.address`), for a leaf edge if no
    /// instrumented callee shows up.
    peer: Option<String>,
    time: i64,
    duration: i64,
    error: bool,
    since: Instant,
}

/// The callee side waiting for its caller.
struct Orphan {
    service: String,
    kind: EdgeKind,
    time: i64,
    duration: i64,
    error: bool,
    since: Instant,
}

/// How often waiting halves are checked for expiry: scanning them on every batch would
/// cost more than the matching itself.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// Matches spans into edges; state persists across flushes.
#[derive(Default)]
pub struct EdgeMatcher {
    callers: HashMap<(TraceId, SpanId), Waiting>,
    callees: HashMap<(TraceId, SpanId), Vec<Orphan>>,
    last_expiry: Option<Instant>,
}

fn attr(span: &SpanRow, key: &str) -> Option<String> {
    span.attributes
        .get(key)
        .map(value_text)
        .filter(|v| !v.is_empty())
}

impl EdgeMatcher {
    /// Feeds one span received at `now`; returns the calls it completes.
    pub fn observe(&mut self, span: &SpanRow, now: Instant, out: &mut Vec<EdgeCall>) {
        let service = &span.resource.service_name;
        match span.kind.as_str() {
            "CLIENT" | "PRODUCER" => {
                // A database call never has an instrumented callee: a leaf right away.
                if let Some(db) = attr(span, "db.system") {
                    let callee = attr(span, "peer.service").unwrap_or(db);
                    out.push(call(service, &callee, EdgeKind::Uninstrumented, span));
                    return;
                }
                let key = (span.trace_id, span.span_id);
                if let Some(orphans) = self.callees.remove(&key) {
                    for o in orphans {
                        out.push(EdgeCall {
                            caller: service.clone(),
                            callee: o.service,
                            kind: o.kind,
                            time: o.time,
                            duration: o.duration,
                            error: o.error,
                        });
                    }
                    return;
                }
                self.callers.insert(
                    key,
                    Waiting {
                        service: service.clone(),
                        peer: attr(span, "peer.service").or_else(|| attr(span, "server.address")),
                        time: span.start_time_unix_nano,
                        duration: span.duration_nano,
                        error: span.is_error(),
                        since: now,
                    },
                );
            }
            "SERVER" | "CONSUMER" => {
                let mut parents: Vec<((TraceId, SpanId), EdgeKind)> = Vec::new();
                if let Some(p) = span.parent_span_id {
                    let kind = if span.kind == "CONSUMER" {
                        EdgeKind::Messaging
                    } else {
                        EdgeKind::Rpc
                    };
                    parents.push(((span.trace_id, p), kind));
                }
                if span.kind == "CONSUMER" {
                    parents.extend(
                        span.links
                            .iter()
                            .map(|l| ((l.trace_id, l.span_id), EdgeKind::Messaging)),
                    );
                }
                for (key, kind) in parents {
                    match self.callers.remove(&key) {
                        Some(w) if w.service != *service => out.push(EdgeCall {
                            caller: w.service,
                            callee: service.clone(),
                            kind,
                            time: span.start_time_unix_nano,
                            duration: span.duration_nano,
                            error: span.is_error(),
                        }),
                        Some(_) => {}
                        None => self.callees.entry(key).or_default().push(Orphan {
                            service: service.clone(),
                            kind,
                            time: span.start_time_unix_nano,
                            duration: span.duration_nano,
                            error: span.is_error(),
                            since: now,
                        }),
                    }
                }
            }
            _ => {}
        }
    }

    /// Gives up on halves that waited too long: a client span that named its peer becomes an
    /// edge to that uninstrumented peer; the rest are dropped.
    pub fn expire(&mut self, out: &mut Vec<EdgeCall>, force_all: bool) {
        let too_many = self.callers.len() + self.callees.len() > MAX_WAITING;
        let due = self.last_expiry.is_none_or(|t| t.elapsed() >= EXPIRE_EVERY);
        if !(force_all || too_many || due) {
            return;
        }
        self.last_expiry = Some(Instant::now());
        let expired = |since: Instant| force_all || too_many || since.elapsed() >= WAIT;
        let mut done = Vec::new();
        self.callers.retain(|_, w| {
            if expired(w.since) {
                done.push((
                    w.service.clone(),
                    w.peer.clone(),
                    w.time,
                    w.duration,
                    w.error,
                ));
                false
            } else {
                true
            }
        });
        for (caller, peer, time, duration, error) in done {
            if let Some(peer) = peer {
                out.push(EdgeCall {
                    caller,
                    callee: peer,
                    kind: EdgeKind::Uninstrumented,
                    time,
                    duration,
                    error,
                });
            }
        }
        self.callees.retain(|_, v| {
            v.retain(|o| !expired(o.since));
            !v.is_empty()
        });
    }
}

fn call(caller: &str, callee: &str, kind: EdgeKind, span: &SpanRow) -> EdgeCall {
    EdgeCall {
        caller: caller.to_string(),
        callee: callee.to_string(),
        kind,
        time: span.start_time_unix_nano,
        duration: span.duration_nano,
        error: span.is_error(),
    }
}
