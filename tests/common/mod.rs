//! A real `sightline serve` process on ephemeral ports with its own data dir, for
//! integration tests.
#![allow(dead_code)]

pub mod alerts;
pub mod cluster;
pub mod crash;
pub mod demo;
pub mod notebook;
pub mod otlp;
pub mod proxy;
pub mod s3;
pub mod search;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A demo server shared by every test of one test binary (see [`shared_server`]).
pub fn shared_demo() -> &'static Server {
    shared_server(&["--demo", "--demo-frozen", "--flush-age-ms", "500"])
}

/// A server shared by every test of one test binary, started with `flags` on first use (one
/// per binary: later calls get the same server whatever their flags): tests that only read
/// what it holds (or add records no other test counts) each stay one case without starting a
/// server apiece. It is killed and its data dir removed when the binary exits.
pub fn shared_server(flags: &[&str]) -> &'static Server {
    static SHARED: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let data = dir.join("data");
        let (started, server) = std::sync::mpsc::channel();
        // The starting thread lives as long as the binary: the server dies with it even
        // when the binary is killed before the exit handler runs.
        std::thread::spawn(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let server = Server::spawn(&data, &flags, &[], true);
            let _ = started.send(server);
            loop {
                std::thread::park();
            }
        });
        let server = server.recv().expect("the shared server started");
        *SHARED_CLEANUP.lock().unwrap() = Some((server.pid(), dir));
        // SAFETY: registers a plain `extern "C"` function with no arguments.
        unsafe { libc::atexit(stop_shared) };
        server
    })
}

/// What [`stop_shared`] cleans up: the shared server's pid and its temp dir.
static SHARED_CLEANUP: std::sync::Mutex<Option<(u32, PathBuf)>> = std::sync::Mutex::new(None);

/// At exit: kills the shared server, waits for it, and removes its data dir.
extern "C" fn stop_shared() {
    let taken = SHARED_CLEANUP.lock().ok().and_then(|mut c| c.take());
    if let Some((pid, dir)) = taken {
        // SAFETY: signals and reaps our own child process.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A running server process.
pub struct Server {
    child: Option<Child>,
    pub api: String,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// Starts a server on `data_dir` with a short flush age, so tests also read Parquet.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &["--flush-age-ms", "300"])
    }

    /// Starts a server with extra `serve` flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        Self::spawn(data_dir, extra, &[], false)
    }

    /// Starts a server with extra `serve` flags and environment variables (credentials,
    /// which no flag takes).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::spawn(data_dir, extra, env, false)
    }

    /// Starts the server; with `die_with_parent`, the kernel kills it when the thread that
    /// started it ends (for a server shared by a whole test binary, see [`shared`]).
    fn spawn(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        die_with_parent: bool,
    ) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("server log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
        if die_with_parent {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--otlp-grpc-addr",
                "127.0.0.1:0",
            ])
            .args(["--otlp-http-addr", "127.0.0.1:0"])
            .args(extra)
            .env("SIGHTLINE_LOG", "info")
            // Tests send records with fixed timestamps: keep them whatever today's date is
            // (tests of retention pass flags, which win over the environment).
            .env("SIGHTLINE_RETENTION_HOURS_TRACES", "0")
            .env("SIGHTLINE_RETENTION_HOURS_LOGS", "0")
            .env("SIGHTLINE_RETENTION_HOURS_METRICS", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sightline");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ready ") => break line,
                Some(Ok(_)) => continue,
                _ => {
                    let log =
                        std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
                    panic!("server exited before it was ready; its log:\n{log}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| {
            ready
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {ready:?}"))
                .to_string()
        };
        Server {
            api: field("api"),
            otlp_grpc: field("otlp_grpc"),
            otlp_http: field("otlp_http"),
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Graceful stop (SIGTERM); asserts the server exits cleanly within 20 s.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                if !status.success() {
                    let log = std::fs::read_to_string(self.data_dir.with_extension("log"))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    panic!(
                        "server exited with {status}; the end of its log:\n{}",
                        tail.join("\n")
                    );
                }
                return;
            }
            assert!(Instant::now() < deadline, "server did not stop within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Hard crash (SIGKILL), as a power cut looks to the process.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// GET a path of the query API and parse the JSON answer; returns (status, body).
    pub async fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path_and_query}", self.api))
            .await
            .expect("query API reachable");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON answer");
        (status, body)
    }

    /// Polls `path` until `done` accepts the answer (data is visible within 2 s of ack).
    pub async fn wait_for(
        &self,
        path: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_for_within(path, Duration::from_secs(10), done)
            .await
    }

    /// Polls `path` until `done` holds, for at most `limit`.
    pub async fn wait_for_within(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, body) = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path}; last answer: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// URL-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Bytes of every file under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            total += dir_bytes(&path);
        } else if let Ok(m) = entry.metadata() {
            total += m.len();
        }
    }
    total
}

