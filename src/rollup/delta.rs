//! What one export adds to the rollups, worked out by the receiving task while it decodes the
//! request, so the single writer thread only merges a few cells per export and matches edge
//! halves instead of walking every span.
//!
//! The builder borrows names from the request being decoded and sums per cell (one RED cell
//! per service/operation/minute instead of one key per span); [`DeltaBuilder::finish`] turns
//! the sums into owned [`RollupRow`]s.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::edges::{EdgeHalf, EdgeKind, Side};
use super::{minute_of, ErrorGroupDetail, ErrorSignature, LatencyHistogram, RollupCell, RollupRow};
use crate::model::{Resource, SpanId, SpanKind, TraceId};

/// One export's contribution: summed cells, edge halves to match, and when each resource was
/// last seen (for the service list).
#[derive(Debug, Default)]
pub struct RollupDelta {
    pub cells: Vec<RollupRow>,
    pub halves: Vec<EdgeHalf>,
    pub seen: Vec<(Arc<Resource>, i64)>,
}

/// A cell's key while building, names borrowed from the request: the minute, the resource
/// (by position) and what is counted.
type CellKey<'a> = (i64, usize, Counted<'a>);

/// What a cell counts, while building (becomes a [`RollupCell`] once owned).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counted<'a> {
    Red {
        operation: Cow<'a, str>,
        span_kind: SpanKind,
    },
    Edge {
        callee: Cow<'a, str>,
        kind: EdgeKind,
    },
    LogErrors,
    ErrorGroup {
        key: String,
    },
}

/// A cell's sums while building.
struct CellSum {
    /// An error group's first example (not part of the key).
    example: Option<ErrorGroupDetail>,
    count: u64,
    errors: u64,
    latency: LatencyHistogram,
}

/// One resource of the request: the resource, its service name shared with edge halves, and
/// the latest record time seen from it.
struct SeenResource {
    resource: Arc<Resource>,
    service: Arc<str>,
    last_seen: Option<i64>,
}

/// Builds a [`RollupDelta`] while an export is decoded; borrows names from the request.
#[derive(Default)]
pub struct DeltaBuilder<'a> {
    resources: Vec<SeenResource>,
    cells: HashMap<CellKey<'a>, CellSum, foldhash::fast::RandomState>,
    halves: Vec<EdgeHalf>,
}

/// A resource of the request being decoded, as [`DeltaBuilder::resource`] numbers it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef(usize);

/// What the rollups need of one span.
pub struct SpanFacts<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: &'a str,
    /// Kind name (`SERVER`, `CLIENT`, …).
    pub kind: SpanKind,
    pub start: i64,
    pub duration: i64,
    pub error: bool,
}

impl<'a> DeltaBuilder<'a> {
    /// Numbers a resource of the request; call once per resource block.
    pub fn resource(&mut self, resource: Arc<Resource>) -> ResourceRef {
        let service = Arc::from(resource.service_name.as_str());
        self.resources.push(SeenResource {
            resource,
            service,
            last_seen: None,
        });
        ResourceRef(self.resources.len() - 1)
    }

    /// A record of `resource` stamped `time` (the service list keeps the latest).
    pub fn seen(&mut self, resource: ResourceRef, time: i64) {
        let seen = &mut self.resources[resource.0].last_seen;
        *seen = Some(seen.map_or(time, |t| t.max(time)));
    }

    fn cell(&mut self, time: i64, resource: ResourceRef, counted: Counted<'a>) -> &mut CellSum {
        let key = (minute_of(time), resource.0, counted);
        self.cells.entry(key).or_insert_with(|| CellSum {
            example: None,
            count: 0,
            errors: 0,
            latency: LatencyHistogram::default(),
        })
    }

