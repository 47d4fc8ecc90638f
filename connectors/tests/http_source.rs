//! The `http_source` node over real loopback HTTP: auth, limits, validation, WAL durability,
//! restart, torn tails, segment deletion, deterministic replay, upload status and row errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::{Array, Int64Array, StringArray, UInt64Array};
use arrow::record_batch::RecordBatch;
use divoc_connectors::http::{wal, HttpSource, HttpSourceConfig};
use divoc_connectors::storage::Storage;
use divoc_pipeline::config::{entry, BuildContext, BuiltNode, CheckContext, EngineSettings};
use divoc_pipeline::dead_letter::{ListenerHub, Reason, Rejections};
use divoc_pipeline::metrics::Metrics;
use divoc_pipeline::operator::{Source, SourcePoll};
use divoc_pipeline::resources::Resources;
use serde_json::{json, Value};

const TOKEN: &str = "in-token-0123456789abcdef";
const TOKEN_LK: &str = "lk-token-0123456789abcdef";
const NODE: &str = "ingest";

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rt: tokio::runtime::Runtime,
    resources: Resources,
    metrics: Metrics,
    hub: ListenerHub,
    settings: EngineSettings,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let out = root.join("out");
        let storage = Storage::open(
            out.to_str().unwrap(),
            &Default::default(),
            rt.handle().clone(),
        )
        .unwrap();
        let mut resources = Resources::new();
        resources.insert(storage);
        Self {
            _dir: dir,
            root,
            rt,
            resources,
            metrics: Metrics::new(),
            hub: ListenerHub::default(),
            settings: EngineSettings::default(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join("state").join("nodes").join(NODE)
    }

    fn ctx(&self) -> BuildContext<'_> {
        BuildContext {
            node: NODE,
            config_dir: &self.root,
            state_dir: self.state_dir(),
            resources: &self.resources,
            metrics: &self.metrics,
            runtime: self.rt.handle().clone(),
            settings: &self.settings,
            listeners: &self.hub,
        }
    }

    fn open(&self, extra: &str) -> HttpSource {
        config(extra).open(&self.ctx()).unwrap()
    }
}

