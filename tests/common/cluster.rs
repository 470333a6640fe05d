//! A cluster on loopback for tests: the machine's NATS JetStream and PostgreSQL (or those
//! `SIGHTLINE_TEST_NATS` / `SIGHTLINE_TEST_POSTGRES` name; `.ci/run` starts them where they
//! are missing), an `s3s-fs` of the test's own, and a stream, a schema and a bucket prefix
//! named after the test, so tests run side by side. Dropping it removes the stream and the
//! schema.

use std::path::Path;

use super::s3::{S3Server, ENV};
use super::Server;

/// The shared services of one test's cluster.
pub struct Cluster {
    pub s3: S3Server,
    pub stream: String,
    pub schema: String,
    pub prefix: String,
    /// The stream's bound (`--queue-max-bytes`): small, since JetStream reserves it on disk
    /// for every stream and tests run side by side.
    pub queue_max_bytes: u64,
    nats: String,
    postgres: String,
    /// PostgreSQL itself, even while nodes reach it through a proxy: for the cleanup.
    direct_postgres: String,
}

fn nats_url() -> String {
    std::env::var("SIGHTLINE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn postgres_url() -> String {
    std::env::var("SIGHTLINE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl Cluster {
    /// Names everything after `test` and this process, and starts `s3s-fs`.
    pub fn new(test: &str) -> Cluster {
        let unique = format!(
            "{test}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        Cluster {
            s3: S3Server::start(),
            stream: format!("sl_{unique}"),
            schema: format!("sl_{unique}"),
            prefix: unique,
            queue_max_bytes: 256 << 20,
            nats: nats_url(),
            postgres: postgres_url(),
            direct_postgres: postgres_url(),
        }
    }

    /// The PostgreSQL server's address, for a test that puts a proxy in front of it.
    pub fn postgres_addr(&self) -> std::net::SocketAddr {
        use std::net::ToSocketAddrs;
        let config: tokio_postgres::Config = self.postgres.parse().expect("postgres URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        (host.as_str(), port)
            .to_socket_addrs()
            .expect("resolve")
            .next()
            .expect("an address")
    }

    /// Nodes started from now on reach PostgreSQL through `addr` (a proxy).
    pub fn postgres_through(&mut self, addr: std::net::SocketAddr) {
        let config: tokio_postgres::Config = self.postgres.parse().expect("postgres URL");
        self.postgres = format!(
            "postgres://{}@{addr}/{}",
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres")
        );
    }

    /// The metastore URL, in this test's schema.
    pub fn metastore(&self) -> String {
        let join = if self.postgres.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{join}options=-c%20search_path%3D{}",
            self.postgres, self.schema
        )
    }

    /// The one number `sql` (a query on this test's schema) answers.
    pub async fn count(&self, sql: &str) -> i64 {
        let (client, connection) =
            tokio_postgres::connect(&self.metastore(), tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// `serve` flags of a node with `roles`.
    pub fn flags(&self, roles: &str) -> Vec<String> {
        let mut flags = self.s3.flags(&self.prefix);
        flags.extend(
            [
                "--queue",
                &self.nats,
                "--queue-stream",
                &self.stream,
                "--metastore",
                &self.metastore(),
                "--roles",
                roles,
                // A killed index node's messages go to another within seconds.
                "--queue-ack-wait-secs",
                "3",
                "--queue-max-bytes",
                &self.queue_max_bytes.to_string(),
            ]
            .map(String::from),
        );
        flags
    }

    /// Starts a node with `roles` on `data`.
    pub fn start(&self, data: &Path, roles: &str) -> Server {
        self.start_with(data, roles, &[])
    }

    /// Starts a node with `roles` on `data` and `extra` flags.
    pub fn start_with(&self, data: &Path, roles: &str, extra: &[&str]) -> Server {
        let mut flags = self.flags(roles);
        flags.extend(extra.iter().map(|f| f.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::start_with_env(data, &flags, &ENV)
    }
}

/// Removes `stream` and `schema` (best effort: a test that failed still cleans up).
async fn remove(nats: String, postgres: String, stream: String, schema: String) {
    if let Ok(client) = async_nats::connect(nats.as_str()).await {
        let js = async_nats::jetstream::new(client);
        let _ = js.delete_stream(&stream).await;
    }
    if let Ok((client, connection)) =
        tokio_postgres::connect(&postgres, tokio_postgres::NoTls).await
    {
        tokio::spawn(connection);
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
    }
}

impl Drop for Cluster {
    /// Removes the stream and the schema, on a thread of its own (the test's runtime may be
    /// the one dropping it) — also when the test failed.
    fn drop(&mut self) {
        let names = (
            self.nats.clone(),
            self.direct_postgres.clone(),
            self.stream.clone(),
            self.schema.clone(),
        );
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove(names.0, names.1, names.2, names.3));
            }
        })
        .join();
    }
}
