//! Helpers shared by the integration tests: run the real binary, read its Parquet output.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::UInt64Type;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use divoc_connectors::parquet::read_parquet_objects;
use divoc_connectors::storage::Storage;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_divoc")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn default_config() -> PathBuf {
    repo().join("config/pipeline.toml")
}

/// Runs `divoc` with args, returning its output; panics with stderr if it fails to start.
pub fn divoc(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("divoc binary runs")
}

/// Creates an issuer key under `dir` (once) and returns its path.
pub fn issuer_key(dir: &Path) -> PathBuf {
    let p = dir.join("keys/issuer.json");
    if !p.exists() {
        let out = divoc(&[
            "keys",
            "generate",
            "--out",
            &p.display().to_string(),
            "--issuer",
            "https://issuer.test",
        ]);
        assert!(
            out.status.success(),
            "keys generate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    p
}

/// `--set` overrides pointing a pipeline at a private directory (with its own issuer key).
pub fn dir_sets(dir: &Path, input: &Path) -> Vec<String> {
    vec![
        format!("nodes.sign.key_file={}", issuer_key(dir).display()),
        format!("storage.url={}", dir.join("out").display()),
        format!("storage.state_dir={}", dir.join("state").display()),
        format!("nodes.input.path={}", input.display()),
        "metrics.listen=".to_owned(),
    ]
}

/// Runs `divoc <args> --set ...`, asserting it succeeds; returns stdout and stderr together.
pub fn divoc_ok(args: &[&str], sets: &[String]) -> String {
    let out = divoc(
        &with_sets(args, sets)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "divoc {args:?}: {text}");
    text
}

pub fn with_sets(base: &[&str], sets: &[String]) -> Vec<String> {
    let mut v: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for s in sets {
        v.push("--set".into());
        v.push(s.clone());
    }
    v
}

/// Generates `count` NDJSON events with `divoc gen`; returns the generator's stderr summary line.
pub fn gen(file: &Path, count: u64, seed: u64, invalid: f64, dup: f64) -> String {
    let out = divoc(&[
        "gen",
        "--count",
        &count.to_string(),
        "--seed",
        &seed.to_string(),
        "--invalid-share",
        &invalid.to_string(),
        "--duplicate-share",
        &dup.to_string(),
        "--out",
        &file.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "gen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses "generated N events: V valid, D duplicates, I invalid" from `divoc gen`.
pub fn gen_counts(summary: &str) -> (u64, u64, u64, u64) {
    let nums: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

pub fn read_output(out_dir: &Path, prefix: &str) -> Vec<RecordBatch> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let storage = Storage::open(
        &out_dir.display().to_string(),
        &Default::default(),
        rt.handle().clone(),
    )
    .unwrap();
    read_parquet_objects(&storage, prefix).unwrap()
}

/// (source_id, source_offset) of every row.
pub fn origins(batches: &[RecordBatch]) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    for b in batches {
        let s = b.column_by_name("source_id").unwrap().as_string::<i32>();
        let o = b
            .column_by_name("source_offset")
            .unwrap()
            .as_primitive::<UInt64Type>();
        for i in 0..b.num_rows() {
            v.push((s.value(i).to_owned(), o.value(i)));
        }
    }
    v
}

pub fn string_column(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut v = Vec::new();
    for b in batches {
        let c = b.column_by_name(name).unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            v.push(if c.is_null(i) {
                String::new()
            } else {
                c.value(i).to_owned()
            });
        }
    }
    v
}

/// Every row rendered as text, all columns, sorted: equal sets mean equal content.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    let opts = FormatOptions::default().with_null("∅");
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = fmts.iter().map(|f| f.value(i).to_string()).collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

pub fn reason_counts(dead: &[RecordBatch]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in string_column(dead, "reason_code") {
        *m.entry(r).or_default() += 1;
    }
    m
}

/// Asserts two outputs hold the same rows; on failure reports counts and the first difference only.
pub fn assert_same_rows(a: &[RecordBatch], b: &[RecordBatch]) {
    let (ra, rb) = (rows_as_text(a), rows_as_text(b));
    if ra != rb {
        let first = ra.iter().zip(&rb).position(|(x, y)| x != y);
        let show = |r: Option<&String>| {
            r.map(|s| s.chars().take(600).collect::<String>())
                .unwrap_or_default()
        };
        panic!(
            "outputs differ: {} vs {} rows; first difference at sorted row {:?}:\n  {}\n  {}",
            ra.len(),
            rb.len(),
            first,
            show(first.and_then(|i| ra.get(i))),
            show(first.and_then(|i| rb.get(i)))
        );
    }
}

/// A free loopback port (bound then released; a test server binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body). `auth` is the whole
/// `Authorization` header value.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    ctype: &str,
    body: &[u8],
) -> (u16, String) {
    let (status, body) = http_bytes(addr, method, path, auth, ctype, body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// [`http`] with the body as bytes (images, PDFs).
pub fn http_bytes(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    ctype: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a huge body; ignore a broken pipe then.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.get(split + 4..).unwrap_or_default().to_vec();
    (status, body)
}

/// A running `divoc serve`, killed when dropped.
pub struct Serve {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// What it wrote to stderr so far (read on a thread, so logging never blocks it).
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `divoc serve --config <config>` and returns once it printed its readiness line (which
/// names the address it bound); panics with its stderr if it does not start within a minute.
pub fn start_serve(config: &Path) -> Serve {
    use std::io::{BufRead, Read};
    let mut child = Command::new(bin())
        .args(["serve", "--config", &config.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("serving certificate downloads on http://") {
                    let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    return Serve {
                        child,
                        addr,
                        stderr,
                    };
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "divoc serve did not start: {}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
        }
    }
}

/// SIGTERM, and `divoc serve` must exit 0.
pub fn stop_serve(mut s: Serve) {
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let status = s.child.wait().unwrap();
    assert!(
        status.success(),
        "divoc serve must exit 0 after SIGTERM: {status:?} {}",
        String::from_utf8_lossy(&s.stderr.lock().unwrap())
    );
}