fn config(extra: &str) -> HttpSourceConfig {
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         tokens = [{{ token = \"{TOKEN}\", tenant = \"in\" }}, {{ token = \"{TOKEN_LK}\", tenant = \"lk\" }}]\n{extra}"
    );
    toml::from_str(&text).unwrap()
}

struct Resp {
    status: u16,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn decode_chunked(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..pos]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        b = &b[pos + 2..];
        out.extend_from_slice(&b[..size.min(b.len())]);
        b = &b[(size + 2).min(b.len())..];
    }
}

/// One HTTP/1.1 request over a fresh connection. `body = None` sends no Content-Length.
fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let _ = s.flush();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = decode_chunked(&body);
    }
    Resp {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    ctype: Option<&str>,
    body: &[u8],
) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(c) = ctype {
        head.push_str(&format!("Content-Type: {c}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    raw_request(addr, &head, body)
}

fn post_json(addr: SocketAddr, path: &str, body: &str) -> Resp {
    request(
        addr,
        "POST",
        path,
        Some(TOKEN),
        Some("application/json"),
        body.as_bytes(),
    )
}

fn get(addr: SocketAddr, path: &str, token: &str) -> Resp {
    request(addr, "GET", path, Some(token), None, b"")
}

const V1: &str = "/divoc/api/v1/certify";
const V3: &str = "/divoc/api/v3/certify";
const BULK: &str = "/divoc/api/v1/bulkCertify";

fn element(code: &str) -> String {
    format!(
        r#"{{"preEnrollmentCode":"{code}","recipient":{{"name":"Asha","age":"34","gender":"Female"}},"vaccination":{{"name":"Covishield","date":"2021-05-01T05:30:00.000Z","dose":1,"totalDoses":2}}}}"#
    )
}

fn array(codes: &[&str]) -> String {
    format!(
        "[{}]",
        codes
            .iter()
            .map(|c| element(c))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Polls until the source is idle, collecting events and dead letters.
fn poll_all(src: &mut HttpSource, max: usize) -> (Vec<RecordBatch>, Vec<RecordBatch>, u64) {
    let (mut ev, mut dl, mut n) = (Vec::new(), Vec::new(), 0);
    loop {
        match src.poll(max).unwrap() {
            SourcePoll::Batch {
                events,
                dead_letters,
                records,
            } => {
                assert!(records as usize <= max);
                n += records;
                ev.extend(events);
                dl.extend(dead_letters);
            }
            SourcePoll::Idle => return (ev, dl, n),
            SourcePoll::Finished => panic!("an HTTP source never finishes"),
        }
    }
}

fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(col)
                .unwrap_or_else(|| panic!("no column {col}"))
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn strs(batches: &[RecordBatch], col: &str) -> Vec<String> {
    strings(batches, col)
        .into_iter()
        .map(|s| s.unwrap_or_default())
        .collect()
}

fn offsets(batches: &[RecordBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("source_offset")
                .unwrap()
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn json_upload_is_durable_before_200_and_replays_as_events() {
    let env = Env::new();
    let mut src = env.open("");
    let addr = src.local_addr();
    src.resume(None).unwrap();
    assert!(matches!(src.poll(10).unwrap(), SourcePoll::Idle));

    let body = array(&["p1", "p2", "p3"]);
    let r = post_json(addr, V1, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"transactionId": "u0", "accepted": 3}));
    // The answer came after the records were durable: they are readable right away.
    assert_eq!(src.durable_seq(), 3);
    let seg = src.wal_dir().join(wal::segment_name(0));
    assert!(std::fs::metadata(&seg).unwrap().len() > body.len() as u64);
    let (ev, dl, n) = poll_all(&mut src, 100);
    assert_eq!(n, 3);
    assert!(dl.is_empty());
    assert_eq!(ev.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    assert_eq!(ev[0].schema(), divoc_model::schema::event_schema());
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["p1", "p2", "p3"]);
    assert_eq!(strs(&ev, "tenant"), ["in", "in", "in"]);
    assert_eq!(strs(&ev, "event_kind"), ["certify_v1"; 3]);
    assert_eq!(strs(&ev, "source_id"), [NODE; 3]);
    assert_eq!(strs(&ev, "vaccine_name"), ["Covishield"; 3]);
    assert_eq!(offsets(&ev), [0, 1, 2]);
    assert_eq!(
        strs(&ev, "raw"),
        [element("p1"), element("p2"), element("p3")]
    );
    assert_eq!(src.position(), json!({"next_seq": 3}));

    let r = post_json(addr, V3, &array(&["p4"]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["transactionId"], "u3");
    let (ev, _, _) = poll_all(&mut src, 100);
    assert_eq!(strs(&ev, "event_kind"), ["certify_v3"]);
    assert_eq!(offsets(&ev), [3]);

    assert_eq!(http_metrics(&env).events_accepted.get(), 4);
    assert_eq!(
        http_metrics(&env)
            .requests
            .with_label_values(&[V1, "200"])
            .get(),
        1
    );
    assert_eq!(
        http_metrics(&env)
            .requests
            .with_label_values(&[V3, "200"])
            .get(),
        1
    );

    let list = get(addr, "/divoc/api/v1/certify/uploads", TOKEN).json();
    let ids: Vec<_> = list["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, [json!("u3"), json!("u0")]);
    let st = get(addr, "/divoc/api/v1/certify/uploads/u0", TOKEN).json();
    assert_eq!(st["rows"], 3);
    assert_eq!(st["accepted"], 3);
    assert_eq!(st["rejectedAtIngest"], 0);
    assert_eq!(st["deadLettered"], 0);
    assert_eq!(st["kind"], "certify_v1");
    // Other tenants do not see it.
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u0", TOKEN_LK).status,
        404
    );
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/nope", TOKEN).status,
        404
    );
    let h = get(addr, "/health", TOKEN);
    assert_eq!(h.status, 200);
    assert_eq!(h.json(), json!({"status": "ok"}));
}

#[test]
fn quotes_control_characters_and_long_names_survive_byte_exact() {
    let env = Env::new();
    let mut src = env.open("");
    let addr = src.local_addr();
    let long = "x".repeat(10_000);
    let elements = [
        r#"{ "preEnrollmentCode" : "q1", "recipient": {"name": "A \"quoted\", name\\ </script>", "dob": "1990-01-31"} }"#
            .to_owned(),
        r#"{"preEnrollmentCode":"q2","recipient":{"name":"ctl\u0000\u0001\t\n\r\u001f end","age":30}}"#.to_owned(),
        format!(r#"{{"preEnrollmentCode":"q3","recipient":{{"name":"{long}","age":"1"}}}}"#),
        r#"{"preEnrollmentCode":"q4","recipient":{"name":"अआइ 😀 \ud83d\ude00","age":"5"},"meta":{"k":[1,2,{"z":null}]}}"#
            .to_owned(),
    ];
    let body = format!("[\n  {}\n]\n", elements.join(" ,\n  "));
    let r = post_json(addr, V1, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    src.resume(None).unwrap();
    let (ev, dl, _) = poll_all(&mut src, 100);
    assert!(dl.is_empty(), "{:?}", dl);
    assert_eq!(strs(&ev, "raw"), elements);
    let names = strs(&ev, "recipient_name");
    assert_eq!(names[0], "A \"quoted\", name\\ </script>");
    assert_eq!(names[1], "ctl\u{0}\u{1}\t\n\r\u{1f} end");
    assert_eq!(names[2], long);
    assert_eq!(names[3], "अआइ 😀 😀");
    assert_eq!(strs(&ev, "recipient_age")[1], "30");
}

#[test]
fn unauthenticated_requests_get_401() {
    let env = Env::new();
    let src = env.open("");
    let addr = src.local_addr();
    let body = array(&["p1"]);
    for token in [
        None,
        Some("wrong-token-0123456789abcdef"),
        Some(""),
        Some(&TOKEN[..10]),
    ] {
        let r = request(
            addr,
            "POST",
            V1,
            token,
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.json()["error"], "UNAUTHORIZED");
    }
    let head = format!(
        "POST {V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert_eq!(raw_request(addr, &head, body.as_bytes()).status, 401);
    assert_eq!(
        request(
            addr,
            "GET",
            "/divoc/api/v1/certify/uploads",
            None,
            None,
            b""
        )
        .status,
        401
    );
    assert_eq!(
        http_metrics(&env)
            .requests
            .with_label_values(&[V1, "401"])
            .get(),
        5
    );
    assert_eq!(src.durable_seq(), 0);
    drop(src);

    // Deny by default: no tokens configured means nobody gets in.
    let cfg: HttpSourceConfig = toml::from_str("listen = \"127.0.0.1:0\"").unwrap();
    let src = cfg.open(&env.ctx()).unwrap();
    let addr = src.local_addr();
    for token in [Some(TOKEN), None, Some("")] {
        let r = request(
            addr,
            "POST",
            V1,
            token,
            Some("application/json"),
            body.as_bytes(),
        );
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        request(
            addr,
            "GET",
            "/divoc/api/v1/certify/uploads",
            Some(TOKEN),
            None,
            b""
        )
        .status,
        401
    );
    // Health probes still get their answer.
    assert_eq!(request(addr, "GET", "/health", None, None, b"").status, 200);
    assert_eq!(src.durable_seq(), 0);
}

#[test]
fn health_answers_without_a_token_and_reveals_nothing() {
    let env = Env::new();
    let src = env.open("");
    let addr = src.local_addr();
    for codes in [vec!["h1", "h2", "h3"], vec!["h4"]] {
        assert_eq!(post_json(addr, V1, &array(&codes)).status, 200);
    }
    assert_eq!(src.durable_seq(), 4);
    for token in [None, Some("wrong-token-0123456789abcdef"), Some(TOKEN)] {
        let r = request(addr, "GET", "/health", token, None, b"");
        assert_eq!(r.status, 200, "{token:?}: {}", r.body);
        assert_eq!(r.json(), json!({"status": "ok"}), "{token:?}");
        assert!(!r.body.chars().any(|c| c.is_ascii_digit()), "{}", r.body);
    }
    assert_eq!(
        http_metrics(&env)
            .requests
            .with_label_values(&["/health", "200"])
            .get(),
        3
    );
    // Only GET.
    assert_eq!(
        request(addr, "POST", "/health", None, None, b"").status,
        405
    );
}

#[test]
fn token_env_adds_a_default_tenant() {
    let env = Env::new();
    let var = "DIVOC_HTTP_SOURCE_TEST_TOKEN_7f3a";
    std::env::set_var(var, "env-token-0123456789abcdef");
    let cfg: HttpSourceConfig =
        toml::from_str(&format!("listen = \"127.0.0.1:0\"\ntoken_env = \"{var}\"")).unwrap();
    let mut src = cfg.open(&env.ctx()).unwrap();
    let r = request(
        src.local_addr(),
        "POST",
        V1,
        Some("env-token-0123456789abcdef"),
        None,
        array(&["e1"]).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    src.resume(None).unwrap();
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(strs(&ev, "tenant"), ["default"]);
    drop(src);
    let cfg: HttpSourceConfig = toml::from_str(
        "listen = \"127.0.0.1:0\"\ntoken_env = \"DIVOC_HTTP_SOURCE_TEST_UNSET_9c1d\"",
    )
    .unwrap();
    let err = cfg.open(&env.ctx()).err().unwrap().to_string();
    assert!(err.contains("token_env"), "{err}");
}

#[test]
fn oversize_bodies_get_413_and_write_nothing() {
    let env = Env::new();
    let src = env.open("max_body_bytes = 1024\nmax_csv_bytes = 2048");
    let addr = src.local_addr();
    let codes: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    let body = array(&codes.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(body.len() > 1024);
    let r = post_json(addr, V1, &body);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "PAYLOAD_TOO_LARGE");

    // Chunked, without Content-Length: the limit applies while reading.
    let mut chunked = Vec::new();
    for piece in body.as_bytes().chunks(300) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {V1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(raw_request(addr, &head, &chunked).status, 413);

    let mut csv = String::from("preEnrollmentCode,recipientName\n");
    while csv.len() <= 2048 {
        csv.push_str("p,some name\n");
    }
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        csv.as_bytes(),
    );
    assert_eq!(r.status, 413);
    let mp = multipart("B0UNDARY", &csv);
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("multipart/form-data; boundary=B0UNDARY"),
        &mp,
    );
    assert_eq!(r.status, 413);
    assert_eq!(src.durable_seq(), 0);
    // Small bodies still pass.
    assert_eq!(post_json(addr, V1, &array(&["p"])).status, 200);
}

#[test]
fn invalid_requests_get_400_naming_the_problem_and_write_nothing() {
    let env = Env::new();
    let mut src = env.open("max_events_per_request = 3");
    let addr = src.local_addr();
    let seg = src.wal_dir().join(wal::segment_name(0));
    let good = element("ok");
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "INVALID_BODY"),
        ("".into(), "INVALID_BODY"),
        ("[]".into(), "INVALID_BODY"),
        (good.clone(), "INVALID_BODY"),
        (format!("[{good}] trailing"), "INVALID_BODY"),
        (format!("[{good}, 42]"), "INVALID_FIELD_TYPE"),
        (
            format!(
                r#"[{good}, {{"preEnrollmentCode":"p","recipient":{{"age":"3"}},"vaccination":{{"dose":"one"}}}}]"#
            ),
            "INVALID_FIELD_TYPE",
        ),
        (
            format!(
                r#"[{good}, {{"preEnrollmentCode":"p","recipient":{{"name":"no age or dob"}}}}]"#
            ),
            "MISSING_FIELDS",
        ),
        (r#"[{"recipient":{"age":"3"}}]"#.into(), "MISSING_FIELDS"),
        (array(&["a", "b", "c", "d"]), "TOO_MANY_EVENTS"),
    ];
    for (body, code) in &cases {
        let r = post_json(addr, V1, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let j = r.json();
        assert_eq!(j["error"], *code, "{body}: {}", r.body);
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let wrong_type = post_json(addr, V1, &cases[6].0).json();
    assert_eq!(wrong_type["details"][0]["index"], 1);
    let msg = wrong_type["details"][0]["message"].as_str().unwrap();
    assert!(msg.starts_with("vaccination.dose:"), "{msg}");
    let missing = post_json(addr, V1, &cases[7].0).json();
    assert_eq!(missing["details"][0]["index"], 1);
    assert!(missing["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("recipient.dob"));
    let not_object = post_json(addr, V1, &cases[5].0).json();
    assert_eq!(not_object["details"][0]["index"], 1);

    assert_eq!(src.durable_seq(), 0);
    // Only the segment header.
    assert_eq!(std::fs::read(&seg).unwrap(), wal::SEGMENT_MAGIC);
    src.resume(None).unwrap();
    assert!(matches!(src.poll(100).unwrap(), SourcePoll::Idle));
    let list = get(addr, "/divoc/api/v1/certify/uploads", TOKEN).json();
    assert_eq!(list["uploads"].as_array().unwrap().len(), 0);
    assert_eq!(http_metrics(&env).events_accepted.get(), 0);
}

fn multipart(boundary: &str, csv: &str) -> Vec<u8> {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"certs.csv\"\r\nContent-Type: text/csv\r\n\r\n\
         {csv}\r\n--{boundary}--\r\n"
    )
    .into_bytes()
}

const CSV: &str = "preEnrollmentCode,recipientName,recipientMobileNumber,recipientDOB,recipientGender,vaccinationDose,vaccinationName,vaccinationDate\n\
p1,\"Asha, \"\"A\"\"\",9999,1990-01-31,Female,1,Covishield,2021-05-01\n\
p2,Bina,8888,1991-02-02,Female,two,Covishield,2021-05-01\n\
p3,Chitra,7777\n\
p4,Devi,6666,31-01-1990,Female,1,Covishield,2021-05-01\n";

#[test]
fn bulk_csv_upload_reports_row_errors() {
    let env = Env::new();
    let mut src = env.open("");
    let addr = src.local_addr();
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("multipart/form-data; boundary=XyZ123"),
        &multipart("XyZ123", CSV),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"transactionId": "u0", "accepted": 4}));
    src.resume(None).unwrap();
    let (ev, dl, n) = poll_all(&mut src, 100);
    assert_eq!(n, 4);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["p1"]);
    assert_eq!(strs(&ev, "recipient_name"), ["Asha, \"A\""]);
    assert_eq!(strs(&ev, "event_kind"), ["bulk_csv"]);
    // `raw` is the CSV line, for events and dead letters alike (like the file source).
    let lines: Vec<&str> = CSV.lines().skip(1).collect();
    assert_eq!(strs(&ev, "raw"), [lines[0]]);
    assert_eq!(offsets(&dl), [1, 2, 3]);
    assert_eq!(
        strs(&dl, "reason_code"),
        ["invalid_field_type", "malformed_csv", "invalid_date"]
    );
    let details = strs(&dl, "reason_detail");
    assert!(details[0].starts_with("vaccinationDose:"), "{}", details[0]);
    assert!(details[1].contains("3 cells"), "{}", details[1]);
    assert!(details[2].starts_with("recipient.dob:"), "{}", details[2]);
    assert_eq!(strs(&dl, "stage"), [NODE; 3]);
    assert_eq!(strs(&dl, "raw"), lines[1..]);
    assert_eq!(strs(&dl, "raw")[1], "p3,Chitra,7777");

    // Nothing is listed until the pipeline has published the dead letters.
    let errs = get(addr, "/divoc/api/v1/certify/uploads/u0/errors", TOKEN).json();
    assert_eq!(errs["errors"].as_array().unwrap().len(), 0);
    for b in &dl {
        env.hub.notify(b);
        env.hub.notify(b); // idempotent
    }
    // A later stage refuses the good row.
    let mut rej = Rejections::default();
    rej.push(0, Reason::new("missing_field", "facility.name: required"));
    let downstream = rej.into_dead_letters(&ev[0], "validate").unwrap();
    env.hub.notify(&downstream);
    env.hub.notify(&downstream);

    let errs = get(addr, "/divoc/api/v1/certify/uploads/u0/errors", TOKEN).json();
    assert_eq!(errs["uploadId"], "u0");
    let rows: Vec<_> = errs["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
                e["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, "missing_field".to_owned(), "validate".to_owned()),
            (2, "invalid_field_type".to_owned(), NODE.to_owned()),
            (3, "malformed_csv".to_owned(), NODE.to_owned()),
            (4, "invalid_date".to_owned(), NODE.to_owned()),
        ]
    );
    let st = get(addr, "/divoc/api/v1/certify/uploads/u0", TOKEN).json();
    assert_eq!(
        (
            st["rows"].clone(),
            st["deadLettered"].clone(),
            st["kind"].clone()
        ),
        (json!(4), json!(4), json!("bulk_csv"))
    );
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u0/errors", TOKEN_LK).status,
        404
    );

    // A raw text/csv body works too.
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv; charset=utf-8"),
        CSV.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["transactionId"], "u4");
    // Refusals.
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        b"preEnrollmentCode,bogusColumn\np,x\n",
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("INVALID_CSV_HEADER"))
    );
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("application/json"),
        CSV.as_bytes(),
    );
    assert_eq!(r.status, 415);
    let r = request(addr, "POST", BULK, Some(TOKEN), None, CSV.as_bytes());
    assert_eq!(r.status, 415);
    let no_file = b"--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--\r\n";
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("multipart/form-data; boundary=B"),
        no_file,
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("multipart/form-data"),
        no_file,
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        b"preEnrollmentCode\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(src.durable_seq(), 8);
    let list = get(addr, "/divoc/api/v1/certify/uploads", TOKEN).json();
    let ids: Vec<_> = list["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].clone())
        .collect();
    assert_eq!(ids, [json!("u4"), json!("u0")]);
    let list = get(addr, "/divoc/api/v1/certify/uploads?limit=1", TOKEN).json();
    assert_eq!(list["uploads"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads?limit=x", TOKEN).status,
        400
    );
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads", TOKEN_LK).json()["uploads"],
        json!([])
    );
}

fn ints(batches: &[RecordBatch], col: &str) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(col)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn csv_header_order_is_kept_and_dead_letters_carry_the_csv_line() {
    let env = Env::new();
    let mut src = env.open("");
    let addr = src.local_addr();
    // Not DIVOC's column order; CRLF line ends, a BOM, a blank line, quoting and non-ASCII text.
    let csv = "\u{feff}vaccinationName,recipientGender,facilityName,vaccinationDose,recipientName,preEnrollmentCode,recipientAge,recipientPincode\r\n\
               Covaxin,Male,\"PHC, Ward 5\",2,Ravi,c1,40,560001\r\n\
               Covishield,Female,Clinic,1,\"Meena \"\"M\"\" Rao\",c2,41,110001\r\n\
               \r\n\
               Covishield,Female,Clinic,1,तमिल,c3,39\r\n\
               Covishield,Male,Clinic,one,Arun,c4,38,600001\r\n\
               Sputnik,Female,\"Hospital\nNorth\",1,Lata,c5,50,400001";
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        csv.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["accepted"], 5);
    src.resume(None).unwrap();
    let (ev, dl, n) = poll_all(&mut src, 100);
    assert_eq!(n, 5);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["c1", "c2", "c5"]);
    assert_eq!(
        strs(&ev, "recipient_name"),
        ["Ravi", "Meena \"M\" Rao", "Lata"]
    );
    assert_eq!(
        strs(&ev, "vaccine_name"),
        ["Covaxin", "Covishield", "Sputnik"]
    );
    assert_eq!(strs(&ev, "recipient_gender"), ["Male", "Female", "Female"]);
    assert_eq!(
        strs(&ev, "facility_name"),
        ["PHC, Ward 5", "Clinic", "Hospital\nNorth"]
    );
    assert_eq!(strs(&ev, "recipient_age"), ["40", "41", "50"]);
    assert_eq!(
        strs(&ev, "recipient_address_pincode"),
        ["560001", "110001", "400001"]
    );
    assert_eq!(ints(&ev, "dose"), [Some(2), Some(1), Some(1)]);
    assert_eq!(offsets(&ev), [0, 1, 4]);
    assert_eq!(
        strs(&ev, "raw"),
        [
            "Covaxin,Male,\"PHC, Ward 5\",2,Ravi,c1,40,560001",
            "Covishield,Female,Clinic,1,\"Meena \"\"M\"\" Rao\",c2,41,110001",
            "Sputnik,Female,\"Hospital\nNorth\",1,Lata,c5,50,400001",
        ]
    );
    // The malformed row (7 cells) and the bad integer keep their CSV line.
    assert_eq!(offsets(&dl), [2, 3]);
    assert_eq!(
        strs(&dl, "reason_code"),
        ["malformed_csv", "invalid_field_type"]
    );
    assert_eq!(
        strs(&dl, "raw"),
        [
            "Covishield,Female,Clinic,1,तमिल,c3,39",
            "Covishield,Male,Clinic,one,Arun,c4,38,600001",
        ]
    );
    let details = strs(&dl, "reason_detail");
    assert!(details[0].contains("7 cells"), "{}", details[0]);
    assert!(details[1].starts_with("vaccinationDose:"), "{}", details[1]);

    // The WAL holds the rows' text as it arrived (no JSON re-encoding, no escaping).
    let seg = std::fs::read(src.wal_dir().join(wal::segment_name(0))).unwrap();
    assert!(seg.starts_with(&wal::SEGMENT_MAGIC));
    let row = "Covishield,Female,Clinic,1,\"Meena \"\"M\"\" Rao\",c2,41,110001".as_bytes();
    assert!(seg.windows(row.len()).any(|w| w == row));
}

