//! Finding caller → callee edges between services as spans arrive, the way a service-graph
//! processor does: a CLIENT or PRODUCER span meets the SERVER or CONSUMER span that is its
//! child (or that links to it), whichever arrives first waits for the other.

//!
//! Unmatched halves wait in two generations of hash maps instead of each carrying its
//! arrival time: new halves go into the young generation; every [`GENERATION`] (or once the
//! young one holds half of [`MAX_WAITING`]) the old generation gives up whole and the young
//! one becomes old. So a half waits between one and two generations, each half is visited
//! once when it gives up instead of on every expiry check, and under more halves than the cap
//! only the oldest generation is dropped, not every waiting half.

use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::model::{SpanId, TraceId};

/// How long a generation of unmatched halves takes in new halves: a half waits for its other
/// half between one and two of these (ingest time).
const GENERATION: Duration = Duration::from_secs(60);
/// Most halves kept waiting in both generations; beyond half of it in the young generation,
/// the generations turn early (the oldest halves give up first).
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
}

/// The callee side waiting for its caller.
struct Orphan {
    service: Arc<str>,
    kind: EdgeKind,
    time: i64,
    duration: i64,
    error: bool,
}

/// One generation of waiting halves, by the caller's ids.
#[derive(Default)]
struct Generation {
    callers: HashMap<(TraceId, SpanId), Waiting>,
    callees: HashMap<(TraceId, SpanId), Vec<Orphan>>,
}

impl Generation {
    fn len(&self) -> usize {
        self.callers.len() + self.callees.len()
    }

    /// Gives up on every half: a client span that named its peer becomes an edge to that
    /// uninstrumented peer; the rest are dropped.
    fn give_up(self, out: &mut Vec<EdgeCall>) {
        for w in self.callers.into_values() {
            if let Some(peer) = w.peer {
                out.push(EdgeCall {
                    caller: w.service.to_string(),
                    callee: peer,
                    kind: EdgeKind::Uninstrumented,
                    time: w.time,
                    duration: w.duration,
                    error: w.error,
                });
            }
        }
    }
}

/// Matches spans into edges; state persists across flushes.
#[derive(Default)]
pub struct EdgeMatcher {
    young: Generation,
    old: Generation,
    /// When the young generation started taking halves (`None` before the first).
    young_since: Option<Instant>,
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
        self.young_since.get_or_insert(now);
        match side {
            Side::Caller { id, peer } => {
                let young = self.young.callees.remove(&id);
                let old = self.old.callees.remove(&id);
                if young.is_some() || old.is_some() {
                    for o in young.into_iter().chain(old).flatten() {
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
                self.young.callers.insert(
                    id,
                    Waiting {
                        service,
                        peer,
                        time,
                        duration,
                        error,
                    },
                );
            }
            Side::Callee { parents } => {
                for (key, kind) in parents {
                    let caller = self
                        .young
                        .callers
                        .remove(&key)
                        .or_else(|| self.old.callers.remove(&key));
                    match caller {
                        Some(w) if w.service != service => out.push(EdgeCall {
                            caller: w.service.to_string(),
                            callee: service.to_string(),
                            kind,
                            time,
                            duration,
                            error,
                        }),
                        Some(_) => {}
                        None => self.young.callees.entry(key).or_default().push(Orphan {
                            service: service.clone(),
                            kind,
                            time,
                            duration,
                            error,
                        }),
                    }
                }
            }
        }
    }

    /// Turns the generations when the young one is a [`GENERATION`] old or holds half of
    /// [`MAX_WAITING`] halves — the old one gives up ([`Generation::give_up`]) — or, with
    /// `force_all` (the last flush), gives up on every waiting half.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<EdgeCall>, force_all: bool) {
        if force_all {
            std::mem::take(&mut self.old).give_up(out);
            std::mem::take(&mut self.young).give_up(out);
            self.young_since = None;
            return;
        }
        let aged = self
            .young_since
            .is_some_and(|since| now.saturating_duration_since(since) >= GENERATION);
        if aged || self.young.len() >= MAX_WAITING / 2 {
            let old = std::mem::replace(&mut self.old, std::mem::take(&mut self.young));
            old.give_up(out);
            self.young_since = Some(now);
        }
    }

