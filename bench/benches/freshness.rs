//! How long after its `200` a certify event shows up in SQL: the shipped HTTP pipeline
//! (`config/http.toml`: ingest, validate, dedupe, analytics, publish) runs as a `divoc` process;
//! probe events with a unique facility name are posted one at a time, and the clock runs from the
//! `200` until `SELECT ... FROM certificates` (the raw analytics rows) and `facility_counts` (the
//! rollups) count the probe. Measured idle and under a background load of certify requests.
//!
//! ```text
//! cargo build --release && cargo bench --workspace --bench freshness -- [--probes 20]
//! ```
//! (`DIVOC_BIN` overrides the binary, default `target/release/divoc`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use divoc_analytics::{Access, Limits, SqlEngine};
use divoc_bench::{run_load, EventGenerator, GenConfig, LoadConfig};

const TOKEN: &str = "freshness-bench-token-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, ingest: SocketAddr) -> Server {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var_os("DIVOC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/release/divoc"));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first (or set DIVOC_BIN)",
        bin.display()
    );
    let set = |k: &str, v: String| ["--set".to_owned(), format!("{k}={v}")];
    let mut args = vec![
        "run".to_owned(),
        "--config".to_owned(),
        repo.join("config/http.toml").display().to_string(),
    ];
    args.extend(set("storage.url", dir.join("out").display().to_string()));
    args.extend(set(
        "storage.state_dir",
        dir.join("state").display().to_string(),
    ));
    args.extend(set("nodes.ingest.listen", ingest.to_string()));
    args.extend(set("metrics.listen", format!("127.0.0.1:{}", free_port())));
    let child = Command::new(bin)
        .args(&args)
        .env("DIVOC_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start divoc run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(ingest).is_err() {
        assert!(
            Instant::now() < deadline,
            "divoc did not listen on {ingest}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child }
}

/// A valid certify request whose facility name marks it.
fn probe_body(n: u64, marker: &str) -> String {
    let mut gen = EventGenerator::new(&GenConfig {
        count: 1,
        seed: 0xF4E5_0000 + n,
        invalid_share: 0.0,
        duplicate_share: 0.0,
        ..Default::default()
    });
    let mut event: serde_json::Value =
        serde_json::from_str(&gen.next_event().line).expect("generator JSON");
    event["facility"]["name"] = serde_json::Value::String(marker.to_owned());
    serde_json::to_string(&[event]).expect("serialize")
}

/// Posts one body and returns when the status line arrived.
fn post(addr: SocketAddr, body: &str) -> (u16, Instant) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /divoc/api/v1/certify HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send");
    s.write_all(body.as_bytes()).expect("send");
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).expect("status line");
    let at = Instant::now();
    let status = std::str::from_utf8(&buf[9..12])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    (status, at)
}

fn count(rt: &tokio::runtime::Runtime, engine: &SqlEngine, sql: &str) -> i64 {
    match rt.block_on(engine.query(sql, &Limits::default())) {
        Ok(r) => r
            .batches
            .first()
            .filter(|b| b.num_rows() > 0)
            .and_then(|b| {
                arrow::util::display::array_value_to_string(b.column(0), 0)
                    .ok()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0),
        Err(_) => 0,
    }
}

struct Sample {
    rows: Duration,
    rollup: Duration,
}

fn probes(
    rt: &tokio::runtime::Runtime,
    engine: &SqlEngine,
    addr: SocketAddr,
    first: u64,
    n: u64,
) -> Vec<Sample> {
    let mut out = Vec::new();
    for i in first..first + n {
        let marker = format!("freshness probe {i}");
        let (status, ok_at) = post(addr, &probe_body(i, &marker));
        assert_eq!(status, 200, "probe {i} answered {status}");
        let q = |table: &str, agg: &str| {
            format!("SELECT {agg} FROM {table} WHERE facility_name = '{marker}'")
        };
        let (mut rows, mut rollup) = (None, None);
        while rows.is_none() || rollup.is_none() {
            assert!(
                ok_at.elapsed() < Duration::from_secs(60),
                "probe {i} never appeared"
            );
            if rows.is_none() && count(rt, engine, &q("certificates", "COUNT(*)")) == 1 {
                rows = Some(ok_at.elapsed());
            }
            if rollup.is_none()
                && count(
                    rt,
                    engine,
                    &q("facility_counts", "COALESCE(SUM(certificates), 0)"),
                ) == 1
            {
                rollup = Some(ok_at.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out.push(Sample {
            rows: rows.unwrap_or_default(),
            rollup: rollup.unwrap_or_default(),
        });
        // Land the next probe at another point of the checkpoint interval.
        std::thread::sleep(Duration::from_millis(137 * (i % 7)));
    }
    out
}

fn report(label: &str, samples: &[Sample]) {
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        format!(
            "p50 {:.2} s, p90 {:.2} s, max {:.2} s",
            p(0.5),
            p(0.9),
            p(1.0)
        )
    };
    println!(
        "| {label} | {} | {} | {} |",
        samples.len(),
        stats(samples.iter().map(|s| s.rows.as_secs_f64()).collect()),
        stats(samples.iter().map(|s| s.rollup.as_secs_f64()).collect())
    );
}

fn main() {
    let mut n = 20u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--probes" => n = it.next().and_then(|v| v.parse().ok()).expect("--probes N"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let _server = start(tmp.path(), addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    std::fs::create_dir_all(tmp.path().join("out")).expect("out dir");
    let engine = rt
        .block_on(SqlEngine::open(
            tmp.path().join("out").to_str().expect("utf-8"),
            &Default::default(),
            Access::Analytics,
        ))
        .expect("SQL engine");

    let idle = probes(&rt, &engine, addr, 0, n);

    let stop = Arc::new(AtomicBool::new(false));
    let loaded = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, loaded) = (stop.clone(), loaded.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let mut seed = 1000;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let r = rt
                    .block_on(run_load(&LoadConfig {
                        addr,
                        path: "/divoc/api/v1/certify".into(),
                        token: TOKEN.into(),
                        events_per_request: 100,
                        concurrency: 2,
                        total_events: 20_000,
                        seed,
                    }))
                    .expect("load");
                loaded.fetch_add(r.events, Ordering::Relaxed);
                seed += 1;
            }
            loaded.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let busy = probes(&rt, &engine, addr, n, n);
    stop.store(true, Ordering::Relaxed);
    let rate = load.join().expect("load thread");

    println!(
        "\n| pipeline state | probes | visible in `certificates` | visible in `facility_counts` |"
    );
    println!("|---|---|---|---|");
    report("idle", &idle);
    report(&format!("under load ({rate:.0} events/s accepted)"), &busy);
}
