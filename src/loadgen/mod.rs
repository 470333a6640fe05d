//! `sightline loadgen`: sends synthetic OTLP to a server (or to nothing, to show the
//! generator's own ceiling) and reports acknowledged records per second, bytes per second and
//! export latency. `--fill N` loads N records as fast as the server takes them.

mod latency;
mod own_requests;
pub mod payload;
mod queries;
mod raw_export;

pub use queries::rare_token;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::bytes::Bytes;
use prost::Message;

use latency::Latencies;
use own_requests::OwnRequests;
use payload::Stamp;
use raw_export::RawExport;

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadSignal {
    Traces,
    Logs,
    Metrics,
    /// Traces, logs and metrics in turn.
    Mix,
}

/// How to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadProtocol {
    Grpc,
    HttpProto,
    HttpJson,
}

/// `loadgen` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    #[arg(long, value_enum, default_value = "traces")]
    pub signal: LoadSignal,
    #[arg(long, value_enum, default_value = "grpc")]
    pub protocol: LoadProtocol,
    /// Server address [default: http://127.0.0.1:4317 for gRPC, http://127.0.0.1:4318 for HTTP].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Concurrent connections, each with one export in flight.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Records per export request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Target records per second over all connections; 0 sends as fast as acks allow.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Stop after this many records are acknowledged instead (data-set builder).
    #[arg(long)]
    pub fill: Option<u64>,
    /// Logs: a new body for every record (5–30 words of a small vocabulary, a random 32-bit
    /// number and a uuid), so every id-like token is rare, as in real logs. Without it, the
    /// bodies of a few prebuilt requests repeat.
    #[arg(long)]
    pub unique_bodies: bool,
    /// Build and encode payloads but send nothing: the generator's own ceiling.
    #[arg(long)]
    pub null_sink: bool,
    /// Time queries instead of sending data: trace by id, logs by correlation id, full text,
    /// service map, RED overview, metric range, over ids sampled from the server's data.
    #[arg(long)]
    pub queries: bool,
    /// The server's web/API address, for `--queries`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Requests per query kind, for `--queries`.
    #[arg(long, default_value_t = 200)]
    pub query_runs: usize,
    /// With `--queries`: look this trace up before anything else (the cold query).
    #[arg(long)]
    pub cold_trace_id: Option<String>,
}

/// Counters shared by the workers and the reporter.
#[derive(Default)]
struct Stats {
    acked: AtomicU64,
    bytes: AtomicU64,
    rejected: AtomicU64,
    retried: AtomicU64,
    latency: Mutex<Latencies>,
}

/// One connection's client.
enum Client {
    Null,
    /// OTLP/gRPC exports of encoded requests over one connection.
    Grpc(RawExport),
    /// A pooled HTTP client and the base URL.
    Http(reqwest::Client, String),
}

/// Prebuilt requests of every signal, reused with fresh ids.
struct Payloads {
    traces: Vec<ExportTraceServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    /// The time the payloads are stamped with; each send moves them to its own time.
    built_at: u64,
}