#[test]
fn an_old_json_wal_is_refused_naming_the_file_and_the_fix() {
    let env = Env::new();
    // Uploads acknowledged and drained (checkpoint at 3) ...
    let mut src = env.open("");
    assert_eq!(
        post_json(src.local_addr(), V1, &array(&["a", "b", "c"])).status,
        200
    );
    src.resume(None).unwrap();
    assert_eq!(poll_all(&mut src, 10).2, 3);
    let pos = src.position();
    let wal_dir = src.wal_dir().to_path_buf();
    drop(src);
    // ... by a binary that wrote JSON records: [len][crc][JSON], no segment header.
    let payload = br#"{"seq":0,"ingest_time_ms":1,"kind":"certify_v1","upload_id":"u0","row":0,"tenant":"in","body":"{\"preEnrollmentCode\":\"p\"}"}"#;
    let mut old = (payload.len() as u32).to_le_bytes().to_vec();
    old.extend_from_slice(&divoc_connectors::http::crc32(payload).to_le_bytes());
    old.extend_from_slice(payload);
    let seg = wal_dir.join(wal::segment_name(0));
    std::fs::write(&seg, &old).unwrap();
    let err = config("").open(&env.ctx()).err().unwrap().to_string();
    assert!(err.contains(&seg.display().to_string()), "{err}");
    assert!(err.contains("JSON records"), "{err}");
    assert!(
        err.contains("drain it with the binary that wrote it"),
        "{err}"
    );
    assert!(err.contains("delete the segment files"), "{err}");
    // Refused, not misread or cut.
    assert_eq!(std::fs::read(&seg).unwrap(), old);

    // The fix: delete the drained segments. The log goes on after the registered uploads, so the
    // checkpoint still fits and upload ids stay unique.
    std::fs::remove_file(&seg).unwrap();
    let mut src = env.open("");
    assert_eq!(src.durable_seq(), 3);
    assert_eq!(segment_files(&wal_dir), [wal::segment_name(3)]);
    src.resume(Some(&pos)).unwrap();
    assert!(matches!(src.poll(10).unwrap(), SourcePoll::Idle));
    let addr = src.local_addr();
    let r = post_json(addr, V1, &array(&["d"]));
    assert_eq!(r.json()["transactionId"], "u3");
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(offsets(&ev), [3]);
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u0", TOKEN).json()["rows"],
        3
    );
    drop(src);
    // And it reopens like any log.
    let src = env.open("");
    assert_eq!(src.durable_seq(), 4);
}