    /// A span of `resource`: SERVER and CONSUMER spans count as requests (RED), and every
    /// CLIENT/PRODUCER/SERVER/CONSUMER span is half of a call between services. `db_system`
    /// and `peer` (`peer.service`, else `server.address`) are the span's attributes: a client
    /// span with `db_system` is a call to an uninstrumented database at once.
    pub fn span(
        &mut self,
        resource: ResourceRef,
        span: &SpanFacts<'a>,
        links: impl Iterator<Item = (TraceId, SpanId)>,
        db_system: Option<Cow<'a, str>>,
        peer_service: Option<Cow<'a, str>>,
        server_address: impl FnOnce() -> Option<Cow<'a, str>>,
    ) {
        let service = self.resources[resource.0].service.clone();
        let half = |side| EdgeHalf {
            side,
            service,
            time: span.start,
            duration: span.duration,
            error: span.error,
        };
        match span.kind {
            SpanKind::Server | SpanKind::Consumer => {
                let cell = self.cell(
                    span.start,
                    resource,
                    Counted::Red {
                        operation: Cow::Borrowed(span.name),
                        span_kind: span.kind,
                    },
                );
                cell.count += 1;
                cell.errors += u64::from(span.error);
                cell.latency.add(span.duration);
                let consumer = span.kind == SpanKind::Consumer;
                let mut parents = Vec::new();
                if let Some(p) = span.parent_span_id {
                    let kind = if consumer {
                        EdgeKind::Messaging
                    } else {
                        EdgeKind::Rpc
                    };
                    parents.push(((span.trace_id, p), kind));
                }
                if consumer {
                    parents.extend(links.map(|id| (id, EdgeKind::Messaging)));
                }
                self.halves.push(half(Side::Callee { parents }));
            }
            SpanKind::Client | SpanKind::Producer => match db_system {
                // A database call never has an instrumented callee: a leaf right away.
                Some(db) => {
                    let callee = peer_service.unwrap_or(db);
                    let cell = self.cell(
                        span.start,
                        resource,
                        Counted::Edge {
                            callee,
                            kind: EdgeKind::Uninstrumented,
                        },
                    );
                    cell.count += 1;
                    cell.errors += u64::from(span.error);
                    cell.latency.add(span.duration);
                }
                None => {
                    let peer = peer_service.or_else(server_address).map(Cow::into_owned);
                    let id = (span.trace_id, span.span_id);
                    self.halves.push(half(Side::Caller { id, peer }));
                }
            },
            SpanKind::Internal | SpanKind::Unspecified => {}
        }
    }

    /// An ERROR or FATAL log record of `resource`.
    pub fn error_log(&mut self, resource: ResourceRef, time: i64) {
        self.cell(time, resource, Counted::LogErrors).count += 1;
    }

    /// One occurrence of an error group, with the trace (and span) it happened in if known.
    pub fn error_group(
        &mut self,
        resource: ResourceRef,
        signature: ErrorSignature,
        time: i64,
        example: Option<(TraceId, Option<SpanId>)>,
    ) {
        let key = signature.key();
        let cell = self.cell(time, resource, Counted::ErrorGroup { key });
        cell.example.get_or_insert_with(|| ErrorGroupDetail {
            signature,
            example_trace_id: example.map(|(t, _)| t.to_hex()),
            example_span_id: example.and_then(|(_, s)| s).map(|s| s.to_hex()),
        });
        cell.count += 1;
        cell.errors += 1;
    }

