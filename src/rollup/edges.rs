//! Finding caller → callee edges between services as spans arrive, the way a service-graph
//! processor does: a CLIENT or PRODUCER span meets the SERVER or CONSUMER span that is its
//! child (or that links to it), whichever arrives first waits for the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{SpanId, TraceId};

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

    /// Inverse of [`EdgeKind::as_str`].
    pub fn parse(s: &str) -> Option<EdgeKind> {
        [EdgeKind::Rpc, EdgeKind::Messaging, EdgeKind::Uninstrumented]
            .into_iter()
            .find(|k| k.as_str() == s)
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

/// What the matcher needs of one CLIENT/PRODUCER or SERVER/CONSUMER span, worked out by the
/// receiving task (see [`super::delta`]) so the writer thread only matches.
#[derive(Debug, Clone)]
pub struct EdgeHalf {
    pub side: Side,
    /// The span's service, shared by every span of its resource.
    pub service: Arc<str>,
    pub time: i64,
    pub duration: i64,
    pub error: bool,
}

/// Which half of a call a span is.
#[derive(Debug, Clone)]
pub enum Side {
    /// A CLIENT or PRODUCER span (not a database call, those are leaf edges at once) waiting
    /// for the span its id is the parent or link of; `peer` is its named peer
    /// (`peer.service`, `server.address`) for a leaf edge if no instrumented callee shows up.
    Caller {
        id: (TraceId, SpanId),
        peer: Option<String>,
    },
    /// A SERVER or CONSUMER span and the caller ids it may answer: its parent (RPC, or
    /// messaging for a consumer) and, for a consumer, its links.
    Callee {
        parents: Vec<((TraceId, SpanId), EdgeKind)>,
    },
}

/// The caller side waiting for its callee.
struct Waiting {
    service: Arc<str>,
    peer: Option<String>,
    time: i64,
    duration: i64,
    error: bool,
    since: Instant,
}

/// The callee side waiting for its caller.
struct Orphan {
    service: Arc<str>,
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

impl EdgeMatcher {
    /// Feeds one half received at `now`; appends the calls it completes.
    pub fn observe(&mut self, half: EdgeHalf, now: Instant, out: &mut Vec<EdgeCall>) {
        let EdgeHalf {
            side,
            service,
            time,
            duration,
            error,
        } = half;
        match side {
            Side::Caller { id, peer } => {
                if let Some(orphans) = self.callees.remove(&id) {
                    for o in orphans {
                        out.push(EdgeCall {
                            caller: service.to_string(),
                            callee: o.service.to_string(),
                            kind: o.kind,
                            time: o.time,
                            duration: o.duration,
                            error: o.error,
                        });
                    }
                    return;
                }
                self.callers.insert(
                    id,
                    Waiting {
                        service,
                        peer,
                        time,
                        duration,
                        error,
                        since: now,
                    },
                );
            }
            Side::Callee { parents } => {
                for (key, kind) in parents {
                    match self.callers.remove(&key) {
                        Some(w) if w.service != service => out.push(EdgeCall {
                            caller: w.service.to_string(),
                            callee: service.to_string(),
                            kind,
                            time,
                            duration,
                            error,
                        }),
                        Some(_) => {}
                        None => self.callees.entry(key).or_default().push(Orphan {
                            service: service.clone(),
                            kind,
                            time,
                            duration,
                            error,
                            since: now,
                        }),
                    }
                }
            }
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
                    w.service.to_string(),
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
