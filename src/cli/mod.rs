//! The command line: `serve`, `ingest`, `trace`, `logs`, `services`.

mod access;
mod api_get;
mod canary;
mod ingest_files;
mod postmortem_export;
mod remote;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// Sightline: send it OpenTelemetry data, see what happened.
#[derive(Debug, Parser)]
#[command(name = "sightline", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Address options of the commands that talk to a running server.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiAddr {
    /// Base URL of the server's query API.
    #[arg(long, env = "SIGHTLINE_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
}

/// `sightline apikey …`: OTLP ingest keys, kept in the data dir's `meta.sqlite`. Works while
/// the server runs; it picks changes up within seconds.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (the only time it is shown). From the first key on, every
    /// OTLP export needs a valid key.
    Create {
        /// A name to list and revoke it by.
        name: String,
        /// Records (spans, log records, metric points) per second this key may send; 0 = no
        /// limit.
        #[arg(long, default_value_t = 0)]
        records_per_second: u64,
        #[command(flatten)]
        store: MetaLocation,
    },
    /// List keys (names, limits, created, revoked — never the keys).
    List {
        #[command(flatten)]
        store: MetaLocation,
    },
    /// Revoke a key by name.
    Revoke {
        name: String,
        #[command(flatten)]
        store: MetaLocation,
    },
}

/// `sightline user …`: people who may log in to the UI and API, in the data dir's
/// `meta.sqlite`. From the first user on, a login is required. Works while the server runs.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or with `--replace` change one's role and password. The password is read
    /// from the first line of standard input (`echo "$PW" | sightline user add ana`).
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "viewer")]
        role: crate::meta::users::Role,
        /// Change an existing user instead of failing.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        store: MetaLocation,
    },
    /// List users and roles.
    List {
        #[command(flatten)]
        store: MetaLocation,
    },
    /// Remove a user (and end their sessions).
    Remove {
        name: String,
        #[command(flatten)]
        store: MetaLocation,
    },
}

/// Where the `user` and `apikey` commands find the metadata: the data dir's `meta.sqlite`,
/// or a cluster's metastore.
#[derive(Debug, clap::Args)]
pub struct MetaLocation {
    #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "sightline-data")]
    pub data_dir: PathBuf,
    /// A cluster's PostgreSQL (the `--metastore` its nodes run with); the data dir is then
    /// not used.
    #[arg(long, env = "SIGHTLINE_METASTORE")]
    pub metastore: Option<String>,
}

