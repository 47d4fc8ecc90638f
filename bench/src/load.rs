//! HTTP load generator for the certify endpoint.
//!
//! Runs in a process of its own against a running server. All request bytes are built before the
//! clock starts, so the measured rate is the server's, not the generator's; the price is memory
//! (about 1 KB per event, i.e. ~1 GB for 1M events; use `gen::write_events` and a file source
//! for bigger runs). The HTTP/1.1 client is a minimal keep-alive one written here because a
//! general-purpose client's pooling and allocation would be part of what we measure.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::gen::{EventGenerator, GenConfig, GenFormat};

/// A request that gets no complete response within this time counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Response heads larger than this are treated as a protocol error (guards a runaway server).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What to send and how hard.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    /// Request path, e.g. `/divoc/api/v1/certify`.
    pub path: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// Events per JSON array body (the last request may carry fewer).
    pub events_per_request: usize,
    /// Number of keep-alive connections, each with one request in flight.
    pub concurrency: usize,
    pub total_events: u64,
    /// Seed for the event generator (valid, unique events only).
    pub seed: u64,
}

/// Outcome of a load run. Latency percentiles cover every request that got a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Requests attempted (answered or failed).
    pub requests: u64,
    /// Events in requests answered with a 2xx status.
    pub events: u64,
    /// Requests that failed at the transport level or were answered with a non-2xx status.
    pub errors: u64,
    pub status_counts: BTreeMap<u16, u64>,
    pub elapsed_s: f64,
    /// `events / elapsed_s`: accepted events per second.
    pub events_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One pre-built request: head and body in one buffer so it goes out in one write.
struct Prepared {
    bytes: Vec<u8>,
    events: u64,
}

/// Sends `cfg.total_events` valid events and reports throughput and latency.
///
/// Errors only for an invalid config (zero sizes, CR/LF in path or token); a refused connection
/// or failed request is counted in the report instead, so a flaky run still yields numbers.
pub async fn run_load(cfg: &LoadConfig) -> io::Result<LoadReport> {
    if cfg.events_per_request == 0 || cfg.concurrency == 0 {
        return Err(invalid_input(
            "events_per_request and concurrency must be at least 1",
        ));
    }
    if !cfg.path.starts_with('/')
        || [&cfg.path, &cfg.token]
            .iter()
            .any(|s| s.contains(['\r', '\n']))
    {
        return Err(invalid_input(
            "path must start with '/' and path/token must not contain CR or LF",
        ));
    }
    let owned = cfg.clone();
    let requests = tokio::task::spawn_blocking(move || prepare(&owned))
        .await
        .map_err(io::Error::other)?;
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let workers = cfg.concurrency.min(requests.len());

    let started = Instant::now();
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (requests, next, addr) = (Arc::clone(&requests), Arc::clone(&next), cfg.addr);
        handles.push(tokio::spawn(
            async move { worker(addr, &requests, &next).await },
        ));
    }
    let mut total = WorkerStats::default();
    for h in handles {
        let stats = h.await.map_err(io::Error::other)?;
        total.merge(stats);
    }
    let elapsed_s = started.elapsed().as_secs_f64();

    total.latencies_ms.sort_by(f64::total_cmp);
    Ok(LoadReport {
        requests: total.requests,
        events: total.events,
        errors: total.errors,
        status_counts: total.status_counts,
        elapsed_s,
        events_per_s: if elapsed_s > 0.0 {
            total.events as f64 / elapsed_s
        } else {
            0.0
        },
        p50_ms: percentile(&total.latencies_ms, 0.50),
        p99_ms: percentile(&total.latencies_ms, 0.99),
        max_ms: total.latencies_ms.last().copied().unwrap_or(0.0),
    })
}

fn invalid_input(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Builds every request. Bodies are JSON arrays whose elements are the generator's serde_json
/// output, joined with commas.
fn prepare(cfg: &LoadConfig) -> Vec<Prepared> {
    let mut gen = EventGenerator::new(&GenConfig {
        count: cfg.total_events,
        seed: cfg.seed,
        invalid_share: 0.0,
        duplicate_share: 0.0,
        format: GenFormat::Ndjson,
        now_ms: chrono::Utc::now().timestamp_millis(),
    });
    let per = cfg.events_per_request as u64;
    let count = cfg.total_events.div_ceil(per);
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut body = Vec::with_capacity(cfg.events_per_request * 900);
    let mut remaining = cfg.total_events;
    while remaining > 0 {
        let n = remaining.min(per);
        remaining -= n;
        body.clear();
        body.push(b'[');
        for i in 0..n {
            if i > 0 {
                body.push(b',');
            }
            gen.next_into(&mut body);
        }
        body.push(b']');
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            cfg.path,
            cfg.addr,
            cfg.token,
            body.len()
        );
        let mut bytes = Vec::with_capacity(head.len() + body.len());
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend_from_slice(&body);
        out.push(Prepared { bytes, events: n });
    }
    out
}

#[derive(Default)]
struct WorkerStats {
    requests: u64,
    events: u64,
    errors: u64,
    status_counts: BTreeMap<u16, u64>,
    latencies_ms: Vec<f64>,
}

