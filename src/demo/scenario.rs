//! A deterministic hour of a small e-commerce system with an incident, as OTLP requests.
//!
//! Six services (frontend, cart, checkout, payment, inventory, shipping), two or three
//! instances each, a PostgreSQL database nobody instruments, and an `orders` queue between
//! checkout and shipping: the consumer starts a new trace that links back to the producer span
//! and carries the same `correlation_id`. At minute 35 payment 2.5.0 goes out as a canary on
//! `payment-3`; from minute 40 to 52 it times out on most charges (errors and 2.5 s latency,
//! up through checkout and frontend); at minute 52 the canary is pulled and `payment-3` stops
//! reporting.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// Start of the scenario (Unix ns): 2026-01-01T00:00:00Z. Loading shifts it to "an hour ago".
pub const SCENARIO_START: u64 = 1_767_225_600_000_000_000;
/// Length of the scenario.
pub const SCENARIO_MINUTES: u64 = 60;
/// Minutes (from the start) of the incident window and the canary's deploy and removal.
pub const CANARY_DEPLOY_MINUTE: u64 = 35;
pub const INCIDENT_START_MINUTE: u64 = 40;
pub const INCIDENT_END_MINUTE: u64 = 52;

const MS: u64 = 1_000_000;
const MINUTE: u64 = 60_000 * MS;

/// One simulated process.
#[derive(Clone)]
struct Instance {
    service: &'static str,
    id: &'static str,
    version: &'static str,
    host: &'static str,
}

const INSTANCES: &[Instance] = &[
    Instance {
        service: "frontend",
        id: "frontend-1",
        version: "1.8.0",
        host: "node-a",
    },
    Instance {
        service: "frontend",
        id: "frontend-2",
        version: "1.8.0",
        host: "node-b",
    },
    Instance {
        service: "cart",
        id: "cart-1",
        version: "3.1.0",
        host: "node-a",
    },
    Instance {
        service: "cart",
        id: "cart-2",
        version: "3.1.0",
        host: "node-c",
    },
    Instance {
        service: "checkout",
        id: "checkout-1",
        version: "2.0.1",
        host: "node-b",
    },
    Instance {
        service: "checkout",
        id: "checkout-2",
        version: "2.0.1",
        host: "node-c",
    },
    Instance {
        service: "payment",
        id: "payment-1",
        version: "2.4.0",
        host: "node-a",
    },
    Instance {
        service: "payment",
        id: "payment-2",
        version: "2.4.0",
        host: "node-b",
    },
    Instance {
        service: "payment",
        id: "payment-3",
        version: "2.5.0",
        host: "node-c",
    },
    Instance {
        service: "inventory",
        id: "inventory-1",
        version: "1.4.2",
        host: "node-a",
    },
    Instance {
        service: "inventory",
        id: "inventory-2",
        version: "1.4.2",
        host: "node-c",
    },
    Instance {
        service: "shipping",
        id: "shipping-1",
        version: "1.1.0",
        host: "node-b",
    },
    Instance {
        service: "shipping",
        id: "shipping-2",
        version: "1.1.0",
        host: "node-c",
    },
];

/// The canary instance that fails during the incident.
const CANARY: usize = 8;

/// The generated data, one export request per signal and instance and minute.
#[derive(Default)]
pub struct Scenario {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn resource(inst: &Instance) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            s("service.name", inst.service),
            s("service.instance.id", inst.id),
            s("service.version", inst.version),
            s("host.name", inst.host),
            s("deployment.environment", "demo"),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "sightline-demo".into(),
        version: "1".into(),
        ..Default::default()
    })
}

/// Signals of one instance in one minute, before they become requests.
#[derive(Default)]
struct Bucket {
    spans: Vec<Span>,
    logs: Vec<LogRecord>,
}

/// Builds the scenario; the same seed always gives the same bytes.
pub struct Generator {
    rng: fastrand::Rng,
    /// `buckets[minute][instance]`.
    buckets: Vec<Vec<Bucket>>,
    order_seq: u64,
}