/// `sightline postmortem …`.
#[derive(Debug, Subcommand)]
pub enum PostmortemCommand {
    /// Write a post-mortem as Markdown (`postmortem-ID.md`) with its charts as SVG files
    /// beside it and permalinks back to each view.
    Export {
        /// The post-mortem's id (see /postmortems).
        id: i64,
        /// Folder to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        addr: ApiAddr,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: OTLP receivers, storage and the query API.
    Serve(ServeArgs),
    /// Send OTLP files (JSON, JSON lines, or protobuf) to a running server's OTLP/HTTP port.
    Ingest {
        /// Files to send. `.json`/`.jsonl` are OTLP/JSON (one request per file or per line);
        /// anything else is read as one protobuf request whose signal `--signal` names.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// OTLP/HTTP endpoint of the server.
        #[arg(
            long,
            env = "SIGHTLINE_OTLP_ENDPOINT",
            default_value = "http://127.0.0.1:4318"
        )]
        endpoint: String,
        /// Signal of protobuf files (JSON files say it themselves).
        #[arg(long, value_enum)]
        signal: Option<SignalArg>,
    },
    /// Print one trace as a tree of spans, with its logs.
    Trace {
        /// Trace id, 32 hex digits.
        id: String,
        #[command(flatten)]
        addr: ApiAddr,
    },
    /// Search logs with the query language (see README), newest first.
    Logs {
        /// The query, e.g. `service:payment severity>=WARN "card declined"`.
        query: String,
        /// Start of the time range (RFC 3339 or Unix time).
        #[arg(long)]
        start: Option<String>,
        /// End of the time range (RFC 3339 or Unix time).
        #[arg(long)]
        end: Option<String>,
        /// Most records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        addr: ApiAddr,
    },
    /// List services with their instances and when each was last seen.
    Services {
        #[command(flatten)]
        addr: ApiAddr,
    },
    /// Add, list and remove users of the UI and API.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Create, list and revoke API keys for OTLP ingest.
    Apikey {
        #[command(subcommand)]
        action: ApiKeyCommand,
    },
    /// Work with post-mortems of a running server.
    Postmortem {
        #[command(subcommand)]
        action: PostmortemCommand,
    },
    /// Rebuild the index from the Parquet files (the server must be stopped).
    Reindex {
        /// The server's data dir.
        #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "sightline-data")]
        data_dir: PathBuf,
    },
    /// Apply the retention settings once now (the server must be stopped; a running server
    /// applies them every minute by itself).
    Retention {
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Merge small Parquet files now (the server must be stopped; a running server does it
    /// every five minutes by itself).
    Compact {
        /// The server's data dir.
        #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "sightline-data")]
        data_dir: PathBuf,
    },
    /// Judge a new version of a service against the one it replaces (error rate and latency,
    /// as Kayenta does) on a running server; exits non-zero when the canary fails, for deploy
    /// pipelines to gate on.
    Canary {
        #[arg(long)]
        service: String,
        /// The version in service now.
        #[arg(long)]
        baseline: String,
        /// The new version.
        #[arg(long)]
        canary: String,
        /// Start of the window (RFC 3339 or Unix time; default: an hour before the end).
        #[arg(long)]
        start: Option<String>,
        /// End of the window (default: now).
        #[arg(long)]
        end: Option<String>,
        /// Also fail when the score (0–100) is below this, whatever the verdict.
        #[arg(long, default_value_t = 0.0)]
        fail_below: f64,
        #[command(flatten)]
        addr: ApiAddr,
    },
    /// Send synthetic OTLP load to a server and report throughput and latency.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Write the demo scenario (an hour of a small shop with an incident) as OTLP/JSON lines.
    Demo {
        /// Seed of the generator; the same seed writes the same bytes.
        #[arg(long, default_value_t = crate::demo::DEFAULT_SEED)]
        seed: u64,
        /// Folder to write `traces.jsonl`, `logs.jsonl` and `metrics.jsonl` into.
        #[arg(long, default_value = "sample-data")]
        out: PathBuf,
    },
}

/// A signal named on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SignalArg {
    Traces,
    Logs,
    Metrics,
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            crate::server::run(
                config,
                |addrs| {
                    println!("sightline is running");
                    let scheme = if addrs.tls { "https" } else { "http" };
                    println!("  UI and API   {scheme}://{}", addrs.http);
                    println!("  OTLP gRPC    {}", addrs.otlp_grpc);
                    println!("  OTLP HTTP    {scheme}://{}", addrs.otlp_http);
                    // One machine-readable line for scripts and tests.
                    println!(
                        "ready api={scheme}://{} otlp_grpc={scheme}://{} otlp_http={scheme}://{}",
                        addrs.http, addrs.otlp_grpc, addrs.otlp_http
                    );
                },
                crate::server::shutdown_signal(),
            )
            .await
        }
        Command::Ingest {
            files,
            endpoint,
            signal,
        } => ingest_files::run(&files, &endpoint, signal).await,
        Command::Trace { id, addr } => remote::trace(&addr.api, &id).await,
        Command::Logs {
            query,
            start,
            end,
            limit,
            addr,
        } => remote::logs(&addr.api, &query, start, end, limit).await,
        Command::Services { addr } => remote::services(&addr.api).await,
        Command::Apikey { action } => access::run(action).await,
        Command::User { action } => access::users(action).await,
        Command::Postmortem {
            action: PostmortemCommand::Export { id, out, addr },
        } => postmortem_export::run(&addr.api, id, &out).await,
        Command::Canary {
            service,
            baseline,
            canary,
            start,
            end,
            fail_below,
            addr,
        } => {
            canary::run(canary::CanaryArgs {
                api: &addr.api,
                service: &service,
                baseline: &baseline,
                canary: &canary,
                start: start.as_deref(),
                end: end.as_deref(),
                fail_below,
            })
            .await
        }
        Command::Loadgen(args) => crate::loadgen::run(args).await,
        Command::Compact { data_dir } => {
            let index = crate::index::BlockIndex::open(&data_dir.join("index"))?;
            let store = crate::store::Store::open_local(&data_dir.join("store"), 16_384)?;
            // Offline: nothing else reads, so swapped-out files go at once.
            let mut retired = crate::compaction::Retired::default();
            let done = crate::compaction::compact(
                &store,
                &index,
                &mut retired,
                crate::compaction::Scope::All,
            )
            .await?;
            index.close()?;
            println!(
                "compacted {} partitions: {} files into {}",
                done.partitions, done.files_in, done.files_out
            );
            Ok(())
        }
        Command::Retention { args } => {
            let config = args.resolve()?;
            let index = crate::index::BlockIndex::open(&config.data_dir.join("index"))?;
            let store = crate::store::Store::open(&config.store, config.row_group_rows)?;
            let now = crate::model::time::now_ns();
            let swept = crate::retention::sweep(&store, &index, &config.retention, now).await?;
            println!(
                "retention deleted {} partitions ({} files, {} bytes)",
                swept.partitions, swept.files, swept.bytes
            );
            Ok(())
        }
        Command::Reindex { data_dir } => {
            let done = crate::reindex::reindex(&data_dir, 16_384).await?;
            println!("reindexed {} blocks of {} files", done.blocks, done.files);
            if !done.kept_wal_position {
                println!(
                    "note: the old index was unreadable; the WAL will be replayed in full on start"
                );
            }
            Ok(())
        }
        Command::Demo { seed, out } => {
            crate::demo::write_files(&out, seed)?;
            println!("wrote the demo scenario (seed {seed}) to {}", out.display());
            Ok(())
        }
    }
}
