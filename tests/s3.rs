//! The pipeline and the read side on a real S3-compatible server: `s3s-fs` (the s3s project's
//! file-backed S3 server, installed by tests/run-all.sh) on a loopback port.
//!
//! - `divoc run` publishes to `s3://divoc/out` (Parquet, dead letters, checkpoint manifests,
//!   analytics) and `divoc sql` over the same URL counts exactly the generator's valid events;
//! - through a proxy that answers 5% of requests with 503, and with the S3 server stopped for two
//!   seconds in the middle of a run and started again, a second run loses nothing and duplicates
//!   nothing: every valid event is certified exactly once (object_store retries with backoff);
//! - `divoc serve` reads the certificates from the same bucket.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const ACCESS_KEY: &str = "divoc-test-access";
const SECRET_KEY: &str = "divoc-test-secret-key-0001";

fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let local = repo().join("target/tools/bin/s3s-fs");
    if local.exists() {
        return local;
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v s3s-fs"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    on_path.unwrap_or_else(|| {
        panic!(
            "s3s-fs is not installed: tests/run-all.sh installs it into target/tools \
             (cargo install s3s-fs@0.14.1 --features binary --root target/tools)"
        )
    })
}

/// A running s3s-fs serving `root` (buckets are its subdirectories).
struct S3Server {
    child: Child,
    port: u16,
    root: PathBuf,
}

impl S3Server {
    fn start(root: &Path, port: u16) -> S3Server {
        std::fs::create_dir_all(root.join("divoc")).unwrap();
        let child = Command::new(s3s_fs_bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            child,
            port,
            root: root.to_path_buf(),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        *self = S3Server::start(&self.root.clone(), self.port);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP proxy in front of the S3 server that answers every `fail_every`-th request with a
/// 503 instead of forwarding it (one request per connection upstream).
struct FaultyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
}

fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut byte).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Some(buf)
}

impl FaultyProxy {
    fn start(upstream: u16, fail_every: u64) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let counter = Arc::new(AtomicU64::new(0));
        let (s, f, fw) = (stop.clone(), failed.clone(), forwarded.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let (mut client, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let (counter, f, fw) = (counter.clone(), f.clone(), fw.clone());
                std::thread::spawn(move || {
                    let _ = client.set_nonblocking(false);
                    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
                    // Keep-alive from the client: serve its requests one by one.
                    while let Some(request) = read_request(&mut client) {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        if n % fail_every == 0 {
                            f.fetch_add(1, Ordering::SeqCst);
                            let _ = client.write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                            );
                            continue;
                        }
                        let response = forward(upstream, &request);
                        match response {
                            Some(r) => {
                                fw.fetch_add(1, Ordering::SeqCst);
                                if client.write_all(&r).is_err() {
                                    return;
                                }
                            }
                            None => return, // upstream down: the client sees the connection drop
                        }
                    }
                });
            }
        });
        FaultyProxy {
            port,
            stop,
            failed,
            forwarded,
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Sends one request upstream with `Connection: close` and returns the whole response.
fn forward(upstream: u16, request: &[u8]) -> Option<Vec<u8>> {
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n")? + 2;
    let mut conn = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = String::from_utf8_lossy(&request[..head_end]);
    let kept: String = head
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    conn.write_all(kept.as_bytes()).ok()?;
    conn.write_all(b"Connection: close\r\n").ok()?;
    conn.write_all(&request[head_end..]).ok()?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response).ok()?;
    (!response.is_empty()).then_some(response)
}

/// `[storage]` options of the bucket behind `endpoint_port`.
fn s3_options(endpoint_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", format!("http://127.0.0.1:{endpoint_port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", ACCESS_KEY.into()),
        ("aws_secret_access_key", SECRET_KEY.into()),
        ("aws_region", "us-east-1".into()),
        ("aws_virtual_hosted_style_request", "false".into()),
    ]
}

fn s3_sets(endpoint_port: u16, state: &Path) -> Vec<String> {
    let mut sets = vec![
        "storage.url=s3://divoc/out".into(),
        format!("storage.state_dir={}", state.display()),
        "metrics.listen=".into(),
    ];
    // Quoted: every option is a string, also `true`.
    for (k, v) in s3_options(endpoint_port) {
        sets.push(format!("storage.options.{k}={}", toml::Value::String(v)));
    }
    sets
}

fn run_pipeline(dir: &Path, input: &Path, endpoint_port: u16) -> std::process::Child {
    let mut sets = vec![
        // Short epochs: more objects and checkpoints, so more requests meet the failures.
        "pipeline.checkpoint_interval_ms=300".to_owned(),
        "pipeline.checkpoint_max_records=2000".to_owned(),
        format!("nodes.sign.key_file={}", issuer_key(dir).display()),
        format!("nodes.input.path={}", input.display()),
    ];
    sets.extend(s3_sets(endpoint_port, &dir.join("state")));
    let args = with_sets(
        &["run", "--config", &default_config().display().to_string()],
        &sets,
    );
    Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("divoc run starts")
}

