//! Certificate downloads end to end, checked by independent tools:
//! - `divoc keys` writes private keys with mode 0600 and never overwrites them;
//! - the `render` node publishes one PDF per certificate (poppler's pdftotext reads the id), and a
//!   replay in a fresh directory with the same key and input writes byte-identical PDFs;
//! - `divoc serve` answers every format from the published store: PDFs in five languages
//!   (pdftotext, pdffonts), QR images (zbarimg), the signed credential, EU DCC (pycose via
//!   tests/interop/verify_dcc.py), SMART Health Cards (jwcrypto via verify_shc.py), FHIR/DDCC
//!   bundles (fhir.resources via validate_fhir.py); bearer tokens isolate tenants;
//! - SIGTERM stops it cleanly (also right after the readiness line) and every download answer is
//!   in the analytics Parquet, with its language and size, without names.
//!
//! Checks of behaviour the product gets wrong today are collected as "product defects" and
//! reported at the end of a test, so one defect does not hide the rest of the scenario.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, UInt16Type, UInt64Type};
use common::*;

const TOOLS: &str =
    "needs poppler-utils, zbar-tools, pycose, jwcrypto; tests/run-all.sh installs them";
const DEFAULT_TOKEN: &str = "tenant-default-token-0001";
const OTHER_TOKEN: &str = "tenant-other-token-000002";
const LANGUAGES: [&str; 4] = ["hi", "ta", "bn", "ur"];

// ---------------------------------------------------------------------------------------------
// External tools: each one fails the test loudly when it is missing.

fn tool(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} ({e}); {TOOLS}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg(repo().join("tests/interop").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {TOOLS}"));
    assert!(
        out.status.success(),
        "{script} failed (missing Python module? {TOOLS}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pdf_text(pdf: &Path) -> String {
    normalize(
        &String::from_utf8(tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])).unwrap(),
    )
}

