//! Cluster mode: the same binary as ingest, index and query nodes around NATS JetStream (the
//! queue), PostgreSQL (the catalog) and an S3 bucket (the files).
//!
//! ```text
//! OTLP ─> ingest node ─(publish, acked when stored)─> JetStream stream
//!                                                        │ durable consumer "indexers"
//!         index node: decode ─> memtable ─> Parquet to S3 ─> register files + sequences
//!                                                            in PostgreSQL (one transaction)
//!                                                        ─> acknowledge the messages
//!         query node: polls the catalog ─> reads new files' blocks into its local index
//! ```
//!
//! `indexer.rs` is the index role's consumer; `catalog_sync.rs` the query role's follower.

pub mod catalog_sync;
pub mod indexer;

use std::time::Duration;

/// What a node does; every role by default (the single binary is all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Receives OTLP (listeners on the OTLP ports) and publishes to the queue.
    pub ingest: bool,
    /// Consumes the queue, writes files and registers them.
    pub index: bool,
    /// Follows the catalog and answers queries.
    pub query: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            ingest: true,
            index: true,
            query: true,
        }
    }
}

impl Roles {
    /// No role: where parsing starts, and what it refuses to end with.
    const NONE: Roles = Roles {
        ingest: false,
        index: false,
        query: false,
    };

    /// Parses `ingest,index,query` (any non-empty subset).
    pub fn parse(names: &[String]) -> Result<Roles, String> {
        let mut roles = Roles::NONE;
        for name in names.iter().map(|n| n.trim()) {
            match name {
                "ingest" => roles.ingest = true,
                "index" => roles.index = true,
                "query" => roles.query = true,
                other => {
                    return Err(format!(
                        "unknown role {other:?}: roles are ingest, index and query"
                    ))
                }
            }
        }
        if roles == Roles::NONE {
            return Err("--roles needs at least one of ingest, index, query".into());
        }
        Ok(roles)
    }
}

/// A cluster node's settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub roles: Roles,
    pub queue: crate::queue::QueueSettings,
    /// `postgres://…` of the catalog.
    pub metastore: String,
    /// This node's name in the catalog (who registered a file).
    pub node: String,
    /// How often a query node asks the catalog for new files.
    pub catalog_poll: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_refuse_unknown_names() {
        let parse = |s: &str| Roles::parse(&s.split(',').map(String::from).collect::<Vec<_>>());
        assert_eq!(
            parse("ingest,query"),
            Ok(Roles {
                ingest: true,
                index: false,
                query: true
            })
        );
        assert!(parse("ingest,indexer").unwrap_err().contains("indexer"));
    }
}