/// Outcome of one export.
enum Sent {
    Ok { rejected: u64 },
    Retry,
    Failed(String),
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Runs the load and prints a line per second and a final report.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    if args.queries {
        return queries::run(&args.api, args.query_runs, args.cold_trace_id.as_deref()).await;
    }
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| match args.protocol {
            LoadProtocol::Grpc => "http://127.0.0.1:4317".into(),
            _ => "http://127.0.0.1:4318".into(),
        });
    let now = now_ns();
    let variants = 16u64;
    let payloads = Arc::new(Payloads {
        traces: (0..variants)
            .map(|i| payload::traces(i, args.batch, now))
            .collect(),
        logs: (0..variants)
            .map(|i| payload::logs(i, args.batch, now))
            .collect(),
        metrics: (0..variants)
            .map(|i| payload::metrics(i, args.batch, now))
            .collect(),
        built_at: now,
    });
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    let mut workers = Vec::new();
    for w in 0..args.connections.max(1) {
        let client = connect(&args, &endpoint).await?;
        let (payloads, stats, stop, batches, args) = (
            payloads.clone(),
            stats.clone(),
            stop.clone(),
            batches.clone(),
            args.clone(),
        );
        workers.push(tokio::spawn(async move {
            worker(w, client, payloads, stats, stop, batches, args, deadline).await
        }));
    }
    let reporter = {
        let (stats, stop) = (stats.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let acked = stats.acked.load(Ordering::Relaxed);
                let p99_ms = stats.latency.lock().map(|h| h.ms(0.99)).unwrap_or(0.0);
                println!(
                    "{:>4}s  {:>10} records/s  {:>12} acked  p99 {:>7.1} ms  retried {}",
                    started.elapsed().as_secs(),
                    acked - last,
                    acked,
                    p99_ms,
                    stats.retried.load(Ordering::Relaxed)
                );
                last = acked;
            }
        })
    };
    for w in workers {
        if let Err(e) = w.await.context("worker panicked")? {
            eprintln!("worker stopped: {e:#}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reporter.await;
    let secs = started.elapsed().as_secs_f64();
    let acked = stats.acked.load(Ordering::Relaxed);
    let latency = stats.latency.lock().map(|h| h.clone()).unwrap_or_default();
    let ms = |q: f64| latency.ms(q);
    println!("--- loadgen report ---");
    println!(
        "signal {:?}, protocol {:?}, {} connections, batch {}{}",
        args.signal,
        args.protocol,
        args.connections,
        args.batch,
        if args.null_sink {
            ", NULL SINK (nothing sent)"
        } else {
            ""
        }
    );
    println!(
        "records acknowledged  {acked} in {secs:.1} s = {:.0} records/s",
        acked as f64 / secs
    );
    let bytes = stats.bytes.load(Ordering::Relaxed);
    println!(
        "OTLP protobuf bytes   {:.1} MB/s, {bytes} acknowledged in all ({:.0} B/record)",
        bytes as f64 / secs / 1e6,
        bytes as f64 / acked.max(1) as f64
    );
    let sample = batches.load(Ordering::Relaxed).min(ZSTD_SAMPLE_BATCHES);
    if sample > 0 {
        let (raw, packed, records) = zstd_of_stream(&payloads, &args, sample)?;
        println!(
            "zstd -3 of that stream {:.0} B/record ({:.1}x smaller than protobuf; first {sample} batches re-encoded as one stream)",
            packed as f64 / records.max(1) as f64,
            raw as f64 / packed.max(1) as f64
        );
    }
    println!(
        "export latency        p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    println!(
        "rejected records      {}   retried exports {}",
        stats.rejected.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed)
    );
    Ok(())
}

impl LoadSignal {
    /// The signal batch `n` carries: `Mix` takes traces, logs and metrics in turn.
    fn of_batch(self, n: u64) -> LoadSignal {
        match self {
            LoadSignal::Mix => {
                [LoadSignal::Traces, LoadSignal::Logs, LoadSignal::Metrics][(n % 3) as usize]
            }
            s => s,
        }
    }
}

/// Most batches re-encoded for the zstd comparison (enough to fill zstd -3's window many
/// times over; all of a run would cost the generator a core).
const ZSTD_SAMPLE_BATCHES: u64 = 256;

/// The bytes of the first `batches` exports of a run — the same payloads, ids and signal
/// order the workers send — as protobuf and as one zstd level-3 stream, and their record
/// count: the archive size stored bytes per record are held against.
fn zstd_of_stream(
    p: &Payloads,
    args: &LoadgenArgs,
    batches: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    use std::io::Write;
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3)?;
    let mut raw = 0u64;
    for n in 0..batches {
        let variant = (n % p.traces.len() as u64) as usize;
        let signal = args.signal.of_batch(n);
        let bytes = match signal {
            LoadSignal::Traces | LoadSignal::Mix => {
                let mut req = p.traces[variant].clone();
                payload::refresh_trace_ids(&mut req, n, 0);
                req.encode_to_vec()
            }
            LoadSignal::Logs => {
                let mut req = p.logs[variant].clone();
                payload::refresh_log_ids(&mut req, n, 0);
                if args.unique_bodies {
                    payload::unique_log_bodies(&mut req, n);
                }
                req.encode_to_vec()
            }
            LoadSignal::Metrics => p.metrics[variant].encode_to_vec(),
        };
        raw += bytes.len() as u64;
        encoder.write_all(&bytes)?;
    }
    let packed = encoder.finish()?.len() as u64;
    Ok((raw, packed, batches * args.batch as u64))
}

