//! Sightline: a single-binary OpenTelemetry collector, store and dashboard.
//!
//! Data flows one way through the modules: [`ingest`] (OTLP receivers) → [`pipeline`]
//! (memtables, the WAL writer, flushing) → [`store`] (Parquet) and [`index`] (tantivy block
//! index) → [`query`] → [`api`], [`web`] and [`compat`]. A room never imports one above it:
//! ARCHITECTURE.md lists the layers and `tests/layers.rs` checks every `crate::` path.

pub mod access;
pub mod alerting;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod compaction;
pub mod compat;
pub mod config;
pub mod demo;
pub mod evidence;
pub mod hardening;
pub mod index;
pub mod ingest;
pub mod loadgen;
pub mod meta;
pub mod metastore;
pub mod model;
pub mod notebook;
pub mod pipeline;
pub mod postmortem;
pub mod quarantine;
pub mod query;
pub mod queue;
pub mod reindex;
pub mod retention;
pub mod rollup;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wal;
pub mod web;