/// Whitespace-collapsed text without bidi controls; poppler drops the space where right-to-left
/// text meets digits or Latin, so such boundaries compare without it.
fn normalize(s: &str) -> String {
    let is_rtl = |c: char| matches!(c, '\u{0590}'..='\u{08FF}' | '\u{FB1D}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}');
    let visible: String = s
        .chars()
        .filter(|c| !matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let mut out = String::new();
    for w in visible.split_whitespace() {
        let joins = match (out.chars().last(), w.chars().next()) {
            (Some(a), Some(b)) => {
                is_rtl(a) != is_rtl(b) && a.is_alphanumeric() && b.is_alphanumeric()
            }
            _ => true,
        };
        if !joins {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Every font of the PDF is embedded and subset (pdffonts' emb/sub columns).
fn assert_fonts_embedded_subset(pdf: &Path) {
    let fonts = String::from_utf8(tool("pdffonts", &[pdf.to_str().unwrap()])).unwrap();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{}: no fonts\n{fonts}", pdf.display());
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols.len() >= 7, "unexpected pdffonts row {row:?}");
        let (name, emb_sub) = (cols[0], &cols[cols.len() - 5..cols.len() - 3]);
        assert!(name.contains('+'), "font {name} has no subset tag: {row}");
        assert_eq!(emb_sub, ["yes", "yes"], "font not embedded+subset: {row}");
    }
}

fn zbar(png: &Path) -> Vec<u8> {
    tool(
        "zbarimg",
        &[
            "--raw",
            "-q",
            "--oneshot",
            "-Sbinary",
            png.to_str().unwrap(),
        ],
    )
}

fn zbar_text(png: &Path) -> String {
    String::from_utf8(tool(
        "zbarimg",
        &["--raw", "-q", "--oneshot", png.to_str().unwrap()],
    ))
    .unwrap()
    .trim_end()
    .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Scenario set-up: keys, pipeline, published rows.

fn run_ok(args: &[&str]) -> String {
    let out = divoc(args);
    assert!(
        out.status.success(),
        "divoc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// issuer, DSC and SHC keys under `dir/keys`; asserts they are private and never overwritten.
fn create_keys(dir: &Path) {
    let keys = dir.join("keys");
    let (issuer, dsc_key, dsc, shc) = (
        keys.join("issuer.json"),
        keys.join("dsc-key.pem"),
        keys.join("dsc.pem"),
        keys.join("shc.jwk.json"),
    );
    run_ok(&[
        "keys",
        "generate",
        "--out",
        &p(&issuer),
        "--issuer",
        "https://issuer.test",
    ]);
    run_ok(&["keys", "dsc", "--key-out", &p(&dsc_key), "--out", &p(&dsc)]);
    let shc_out = run_ok(&["keys", "shc", "--out", &p(&shc)]);
    for private in [&issuer, &dsc_key, &shc] {
        assert_eq!(
            mode(private),
            0o600,
            "{} must be mode 0600",
            private.display()
        );
    }
    let secret = std::fs::read(&shc).unwrap();
    assert!(
        !shc_out.contains(&String::from_utf8_lossy(&secret).to_string()),
        "keys shc must not print the private JWK"
    );
    let before: Vec<Vec<u8>> = [&issuer, &dsc_key, &dsc, &shc]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let again = divoc(&["keys", "dsc", "--key-out", &p(&dsc_key), "--out", &p(&dsc)]);
    assert!(
        !again.status.success(),
        "keys dsc over existing files must fail"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "names the reason: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Only the certificate exists at a new key path: still refused (no half-overwritten pair).
    let again = divoc(&[
        "keys",
        "dsc",
        "--key-out",
        &p(&keys.join("new-key.pem")),
        "--out",
        &p(&dsc),
    ]);
    assert!(
        !again.status.success(),
        "keys dsc over an existing certificate must fail"
    );
    assert!(
        !keys.join("new-key.pem").exists(),
        "a refused keys dsc writes nothing"
    );
    let again = divoc(&[
        "keys",
        "generate",
        "--out",
        &p(&issuer),
        "--issuer",
        "https://elsewhere.test",
    ]);
    assert!(
        !again.status.success(),
        "keys generate over an existing key must fail"
    );
    let again = divoc(&["keys", "shc", "--out", &p(&shc)]);
    assert!(
        !again.status.success(),
        "keys shc over an existing key must fail"
    );
    let after: Vec<Vec<u8>> = [&issuer, &dsc_key, &dsc, &shc]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(
        before, after,
        "refused key commands leave the files untouched"
    );
}

fn write_pipeline(dir: &Path) -> PathBuf {
    let config = repo().join("config");
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        r#"[pipeline]
batch_size = 4096
linger_ms = 20
checkpoint_interval_ms = 2000

[storage]
url = {out}
state_dir = {state}

[metrics]
listen = ""

[nodes.input]
kind = "file_source"
path = {input}
tenant = "default"

[nodes.validate]
kind = "validate"
catalogue = {catalogue}

[nodes.dedupe]
kind = "dedupe"
id_namespace = 1

[nodes.sign]
kind = "sign"
key_file = {key}
catalogue = {catalogue}

[nodes.qr_payload]
kind = "qr_payload"

[nodes.render]
kind = "render"
templates = {templates}

[nodes.pdfs]
kind = "pdf_sink"

[nodes.publish]
kind = "publish"
prefix = "accepted"

[[edges]]
from = "input"
to = "validate"

[[edges]]
from = "validate"
to = "dedupe"

[[edges]]
from = "dedupe"
to = "sign"

[[edges]]
from = "sign"
to = "qr_payload"

[[edges]]
from = "qr_payload"
to = "render"

[[edges]]
from = "render"
to = "pdfs"

[[edges]]
from = "render"
to = "publish"
"#,
        out = q(&dir.join("out")),
        state = q(&dir.join("state")),
        input = q(&dir.join("input")),
        catalogue = q(&config.join("vaccines.toml")),
        key = q(&dir.join("keys/issuer.json")),
        templates = q(&config),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One published certificate, as the pipeline wrote it.
#[derive(Debug, Clone)]
struct Published {
    tenant: String,
    id: String,
    pre: String,
    dose: i64,
    name: String,
    state: Option<String>,
    credential: String,
    qr: Vec<u8>,
    pdf_key: Option<String>,
}

fn published(dir: &Path) -> Vec<Published> {
    let batches = read_output(&dir.join("out"), "accepted");
    let mut rows = Vec::new();
    for b in &batches {
        let s = |n: &str| {
            b.column_by_name(n)
                .unwrap_or_else(|| panic!("no column {n}"))
                .as_string::<i32>()
                .clone()
        };
        let (tenant, id, pre, name, cred, pdf) = (
            s("tenant"),
            s("certificate_id"),
            s("pre_enrollment_code"),
            s("recipient_name"),
            s("credential"),
            s("pdf_key"),
        );
        let state = s("recipient_address_state");
        let dose = b
            .column_by_name("dose")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let qr = b
            .column_by_name("qr_payload")
            .unwrap()
            .as_binary::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            rows.push(Published {
                tenant: tenant.value(i).to_owned(),
                id: id.value(i).to_owned(),
                pre: pre.value(i).to_owned(),
                dose: dose.value(i),
                name: name.value(i).to_owned(),
                state: (!state.is_null(i)).then(|| state.value(i).to_owned()),
                credential: cred.value(i).to_owned(),
                qr: qr.value(i).to_vec(),
                pdf_key: (!pdf.is_null(i)).then(|| pdf.value(i).to_owned()),
            });
        }
    }
    rows
}

/// Generates the input, creates the keys (or copies `issuer_from`'s issuer key and input, keeping
/// the input's mtime: it is the ingest time the validator and the credentials are dated by) and
/// runs the render pipeline; returns the run summary.
fn pipeline_in(dir: &Path, from: Option<&Path>) -> String {
    let input = dir.join("input/e.ndjson");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    match from {
        None => {
            let summary = gen(&input, 300, 9, 0.0, 0.0);
            assert_eq!(gen_counts(&summary), (300, 300, 0, 0), "{summary}");
            create_keys(dir);
        }
        Some(src) => {
            std::fs::create_dir_all(dir.join("keys")).unwrap();
            std::fs::copy(src.join("keys/issuer.json"), dir.join("keys/issuer.json")).unwrap();
            let original = src.join("input/e.ndjson");
            std::fs::copy(&original, &input).unwrap();
            let mtime = std::fs::metadata(&original).unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&input)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
    let config = write_pipeline(dir);
    let out = divoc(&["run", "--config", &p(&config)]);
    assert!(
        out.status.success(),
        "divoc run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn summary_count(summary: &str, label: &str) -> Option<u64> {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

fn pdf_objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let root = dir.join("out");
    let mut found = BTreeMap::new();
    let mut stack = vec![root.join("certificates")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "pdf") {
                let key = path.strip_prefix(&root).unwrap().display().to_string();
                found.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
#[ignore = "needs poppler-utils, zbar-tools, pycose, jwcrypto; tests/run-all.sh installs them"]
fn rendered_pdfs_are_published_and_replay_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    let summary = pipeline_in(&first, None);
    let rows = published(&first);
    assert_eq!(
        rows.len(),
        300,
        "every valid event is published once: {summary}"
    );
    let mut defects = Vec::new();
    if summary_count(&summary, "accepted (published):") != Some(rows.len() as u64) {
        defects.push(format!(
            "run summary must report {} published certificates (the render node's PDFs are not certificates):\n{summary}",
            rows.len()
        ));
    }
    let objects = pdf_objects(&first);
    for r in &rows {
        let key = r
            .pdf_key
            .as_ref()
            .unwrap_or_else(|| panic!("{}: pdf_key is null", r.id));
        assert!(
            objects.contains_key(key),
            "{}: pdf_key {key} names no object",
            r.id
        );
        assert!(objects[key].starts_with(b"%PDF-"), "{key} is not a PDF");
    }
    assert_eq!(
        objects.len(),
        rows.len(),
        "one PDF per certificate, nothing else"
    );
    for r in rows.iter().step_by(60) {
        let text = pdf_text(&first.join("out").join(r.pdf_key.as_ref().unwrap()));
        assert!(
            text.contains(&r.id),
            "{}: certificate id not in the PDF text:\n{text}",
            r.id
        );
    }

    pipeline_in(&second, Some(&first));
    // Same key, input and ingest time: the same published rows (credentials, QR payloads, keys).
    assert_same_rows(
        &read_output(&first.join("out"), "accepted"),
        &read_output(&second.join("out"), "accepted"),
    );
    let replayed = pdf_objects(&second);
    assert_eq!(
        replayed.keys().collect::<Vec<_>>(),
        objects.keys().collect::<Vec<_>>(),
        "a replay writes the same PDF keys"
    );
    let differing: Vec<&String> = objects
        .iter()
        .filter(|(k, v)| replayed[*k] != **v)
        .map(|(k, _)| k)
        .collect();
    assert!(
        differing.is_empty(),
        "PDFs differ between identical runs: {differing:?}"
    );
    assert!(
        defects.is_empty(),
        "product defects:\n{}",
        defects.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The download server.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// `error.code` of a JSON error body ("" for any other body).
    fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// One GET on a fresh connection, with a bearer token.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    get_with_authorization(addr, path, token.map(|t| format!("Bearer {t}")).as_deref())
}

/// One GET on a fresh connection, with this Authorization header value.
fn get_with_authorization(addr: SocketAddr, path: &str, authorization: Option<&str>) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        resp.body = dechunk(&resp.body);
    }
    resp
}

fn write_serve(dir: &Path, port: u16) -> PathBuf {
    let config = repo().join("config");
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let keys = dir.join("keys");
    let text = format!(
        r#"listen = "127.0.0.1:{port}"
storage_url = {store}
refresh_interval_ms = 500
events_flush_interval_ms = 600000
tokens = [{{ token = "{DEFAULT_TOKEN}", tenant = "default" }}, {{ token = "{OTHER_TOKEN}", tenant = "other" }}]
templates = {templates}
fhir_codes = {codes}

[dcc]
certificate = {dsc}
key = {dsc_key}
valuesets = {valuesets}

[shc]
key = {shc}
issuer = "https://issuer.test/shc"
codes = {codes}
"#,
        store = q(&dir.join("out")),
        templates = q(&config),
        codes = q(&config.join("shc-codes.toml")),
        valuesets = q(&config.join("dcc-valuesets.toml")),
        dsc = q(&keys.join("dsc.pem")),
        dsc_key = q(&keys.join("dsc-key.pem")),
        shc = q(&keys.join("shc.jwk.json")),
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// (tenant, certificate id, format, status, language, bytes) of one download event; bytes is
/// the body length of a 200 answer (compared only for those).
type Event = (String, Option<String>, String, u16, Option<String>, u64);

/// Requests to download routes, and what the analytics log must hold for each: one event per
/// download attempted (not for requests refused for their token, query or format).
#[derive(Default)]
struct Downloads {
    expected: Vec<Event>,
}

impl Downloads {
    /// GET a download route and remember the event it must produce.
    fn get(
        &mut self,
        addr: SocketAddr,
        token: &str,
        path: &str,
        event: (Option<&str>, &str),
    ) -> Response {
        let r = get(addr, path, Some(token));
        // Answers before a download is attempted (bad token, query or format) are not events.
        if r.status != 200
            && ["UNAUTHORIZED", "BAD_QUERY", "UNKNOWN_FORMAT"].contains(&r.error_code().as_str())
        {
            return r;
        }
        let tenant = if token == DEFAULT_TOKEN {
            "default"
        } else {
            "other"
        };
        self.expected.push((
            tenant.to_owned(),
            event.0.map(str::to_owned),
            event.1.to_owned(),
            r.status,
            r.header("content-language").map(str::to_owned),
            if r.status == 200 {
                r.body.len() as u64
            } else {
                0
            },
        ));
        r
    }
}

fn cert_path(id: &str, format: &str) -> String {
    format!("/certificate/api/v1/certificates/{id}/{format}")
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Rasterizes a served QR SVG with tests/interop/qr_payloads.py so zbarimg can read it.
fn svg_to_png(dir: &Path, stem: &str, svg: &[u8]) -> PathBuf {
    let svg_path = save(dir, &format!("{stem}.svg"), svg);
    let png = dir.join(format!("{stem}-svg.png"));
    python(
        "qr_payloads.py",
        &[Path::new("svg-to-png"), &svg_path, &png],
    );
    png
}

/// The language config/languages.toml assigns to a recipient's state.
fn default_language(state: Option<&str>) -> String {
    let path = repo().join("config/languages.toml");
    let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    let by_state = doc["states"].as_table().unwrap();
    state
        .and_then(|s| {
            by_state
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(s))
                .map(|(_, v)| v.as_str().unwrap().to_owned())
        })
        .unwrap_or_else(|| doc["default"].as_str().unwrap().to_owned())
}

fn template_title(lang: &str) -> String {
    let path = repo().join(format!("config/templates/default/{lang}.toml"));
    let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    doc["labels"]["title"].as_str().unwrap().to_owned()
}

fn is_latin(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphabetic() || c == ' ' || c == '.' || c == '\'' || c == '-')
}

fn shc_digits_to_jws(qr: &str) -> String {
    let digits = qr
        .strip_prefix("shc:/")
        .unwrap_or_else(|| panic!("not shc:/ {qr}"));
    assert!(
        digits.len() & 1 == 0 && digits.bytes().all(|b| b.is_ascii_digit()),
        "shc digits: {qr}"
    );
    digits
        .as_bytes()
        .chunks(2)
        .map(|d| char::from(((d[0] - b'0') * 10 + (d[1] - b'0')) + 45))
        .collect()
}

#[test]
#[ignore = "needs poppler-utils, zbar-tools, pycose, jwcrypto; tests/run-all.sh installs them"]
fn download_api_serves_every_format_to_independent_verifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let work = dir.join("downloads");
    std::fs::create_dir_all(&work).unwrap();
    pipeline_in(dir, None);
    let rows = published(dir);
    assert_eq!(rows.len(), 300);

    // A beneficiary with several doses and a Latin-script name, and one with a non-Latin name.
    let mut by_pre: BTreeMap<&str, Vec<&Published>> = BTreeMap::new();
    for r in &rows {
        by_pre.entry(&r.pre).or_default().push(r);
    }
    let (pre, doses) = by_pre
        .iter()
        .find(|(_, d)| d.len() >= 2 && is_latin(&d[0].name))
        .expect("the generator makes some multi-dose beneficiaries with Latin names");
    let mut doses: Vec<&Published> = doses.clone();
    doses.sort_by_key(|d| d.dose);
    let cert = doses[0];
    let latest = doses[doses.len() - 1];
    let devanagari = rows
        .iter()
        .find(|r| {
            r.name
                .chars()
                .any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
        })
        .expect("the generator makes Devanagari names");

    let server = start_serve(&write_serve(dir, free_port()));
    let addr = server.addr;
    let mut log = Downloads::default();
    let mut defects: Vec<String> = Vec::new();
    let id = cert.id.as_str();

    // Health, authentication, tenant isolation, bad requests.
    let health = get(addr, "/health", None);
    assert_eq!(health.status, 200);
    let r = get(addr, &cert_path(id, "pdf"), None);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "UNAUTHORIZED"),
        "{}",
        r.text()
    );
    assert_eq!(
        get(
            addr,
            &cert_path(id, "pdf"),
            Some("tenant-wrong-token-00000003")
        )
        .status,
        401
    );
    // RFC 7235 section 2.1: the auth scheme is case-insensitive.
    let r = get_with_authorization(
        addr,
        &cert_path(id, "credential.json"),
        Some(&format!("bearer {DEFAULT_TOKEN}")),
    );
    if r.status != 200 {
        defects.push(format!(
            "Authorization: bearer <token> (lower-case scheme) answered {}, must be accepted",
            r.status
        ));
    } else {
        log.expected.push((
            "default".into(),
            Some(id.to_owned()),
            "credential.json".into(),
            200,
            None,
            r.body.len() as u64,
        ));
    }
    let r = log.get(addr, OTHER_TOKEN, &cert_path(id, "pdf"), (None, "pdf"));
    assert_eq!(
        r.status,
        404,
        "another tenant's certificate is not found: {}",
        r.text()
    );
    let r = log.get(
        addr,
        OTHER_TOKEN,
        &format!("/certificate/api/certificatePDF/{pre}"),
        (None, "pdf"),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(
        addr,
        &format!("/certificate/api/v1/certificates?preEnrollmentCode={pre}"),
        Some(OTHER_TOKEN),
    );
    assert_eq!(r.status, 404, "another tenant lists nothing: {}", r.text());
    let r = get(addr, &cert_path(id, "docx"), Some(DEFAULT_TOKEN));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "UNKNOWN_FORMAT"),
        "{}",
        r.text()
    );
    let r = get(
        addr,
        &format!("{}?colour=red", cert_path(id, "pdf")),
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(r.status, 400, "unknown query parameter: {}", r.text());
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path("9999999999999", "pdf"),
        (None, "pdf"),
    );
    assert_eq!(r.status, 404);

    // The beneficiary's certificates, as published.
    let r = get(
        addr,
        &format!("/certificate/api/v1/certificates?preEnrollmentCode={pre}"),
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let listed: Vec<(String, i64)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["certificateId"].as_str().unwrap().to_owned(),
                c["dose"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = doses.iter().map(|d| (d.id.clone(), d.dose)).collect();
    assert_eq!(listed, want, "listing = the published doses, in dose order");

    // PDF: id and name extract, fonts embedded subsets, languages.
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "pdf"),
        (Some(id), "pdf"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert_eq!(
        r.header("content-language"),
        Some(default_language(cert.state.as_deref()).as_str()),
        "without ?language the recipient's state ({:?}) chooses, per config/languages.toml",
        cert.state
    );
    let pdf = save(&work, "cert.pdf", &r.body);
    let text = pdf_text(&pdf);
    assert!(
        text.contains(id) && text.contains(&normalize(&cert.name)),
        "id/name not in PDF:\n{text}"
    );
    assert_fonts_embedded_subset(&pdf);
    for lang in LANGUAGES {
        let r = log.get(
            addr,
            DEFAULT_TOKEN,
            &format!("{}?language={lang}", cert_path(id, "pdf")),
            (Some(id), "pdf"),
        );
        assert_eq!(r.status, 200, "{lang}: {}", r.text());
        assert_eq!(r.header("content-language"), Some(lang));
        let pdf = save(&work, &format!("cert-{lang}.pdf"), &r.body);
        let text = pdf_text(&pdf);
        let title = normalize(&template_title(lang));
        assert!(
            text.contains(&title),
            "{lang}: title {title:?} not in:\n{text}"
        );
        assert!(text.contains(id), "{lang}: id not in:\n{text}");
        assert_fonts_embedded_subset(&pdf);
    }
    // DIVOC's path answers the latest dose's certificate.
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &format!("/certificate/api/certificatePDF/{pre}"),
        (Some(&latest.id), "pdf"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let by_code = r.body;
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(&latest.id, "pdf"),
        (Some(&latest.id), "pdf"),
    );
    assert_eq!(r.status, 200);
    assert!(
        by_code == r.body,
        "certificatePDF/<code> is the latest dose's PDF"
    );
    let text = pdf_text(&save(&work, "latest.pdf", &by_code));
    assert!(text.contains(&latest.id), "latest id not in:\n{text}");

    // DIVOC QR and credential: exactly the published bytes.
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "qr.png"),
        (Some(id), "qr.png"),
    );
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/png"))
    );
    assert!(
        zbar(&save(&work, "qr.png", &r.body)) == cert.qr,
        "qr.png scans to the published qr_payload"
    );
    let unzipped = python(
        "qr_payloads.py",
        &[Path::new("unzip"), &save(&work, "qr.zip", &cert.qr)],
    );
    assert_eq!(
        unzipped, cert.credential,
        "the QR ZIP holds the signed credential"
    );
    let svg = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "qr.svg"),
        (Some(id), "qr.svg"),
    );
    assert_eq!(svg.status, 200);
    assert!(
        zbar(&svg_to_png(&work, "qr", &svg.body)) == cert.qr,
        "qr.svg scans to the published qr_payload"
    );
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "credential.json"),
        (Some(id), "credential.json"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        cert.credential,
        "credential.json is the published credential"
    );

    // EU DCC, verified with pycose against the DSC the server publishes.
    let dsc = get(addr, "/certificate/api/v1/dsc.pem", None);
    assert_eq!(dsc.status, 200);
    assert_eq!(dsc.body, std::fs::read(dir.join("keys/dsc.pem")).unwrap());
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "dcc.txt"),
        (Some(id), "dcc.txt"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hc1 = r.text();
    assert!(hc1.starts_with("HC1:"), "{hc1}");
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(&devanagari.id, "dcc.txt"),
        (Some(&devanagari.id), "dcc.txt"),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (422, "TRANSLITERATION_REQUIRED"),
        "{}",
        r.text()
    );
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &format!(
            "{}?fnt=SHARMA&gnt=ANANYA",
            cert_path(&devanagari.id, "dcc.txt")
        ),
        (Some(&devanagari.id), "dcc.txt"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hc1_translit = r.text();
    // Names come from the signed credential: a query must not put another person's name on a
    // signed DCC (only the transliteration of non-Latin names can come from the caller).
    let renamed_queries = ["fn=Smith&fnt=SMITH&gn=John&gnt=JOHN", "fnt=SMITH&gnt=JOHN"];
    let renamed: Vec<Response> = renamed_queries
        .iter()
        .map(|q| {
            log.get(
                addr,
                DEFAULT_TOKEN,
                &format!("{}?{q}", cert_path(id, "dcc.txt")),
                (Some(id), "dcc.txt"),
            )
        })
        .collect();
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "dcc.png"),
        (Some(id), "dcc.png"),
    );
    assert_eq!(r.status, 200);
    let scanned = zbar_text(&save(&work, "dcc.png", &r.body));
    assert!(scanned.starts_with("HC1:"), "dcc.png scans to {scanned}");
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "dcc.svg"),
        (Some(id), "dcc.svg"),
    );
    assert_eq!(r.status, 200);
    let scanned_svg = zbar_text(&svg_to_png(&work, "dcc", &r.body));
    // A fresh DCC is signed per request (iat/exp = now): compare the decoded claims, not bytes.
    let dcc_dir = work.join("dcc");
    std::fs::create_dir_all(&dcc_dir).unwrap();
    save(&dcc_dir, "dsc.pem", &dsc.body);
    let certs = serde_json::json!([
        {"name": "latin", "hc1": hc1},
        {"name": "transliterated", "hc1": hc1_translit},
        {"name": "scanned", "hc1": scanned},
        {"name": "scanned-svg", "hc1": scanned_svg},
    ]);
    let mut certs = certs.as_array().unwrap().clone();
    for (q, r) in renamed_queries.iter().zip(&renamed) {
        if r.status == 200 {
            certs.push(serde_json::json!({"name": q, "hc1": r.text()}));
        }
    }
    save(
        &dcc_dir,
        "certs.json",
        serde_json::to_string(&certs).unwrap().as_bytes(),
    );
    let schema = repo().join("../shared/dcc-schema/1.3.3.json");
    let report: serde_json::Value =
        serde_json::from_str(&python("verify_dcc.py", &[&dcc_dir, &schema])).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), certs.len());
    for res in results {
        assert_eq!(res["ok"], true, "DCC rejected by pycose/jsonschema: {res}");
    }
    assert_eq!(results[1]["dcc"]["nam"]["fnt"], "SHARMA", "{}", results[1]);
    assert_eq!(results[1]["dcc"]["nam"]["gnt"], "ANANYA", "{}", results[1]);
    assert_eq!(
        results[0]["dcc"]["v"], results[2]["dcc"]["v"],
        "dcc.png carries the same vaccination"
    );
    let name_words = |nam: &serde_json::Value| {
        let mut w: Vec<String> = ["gn", "fn"]
            .iter()
            .filter_map(|k| nam[*k].as_str())
            .flat_map(|s| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        w.sort();
        w
    };
    let mut credential_words: Vec<String> =
        cert.name.split_whitespace().map(str::to_owned).collect();
    credential_words.sort();
    assert_eq!(
        name_words(&results[0]["dcc"]["nam"]),
        credential_words,
        "the DCC names the credential's holder: {}",
        results[0]["dcc"]["nam"]
    );
    for res in &results[4..] {
        if res["dcc"]["nam"] != results[0]["dcc"]["nam"] {
            defects.push(format!(
                "dcc.txt?{} on {:?}'s certificate was signed naming {} (must be refused, or keep \
                 the credential's name {})",
                res["name"], cert.name, res["dcc"]["nam"], results[0]["dcc"]["nam"]
            ));
        }
    }
    for scanned in &results[2..4] {
        assert_eq!(
            results[0]["dcc"]["v"], scanned["dcc"]["v"],
            "the DCC images carry the same vaccination"
        );
        assert_eq!(results[0]["dcc"]["nam"], scanned["dcc"]["nam"]);
    }

    // SMART Health Card, verified with jwcrypto against the served JWKS.
    let jwks = get(addr, "/.well-known/jwks.json", None);
    assert_eq!(jwks.status, 200);
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "smart-health-card"),
        (Some(id), "smart-health-card"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let jws = r.json()["verifiableCredential"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "shc.png"),
        (Some(id), "shc.png"),
    );
    assert_eq!(r.status, 200);
    let qr_text = zbar_text(&save(&work, "shc.png", &r.body));
    assert_eq!(
        shc_digits_to_jws(&qr_text),
        jws,
        "shc.png carries the card's JWS"
    );
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(id, "shc.svg"),
        (Some(id), "shc.svg"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        zbar_text(&svg_to_png(&work, "shc", &r.body)),
        qr_text,
        "shc.svg carries the same QR text"
    );
    let shc_dir = work.join("shc");
    std::fs::create_dir_all(&shc_dir).unwrap();
    let jwks_file = save(&shc_dir, "jwks.json", &jwks.body);
    let card = save(&shc_dir, "card.jws", jws.as_bytes());
    save(&shc_dir, "card.jws.qr", qr_text.as_bytes());
    let verdict: serde_json::Value =
        serde_json::from_str(python("verify_shc.py", &[&jwks_file, &card]).trim()).unwrap();
    assert_eq!(
        verdict["ok"], true,
        "SMART Health Card rejected by jwcrypto: {verdict}"
    );

    // FHIR bundles, validated with fhir.resources.
    let mut bundles = Vec::new();
    for format in ["fhir.json", "ddcc.json"] {
        let r = log.get(
            addr,
            DEFAULT_TOKEN,
            &cert_path(id, format),
            (Some(id), format),
        );
        assert_eq!(r.status, 200, "{format}: {}", r.text());
        let bundle = r.json();
        assert_eq!(bundle["resourceType"], "Bundle", "{format}");
        if format == "fhir.json" {
            let immunizations = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["resource"]["resourceType"] == "Immunization")
                .count();
            assert_eq!(
                immunizations,
                doses.len(),
                "fhir.json holds every dose of the beneficiary"
            );
        }
        bundles.push(save(&work, format, &r.body));
    }
    let refs: Vec<&Path> = bundles.iter().map(PathBuf::as_path).collect();
    for line in python("validate_fhir.py", &refs).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "fhir.resources rejects: {v}");
    }

    // Every served PDF is the object the pipeline's render node published (the whole history
    // of each beneficiary was in one batch, so both print the same doses).
    let objects = pdf_objects(dir);
    for r in &rows {
        let resp = log.get(
            addr,
            DEFAULT_TOKEN,
            &cert_path(&r.id, "pdf"),
            (Some(&r.id), "pdf"),
        );
        assert_eq!(resp.status, 200, "{}: {}", r.id, resp.text());
        let published_pdf = &objects[r.pdf_key.as_ref().unwrap()];
        assert!(
            resp.body == *published_pdf,
            "{}: served PDF differs from the published {}",
            r.id,
            r.pdf_key.as_ref().unwrap()
        );
    }

    // Certificates published while the server runs appear (index refresh), for their tenant only.
    let input2 = dir.join("input-other");
    std::fs::create_dir_all(&input2).unwrap();
    gen(&input2.join("f.ndjson"), 20, 10, 0.0, 0.0);
    let pipeline = dir.join("pipeline.toml");
    run_ok(&[
        "run",
        "--config",
        &p(&pipeline),
        "--set",
        &format!("nodes.input.path={}", input2.display()),
        "--set",
        "nodes.input.tenant=other",
    ]);
    let other_rows: Vec<Published> = published(dir)
        .into_iter()
        .filter(|r| r.tenant == "other")
        .collect();
    assert_eq!(
        other_rows.len(),
        20,
        "the second run publishes for tenant other"
    );
    let fresh = &other_rows[0];
    let listing = format!(
        "/certificate/api/v1/certificates?preEnrollmentCode={}",
        fresh.pre
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(addr, &listing, Some(OTHER_TOKEN)).status != 200 {
        assert!(
            Instant::now() < deadline,
            "newly published certificates never appeared (refresh_interval_ms = 500)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = log.get(
        addr,
        OTHER_TOKEN,
        &cert_path(&fresh.id, "pdf"),
        (Some(&fresh.id), "pdf"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.body == pdf_objects(dir)[fresh.pdf_key.as_ref().unwrap()],
        "the other tenant's served PDF is its published object"
    );
    let r = log.get(
        addr,
        DEFAULT_TOKEN,
        &cert_path(&fresh.id, "pdf"),
        (None, "pdf"),
    );
    assert_eq!(
        r.status, 404,
        "tenant default must not see tenant other's certificate"
    );
    assert_eq!(get(addr, &listing, Some(DEFAULT_TOKEN)).status, 404);

    // Shutdown writes every download event, without names.
    stop_serve(server);
    let events = read_output(&dir.join("out"), "analytics/downloads");
    let mut got = Vec::new();
    for b in &events {
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (tenant, cid, format, language) =
            (s("tenant"), s("certificate_id"), s("format"), s("language"));
        let bytes = b
            .column_by_name("bytes")
            .unwrap()
            .as_primitive::<UInt64Type>()
            .clone();
        let status = b
            .column_by_name("status")
            .unwrap()
            .as_primitive::<UInt16Type>()
            .clone();
        for i in 0..b.num_rows() {
            got.push((
                tenant.value(i).to_owned(),
                (!cid.is_null(i)).then(|| cid.value(i).to_owned()),
                format.value(i).to_owned(),
                status.value(i),
                (!language.is_null(i)).then(|| language.value(i).to_owned()),
                if status.value(i) == 200 {
                    bytes.value(i)
                } else {
                    0
                },
            ));
        }
    }
    let mut expected = log.expected.clone();
    expected.sort();
    got.sort();
    if got != expected {
        let missing: Vec<&Event> = expected.iter().filter(|e| !got.contains(e)).collect();
        let extra: Vec<&Event> = got.iter().filter(|e| !expected.contains(e)).collect();
        panic!(
            "one download event per download request: {} recorded, {} expected;\n  \
             expected but not recorded: {missing:?}\n  recorded but not expected: {extra:?}",
            got.len(),
            expected.len()
        );
    }
    let languages = string_column(&events, "language");
    assert!(
        LANGUAGES.iter().all(|l| languages.iter().any(|x| x == l)),
        "languages recorded: {languages:?}"
    );
    let as_text = rows_as_text(&events).join("\n");
    for r in published(dir) {
        assert!(
            !as_text.contains(&r.name),
            "recipient name {:?} in download events",
            r.name
        );
    }
    assert!(
        defects.is_empty(),
        "product defects:\n{}",
        defects.join("\n")
    );
}

/// The readiness line promises a running server; a SIGTERM from then on must stop it cleanly
/// (exit 0, pending download events written), however soon it arrives.
#[test]
fn serve_exits_cleanly_on_sigterm_right_after_readiness() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("out")).unwrap();
    let config = repo().join("config");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nstorage_url = {}\ntokens = [{{ token = \"{DEFAULT_TOKEN}\", tenant = \"default\" }}]\ntemplates = {}\nfhir_codes = {}\n",
        toml::Value::String(p(&tmp.path().join("out"))),
        toml::Value::String(p(&config)),
        toml::Value::String(p(&config.join("shc-codes.toml"))),
    );
    let serve = tmp.path().join("serve.toml");
    std::fs::write(&serve, text).unwrap();
    let mut killed = Vec::new();
    for attempt in 0..10 {
        let mut child = Command::new(bin())
            .args(["serve", "--config", &p(&serve)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read the readiness line on this thread and signal at once, as a supervisor would.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(
            line.starts_with("serving certificate downloads on"),
            "{line:?}"
        );
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        if !status.success() {
            killed.push((attempt, status));
        }
    }
    assert!(
        killed.is_empty(),
        "divoc serve died of a SIGTERM sent right after its readiness line in {} of 10 starts \
         (first: attempt {:?}); the signal handler is installed too late and pending download \
         events would be lost",
        killed.len(),
        killed.first()
    );
}

/// After an update and a revocation (from NDJSON files, `file_source` `events`), the download API
/// lists only each dose's current certificate and refuses the withdrawn ones with 410.
#[test]
fn corrected_and_revoked_certificates_are_withdrawn_from_downloads() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let event = |pre: &str, dose: i64, batch: &str| {
        serde_json::json!({
            "preEnrollmentCode": pre, "programId": "C19",
            "recipient": {"name": "Asha Devi", "gender": "Female", "dob": "1980-04-01", "age": "42",
                          "contact": ["tel:9876543210"], "address": {"state": "Kerala"}},
            "vaccination": {"name": "Covishield", "batch": batch, "manufacturer": "SII",
                            "date": "2022-05-01T10:00:00Z", "dose": dose, "totalDoses": 2},
            "facility": {"name": "PHC"}
        })
        .to_string()
    };
    let run = |file: &str, lines: Vec<String>, events: &str| {
        std::fs::write(input.join(file), lines.join("\n") + "\n").unwrap();
        let mut sets = dir_sets(tmp.path(), &input);
        sets.push(format!("nodes.input.events={events}"));
        let config = default_config().display().to_string();
        let out = divoc(
            &with_sets(&["run", "--config", &config], &sets)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "a.ndjson",
        vec![
            event("P1", 1, "B1"),
            event("P1", 2, "B1"),
            event("P2", 1, "B1"),
        ],
        "certify",
    );
    run("b.ndjson", vec![event("P1", 1, "B1-FIXED")], "update");
    let revoke = serde_json::json!({"preEnrollmentCode": "P2", "programId": "C19", "vaccination": {"dose": 1}});
    run("c.ndjson", vec![revoke.to_string()], "revoke");

    let rows = read_output(&tmp.path().join("out"), "accepted");
    let kinds = string_column(&rows, "event_kind");
    let ids = string_column(&rows, "certificate_id");
    let pres = string_column(&rows, "pre_enrollment_code");
    let prev = string_column(&rows, "previous_certificate_id");
    let at = |kind: &str, pre: &str| {
        (0..kinds.len())
            .find(|&i| kinds[i] == kind && pres[i] == pre)
            .unwrap()
    };
    let updated = at("update", "P1");
    let (old, new) = (prev[updated].clone(), ids[updated].clone());
    let revoked = ids[at("revoke", "P2")].clone();

    let serve = tmp.path().join("serve.toml");
    let config = repo().join("config");
    std::fs::write(
        &serve,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = {}\nrefresh_interval_ms = 200\ntokens = [{{ token = \"{DEFAULT_TOKEN}\", tenant = \"default\" }}]\ntemplates = {}\nfhir_codes = {}\n",
            toml::Value::String(p(&tmp.path().join("out"))),
            toml::Value::String(p(&config)),
            toml::Value::String(p(&config.join("shc-codes.toml"))),
        ),
    )
    .unwrap();
    let server = start_serve(&serve);
    let addr = server.addr;
    let list = get(
        addr,
        "/certificate/api/v1/certificates?preEnrollmentCode=P1",
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(list.status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.body).unwrap();
    let listed_ids: Vec<&str> = listed
        .iter()
        .map(|l| l["certificateId"].as_str().unwrap())
        .collect();
    assert!(listed_ids.contains(&new.as_str()), "{listed_ids:?}");
    assert!(
        !listed_ids.contains(&old.as_str()),
        "the replaced certificate is not listed"
    );
    assert_eq!(listed_ids.len(), 2, "one per dose");
    let fresh = get(
        addr,
        &cert_path(&new, "credential.json"),
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(fresh.status, 200);
    assert!(String::from_utf8_lossy(&fresh.body).contains("B1-FIXED"));
    for gone in [&old, &revoked] {
        let r = get(
            addr,
            &cert_path(gone, "credential.json"),
            Some(DEFAULT_TOKEN),
        );
        assert_eq!(
            r.status,
            410,
            "{gone}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let none = get(
        addr,
        "/certificate/api/v1/certificates?preEnrollmentCode=P2",
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(none.status, 404, "P2's only certificate was revoked");
    // The facility's print search: mobile number (any prefix) + date of birth, current ones only.
    let found = get(
        addr,
        "/certificate/api/v1/certificates?mobile=%2B91%2098765%2043210&dob=1980-04-01",
        Some(DEFAULT_TOKEN),
    );
    assert_eq!(
        found.status,
        200,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    let found: Vec<serde_json::Value> = serde_json::from_slice(&found.body).unwrap();
    let mut found_ids: Vec<&str> = found
        .iter()
        .map(|l| l["certificateId"].as_str().unwrap())
        .collect();
    found_ids.sort();
    let mut want = listed_ids.clone();
    want.sort();
    assert_eq!(
        found_ids, want,
        "P1's current certificates; P2's was revoked"
    );
    let wrong_dob = "/certificate/api/v1/certificates?mobile=9876543210&dob=1980-04-02";
    assert_eq!(get(addr, wrong_dob, Some(DEFAULT_TOKEN)).status, 404);
    let bad = "/certificate/api/v1/certificates?mobile=9876543210&dob=April";
    assert_eq!(get(addr, bad, Some(DEFAULT_TOKEN)).status, 400);
    assert_eq!(get(addr, "/health", None).status, 200);

    // The verifier's status: by id alone, no token.
    let status = |id: &str| {
        let r = get(
            addr,
            &format!("/divoc/api/v1/certificate/status/{id}"),
            None,
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, v["status"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(status(&new), (200, "valid".into()));
    assert_eq!(
        status(&old),
        (200, "revoked".into()),
        "a correction revokes"
    );
    assert_eq!(status(&revoked), (200, "revoked".into()));
    assert_eq!(status("no-such-id"), (404, "unknown".into()));
    let online_check = |body: &[u8]| {
        common::http(
            addr,
            "POST",
            "/divoc/api/v1/certificate/revoked",
            None,
            "application/json",
            body,
        )
        .0
    };
    assert_eq!(
        online_check(&fresh.body),
        404,
        "the current credential is not revoked"
    );
    assert_eq!(
        online_check(format!("{{\"certificateId\":\"{revoked}\"}}").as_bytes()),
        200
    );
    assert_eq!(online_check(b"not json"), 400);

    // An unreadable object in the store is set aside: the server keeps serving, /health names
    // it, and certificates published after it still appear.
    let garbage = tmp.path().join("out/accepted/part-999999999999.parquet");
    std::fs::write(&garbage, b"truncated by a failing disk").unwrap();
    run("d.ndjson", vec![event("P3", 1, "B3")], "certify");
    let p3 = "/certificate/api/v1/certificates?preEnrollmentCode=P3";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get(addr, p3, Some(DEFAULT_TOKEN)).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "P3 never became visible"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Suspend P3 until a day far ahead: the status says so, and `divoc verify --online` too.
    let suspend = serde_json::json!({"preEnrollmentCode": "P3", "programId": "C19",
        "vaccination": {"dose": 1}, "suspendUntil": "2999-01-01"});
    run("e.ndjson", vec![suspend.to_string()], "suspend");
    let listed = get(addr, p3, Some(DEFAULT_TOKEN));
    let p3_id = serde_json::from_slice::<Vec<serde_json::Value>>(&listed.body).unwrap()[0]
        ["certificateId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(&p3_id).1 != "suspended" {
        assert!(std::time::Instant::now() < deadline, "never suspended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = get(
        addr,
        &format!("/divoc/api/v1/certificate/status/{p3_id}"),
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["until"], "2999-01-01");
    let cred = tmp.path().join("p3.json");
    let body = get(
        addr,
        &cert_path(&p3_id, "credential.json"),
        Some(DEFAULT_TOKEN),
    )
    .body;
    std::fs::write(&cred, body).unwrap();
    let key = common::issuer_key(tmp.path());
    let out = divoc(&[
        "verify",
        cred.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--online",
        &format!("http://{addr}"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("VALID: signature verified"), "{text}");
    assert!(text.contains("SUSPENDED until 2999-01-01"), "{text}");

    let health = get(addr, "/health", None);
    assert_eq!(health.status, 503);
    let health: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(
        health["unreadableObjects"][0]["object"], "accepted/part-999999999999.parquet",
        "{health}"
    );
    assert_eq!(
        get(
            addr,
            &cert_path(&new, "credential.json"),
            Some(DEFAULT_TOKEN)
        )
        .status,
        200
    );
    stop_serve(server);

    // Restarted with the bad object still there: it starts, from its index, and serves all.
    let server = start_serve(&serve);
    assert_eq!(get(server.addr, p3, Some(DEFAULT_TOKEN)).status, 200);
    assert_eq!(
        get(
            server.addr,
            &cert_path(&old, "credential.json"),
            Some(DEFAULT_TOKEN)
        )
        .status,
        410
    );
    std::fs::remove_file(&garbage).unwrap();
    stop_serve(server);
}