#[test]
fn restart_resumes_without_loss_or_duplication() {
    let env = Env::new();
    let mut src = env.open("");
    let addr = src.local_addr();
    for codes in [["a1", "a2"], ["b1", "b2"], ["c1", "c2"]] {
        assert_eq!(post_json(addr, V1, &array(&codes)).status, 200);
    }
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        CSV.as_bytes(),
    );
    assert_eq!(r.json()["transactionId"], "u6");
    src.resume(None).unwrap();
    let (first, _, n) = match src.poll(3).unwrap() {
        SourcePoll::Batch {
            events,
            dead_letters,
            records,
        } => (events.unwrap(), dead_letters, records),
        _ => panic!("expected a batch"),
    };
    assert_eq!(n, 3);
    assert_eq!(offsets(&[first]), [0, 1, 2]);
    let pos = src.position();
    assert_eq!(pos, json!({"next_seq": 3}));
    // Dead letters of the CSV upload, published before the restart.
    src.resume(Some(&json!({"next_seq": 6}))).unwrap();
    let (_, dl, _) = poll_all(&mut src, 100);
    assert_eq!(dl.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    for b in &dl {
        env.hub.notify(b);
    }
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u6", TOKEN).json()["deadLettered"],
        3
    );
    drop(src);

    let mut src = env.open("");
    let addr = src.local_addr();
    src.resume(Some(&pos)).unwrap();
    let (ev, dl, n) = poll_all(&mut src, 2);
    assert_eq!(n, 7);
    assert_eq!(offsets(&ev), [3, 4, 5, 6]);
    assert_eq!(offsets(&dl), [7, 8, 9]);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["b2", "c1", "c2", "p1"]);
    assert_eq!(src.durable_seq(), 10);
    let r = post_json(addr, V1, &array(&["d1"]));
    assert_eq!(r.json()["transactionId"], "u10");
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(offsets(&ev), [10]);
    let list = get(addr, "/divoc/api/v1/certify/uploads", TOKEN).json();
    assert_eq!(list["uploads"].as_array().unwrap().len(), 5);
    let st = get(addr, "/divoc/api/v1/certify/uploads/u6", TOKEN).json();
    assert_eq!(st["deadLettered"], 3);
    // Re-publishing the same dead letters after the restart does not double count.
    for b in &dl {
        env.hub.notify(b);
    }
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u6", TOKEN).json()["deadLettered"],
        3
    );
    // A position beyond the log is refused.
    assert!(src.resume(Some(&json!({"next_seq": 999}))).is_err());
    assert!(src.resume(Some(&json!({"offset": 1}))).is_err());
}