/// A span under construction with its instance.
struct SpanSpec<'a> {
    inst: usize,
    name: &'a str,
    kind: SpanKind,
    start: u64,
    duration: u64,
    parent: Option<[u8; 8]>,
    attrs: Vec<KeyValue>,
    error: Option<(&'a str, &'a str)>,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        let buckets = (0..SCENARIO_MINUTES)
            .map(|_| INSTANCES.iter().map(|_| Bucket::default()).collect())
            .collect();
        Self {
            rng: fastrand::Rng::with_seed(seed),
            buckets,
            order_seq: 1000,
        }
    }

    fn id16(&mut self) -> [u8; 16] {
        std::array::from_fn(|_| self.rng.u8(..))
    }

    fn id8(&mut self) -> [u8; 8] {
        let mut id: [u8; 8] = std::array::from_fn(|_| self.rng.u8(..));
        id[0] |= 1; // never all zero
        id
    }

    fn bucket(&mut self, time: u64, inst: usize) -> &mut Bucket {
        let minute = ((time - SCENARIO_START) / MINUTE).min(SCENARIO_MINUTES - 1) as usize;
        &mut self.buckets[minute][inst]
    }

    fn pick(&mut self, service: &str, time: u64) -> usize {
        let minute = (time - SCENARIO_START) / MINUTE;
        let choices: Vec<usize> = INSTANCES
            .iter()
            .enumerate()
            .filter(|(idx, inst)| {
                inst.service == service
                    && (*idx != CANARY
                        || (CANARY_DEPLOY_MINUTE..INCIDENT_END_MINUTE).contains(&minute))
            })
            .map(|(idx, _)| idx)
            .collect();
        choices[self.rng.usize(..choices.len())]
    }

    fn span(&mut self, trace: [u8; 16], spec: SpanSpec) -> [u8; 8] {
        let id = self.id8();
        let end = spec.start + spec.duration;
        let mut events = Vec::new();
        let status = match spec.error {
            Some((kind, message)) => {
                events.push(Event {
                    time_unix_nano: end - MS,
                    name: "exception".into(),
                    attributes: vec![
                        s("exception.type", kind),
                        s("exception.message", message),
                        s(
                            "exception.stacktrace",
                            format!(
                                "{kind}: {message}\n    at payments.gateway.CardClient.charge(CardClient.java:214)\n    at payments.api.ChargeHandler.handle(ChargeHandler.java:88)\n    at io.netty.channel.AbstractChannelHandlerContext.invokeChannelRead(AbstractChannelHandlerContext.java:444)"
                            ),
                        ),
                    ],
                    ..Default::default()
                });
                Status {
                    code: StatusCode::Error as i32,
                    message: message.into(),
                }
            }
            None => Status::default(),
        };
        let span = Span {
            trace_id: trace.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: spec.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: spec.name.into(),
            kind: spec.kind as i32,
            start_time_unix_nano: spec.start,
            end_time_unix_nano: end,
            attributes: spec.attrs,
            events,
            status: Some(status),
            ..Default::default()
        };
        self.bucket(spec.start, spec.inst).spans.push(span);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &mut self,
        inst: usize,
        time: u64,
        severity: i32,
        body: String,
        trace: Option<([u8; 16], [u8; 8])>,
        attrs: Vec<KeyValue>,
    ) {
        let text = crate::model::severity_name(severity).to_string();
        let record = LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: time + MS,
            severity_number: severity,
            severity_text: text,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes: attrs,
            trace_id: trace.map(|t| t.0.to_vec()).unwrap_or_default(),
            span_id: trace.map(|t| t.1.to_vec()).unwrap_or_default(),
            ..Default::default()
        };
        self.bucket(time, inst).logs.push(record);
    }

    /// A product page view: frontend → inventory → PostgreSQL.
    fn browse(&mut self, t: u64) {
        let trace = self.id16();
        let fe = self.pick("frontend", t);
        let inv = self.pick("inventory", t);
        let product = self.rng.u32(100..999);
        let db = 3 + self.rng.u64(0..6);
        let total = 12 + db + self.rng.u64(0..20);
        let root = self.span(
            trace,
            SpanSpec {
                inst: fe,
                name: "GET /product/{id}",
                kind: SpanKind::Server,
                start: t,
                duration: total * MS,
                parent: None,
                attrs: vec![
                    s("http.request.method", "GET"),
                    s("http.route", "/product/{id}"),
                    i("http.response.status_code", 200),
                    s("product.id", product.to_string()),
                ],
                error: None,
            },
        );
        let call = self.span(
            trace,
            SpanSpec {
                inst: fe,
                name: "GET inventory /stock",
                kind: SpanKind::Client,
                start: t + 2 * MS,
                duration: (db + 6) * MS,
                parent: Some(root),
                attrs: vec![
                    s("http.request.method", "GET"),
                    s("server.address", "inventory"),
                ],
                error: None,
            },
        );
        let srv = self.span(
            trace,
            SpanSpec {
                inst: inv,
                name: "GET /stock/{id}",
                kind: SpanKind::Server,
                start: t + 3 * MS,
                duration: (db + 4) * MS,
                parent: Some(call),
                attrs: vec![
                    s("http.request.method", "GET"),
                    s("http.route", "/stock/{id}"),
                    i("http.response.status_code", 200),
                ],
                error: None,
            },
        );
        self.span(
            trace,
            SpanSpec {
                inst: inv,
                name: "SELECT stock",
                kind: SpanKind::Client,
                start: t + 4 * MS,
                duration: db * MS,
                parent: Some(srv),
                attrs: vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s(
                        "db.statement",
                        "SELECT qty FROM stock WHERE product_id = $1",
                    ),
                ],
                error: None,
            },
        );
        let qty = self.rng.u32(0..50);
        self.log(
            inv,
            t + 5 * MS,
            5,
            format!("stock lookup product={product} qty={qty}"),
            Some((trace, srv)),
            vec![],
        );
    }

    /// A checkout: frontend → checkout → cart (→ db) and payment, then an `orders` message
    /// consumed by shipping in a new trace.
    fn checkout(&mut self, t: u64) {
        let minute = (t - SCENARIO_START) / MINUTE;
        let trace = self.id16();
        self.order_seq += 1;
        let order = format!("order-{}", self.order_seq);
        let fe = self.pick("frontend", t);
        let co = self.pick("checkout", t);
        let ca = self.pick("cart", t);
        let pay = self.pick("payment", t);
        let failing = pay == CANARY
            && (INCIDENT_START_MINUTE..INCIDENT_END_MINUTE).contains(&minute)
            && self.rng.u8(0..10) < 7;
        let slow = pay == CANARY && minute >= INCIDENT_START_MINUTE;
        let pay_ms = if failing {
            2500 + self.rng.u64(0..60)
        } else if slow {
            400 + self.rng.u64(0..300)
        } else {
            40 + self.rng.u64(0..40)
        };
        let cart_ms = 8 + self.rng.u64(0..10);
        let co_ms = 10 + cart_ms + pay_ms + 8;
        let total = co_ms + 12;
        let status = if failing { 502 } else { 200 };
        let amount = format!("{}.{:02}", self.rng.u32(5..400), self.rng.u32(0..100));
        let oid = || s("correlation_id", order.clone());

        let root = self.span(
            trace,
            SpanSpec {
                inst: fe,
                name: "POST /checkout",
                kind: SpanKind::Server,
                start: t,
                duration: total * MS,
                parent: None,
                attrs: vec![
                    s("http.request.method", "POST"),
                    s("http.route", "/checkout"),
                    i("http.response.status_code", status),
                    s("request_id", order.clone()),
                ],
                error: failing.then_some((
                    "BadGateway",
                    "checkout failed: payment declined by upstream",
                )),
            },
        );
        let fe_call = self.span(
            trace,
            SpanSpec {
                inst: fe,
                name: "POST checkout /orders",
                kind: SpanKind::Client,
                start: t + 4 * MS,
                duration: (co_ms + 4) * MS,
                parent: Some(root),
                attrs: vec![
                    s("http.request.method", "POST"),
                    s("server.address", "checkout"),
                    i("http.response.status_code", status),
                ],
                error: None,
            },
        );
        let co_srv = self.span(
            trace,
            SpanSpec {
                inst: co,
                name: "POST /orders",
                kind: SpanKind::Server,
                start: t + 6 * MS,
                duration: co_ms * MS,
                parent: Some(fe_call),
                attrs: vec![
                    s("http.request.method", "POST"),
                    s("http.route", "/orders"),
                    i("http.response.status_code", status),
                    oid(),
                ],
                error: failing.then_some(("PaymentFailed", "payment service returned 504")),
            },
        );
        self.log(
            co,
            t + 7 * MS,
            9,
            format!("creating order {order} total={amount} EUR"),
            Some((trace, co_srv)),
            vec![oid()],
        );
        let cart_call = self.span(
            trace,
            SpanSpec {
                inst: co,
                name: "GET cart /cart",
                kind: SpanKind::Client,
                start: t + 8 * MS,
                duration: (cart_ms + 2) * MS,
                parent: Some(co_srv),
                attrs: vec![s("server.address", "cart"), oid()],
                error: None,
            },
        );
        let cart_srv = self.span(
            trace,
            SpanSpec {
                inst: ca,
                name: "GET /cart/{user}",
                kind: SpanKind::Server,
                start: t + 9 * MS,
                duration: cart_ms * MS,
                parent: Some(cart_call),
                attrs: vec![
                    s("http.route", "/cart/{user}"),
                    i("http.response.status_code", 200),
                    oid(),
                ],
                error: None,
            },
        );
        self.span(
            trace,
            SpanSpec {
                inst: ca,
                name: "SELECT cart_items",
                kind: SpanKind::Client,
                start: t + 10 * MS,
                duration: (cart_ms - 3) * MS,
                parent: Some(cart_srv),
                attrs: vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s(
                        "db.statement",
                        "SELECT * FROM cart_items WHERE user_id = $1",
                    ),
                ],
                error: None,
            },
        );
        let pay_start = t + (12 + cart_ms) * MS;
        let pay_call = self.span(
            trace,
            SpanSpec {
                inst: co,
                name: "POST payment /charge",
                kind: SpanKind::Client,
                start: pay_start,
                duration: (pay_ms + 2) * MS,
                parent: Some(co_srv),
                attrs: vec![s("server.address", "payment"), oid()],
                error: failing.then_some(("HttpError", "504 Gateway Timeout")),
            },
        );
        let error = failing.then_some((
            "CardProcessorTimeout",
            "upstream card processor timed out after 2500 ms",
        ));
        let pay_srv = self.span(
            trace,
            SpanSpec {
                inst: pay,
                name: "POST /charge",
                kind: SpanKind::Server,
                start: pay_start + MS,
                duration: pay_ms * MS,
                parent: Some(pay_call),
                attrs: vec![
                    s("http.route", "/charge"),
                    i("http.response.status_code", if failing { 504 } else { 200 }),
                    oid(),
                    s("payment.amount", amount.clone()),
                ],
                error,
            },
        );
        let network = ["visa", "mastercard", "amex"][self.rng.usize(0..3)];
        self.span(
            trace,
            SpanSpec {
                inst: pay,
                name: "authorize card",
                kind: SpanKind::Internal,
                start: pay_start + 2 * MS,
                duration: (pay_ms - 2) * MS,
                parent: Some(pay_srv),
                attrs: vec![s("card.network", network), oid()],
                error: None,
            },
        );
        if failing {
            self.log(pay, pay_start + pay_ms * MS, 17, format!("charge failed for {order}: upstream card processor timed out after 2500 ms (attempt 1 of 1)"), Some((trace, pay_srv)), vec![oid(), s("error.type", "CardProcessorTimeout")]);
            self.log(
                co,
                pay_start + (pay_ms + 3) * MS,
                17,
                format!("order {order} failed: payment service returned 504"),
                Some((trace, co_srv)),
                vec![oid()],
            );
            self.log(
                fe,
                t + total * MS,
                13,
                format!("POST /checkout answered 502 in {total} ms"),
                Some((trace, root)),
                vec![s("request_id", order.clone())],
            );
            return;
        }
        self.log(
            pay,
            pay_start + (pay_ms - 1) * MS,
            9,
            format!("charged {amount} EUR for {order}"),
            Some((trace, pay_srv)),
            vec![oid()],
        );
        // The order goes on the queue; shipping picks it up later in a trace of its own.
        let produce = self.span(
            trace,
            SpanSpec {
                inst: co,
                name: "orders publish",
                kind: SpanKind::Producer,
                start: t + (co_ms + 2) * MS,
                duration: 2 * MS,
                parent: Some(co_srv),
                attrs: vec![
                    s("messaging.system", "kafka"),
                    s("messaging.destination.name", "orders"),
                    s("messaging.operation", "publish"),
                    oid(),
                ],
                error: None,
            },
        );
        let ship_trace = self.id16();
        let ship = self.pick("shipping", t);
        let ship_t = t + (co_ms + 300 + self.rng.u64(0..900)) * MS;
        let consume = self.span(
            ship_trace,
            SpanSpec {
                inst: ship,
                name: "orders process",
                kind: SpanKind::Consumer,
                start: ship_t,
                duration: 35 * MS,
                parent: None,
                attrs: vec![
                    s("messaging.system", "kafka"),
                    s("messaging.destination.name", "orders"),
                    s("messaging.operation", "process"),
                    oid(),
                ],
                error: None,
            },
        );
        if let Some(span) = self.bucket(ship_t, ship).spans.last_mut() {
            span.links.push(Link {
                trace_id: trace.to_vec(),
                span_id: produce.to_vec(),
                ..Default::default()
            });
        }
        self.span(
            ship_trace,
            SpanSpec {
                inst: ship,
                name: "create shipment",
                kind: SpanKind::Internal,
                start: ship_t + 3 * MS,
                duration: 25 * MS,
                parent: Some(consume),
                attrs: vec![oid()],
                error: None,
            },
        );
        self.log(
            ship,
            ship_t + 30 * MS,
            9,
            format!("shipment created for {order} carrier=dhl"),
            Some((ship_trace, consume)),
            vec![oid()],
        );
        self.log(
            fe,
            t + total * MS,
            9,
            format!("POST /checkout answered 200 in {total} ms"),
            Some((trace, root)),
            vec![s("request_id", order.clone())],
        );
    }

    /// Logs without trace context: periodic housekeeping of every running instance.
    fn housekeeping(&mut self, minute: u64) {
        for inst in 0..INSTANCES.len() {
            if !self.running(inst, minute) {
                continue;
            }
            let t = SCENARIO_START + minute * MINUTE + self.rng.u64(0..50_000) * MS;
            let active = self.rng.u32(1..8);
            self.log(
                inst,
                t,
                9,
                format!(
                    "connection pool stats active={active} idle={} waiting=0",
                    10 - active
                ),
                None,
                vec![],
            );
            if inst == CANARY && minute >= INCIDENT_START_MINUTE {
                self.log(
                    inst,
                    t + MS,
                    13,
                    "card processor latency p99 above 2000 ms, circuit half-open".into(),
                    None,
                    vec![],
                );
            }
        }
    }

    fn running(&self, inst: usize, minute: u64) -> bool {
        inst != CANARY || (CANARY_DEPLOY_MINUTE..INCIDENT_END_MINUTE).contains(&minute)
    }

    /// The bounds (ms) of the request-duration histogram every instance reports.
    const DURATION_BOUNDS: [f64; 10] = [
        5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    ];

    fn metrics(&mut self) -> Vec<ExportMetricsServiceRequest> {
        let mut out = Vec::new();
        for (idx, inst) in INSTANCES.iter().enumerate() {
            let mut requests = 0i64;
            let mut metrics = Vec::new();
            for minute in 0..SCENARIO_MINUTES {
                if self.running(idx, minute) {
                    metrics.extend(self.instance_minute_metrics(idx, minute, &mut requests));
                }
            }
            for chunk in metrics.chunks(40) {
                out.push(metrics_request(inst, chunk.to_vec()));
            }
        }
        out
    }

    /// What instance `idx` reports at the end of `minute`: CPU, memory, its request counter
    /// (cumulative in `requests`) and a histogram of the minute's server-span durations.
    fn instance_minute_metrics(
        &mut self,
        idx: usize,
        minute: u64,
        requests: &mut i64,
    ) -> [Metric; 4] {
        let bounds = Self::DURATION_BOUNDS.to_vec();
        let t = SCENARIO_START + (minute + 1) * MINUTE - MS;
        let start = SCENARIO_START
            + if idx == CANARY {
                CANARY_DEPLOY_MINUTE * MINUTE
            } else {
                0
            };
        let server_spans: Vec<&Span> = self.buckets[minute as usize][idx]
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server as i32)
            .collect();
        *requests += server_spans.len() as i64;
        let mut counts = vec![0u64; bounds.len() + 1];
        let mut sum = 0.0;
        for s in &server_spans {
            let ms = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
            sum += ms;
            counts[bounds.iter().position(|b| ms <= *b).unwrap_or(bounds.len())] += 1;
        }
        let count = server_spans.len() as u64;
        let incident = idx == CANARY && minute >= INCIDENT_START_MINUTE;
        let cpu = if incident { 0.85 } else { 0.2 } + self.rng.f64() * 0.1;
        let mem = 180e6 + minute as f64 * if incident { 6e6 } else { 0.3e6 } + self.rng.f64() * 5e6;
        let gauge = |name: &str, unit: &str, v: f64| Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: t,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        [
            gauge("process.cpu.utilization", "1", cpu),
            gauge("process.memory.usage", "By", mem),
            Metric {
                name: "http.server.request.count".into(),
                unit: "{request}".into(),
                data: Some(Data::Sum(Sum {
                    data_points: vec![NumberDataPoint {
                        start_time_unix_nano: start,
                        time_unix_nano: t,
                        value: Some(number_data_point::Value::AsInt(*requests)),
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                name: "http.server.request.duration".into(),
                unit: "ms".into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        start_time_unix_nano: t - MINUTE + MS,
                        time_unix_nano: t,
                        count,
                        sum: Some(sum),
                        bucket_counts: counts,
                        explicit_bounds: bounds,
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                })),
                ..Default::default()
            },
        ]
    }

    /// The traffic of one minute of the scenario: checkouts and page views every 4–12 s, then
    /// the instances' housekeeping logs.
    fn traffic(&mut self, minute: u64) {
        let base = SCENARIO_START + minute * MINUTE;
        let mut t = base + self.rng.u64(0..5_000) * MS;
        while t < base + MINUTE - 3_000 * MS {
            if self.rng.u8(0..10) < 6 {
                self.checkout(t);
            } else {
                self.browse(t);
            }
            t += (4_000 + self.rng.u64(0..8_000)) * MS;
        }
        self.housekeeping(minute);
    }

    /// Moves everything generated so far out of the buckets into requests: one trace request
    /// and one log request per minute, with one resource per instance.
    fn drain(&mut self) -> Scenario {
        let mut scenario = Scenario::default();
        for minute in &mut self.buckets {
            let mut spans = Vec::new();
            let mut logs = Vec::new();
            for (idx, bucket) in minute.iter_mut().enumerate() {
                let bucket = std::mem::take(bucket);
                if !bucket.spans.is_empty() {
                    spans.push(ResourceSpans {
                        resource: resource(&INSTANCES[idx]),
                        scope_spans: vec![ScopeSpans {
                            scope: scope(),
                            spans: bucket.spans,
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                }
                if !bucket.logs.is_empty() {
                    logs.push(ResourceLogs {
                        resource: resource(&INSTANCES[idx]),
                        scope_logs: vec![ScopeLogs {
                            scope: scope(),
                            log_records: bucket.logs,
                            ..Default::default()
                        }],
                        ..Default::default()
                    });
                }
            }
            if !spans.is_empty() {
                scenario.traces.push(ExportTraceServiceRequest {
                    resource_spans: spans,
                });
            }
            if !logs.is_empty() {
                scenario.logs.push(ExportLogsServiceRequest {
                    resource_logs: logs,
                });
            }
        }
        scenario
    }

    /// Runs the hour and returns its requests.
    pub fn generate(mut self) -> Scenario {
        for minute in 0..SCENARIO_MINUTES {
            self.traffic(minute);
        }
        let metrics = self.metrics();
        Scenario {
            metrics,
            ..self.drain()
        }
    }

    /// One more minute of the scenario (minute `minute` of the hour, in scenario time) for the
    /// live demo: its spans and logs, and every running instance's metrics, with request
    /// counters carried in `requests` (one per instance, zeroed by the caller when a cycle
    /// starts over).
    pub fn live_minute(&mut self, minute: u64, requests: &mut [i64]) -> Scenario {
        self.traffic(minute);
        let mut metrics = Vec::new();
        for (idx, inst) in INSTANCES.iter().enumerate() {
            if let Some(requests) = requests.get_mut(idx).filter(|_| self.running(idx, minute)) {
                let points = self.instance_minute_metrics(idx, minute, requests);
                metrics.push(metrics_request(inst, points.to_vec()));
            }
        }
        Scenario {
            metrics,
            ..self.drain()
        }
    }
}

/// The number of simulated instances (the live demo keeps a request counter for each).
pub const INSTANCE_COUNT: usize = INSTANCES.len();

fn metrics_request(inst: &Instance, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(inst),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