/// Runs `sightline compact` on a stopped server's data dir; asserts it succeeds and returns
/// what it printed.
pub fn compact(data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["compact", "--data-dir"])
        .arg(data)
        .output()
        .expect("run sightline compact");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every Parquet file under `dir`, recursively.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

impl Server {
    /// POSTs an OTLP protobuf body to one of the OTLP/HTTP paths (`/v1/logs`, …).
    pub async fn post_protobuf(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .expect("OTLP/HTTP reachable")
    }

    /// POSTs an OTLP/HTTP protobuf export as an OpenTelemetry exporter does: a 503 (the
    /// server shedding load while a debug build's flusher catches up) is retried a second
    /// later, for up to a minute. Returns the final status.
    pub async fn export_retrying(&self, path: &str, body: Vec<u8>) -> reqwest::StatusCode {
        retrying_export(
            &reqwest::Client::new(),
            &format!("{}{path}", self.otlp_http),
            body,
        )
        .await
    }

    /// The server's `/metrics` page.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.api))
            .await
            .expect("metrics reachable")
            .text()
            .await
            .expect("metrics text")
    }

    /// A gauge or counter (without labels) of the server's `/metrics` page.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }
}

/// Batch `n` of the load generator's `signal` ("traces" or "logs") as OTLP protobuf: its
/// 16 payload variants with fresh ids per batch, stamped `base_ns` plus `n` seconds.
pub fn loadgen_export(signal: &str, n: u64, batch: usize, base_ns: u64) -> Vec<u8> {
    use prost::Message;
    use sightline::loadgen::payload;
    let (seed, shift) = (n % 16, n * 1_000_000_000);
    match signal {
        "traces" => {
            let mut req = payload::traces(seed, batch, base_ns);
            payload::refresh_trace_ids(&mut req, n, shift);
            req.encode_to_vec()
        }
        _ => {
            let mut req = payload::logs(seed, batch, base_ns);
            payload::refresh_log_ids(&mut req, n, shift);
            req.encode_to_vec()
        }
    }
}

/// Starts `sightline serve` on `data` with exactly `args`, waits until it says ready (or
/// exits), kills it and tells whether it got ready — for checks of what a server accepts.
pub fn starts_with_args(data: &Path, args: &[&str]) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sightline");
    let ready = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("ready "));
    let _ = child.kill();
    let _ = child.wait();
    ready
}

/// Adds a user with `sightline user add`, the password typed on stdin.
pub fn add_user(data: &std::path::Path, name: &str, role: &str, password: &str) {
    let data = data.to_str().expect("a UTF-8 path");
    add_user_in(&["--data-dir", data], name, role, password);
}

/// [`add_user`] into the metadata store `location` names (`--data-dir D` or `--metastore URL`).
pub fn add_user_in(location: &[&str], name: &str, role: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["user", "add", name, "--role", role])
        .args(location)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `exports` load-generator log exports of `batch` records (event times from
/// `base_ns`, one second apart) over OTLP/HTTP, four in flight. As an OTLP exporter does, a
/// 503 (the server shedding load while a debug build's flusher catches up) is retried after
/// its `Retry-After`; anything but 200 after that fails the test.
pub async fn fill_logs(server: &Server, exports: u64, batch: usize, base_ns: u64) {
    let client = reqwest::Client::new();
    let mut pending = Vec::new();
    for n in 0..exports {
        let body = loadgen_export("logs", n, batch, base_ns);
        let (client, url) = (client.clone(), format!("{}/v1/logs", server.otlp_http));
        pending.push(tokio::spawn(async move {
            retrying_export(&client, &url, body).await
        }));
        if pending.len() == 4 || n + 1 == exports {
            for p in pending.drain(..) {
                assert_eq!(p.await.expect("task"), 200, "export {n}");
            }
        }
    }
}

/// POSTs `body` (OTLP protobuf) to `url`, retrying a 503 every second for up to a minute.
async fn retrying_export(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::StatusCode {
    for _ in 0..60 {
        let response = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .await
            .expect("OTLP/HTTP reachable");
        if response.status() != 503 {
            return response.status();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    reqwest::StatusCode::SERVICE_UNAVAILABLE
}

/// A memory figure of a process from `/proc/PID/status` (`"VmRSS:"`, `"VmHWM:"`), in bytes;
/// 0 when it cannot be read.
pub fn rss_of(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Whether the Python module a test drives (a real SMTP server, DuckDB) is installed. When it
/// is not: a loud notice and `false` (the test skips), unless the environment variable
/// `require` is set — `.ci/run` installs the modules and sets it, so there a missing module
/// fails the test instead of skipping it.
pub fn python_module_available(module: &str, require: &str) -> bool {
    let installed = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var_os(require).is_none(),
            "{module} is required ({require} is set): python3 -m pip install {module}"
        );
        eprintln!(
            "\n*** SKIPPED: this test needs {module} (python3 -m pip install {module}) ***\n"
        );
    }
    installed
}