    /// Halves waiting in both generations.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(n: u8, service: &str, peer: Option<&str>) -> EdgeHalf {
        EdgeHalf {
            side: Side::Caller {
                id: (TraceId([n; 16]), SpanId([n; 8])),
                peer: peer.map(str::to_string),
            },
            service: service.into(),
            time: i64::from(n),
            duration: 10,
            error: false,
        }
    }

    fn callee(n: u8, service: &str) -> EdgeHalf {
        EdgeHalf {
            side: Side::Callee {
                parents: vec![((TraceId([n; 16]), SpanId([n; 8])), EdgeKind::Rpc)],
            },
            service: service.into(),
            time: i64::from(n),
            duration: 5,
            error: true,
        }
    }

    fn pairs(calls: &[EdgeCall]) -> Vec<(&str, &str, EdgeKind)> {
        calls
            .iter()
            .map(|c| (c.caller.as_str(), c.callee.as_str(), c.kind))
            .collect()
    }

    /// Either half may come first; a span calling its own service is no edge.
    #[test]
    fn halves_meet_whichever_comes_first() {
        let (mut m, now, mut out) = (EdgeMatcher::default(), Instant::now(), Vec::new());
        m.observe(caller(1, "web", None), now, &mut out);
        m.observe(callee(1, "api"), now, &mut out);
        m.observe(callee(2, "db-proxy"), now, &mut out);
        m.observe(caller(2, "api", None), now, &mut out);
        m.observe(caller(3, "api", None), now, &mut out);
        m.observe(callee(3, "api"), now, &mut out);
        assert_eq!(
            pairs(&out),
            [
                ("web", "api", EdgeKind::Rpc),
                ("api", "db-proxy", EdgeKind::Rpc)
            ]
        );
        assert_eq!(m.waiting(), 0);
    }

    /// A half waits one generation at least and two at most; a caller that named its peer
    /// becomes an edge to it when it gives up.
    #[test]
    fn halves_give_up_after_two_generations() {
        let (mut m, t0, mut out) = (EdgeMatcher::default(), Instant::now(), Vec::new());
        m.observe(caller(1, "web", Some("payments.example.com")), t0, &mut out);
        m.observe(caller(2, "web", None), t0, &mut out);
        m.expire(t0 + GENERATION / 2, &mut out, false);
        assert_eq!(m.waiting(), 2, "not a generation old yet");
        m.expire(t0 + GENERATION, &mut out, false);
        assert_eq!(m.waiting(), 2, "old now, still waiting");
        m.observe(callee(2, "api"), t0 + GENERATION, &mut out);
        assert_eq!(pairs(&out), [("web", "api", EdgeKind::Rpc)]);
        out.clear();
        m.expire(t0 + GENERATION * 2, &mut out, false);
        assert_eq!(m.waiting(), 0);
        assert_eq!(
            pairs(&out),
            [("web", "payments.example.com", EdgeKind::Uninstrumented)]
        );
    }

    /// More waiting halves than the cap turn the generations early: the oldest give up, the
    /// newest still match.
    #[test]
    fn beyond_the_cap_only_the_oldest_give_up() {
        let (mut m, now, mut out) = (EdgeMatcher::default(), Instant::now(), Vec::new());
        let half = |i: usize| {
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&(i as u64).to_le_bytes());
            (TraceId(trace), SpanId([1; 8]))
        };
        for i in 0..MAX_WAITING * 3 / 2 {
            let mut h = caller(0, "web", None);
            h.side = Side::Caller {
                id: half(i),
                peer: None,
            };
            m.observe(h, now, &mut out);
            m.expire(now, &mut out, false);
        }
        assert!(m.waiting() <= MAX_WAITING, "{} waiting", m.waiting());
        for (i, matched) in [(0, false), (MAX_WAITING * 3 / 2 - 1, true)] {
            let mut h = callee(0, "api");
            h.side = Side::Callee {
                parents: vec![(half(i), EdgeKind::Rpc)],
            };
            out.clear();
            m.observe(h, now, &mut out);
            assert_eq!(out.len(), usize::from(matched), "half {i}");
        }
    }
}
