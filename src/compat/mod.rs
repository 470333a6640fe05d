//! APIs of other tools, so their clients (Grafana data sources, Jaeger UI, scripts) work
//! against Sightline unchanged. Each lives in its own module over the one query layer and
//! never reaches into storage.

pub mod jaeger;
pub mod loki;
pub mod prometheus;
