//! The HTTP ingest API end to end, from other processes: load from `divoc load`, adversarial
//! requests over raw TCP, graceful SIGTERM, and every accepted event published exactly once.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "test-token-0123456789abcdef";

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(dir: &std::path::Path, port: u16) -> Server {
    let config = repo().join("config/http.toml").display().to_string();
    let args = with_sets(
        &["run", "--config", &config],
        &[
            format!("storage.url={}", dir.join("out").display()),
            format!("storage.state_dir={}", dir.join("state").display()),
            format!("nodes.ingest.listen=127.0.0.1:{port}"),
            "metrics.listen=".into(),
        ],
    );
    let child = Command::new(bin())
        .args(&args)
        .env("DIVOC_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child }
}

fn stop(mut s: Server) -> String {
    let pid = s.child.id() as i32;
    // SIGTERM: the pipeline cuts a final epoch, drains and exits 0.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let child = std::mem::replace(&mut s.child, Command::new("true").spawn().unwrap());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "clean exit after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn event(pre: &str, patch: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut v = serde_json::json!({
        "preEnrollmentCode": pre, "programId": "C19",
        "recipient": {"name": "Asha", "gender": "Female", "dob": "1980-04-01", "age": "42"},
        "vaccination": {"name": "Covishield", "batch": "B1", "manufacturer": "SII", "date": "2022-05-01T10:00:00Z", "dose": 1, "totalDoses": 2},
        "facility": {"name": "PHC"}
    });
    patch(&mut v);
    v
}

