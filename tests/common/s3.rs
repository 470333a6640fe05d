//! A real S3-compatible server for the object-store and cluster tests: `s3s-fs`, which keeps
//! each bucket as a folder on disk (`.ci/run` installs it). Each test starts its own on an
//! ephemeral port with its own root.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const ACCESS_KEY: &str = "sightline-test";
pub const SECRET_KEY: &str = "sightline-test-secret";
pub const BUCKET: &str = "sightline";
/// Small enough that the reads of the test fill it past its bound.
pub const READ_CACHE_BYTES: u64 = 24 * 1024;

/// A running `s3s-fs` with one bucket, killed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` (from `PATH`, or `$S3S_FS`) on an ephemeral port and makes the bucket.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("temp dir");
        // s3s-fs keeps each bucket as a folder of its root.
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket folder");
        let (child, endpoint) = spawn(&root, 0);
        S3Server {
            child,
            endpoint,
            root,
        }
    }

    /// Stops the server (its objects stay on disk).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and root.
    pub fn restart(&mut self) {
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the endpoint");
        let (child, endpoint) = spawn(&self.root, port);
        assert_eq!(endpoint, self.endpoint, "restarted on the same address");
        self.child = child;
    }

    /// The folder holding the objects under `prefix` of the bucket.
    pub fn folder(&self, prefix: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(prefix)
    }

    /// `serve` flags and environment that put the store under `prefix` of the bucket.
    pub fn flags(&self, prefix: &str) -> Vec<String> {
        self.flags_through(&self.endpoint, prefix)
    }

    /// [`S3Server::flags`] with the bucket reached through `endpoint`.
    pub fn flags_through(&self, endpoint: &str, prefix: &str) -> Vec<String> {
        vec![
            "--flush-age-ms".into(),
            "300".into(),
            "--read-cache-bytes".into(),
            READ_CACHE_BYTES.to_string(),
            "--object-store".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--object-store-endpoint".into(),
            endpoint.to_string(),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
];

/// Spawns `s3s-fs` over `root` on `port` (0: any); returns it and its endpoint.
fn spawn(root: &tempfile::TempDir, port: u16) -> (Child, String) {
    let program = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".into());
    let mut child = Command::new(&program)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not start {program} ({e}); install it with `cargo install s3s-fs --version 0.14.1 --features binary --locked` (.ci/run does)")
        });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(at) = line.find("running at http://") {
                    let url = &line[at + "running at ".len()..];
                    break url.split_whitespace().next().unwrap_or(url).to_string();
                }
            }
            _ => panic!("s3s-fs exited before it said where it listens"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, endpoint)
}
