//! Certificate lookups at national scale: builds the read side's certificate index with N
//! certificates (10 million by default: N/2 beneficiaries with two doses each, four beneficiaries
//! per mobile number, credentials the size and shape of DIVOC's signed vector), starts
//! `divoc serve` on it, and times lookups over HTTP one request at a time on a new connection
//! each: by certificate id (`/certificates/{id}/credential.json`), by preEnrollmentCode and by
//! mobile number + date of birth (the listing route), keys drawn uniformly at random. Reports
//! p50/p99/max per kind, the server's resident memory (VmRSS, VmHWM) and the index size on disk.
//! Run once with the OS page cache dropped first (`--cold`, needs root) and once warm.
//!
//! The index is built with the server's own indexing code (`index_batch`) from generated Arrow
//! batches, not by a pipeline run: signing 10M credentials would take 12 minutes and the proofs
//! are never read by a lookup (the credentials here carry the vector's proof, not a valid one).
//!
//! ```text
//! cargo build --release && cargo bench --workspace --bench lookup -- [--certificates 10000000]
//!     [--requests 5000] [--dir target/lookup-bench] [--reuse [--compact]] [--cold]
//! ```
//! (`DIVOC_BIN` overrides the binary, default `target/release/divoc`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BinaryArray, Date32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder,
};
use divoc_model::columns::{CREDENTIAL, QR_PAYLOAD, RECIPIENT_CONTACT};
use divoc_model::schema;
use divoc_serve::store::indexer::index_batch;
use divoc_serve::ServePlan;
use rayon::prelude::*;

const TOKEN: &str = "lookup-bench-token-0123456789";
const TENANT: &str = "default";
const BATCH: u64 = 8192;

struct Args {
    certificates: u64,
    requests: usize,
    dir: PathBuf,
    reuse: bool,
    cold: bool,
    compact: bool,
}

fn args() -> Args {
    let mut a = Args {
        certificates: 10_000_000,
        requests: 5000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lookup-bench"),
        reuse: false,
        cold: false,
        compact: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--certificates" => a.certificates = value().parse().expect("--certificates: a number"),
            "--requests" => a.requests = value().parse().expect("--requests: a number"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--reuse" => a.reuse = true,
            "--cold" => a.cold = true,
            "--compact" => a.compact = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    a
}

/// SplitMix64: the keys and fields of certificate `n`, reproducible without storing them.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn certificate_id(n: u64) -> String {
    format!("{:014}", 10_000_000_000_000 + n)
}
fn pre_code(beneficiary: u64) -> String {
    format!("BEN-{beneficiary:010}")
}
fn mobile(beneficiary: u64) -> String {
    format!("9{:09}", mix(beneficiary / 4) % 1_000_000_000)
}
fn dob(beneficiary: u64) -> i32 {
    // 1940-01-01 .. 2009-12-31
    -10957 + (mix(beneficiary ^ 0xD0B) % 25_567) as i32
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A pronounceable word of 5-9 letters from the bits of `h`.
fn word(h: u64) -> String {
    const C: &[u8] = b"bcdfghjklmnprstvy";
    const V: &[u8] = b"aeiou";
    let len = 5 + (h % 5) as usize;
    let mut w: String = (0..len)
        .map(|i| {
            let x = mix(h.wrapping_add(i as u64));
            (if i % 2 == 0 {
                C[(x % 17) as usize]
            } else {
                V[(x % 5) as usize]
            }) as char
        })
        .collect();
    w[..1].make_ascii_uppercase();
    w
}

fn template() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/divoc-vector/divoc-ed25519-2018-signed.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the shared test data)", path.display()));
    serde_json::from_str(&text).expect("the vector is JSON")
}

struct GenRow {
    id: String,
    pre: String,
    dose: i64,
    mobile: String,
    json: String,
    qr: Vec<u8>,
    dob: i32,
}

/// The request path for a random draw.
type PathOf = Box<dyn Fn(u64) -> String>;