#[test]
fn torn_wal_tail_is_truncated_on_restart() {
    let env = Env::new();
    let src = env.open("");
    let addr = src.local_addr();
    assert_eq!(post_json(addr, V1, &array(&["a"])).status, 200);
    assert_eq!(post_json(addr, V1, &array(&["b", "c"])).status, 200);
    let seg = src.wal_dir().join(wal::segment_name(0));
    drop(src);
    let good_len = std::fs::metadata(&seg).unwrap().len();

    // A torn record: header promising 100 bytes, only 10 written.
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&100u32.to_le_bytes()).unwrap();
    f.write_all(&0u32.to_le_bytes()).unwrap();
    f.write_all(b"0123456789").unwrap();
    drop(f);
    let mut src = env.open("");
    assert_eq!(src.durable_seq(), 3);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    src.resume(None).unwrap();
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["a", "b", "c"]);
    let addr = src.local_addr();
    assert_eq!(
        post_json(addr, V1, &array(&["d"])).json()["transactionId"],
        "u3"
    );
    drop(src);

    // A flipped byte inside the last record: CRC mismatch; the whole unacknowledgeable upload goes.
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let mut src = env.open("");
    assert_eq!(src.durable_seq(), 3);
    src.resume(Some(&json!({"next_seq": 3}))).unwrap();
    assert!(matches!(src.poll(10).unwrap(), SourcePoll::Idle));
    let addr = src.local_addr();
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u3", TOKEN).status,
        404
    );
    assert_eq!(
        get(addr, "/divoc/api/v1/certify/uploads/u1", TOKEN).status,
        200
    );
    assert_eq!(
        post_json(addr, V1, &array(&["e"])).json()["transactionId"],
        "u3"
    );
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["e"]);

    // Garbage that is not even a header.
    drop(src);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"\x01\x02").unwrap();
    drop(f);
    let src = env.open("");
    assert_eq!(src.durable_seq(), 4);
}