async fn connect(args: &LoadgenArgs, endpoint: &str) -> anyhow::Result<Client> {
    if args.null_sink {
        return Ok(Client::Null);
    }
    Ok(match args.protocol {
        LoadProtocol::Grpc => {
            let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
                .connect()
                .await
                .with_context(|| format!("could not connect to {endpoint}"))?;
            Client::Grpc(RawExport::new(channel, 64 << 20))
        }
        LoadProtocol::HttpProto | LoadProtocol::HttpJson => Client::Http(
            reqwest::Client::new(),
            endpoint.trim_end_matches('/').to_string(),
        ),
    })
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    id: usize,
    mut client: Client,
    payloads: Arc<Payloads>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    batches: Arc<AtomicU64>,
    args: LoadgenArgs,
    deadline: Instant,
) -> anyhow::Result<()> {
    let per_worker_rate = args.rate as f64 / args.connections.max(1) as f64;
    let started = Instant::now();
    let mut sent_records = 0u64;
    let mut own = OwnRequests::new(payloads.traces.len());
    loop {
        if stop.load(Ordering::Relaxed) || (args.fill.is_none() && Instant::now() >= deadline) {
            return Ok(());
        }
        if let Some(fill) = args.fill {
            if stats.acked.load(Ordering::Relaxed) >= fill {
                stop.store(true, Ordering::Relaxed);
                return Ok(());
            }
        }
        if per_worker_rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent_records as f64 / per_worker_rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let n = batches.fetch_add(1, Ordering::Relaxed);
        let signal = args.signal.of_batch(n);
        let variant = ((n + id as u64) % payloads.traces.len() as u64) as usize;
        let to = Stamp {
            batch: n,
            shift_nano: now_ns().saturating_sub(payloads.built_at),
        };
        let (body, bytes) = own.encoded(&payloads, signal, variant, to, &args);
        loop {
            let t = Instant::now();
            let outcome = send(&mut client, signal, body.clone(), args.protocol).await;
            let elapsed = t.elapsed().as_nanos() as u64;
            match outcome {
                Sent::Ok { rejected } => {
                    stats
                        .acked
                        .fetch_add(args.batch as u64 - rejected, Ordering::Relaxed);
                    stats.rejected.fetch_add(rejected, Ordering::Relaxed);
                    stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                    if let Ok(mut h) = stats.latency.lock() {
                        h.record(elapsed);
                    }
                    break;
                }
                Sent::Retry => {
                    stats.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Sent::Failed(e) => anyhow::bail!("export failed: {e}"),
            }
        }
        sent_records += args.batch as u64;
    }
}

/// Sends one encoded export (`body`, in `protocol`'s encoding) of `signal`.
async fn send(
    client: &mut Client,
    signal: LoadSignal,
    body: Bytes,
    protocol: LoadProtocol,
) -> Sent {
    let grpc_outcome = |r: Result<u64, tonic::Status>| match r {
        Ok(rejected) => Sent::Ok { rejected },
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::ResourceExhausted
            ) =>
        {
            Sent::Retry
        }
        Err(s) => Sent::Failed(s.to_string()),
    };
    match client {
        Client::Null => Sent::Ok { rejected: 0 },
        Client::Grpc(c) => grpc_outcome(match signal {
            LoadSignal::Traces | LoadSignal::Mix => c
                .export::<ExportTraceServiceResponse>(raw_export::TRACES, body)
                .await
                .map(|r| r.partial_success.map_or(0, |p| p.rejected_spans as u64)),
            LoadSignal::Logs => c
                .export::<ExportLogsServiceResponse>(raw_export::LOGS, body)
                .await
                .map(|r| {
                    r.partial_success
                        .map_or(0, |p| p.rejected_log_records as u64)
                }),
            LoadSignal::Metrics => c
                .export::<ExportMetricsServiceResponse>(raw_export::METRICS, body)
                .await
                .map(|r| {
                    r.partial_success
                        .map_or(0, |p| p.rejected_data_points as u64)
                }),
        }),
        Client::Http(http, base) => {
            let path = match signal {
                LoadSignal::Traces | LoadSignal::Mix => "traces",
                LoadSignal::Logs => "logs",
                LoadSignal::Metrics => "metrics",
            };
            post(http, &format!("{base}/v1/{path}"), body, protocol).await
        }
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Bytes, protocol: LoadProtocol) -> Sent {
    let content_type = if protocol == LoadProtocol::HttpJson {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    match http
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => {
            let text = r.bytes().await.unwrap_or_default();
            // Partial success is counted only for JSON answers (protobuf ones rarely carry it
            // in load tests; the gRPC path counts it exactly).
            let rejected = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("partialSuccess")
                        .and_then(|p| p.as_object())
                        .and_then(|p| {
                            p.values().find_map(|v| {
                                v.as_u64()
                                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            })
                        })
                })
                .unwrap_or(0);
            Sent::Ok { rejected }
        }
        Ok(r) if matches!(r.status().as_u16(), 429 | 502 | 503 | 504) => Sent::Retry,
        Ok(r) => Sent::Failed(format!("{url} answered {}", r.status())),
        Err(e) => Sent::Failed(format!("{url}: {e}")),
    }
}