fn batch(template: &serde_json::Value, from: u64, to: u64) -> RecordBatch {
    let rows: Vec<GenRow> = (from..to)
        .into_par_iter()
        .map(|n| {
            let (b, dose) = (n / 2, (n % 2 + 1) as i64);
            let id = certificate_id(n);
            let mut c = template.clone();
            c["evidence"][0]["certificateId"] = id.clone().into();
            c["evidence"][0]["dose"] = dose.into();
            // What differs between real certificates, so compression sees real entropy: the
            // subject, the event, and the 64-byte signature.
            let (h, e) = (mix(b), mix(n ^ 0xE7E7));
            let subject = &mut c["credentialSubject"];
            subject["refId"] = pre_code(b).into();
            subject["id"] =
                format!("did:in.gov.uidai.aadhaar:{:012}", h % 1_000_000_000_000).into();
            subject["name"] = format!("{} {}", word(h), word(h >> 20)).into();
            subject["age"] = (18 + h % 70).to_string().into();
            subject["gender"] = if h & 1 == 0 { "Female" } else { "Male" }.into();
            subject["address"]["district"] = word(h >> 33).into();
            subject["address"]["postalCode"] = format!("{}", 110_000 + h % 800_000).into();
            let ev = &mut c["evidence"][0];
            ev["batch"] = format!("B{:07}", e % 10_000_000).into();
            ev["date"] = format!(
                "2021-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                1 + e % 12,
                1 + e % 28,
                e % 24,
                e % 60,
                (e >> 8) % 60,
                (e >> 16) % 1000
            )
            .into();
            ev["verifier"]["name"] = format!("{} {}", word(e), word(e >> 21)).into();
            ev["facility"]["name"] = format!("PHC {}", word(e >> 42)).into();
            c["issuanceDate"] = ev["date"].clone();
            let signature: String = (0..86)
                .map(|i| B64URL[(mix(n.wrapping_mul(97).wrapping_add(i)) % 64) as usize] as char)
                .collect();
            c["proof"]["jws"] =
                format!("eyJhbGciOiJFZERTQSIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..{signature}")
                    .into();
            let json = serde_json::to_string(&c).expect("serialize");
            let qr = divoc_qr::zip_certificate(json.as_bytes());
            GenRow {
                id,
                pre: pre_code(b),
                dose,
                mobile: mobile(b),
                json,
                qr,
                dob: dob(b),
            }
        })
        .collect();
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new((0..rows.len()).map(|i| Some(f(i))).collect::<StringArray>())
    };
    let mut contacts = ListBuilder::new(StringBuilder::new());
    for r in &rows {
        contacts
            .values()
            .append_value(format!("tel:+91{}", r.mobile));
        contacts.append(true);
    }
    RecordBatch::try_from_iter(vec![
        (schema::TENANT, text(&|_| TENANT.to_owned())),
        (schema::CERTIFICATE_ID, text(&|i| rows[i].id.clone())),
        (schema::PRE_ENROLLMENT_CODE, text(&|i| rows[i].pre.clone())),
        (schema::EVENT_KIND, text(&|_| "certify".to_owned())),
        (schema::RECIPIENT_STATE, text(&|_| "Kerala".to_owned())),
        (
            schema::DOSE,
            Arc::new(rows.iter().map(|r| Some(r.dose)).collect::<Int64Array>()) as ArrayRef,
        ),
        (
            schema::RECIPIENT_DOB,
            Arc::new(rows.iter().map(|r| Some(r.dob)).collect::<Date32Array>()),
        ),
        (RECIPIENT_CONTACT.name, Arc::new(contacts.finish())),
        (CREDENTIAL.name, text(&|i| rows[i].json.clone())),
        (
            QR_PAYLOAD.name,
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.qr.as_slice()))
                    .collect::<BinaryArray>(),
            ),
        ),
    ])
    .expect("batch")
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_serve_config(dir: &Path, port: u16) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = repo.join("config");
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let file = dir.join("serve.toml");
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\nstorage_url = {}\nindex_dir = {}\n\
             tokens = [{{ token = \"{TOKEN}\", tenant = \"{TENANT}\" }}]\n\
             templates = {}\nfhir_codes = {}\n",
            quote(&dir.join("out")),
            quote(&dir.join("index")),
            quote(&config),
            quote(&config.join("shc-codes.toml")),
        ),
    )
    .expect("write serve.toml");
    file
}