    /// The owned delta.
    pub fn finish(self) -> RollupDelta {
        let resources = self.resources;
        let cells = self
            .cells
            .into_iter()
            .filter_map(|((minute, r, counted), sum)| {
                let resource = &resources[r].resource;
                let instance = || resource.service_instance_id.clone();
                let version = || resource.service_version.clone();
                let cell = match counted {
                    Counted::Red {
                        operation,
                        span_kind,
                    } => RollupCell::Red {
                        operation: operation.into_owned(),
                        instance: instance(),
                        version: version(),
                        span_kind,
                    },
                    // Edges are per caller service only.
                    Counted::Edge { callee, kind } => RollupCell::Edge {
                        callee: callee.into_owned(),
                        kind,
                    },
                    Counted::LogErrors => RollupCell::LogErrors {
                        instance: instance(),
                        version: version(),
                    },
                    Counted::ErrorGroup { key } => RollupCell::ErrorGroup {
                        key,
                        instance: instance(),
                        version: version(),
                        // Every error-group cell was created with its example.
                        example: sum.example?,
                    },
                };
                Some(RollupRow {
                    minute,
                    service: resource.service_name.clone(),
                    cell,
                    count: sum.count,
                    errors: sum.errors,
                    latency: sum.latency,
                })
            })
            .collect();
        let seen = resources
            .into_iter()
            .filter_map(|r| Some((r.resource, r.last_seen?)))
            .collect();
        RollupDelta {
            cells,
            halves: self.halves,
            seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::{RollupKind, Rollups};

    fn resource(service: &str) -> Arc<Resource> {
        Arc::new(Resource {
            service_name: service.into(),
            service_instance_id: format!("{service}-1"),
            service_version: "1.0".into(),
            ..Resource::default()
        })
    }

    fn span(kind: &str, id: u8, parent: Option<u8>, error: bool) -> SpanFacts<'static> {
        SpanFacts {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: "GET /cart",
            kind: SpanKind::of_name(kind),
            start: 90 * 1_000_000_000,
            duration: 5_000_000,
            error,
        }
    }

    #[test]
    fn one_cell_per_operation_and_minute_and_calls_matched_across_exports() {
        // Export 1: the cart service handles two requests (one failing) and calls a
        // database and the payment service.
        let mut cart = DeltaBuilder::default();
        let r = cart.resource(resource("cart"));
        for (id, error) in [(1, false), (2, true)] {
            cart.span(
                r,
                &span("SERVER", id, None, error),
                std::iter::empty(),
                None,
                None,
                || None,
            );
            cart.seen(r, 100);
        }
        let db = Some(Cow::Borrowed("postgresql"));
        cart.span(
            r,
            &span("CLIENT", 3, Some(1), false),
            std::iter::empty(),
            db,
            None,
            || None,
        );
        cart.span(
            r,
            &span("CLIENT", 4, Some(1), false),
            std::iter::empty(),
            None,
            None,
            || None,
        );
        let cart = cart.finish();
        let red: Vec<_> = cart
            .cells
            .iter()
            .filter(|c| c.kind() == RollupKind::Red)
            .collect();
        assert_eq!(red.len(), 1, "two requests of one operation, one cell");
        assert_eq!((red[0].count, red[0].errors), (2, 1));
        assert_eq!(red[0].cell.instance(), Some("cart-1"));
        let leaf = cart.cells.iter().find(|c| c.kind() == RollupKind::Edge);
        assert_eq!(
            leaf.map(|c| &c.cell),
            Some(&RollupCell::Edge {
                callee: "postgresql".into(),
                kind: EdgeKind::Uninstrumented
            })
        );
        assert_eq!(cart.halves.len(), 3, "two callee halves, one caller half");
        assert_eq!(cart.seen.len(), 1);
        assert_eq!(cart.seen[0].1, 100);

        // Export 2: the payment service's server span, child of the cart's client span 4.
        let mut payment = DeltaBuilder::default();
        let r = payment.resource(resource("payment"));
        payment.span(
            r,
            &span("SERVER", 5, Some(4), false),
            std::iter::empty(),
            None,
            None,
            || None,
        );
        let mut rollups = Rollups::default();
        rollups.absorb(cart);
        rollups.absorb(payment.finish());
        let edges: Vec<_> = rollups
            .rows()
            .filter_map(|c| match &c.cell {
                RollupCell::Edge {
                    callee,
                    kind: EdgeKind::Rpc,
                } => Some((c.service.as_str(), callee.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(edges, [("cart", "payment")]);
    }

    #[test]
    fn an_error_group_keeps_its_first_example() {
        let mut b = DeltaBuilder::default();
        let r = b.resource(resource("payment"));
        for n in [1u8, 2] {
            let sig = super::super::error_group::signature(
                [Some(Cow::Borrowed("Timeout"))],
                "error",
                &format!("charge {n} timed out after 2500 ms"),
                "",
            );
            b.error_group(r, sig, 0, Some((TraceId([n; 16]), None)));
        }
        b.error_log(r, 0);
        let delta = b.finish();
        let groups: Vec<_> = delta
            .cells
            .iter()
            .filter(|c| c.kind() == RollupKind::ErrorGroup)
            .collect();
        assert_eq!(groups.len(), 1, "same message up to numbers: one group");
        assert_eq!(groups[0].count, 2);
        let RollupCell::ErrorGroup { example, .. } = &groups[0].cell else {
            unreachable!("filtered on the kind");
        };
        assert_eq!(
            example.example_trace_id,
            Some(TraceId([1; 16]).to_hex()),
            "the first example stays"
        );
        let logs = delta
            .cells
            .iter()
            .find(|c| c.kind() == RollupKind::LogErrors);
        assert_eq!(logs.map(|c| c.count), Some(1));
    }
}