fn finish(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "divoc run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `divoc sql` over the bucket: certificate ids of the accepted events.
fn accepted_ids(endpoint_port: u16, dir: &Path) -> Vec<String> {
    let mut options = toml::Table::new();
    for (k, v) in s3_options(endpoint_port) {
        options.insert(k.into(), toml::Value::String(v));
    }
    let mut storage = toml::Table::new();
    storage.insert("url".into(), "s3://divoc/out".into());
    storage.insert("options".into(), toml::Value::Table(options));
    let mut doc = toml::Table::new();
    doc.insert("storage".into(), toml::Value::Table(storage));
    let file = dir.join("sql.toml");
    std::fs::write(&file, toml::to_string(&doc).unwrap()).unwrap();
    let out = divoc(&[
        "sql",
        "--config",
        &file.display().to_string(),
        "--full",
        "--format",
        "csv",
        "--max-rows",
        "1000000",
        "SELECT certificate_id FROM accepted ORDER BY certificate_id",
    ]);
    assert!(
        out.status.success(),
        "divoc sql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn valid_count(summary: &str) -> u64 {
    gen_counts(summary).1
}

#[test]
fn the_pipeline_publishes_to_s3_and_loses_nothing_through_failures_and_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut server = S3Server::start(&dir.join("s3"), free_port());
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();

    // 1. Plainly: publish, count with SQL over the same bucket.
    let first = gen(&input.join("a.ndjson"), 3000, 21, 0.02, 0.01);
    finish(run_pipeline(dir, &input, server.port));
    let ids = accepted_ids(server.port, dir);
    assert_eq!(ids.len() as u64, valid_count(&first), "{first}");
    assert!(
        dir.join("s3/divoc/out/accepted").is_dir(),
        "the objects are in the S3 server's bucket"
    );

    // 2. Through a proxy failing 5% of requests, with the server down for 2 s mid-run.
    let proxy = FaultyProxy::start(server.port, 20);
    let second = gen(&input.join("b.ndjson"), 60_000, 22, 0.02, 0.01);
    let mut run = run_pipeline(dir, &input, proxy.port);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended before the S3 server was stopped; give it more events"
    );
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    finish(run);
    let (failed, forwarded) = (
        proxy.failed.load(Ordering::SeqCst),
        proxy.forwarded.load(Ordering::SeqCst),
    );
    assert!(
        failed >= 1 && forwarded > 0,
        "the proxy failed {failed} requests and forwarded {forwarded}"
    );
    eprintln!("faulty proxy: {failed} requests failed with 503, {forwarded} forwarded");
    let ids = accepted_ids(server.port, dir);
    assert_eq!(
        ids.len() as u64,
        valid_count(&first) + valid_count(&second),
        "every valid event of both runs certified: {second}"
    );
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no certificate published twice");
    drop(proxy);

    // A large object goes up in parts and comes back identical.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options: std::collections::BTreeMap<String, String> = s3_options(server.port)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let storage =
        divoc_connectors::storage::Storage::open("s3://divoc/out", &options, rt.handle().clone())
            .unwrap();
    let size = divoc_connectors::storage::MULTIPART_FROM_BYTES + 5_000_001;
    let large: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
    storage
        .put("large/object.bin", bytes::Bytes::from(large.clone()))
        .unwrap();
    assert_eq!(
        storage.get("large/object.bin").unwrap().as_deref(),
        Some(large.as_slice())
    );
    assert_eq!(
        std::fs::metadata(dir.join("s3/divoc/out/large/object.bin"))
            .unwrap()
            .len(),
        size as u64
    );
    drop(rt);

    // 3. The read side on the same bucket.
    let config = repo().join("config");
    let mut options = toml::Table::new();
    for (k, v) in s3_options(server.port) {
        options.insert(k.into(), toml::Value::String(v));
    }
    let serve_file = dir.join("serve.toml");
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    std::fs::write(
        &serve_file,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = \"s3://divoc/out\"\nindex_dir = {}\n\
             refresh_interval_ms = 200\ntokens = [{{ token = \"s3-test-token-000001\", tenant = \"default\" }}]\n\
             templates = {}\nfhir_codes = {}\nstorage_options = {}\n",
            q(&dir.join("index")),
            q(&config),
            q(&config.join("shc-codes.toml")),
            toml::Value::Table(options)
        ),
    )
    .unwrap();
    let serve = start_serve(&serve_file);
    let (status, body) = http(
        serve.addr,
        "GET",
        &format!(
            "/certificate/api/v1/certificates/{}/credential.json",
            ids[0]
        ),
        Some("Bearer s3-test-token-000001"),
        "text/plain",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let credential: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(credential["evidence"][0]["certificateId"], ids[0].as_str());
    stop_serve(serve);
}