fn build(a: &Args, config: &Path) {
    let marker = a.dir.join("built");
    if a.reuse && std::fs::read_to_string(&marker).ok() == Some(a.certificates.to_string()) {
        println!(
            "reusing the index of {} certificates in {}",
            a.certificates,
            a.dir.display()
        );
        if a.compact {
            let plan = ServePlan::load(config, &[]).expect("serve config");
            compact(&plan.open_store().expect("open the index"));
        }
        return;
    }
    let _ = std::fs::remove_dir_all(a.dir.join("index"));
    let _ = std::fs::remove_file(&marker);
    let plan = ServePlan::load(config, &[]).expect("serve config");
    let store = plan.open_store().expect("open the index");
    let template = template();
    let started = Instant::now();
    let mut from = 0;
    while from < a.certificates {
        let to = (from + BATCH).min(a.certificates);
        let b = batch(&template, from, to);
        let outcome = index_batch(&store, &b).expect("index");
        assert_eq!(outcome.certificates as u64, to - from, "every row indexed");
        from = to;
        if from % (BATCH * 64) < BATCH || from == a.certificates {
            let s = started.elapsed().as_secs_f64();
            eprint!(
                "\r  indexed {from} / {} ({:.0}/s)   ",
                a.certificates,
                from as f64 / s
            );
        }
    }
    eprintln!();
    compact(&store);
    drop(store);
    println!(
        "built the index of {} certificates in {:.0} s",
        a.certificates,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, a.certificates.to_string()).expect("marker");
}

/// Settles the store as a long-running one would be, so lookups are not measured while the
/// bulk build's compactions run (pass `--reuse` without `--compact` to measure that too).
fn compact(store: &divoc_serve::store::CertificateStore) {
    let started = Instant::now();
    store.compact_fully().expect("compact");
    println!(
        "compacted the index in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path, addr: SocketAddr) -> (Server, Duration) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var_os("DIVOC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/release/divoc"));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first (or set DIVOC_BIN)",
        bin.display()
    );
    let started = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--config", &config.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start divoc serve");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "divoc serve did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, started.elapsed())
}

/// One GET on a new connection; the status and the time to the last byte.
fn get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut buf = Vec::with_capacity(4096);
    s.read_to_end(&mut buf).expect("read");
    let status = std::str::from_utf8(&buf[9..12.min(buf.len())])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed())
}

fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn drop_page_cache() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).expect("bench dir");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = write_serve_config(&a.dir, addr.port());
    build(&a, &config);
    let rounds: &[bool] = if a.cold { &[true, false] } else { &[false] };
    for &cold in rounds {
        let label = if cold {
            if !drop_page_cache() {
                println!("cannot drop the page cache (not root): skipping the cold round");
                continue;
            }
            "cold page cache"
        } else {
            "warm"
        };
        let (server, startup) = start(&config, addr);
        println!(
            "\n{label}: divoc serve listening after {:.2} s",
            startup.as_secs_f64()
        );
        let n = a.certificates;
        let kinds: [(&str, PathOf); 3] = [
            (
                "by certificate id (credential.json)",
                Box::new(move |r| {
                    format!(
                        "/certificate/api/v1/certificates/{}/credential.json",
                        certificate_id(r % n)
                    )
                }),
            ),
            (
                "by preEnrollmentCode (listing)",
                Box::new(move |r| {
                    format!(
                        "/certificate/api/v1/certificates?preEnrollmentCode={}",
                        pre_code(r % (n / 2).max(1))
                    )
                }),
            ),
            (
                "by mobile + date of birth (listing)",
                Box::new(move |r| {
                    let b = r % (n / 2).max(1);
                    format!(
                        "/certificate/api/v1/certificates?mobile={}&dob={}",
                        mobile(b),
                        divoc_model::schema::format_date(dob(b))
                    )
                }),
            ),
        ];
        println!(
            "{:<38} {:>9} {:>9} {:>9} {:>9}",
            "lookup", "p50 ms", "p99 ms", "max ms", "req/s"
        );
        for (k, (name, path)) in kinds.iter().enumerate() {
            let mut times = Vec::with_capacity(a.requests);
            let started = Instant::now();
            for i in 0..a.requests {
                let r = mix((k as u64) << 40 | i as u64 ^ if cold { 0 } else { 0xAAAA });
                let (status, t) = get(addr, &path(r));
                assert_eq!(status, 200, "{name}: {}", path(r));
                times.push(t);
            }
            let rate = a.requests as f64 / started.elapsed().as_secs_f64();
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{name:<38} {:>9.2} {:>9.2} {:>9.2} {:>9.0}",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(*times.last().expect("samples")),
                rate
            );
        }
        let (rss, hwm) = memory(server.0.id());
        println!(
            "divoc serve memory: VmRSS {:.0} MiB, VmHWM (peak) {:.0} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        drop(server);
    }
    let index_bytes = dir_size(&a.dir.join("index"));
    println!(
        "\nindex on disk: {:.2} GiB ({:.0} bytes per certificate)",
        index_bytes as f64 / (1u64 << 30) as f64,
        index_bytes as f64 / a.certificates as f64
    );
}