#[test]
fn on_committed_deletes_old_segments_but_never_the_active_one() {
    let env = Env::new();
    let mut src = env.open("wal_segment_bytes = 1");
    let addr = src.local_addr();
    for c in ["a", "b", "c"] {
        assert_eq!(post_json(addr, V1, &array(&[c])).status, 200);
    }
    let dir = src.wal_dir().to_path_buf();
    assert_eq!(
        segment_files(&dir),
        [
            wal::segment_name(0),
            wal::segment_name(1),
            wal::segment_name(2)
        ]
    );
    src.resume(None).unwrap();
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(offsets(&ev), [0, 1, 2]);
    src.on_committed(&json!({"next_seq": 1})).unwrap();
    assert_eq!(
        segment_files(&dir),
        [wal::segment_name(1), wal::segment_name(2)]
    );
    src.on_committed(&json!({"next_seq": 3})).unwrap();
    assert_eq!(segment_files(&dir), [wal::segment_name(2)]);
    assert!(src.on_committed(&json!("bogus")).is_err());

    // Replaying from a deleted segment is an error, from a kept one works.
    src.resume(Some(&json!({"next_seq": 0}))).unwrap();
    assert!(src.poll(10).is_err());
    src.resume(Some(&json!({"next_seq": 2}))).unwrap();
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(offsets(&ev), [2]);
    // New data lands in a new segment; the old active one can go once committed.
    assert_eq!(post_json(addr, V1, &array(&["d"])).status, 200);
    src.on_committed(&json!({"next_seq": 4})).unwrap();
    assert_eq!(segment_files(&dir), [wal::segment_name(3)]);
    drop(src);
    // The log reopens from its remaining segment.
    let mut src = env.open("wal_segment_bytes = 1");
    assert_eq!(src.durable_seq(), 4);
    src.resume(Some(&json!({"next_seq": 3}))).unwrap();
    let (ev, _, _) = poll_all(&mut src, 10);
    assert_eq!(strs(&ev, "pre_enrollment_code"), ["d"]);
}