impl WorkerStats {
    fn merge(&mut self, other: WorkerStats) {
        self.requests += other.requests;
        self.events += other.events;
        self.errors += other.errors;
        for (status, n) in other.status_counts {
            *self.status_counts.entry(status).or_default() += n;
        }
        self.latencies_ms.extend(other.latencies_ms);
    }
}

/// One connection's loop: take the next request index until all are sent.
async fn worker(addr: SocketAddr, requests: &[Prepared], next: &AtomicUsize) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        stats.requests += 1;
        let t0 = Instant::now();
        let result =
            match tokio::time::timeout(REQUEST_TIMEOUT, send(addr, &mut conn, &req.bytes)).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out")),
            };
        match result {
            Ok(status) => {
                stats.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                *stats.status_counts.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    stats.events += req.events;
                } else {
                    stats.errors += 1;
                }
            }
            Err(_) => {
                conn = None;
                stats.errors += 1;
            }
        }
    }
    stats
}

/// Sends one request, reconnecting when needed, and returns the response status.
///
/// A reused connection that the server closed while idle yields EOF before any response byte;
/// that request is retried once on a fresh connection, as HTTP/1.1 clients customarily do.
async fn send(
    addr: SocketAddr,
    conn: &mut Option<BufReader<TcpStream>>,
    bytes: &[u8],
) -> io::Result<u16> {
    let reused = conn.is_some();
    match exchange(addr, conn, bytes).await {
        Err(e) if reused && e.kind() == io::ErrorKind::UnexpectedEof => {
            *conn = None;
            exchange(addr, conn, bytes).await
        }
        other => other,
    }
}

async fn exchange(
    addr: SocketAddr,
    conn: &mut Option<BufReader<TcpStream>>,
    bytes: &[u8],
) -> io::Result<u16> {
    let stream = match conn {
        Some(s) => s,
        None => {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            conn.insert(BufReader::with_capacity(16 * 1024, s))
        }
    };
    stream.get_mut().write_all(bytes).await?;
    let (status, keep_alive) = match read_response(stream).await {
        Ok(r) => r,
        Err(e) => {
            *conn = None;
            return Err(e);
        }
    };
    if !keep_alive {
        *conn = None;
    }
    Ok(status)
}

/// Reads one response (status line, headers, body by Content-Length, chunked, or until close) and
/// returns its status and whether the connection may be reused.
async fn read_response(stream: &mut BufReader<TcpStream>) -> io::Result<(u16, bool)> {
    let mut line = String::new();
    let mut head_bytes = 0;
    loop {
        // Skip interim 1xx responses (e.g. 100 Continue) until the final status.
        let status_line = read_line(stream, &mut line, &mut head_bytes).await?;
        let mut parts = status_line.split_ascii_whitespace();
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| proto_err("bad status line"))?;
        let mut content_length: Option<u64> = None;
        let mut chunked = false;
        let mut keep_alive = version == "HTTP/1.1";
        loop {
            let header = read_line(stream, &mut line, &mut head_bytes).await?;
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse().map_err(|_| proto_err("bad Content-Length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                keep_alive = if v.contains("close") {
                    false
                } else {
                    keep_alive || v.contains("keep-alive")
                };
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        if status == 204 || status == 304 {
            return Ok((status, keep_alive));
        }
        if chunked {
            read_chunked(stream, &mut line, &mut head_bytes).await?;
        } else if let Some(len) = content_length {
            discard(stream, len).await?;
        } else {
            // No framing: the body runs to connection close.
            let mut sink = Vec::new();
            stream.read_to_end(&mut sink).await?;
            return Ok((status, false));
        }
        return Ok((status, keep_alive));
    }
}

async fn read_chunked(
    stream: &mut BufReader<TcpStream>,
    line: &mut String,
    head_bytes: &mut usize,
) -> io::Result<()> {
    loop {
        *head_bytes = 0;
        let size_line = read_line(stream, line, head_bytes).await?;
        let hex = size_line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(hex, 16).map_err(|_| proto_err("bad chunk size"))?;
        if size == 0 {
            // Trailers end with an empty line.
            while !read_line(stream, line, head_bytes).await?.is_empty() {}
            return Ok(());
        }
        discard(stream, size + 2).await?;
    }
}

async fn discard(stream: &mut BufReader<TcpStream>, len: u64) -> io::Result<()> {
    let copied = tokio::io::copy(&mut (&mut *stream).take(len), &mut tokio::io::sink()).await?;
    if copied < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "response body cut short",
        ));
    }
    Ok(())
}

/// Reads one CRLF- or LF-terminated line into `buf` and returns it without the terminator.
async fn read_line<'a>(
    stream: &mut BufReader<TcpStream>,
    buf: &'a mut String,
    total: &mut usize,
) -> io::Result<&'a str> {
    buf.clear();
    let n = stream.read_line(buf).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the response ended",
        ));
    }
    *total += n;
    if *total > MAX_HEAD_BYTES {
        return Err(proto_err("response head too large"));
    }
    Ok(buf.trim_end_matches(['\r', '\n']))
}

fn proto_err(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Nearest-rank percentile of sorted samples (the smallest sample with at least `p` of samples at
/// or below it); 0 for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests;