#[test]
fn load_and_adversarial_requests_end_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(tmp.path(), port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let certify = "/divoc/api/v1/certify";
    let json = "application/json";

    // Auth: deny without or with a wrong token.
    assert_eq!(http(addr, "POST", certify, None, json, b"[]").0, 401);
    assert_eq!(
        http(
            addr,
            "POST",
            certify,
            Some("Bearer wrong-token-000000000"),
            json,
            b"[]"
        )
        .0,
        401
    );
    // Malformed bodies: 4xx naming the problem, nothing written.
    let (st, body) = http(
        addr,
        "POST",
        certify,
        Some(&bearer()),
        json,
        b"[{\"preEnrollmentCode\": ",
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = http(
        addr,
        "POST",
        certify,
        Some(&bearer()),
        json,
        br#"{"not":"an array"}"#,
    );
    assert_eq!(st, 400, "{body}");
    let wrong_type = serde_json::json!([event("x1", |v| v["vaccination"]["dose"] =
        serde_json::json!("one"))]);
    let (st, body) = http(
        addr,
        "POST",
        certify,
        Some(&bearer()),
        json,
        wrong_type.to_string().as_bytes(),
    );
    assert_eq!(st, 400);
    assert!(body.contains("vaccination.dose"), "names the path: {body}");
    let no_age = serde_json::json!([event("x2", |v| {
        let r = v["recipient"].as_object_mut().unwrap();
        r.remove("age");
        r.remove("dob");
    })]);
    let (st, body) = http(
        addr,
        "POST",
        certify,
        Some(&bearer()),
        json,
        no_age.to_string().as_bytes(),
    );
    assert_eq!((st, body.contains("MISSING_FIELDS")), (400, true), "{body}");
    let huge = vec![b'['; 9 * 1024 * 1024];
    assert_eq!(
        http(addr, "POST", certify, Some(&bearer()), json, &huge).0,
        413
    );

    // Accepted-but-invalid events become dead letters with reasons; odd names survive.
    let tricky = serde_json::json!([
        event("t1", |v| v["vaccination"]["date"] =
            serde_json::json!("2099-01-01T00:00:00Z")),
        event("t2", |v| v["vaccination"]["name"] =
            serde_json::json!("Snake Oil")),
        event("t3", |v| v["vaccination"]["dose"] = serde_json::json!(5)),
        event("t4", |v| v["recipient"]["name"] =
            serde_json::json!("O'Brien \"Bob\" \u{0007}")),
        event("t5", |v| v["recipient"]["name"] =
            serde_json::json!("x".repeat(100_000))),
        event("t6", |v| v["recipient"]["name"] =
            serde_json::json!("O'Brien \"Bob\" अनिल")),
    ]);
    let (st, body) = http(
        addr,
        "POST",
        certify,
        Some(&bearer()),
        json,
        tricky.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    let v3 = serde_json::json!([event("t7", |_| {})]);
    assert_eq!(
        http(
            addr,
            "POST",
            "/divoc/api/v3/certify",
            Some(&bearer()),
            json,
            v3.to_string().as_bytes()
        )
        .0,
        200
    );

    // Load from a second process: 20k valid events, 100 per request.
    let load = Command::new(bin())
        .args([
            "load",
            "--addr",
            &addr.to_string(),
            "--events",
            "20000",
            "--per-request",
            "100",
            "--concurrency",
            "4",
            "--json",
        ])
        .env("DIVOC_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&load.stdout).unwrap();
    assert_eq!(report["events"], 20000, "{report}");
    assert_eq!(report["errors"], 0, "{report}");

    let summary = stop(server);
    let accepted = read_output(&tmp.path().join("out"), "accepted");
    let dead = read_output(&tmp.path().join("out"), "dead-letter");
    let pres = string_column(&accepted, "pre_enrollment_code");
    assert_eq!(
        pres.len(),
        20_000 + 2,
        "load events plus t6 and t7: {summary}"
    );
    assert!(pres.contains(&"t6".to_string()) && pres.contains(&"t7".to_string()));
    let names = string_column(&accepted, "recipient_name");
    assert!(names.contains(&"O'Brien \"Bob\" अनिल".to_string()));
    let reasons = reason_counts(&dead);
    for (code, n) in [
        ("future_date", 1),
        ("unknown_vaccine", 1),
        ("dose_out_of_range", 1),
        ("invalid_characters", 1),
        ("field_too_long", 1),
    ] {
        assert_eq!(reasons.get(code).copied(), Some(n), "{code}: {reasons:?}");
    }
    assert_eq!(dead.iter().map(|b| b.num_rows()).sum::<usize>(), 5);

    // Restart on the same state: nothing is re-published, the WAL was drained exactly once.
    let server = start(tmp.path(), port);
    let summary = stop(server);
    assert!(summary.contains("accepted (published): 0"), "{summary}");
    assert_eq!(
        string_column(
            &read_output(&tmp.path().join("out"), "accepted"),
            "pre_enrollment_code"
        )
        .len(),
        20_002
    );
}

#[test]
fn bulk_csv_upload_reports_row_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(tmp.path(), port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let csv = "preEnrollmentCode,recipientName,recipientAge,vaccinationName,vaccinationDate,vaccinationDose,vaccinationTotalDoses\n\
               c1,Ravi,40,Covishield,2021-05-01,1,2\n\
               c2,Meena,41,Snake Oil,2021-05-01,1,2\n\
               c3,Arun,39,Covaxin,2021-05-01,x,2\n";
    let (st, body) = http(
        addr,
        "POST",
        "/divoc/api/v1/bulkCertify",
        Some(&bearer()),
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["transactionId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Row errors appear once the pipeline has published the dead letters.
    let deadline = Instant::now() + Duration::from_secs(30);
    let errors = loop {
        let (st, body) = http(
            addr,
            "GET",
            &format!("/divoc/api/v1/certify/uploads/{id}/errors"),
            Some(&bearer()),
            json_ct(),
            b"",
        );
        assert_eq!(st, 200, "{body}");
        if body.contains("unknown_vaccine") && body.contains("invalid_field_type") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "row errors never appeared: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let parsed: serde_json::Value = serde_json::from_str(&errors).unwrap();
    let rows: Vec<u64> = parsed["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![2, 3],
        "1-based data rows of the two bad rows: {errors}"
    );
    stop(server);
    let accepted = read_output(&tmp.path().join("out"), "accepted");
    assert_eq!(
        string_column(&accepted, "pre_enrollment_code"),
        vec!["c1".to_string()]
    );
}

fn json_ct() -> &'static str {
    "application/json"
}