#[test]
fn replay_from_the_same_position_is_deterministic() {
    let env = Env::new();
    let mut src = env.open("wal_segment_bytes = 2000");
    let addr = src.local_addr();
    for i in 0..6 {
        let codes: Vec<String> = (0..3).map(|j| format!("r{i}-{j}")).collect();
        let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
        assert_eq!(post_json(addr, V1, &array(&refs)).status, 200);
    }
    let r = request(
        addr,
        "POST",
        BULK,
        Some(TOKEN),
        Some("text/csv"),
        CSV.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(segment_files(src.wal_dir()).len() > 2);
    let run = |src: &mut HttpSource, pos: Option<Value>| {
        src.resume(pos.as_ref()).unwrap();
        let mut out = Vec::new();
        loop {
            match src.poll(4).unwrap() {
                SourcePoll::Batch {
                    events,
                    dead_letters,
                    records,
                } => out.push((events, dead_letters, records, src.position())),
                SourcePoll::Idle => return out,
                SourcePoll::Finished => panic!("finished"),
            }
        }
    };
    let a = run(&mut src, None);
    let b = run(&mut src, Some(json!({"next_seq": 0})));
    assert_eq!(a, b);
    let c = run(&mut src, Some(json!({"next_seq": 7})));
    let d = run(&mut src, Some(json!({"next_seq": 7})));
    assert_eq!(c, d);
    assert_eq!(c.iter().map(|x| x.2).sum::<u64>(), 22 - 7);
    drop(src);
    let mut src = env.open("wal_segment_bytes = 2000");
    let e = run(&mut src, Some(json!({"next_seq": 7})));
    // Same records after a restart (the reader is a fresh process-level object).
    assert_eq!(c, e);
}

#[test]
fn concurrent_uploads_are_group_committed_densely() {
    let env = Env::new();
    let mut src = env.open("fsync = false");
    let addr = src.local_addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                (0..15)
                    .map(|i| {
                        let codes = [format!("t{t}-{i}-a"), format!("t{t}-{i}-b")];
                        let r = post_json(addr, V1, &array(&[&codes[0], &codes[1]]));
                        assert_eq!(r.status, 200, "{}", r.body);
                        r.json()["transactionId"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    assert_eq!(src.durable_seq(), 240);
    src.resume(None).unwrap();
    let (ev, _, _) = poll_all(&mut src, 1000);
    assert_eq!(offsets(&ev), (0..240).collect::<Vec<u64>>());
    // Each upload's rows are contiguous and in order.
    let codes = strs(&ev, "pre_enrollment_code");
    for pair in codes.chunks(2) {
        assert!(pair[0].ends_with("-a") && pair[1].ends_with("-b"));
        assert_eq!(
            pair[0].trim_end_matches("-a"),
            pair[1].trim_end_matches("-b")
        );
    }
}

#[test]
fn hostile_input_never_crashes_the_server() {
    let env = Env::new();
    let mut src = env.open("max_body_bytes = 65536");
    let addr = src.local_addr();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut bodies: Vec<Vec<u8>> = vec![
        b"[".repeat(50_000),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        br#"[{"preEnrollmentCode":"p","recipient":{"age":1e999}}]"#.to_vec(),
        br#"[{"preEnrollmentCode":"p","recipient":{"age":NaN}}]"#.to_vec(),
        br#"[{"preEnrollmentCode":"p","recipient":{"age":"1"},"vaccination":{"dose":99999999999999999999}}]"#.to_vec(),
        br#"[{"preEnrollmentCode":"p","recipient":{"age":"1","dob":"9999-99-99"}}]"#.to_vec(),
        b"[\"\\ud800\"]".to_vec(),
        b"\xef\xbb\xbf[]".to_vec(),
        b"[\"\xff\xfe\"]".to_vec(),
        b"\0\0\0\0".to_vec(),
    ];
    for len in [1usize, 7, 100, 3000] {
        bodies.push((0..len).map(|_| (rnd() & 0xff) as u8).collect());
        let alphabet = b"[]{}\",:0123456789.eE+-truefalsnl \\u";
        bodies.push(
            (0..len)
                .map(|_| alphabet[(rnd() % alphabet.len() as u64) as usize])
                .collect(),
        );
    }
    for body in &bodies {
        for path in [V1, V3, BULK] {
            for ctype in [
                "application/json",
                "text/csv",
                "multipart/form-data; boundary=x",
            ] {
                let r = request(addr, "POST", path, Some(TOKEN), Some(ctype), body);
                assert!(
                    r.status < 500 || r.status == 503,
                    "{path} {ctype}: {}",
                    r.status
                );
            }
        }
    }
    for path in [
        "/divoc/api/v1/certify/uploads/%FF%FE",
        "/divoc/api/v1/certify/uploads/u99999999999999999999999999",
        "/divoc/api/v1/certify/uploads/u-1/errors",
        "/divoc/api/v1/certify/uploads?limit=-5",
        "/nope",
        "/divoc/api/v1/certify/uploads/%00",
    ] {
        let r = get(addr, path, TOKEN);
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
    }
    // Garbage that is not HTTP at all.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(b"\x16\x03\x01\x02\x00 not http\r\n\r\n");
    drop(s);
    assert_eq!(get(addr, "/health", TOKEN).status, 200);
    // Whatever was accepted replays without errors.
    src.resume(None).unwrap();
    let (_, _, n) = poll_all(&mut src, 100);
    assert_eq!(n, src.durable_seq());
}

#[test]
fn component_check_and_build() {
    let env = Env::new();
    let e = entry::<HttpSourceConfig>();
    assert_eq!(e.kind(), "http_source");
    assert_eq!(e.role(), divoc_pipeline::config::Role::Source);
    let check = |text: &str| {
        let table: toml::Table = toml::from_str(text).unwrap();
        e.check(
            &table,
            &CheckContext {
                config_dir: &env.root,
            },
        )
    };
    assert!(check(&format!(
        "listen = \"127.0.0.1:8080\"\ntokens = [{{token = \"{TOKEN}\", tenant = \"in\"}}]"
    ))
    .is_ok());
    assert!(check("listen = \"127.0.0.1:8080\"").is_ok());
    assert_eq!(check("listen = \"nope\"").unwrap_err().key, "listen");
    assert_eq!(
        check("listen = \"127.0.0.1:1\"\ntokens = [{token = \"short\", tenant = \"in\"}]")
            .unwrap_err()
            .key,
        "tokens[0].token"
    );
    assert_eq!(
        check("listen = \"127.0.0.1:1\"\nmax_body_bytes = 0")
            .unwrap_err()
            .key,
        "max_body_bytes"
    );
    assert_eq!(
        check("listen = \"127.0.0.1:1\"\nmax_events_per_request = 0")
            .unwrap_err()
            .key,
        "max_events_per_request"
    );
    assert_eq!(
        check("listen = \"127.0.0.1:1\"\nwal_segment_bytes = 0")
            .unwrap_err()
            .key,
        "wal_segment_bytes"
    );
    assert_eq!(
        check("listen = \"127.0.0.1:1\"\nfsnyc = true")
            .unwrap_err()
            .key,
        "fsnyc"
    );

    // A busy port fails the build itself.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let table: toml::Table = toml::from_str(&format!("listen = \"127.0.0.1:{port}\"")).unwrap();
    match e.build(&table, &env.ctx()) {
        Err(err) => assert!(err.to_string().contains("bind"), "{err}"),
        Ok(_) => panic!("bind on a busy port succeeded"),
    }
    drop(busy);
    let built = e.build(&table, &env.ctx()).unwrap();
    let BuiltNode::Source(mut source) = built else {
        panic!("http_source must build a source");
    };
    source.resume(None).unwrap();
    assert!(matches!(source.poll(10).unwrap(), SourcePoll::Idle));
    assert_eq!(source.position(), json!({"next_seq": 0}));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(
        request(
            addr,
            "GET",
            "/divoc/api/v1/certify/uploads",
            Some(TOKEN),
            None,
            b""
        )
        .status,
        401
    );
    assert_eq!(request(addr, "GET", "/health", None, None, b"").status, 200);
}

fn http_metrics(env: &Env) -> divoc_connectors::http::HttpMetrics {
    divoc_connectors::http::HttpMetrics::register(&env.metrics).unwrap()
}
