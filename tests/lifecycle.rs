//! The certificate lifecycle over HTTP, end to end (`config/http.toml`): certify, update (a new id
//! with `previous_certificate_id`), 412 past the correction limit, 404 for an unknown certificate,
//! revoke (contiguous doses including the highest), certify again after a revocation, suspend
//! (409 on an update), lift, and a SIGKILL in the middle of a burst of lifecycle events that the
//! restart finishes with exactly one outcome per event.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use common::*;

const TOKEN: &str = "lifecycle-token-0123456789abcdef";

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, port: u16) -> Server {
    start_with(dir, port, &repo().join("config/http.toml"), &[])
}

fn start_with(dir: &Path, port: u16, config: &Path, env: &[(&str, &str)]) -> Server {
    let config = config.display().to_string();
    let args = with_sets(
        &["run", "--config", &config],
        &[
            format!("storage.url={}", dir.join("out").display()),
            format!("storage.state_dir={}", dir.join("state").display()),
            format!("nodes.ingest.listen=127.0.0.1:{port}"),
            "metrics.listen=".into(),
            "nodes.dedupe.correction_limit=2".into(),
        ],
    );
    let child = Command::new(bin())
        .args(&args)
        .envs(env.iter().copied())
        .env("DIVOC_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, addr }
}

fn event(pre: &str, dose: i64, batch: &str) -> serde_json::Value {
    serde_json::json!({
        "preEnrollmentCode": pre, "programId": "C19",
        "recipient": {"name": "Asha", "gender": "Female", "dob": "1980-04-01", "age": "42"},
        "vaccination": {"name": "Covishield", "batch": batch, "manufacturer": "SII",
                        "date": "2022-05-01T10:00:00Z", "dose": dose, "totalDoses": 2},
        "facility": {"name": "PHC"}
    })
}

fn send(s: &Server, method: &str, path: &str, body: &serde_json::Value) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    http(
        s.addr,
        method,
        path,
        Some(&auth),
        "application/json",
        &bytes,
    )
}

/// One accepted row: (kind, preEnrollmentCode, dose, certificate id, previous id).
type Row = (String, String, i64, String, String);

fn accepted(out: &Path) -> Vec<Row> {
    let batches = read_output(out, "accepted");
    let mut rows = Vec::new();
    for b in &batches {
        let s = |n: &str, i: usize| {
            let c = b.column_by_name(n).unwrap().as_string::<i32>();
            if c.is_null(i) {
                String::new()
            } else {
                c.value(i).to_owned()
            }
        };
        let dose = b
            .column_by_name("dose")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            rows.push((
                s("event_kind", i),
                s("pre_enrollment_code", i),
                dose.value(i),
                s("certificate_id", i),
                s("previous_certificate_id", i),
            ));
        }
    }
    rows
}

/// Waits until `n` rows are published and returns them.
fn wait_rows(out: &Path, n: usize) -> Vec<Row> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = accepted(out);
        if rows.len() >= n {
            assert_eq!(rows.len(), n, "more rows than expected: {rows:#?}");
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} rows published: {rows:#?}",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dead_reasons(out: &Path) -> BTreeMap<String, u64> {
    reason_counts(&read_output(out, "dead-letter"))
}

fn id_of(rows: &[Row], kind: &str, pre: &str, dose: i64) -> String {
    rows.iter()
        .rev()
        .find(|r| r.0 == kind && r.1 == pre && r.2 == dose)
        .unwrap_or_else(|| panic!("no {kind} row for {pre}/{dose} in {rows:#?}"))
        .3
        .clone()
}

#[test]
fn every_transition_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let s = start(tmp.path(), free_port());
    let certify = "/divoc/api/v1/certify";
    let put = "/divoc/api/v1/certificate";

    let (st, body) = send(
        &s,
        "POST",
        certify,
        &serde_json::json!([
            event("A", 1, "B1"),
            event("A", 2, "B1"),
            event("B", 1, "B1")
        ]),
    );
    assert_eq!(st, 200, "{body}");
    let rows = wait_rows(&out, 3);
    let a1 = id_of(&rows, "certify_v1", "A", 1);

    // Update: a new certificate replaces A's dose 1; twice, then the limit (2) answers 412.
    assert_eq!(
        send(&s, "PUT", put, &serde_json::json!([event("A", 1, "B2")])).0,
        200
    );
    let rows = wait_rows(&out, 4);
    let update = rows.iter().find(|r| r.0 == "update").unwrap();
    assert_eq!((update.1.as_str(), update.2), ("A", 1));
    assert_eq!(
        update.4, a1,
        "previous_certificate_id is the replaced certificate"
    );
    assert_ne!(update.3, a1, "an update issues a new id");
    assert_eq!(
        send(&s, "PUT", put, &serde_json::json!([event("A", 1, "B3")])).0,
        200
    );
    wait_rows(&out, 5);
    let (st, body) = send(&s, "PUT", put, &serde_json::json!([event("A", 1, "B4")]));
    assert_eq!(st, 412, "{body}");
    assert!(body.contains("CORRECTION_LIMIT"), "{body}");
    let (st, body) = send(&s, "PUT", put, &serde_json::json!([event("Z", 1, "B1")]));
    assert_eq!(
        (st, body.contains("CERTIFICATE_NOT_FOUND")),
        (404, true),
        "{body}"
    );

    // Revoke: doses must be contiguous and include the highest (2).
    let (st, body) = send(
        &s,
        "DELETE",
        "/divoc/api/v1/certificates/A?doses=1&programId=C19",
        &serde_json::Value::Null,
    );
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("highest"), "{body}");
    let (st, body) = send(
        &s,
        "DELETE",
        "/divoc/api/v1/certificates/A?allDoses=true&programId=C19",
        &serde_json::Value::Null,
    );
    assert_eq!(st, 200, "{body}");
    let rows = wait_rows(&out, 7);
    let revoked: Vec<(i64, String)> = rows
        .iter()
        .filter(|r| r.0 == "revoke")
        .map(|r| (r.2, r.3.clone()))
        .collect();
    assert_eq!(
        revoked,
        vec![
            (1, id_of(&rows, "update", "A", 1)),
            (2, id_of(&rows, "certify_v1", "A", 2))
        ],
        "both doses revoked, dose 1 in its corrected certificate"
    );
    assert_eq!(
        send(
            &s,
            "DELETE",
            "/divoc/api/v1/certificates/A?allDoses=true&programId=C19",
            &serde_json::Value::Null
        )
        .0,
        404,
        "nothing left to revoke"
    );
    // A revoked dose can be certified again: a new id.
    assert_eq!(
        send(
            &s,
            "POST",
            certify,
            &serde_json::json!([event("A", 1, "B5")])
        )
        .0,
        200
    );
    let rows = wait_rows(&out, 8);
    let again = rows.last().unwrap();
    assert_eq!((again.0.as_str(), again.1.as_str()), ("certify_v1", "A"));
    assert!(rows[..7].iter().all(|r| r.3 != again.3), "a fresh id");

    // Suspend B, refuse its correction, lift, refuse a second lift.
    let suspension = "/divoc/api/v1/certificates/B/suspension";
    let (st, body) = send(
        &s,
        "POST",
        suspension,
        &serde_json::json!({"doses": [1], "until": "2099-12-31", "programId": "C19"}),
    );
    assert_eq!(st, 200, "{body}");
    wait_rows(&out, 9);
    let (st, body) = send(&s, "PUT", put, &serde_json::json!([event("B", 1, "B9")]));
    assert_eq!(
        (st, body.contains("CERTIFICATE_SUSPENDED")),
        (409, true),
        "{body}"
    );
    let lift = format!("{suspension}?doses=1&programId=C19");
    assert_eq!(send(&s, "DELETE", &lift, &serde_json::Value::Null).0, 200);
    let rows = wait_rows(&out, 10);
    assert_eq!(
        rows.iter()
            .filter(|r| r.1 == "B")
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        vec!["certify_v1", "suspend", "lift_suspension"]
    );
    let (st, body) = send(&s, "DELETE", &lift, &serde_json::Value::Null);
    assert_eq!((st, body.contains("NOT_SUSPENDED")), (409, true), "{body}");
    // Bad requests name the problem.
    let (st, body) = send(
        &s,
        "DELETE",
        "/divoc/api/v1/certificates/B?dose=1",
        &serde_json::Value::Null,
    );
    assert_eq!(
        (st, body.contains("unknown query parameter")),
        (400, true),
        "{body}"
    );
    let (st, body) = send(
        &s,
        "POST",
        suspension,
        &serde_json::json!({"doses": [1], "until": "soon"}),
    );
    assert_eq!((st, body.contains("INVALID_DATE")), (400, true), "{body}");

    // Nothing was refused by the pipeline: the endpoints answered every refusal themselves.
    assert_eq!(dead_reasons(&out), BTreeMap::new());
    // Status changes are not counted as issued certificates in the analytics table.
    let analytics = read_output(&out, "analytics/certificates");
    let kinds = string_column(&analytics, "event_kind");
    assert_eq!(kinds.iter().filter(|k| *k == "certify_v1").count(), 4);
    assert_eq!(kinds.iter().filter(|k| *k == "update").count(), 2);
    assert_eq!(kinds.len(), 6);
}

/// A certify request whose `meta.vaccinations[]` disagrees with a stored dose corrects it.
#[test]
fn reconciliation_corrects_the_doses_the_registry_disagrees_with() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let s = start(tmp.path(), free_port());
    let certify = "/divoc/api/v1/certify";
    assert_eq!(
        send(
            &s,
            "POST",
            certify,
            &serde_json::json!([event("R", 1, "B1")])
        )
        .0,
        200
    );
    let rows = wait_rows(&out, 1);
    let first = id_of(&rows, "certify_v1", "R", 1);
    let mut second = event("R", 2, "B7");
    second["meta"] = serde_json::json!({"vaccinations": [
        {"dose": 1, "name": "Covishield", "batch": "B1-CORRECTED", "manufacturer": "SII", "date": "2022-05-01"}
    ]});
    assert_eq!(
        send(&s, "POST", certify, &serde_json::json!([second])).0,
        200
    );
    let rows = wait_rows(&out, 3);
    let update = rows.iter().find(|r| r.0 == "update").unwrap();
    assert_eq!((update.1.as_str(), update.2), ("R", 1));
    assert_eq!(update.4, first, "replaces dose 1's certificate");
    let batches = read_output(&out, "accepted");
    let kinds = string_column(&batches, "event_kind");
    let lots = string_column(&batches, "vaccine_batch");
    let i = kinds.iter().position(|k| k == "update").unwrap();
    assert_eq!(lots[i], "B1-CORRECTED");
}

/// A burst of updates and revocations accepted (200: in the write-ahead log), then SIGKILL before
/// the pipeline could finish: the restart applies each exactly once.
#[test]
fn lifecycle_events_survive_a_kill_with_one_outcome_each() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let port = free_port();
    let s = start(tmp.path(), port);
    let people: Vec<String> = (0..60).map(|i| format!("K{i:03}")).collect();
    let all: Vec<serde_json::Value> = people.iter().map(|p| event(p, 1, "B1")).collect();
    assert_eq!(
        send(&s, "POST", "/divoc/api/v1/certify", &serde_json::json!(all)).0,
        200
    );
    let issued = wait_rows(&out, 60);

    // Updates for the first 40 in one request, revocations of the last 20 one by one.
    let updates: Vec<serde_json::Value> = people[..40].iter().map(|p| event(p, 1, "B2")).collect();
    assert_eq!(
        send(
            &s,
            "PUT",
            "/divoc/api/v1/certificate",
            &serde_json::json!(updates)
        )
        .0,
        200
    );
    for p in &people[40..] {
        let path = format!("/divoc/api/v1/certificates/{p}?doses=1&programId=C19");
        assert_eq!(send(&s, "DELETE", &path, &serde_json::Value::Null).0, 200);
    }
    drop(s); // SIGKILL
    let s = start(tmp.path(), port);
    let rows = wait_rows(&out, 120);
    drop(s);

    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(seen.insert((r.0.clone(), r.1.clone())), "twice: {r:?}");
    }
    for (i, p) in people.iter().enumerate() {
        let first = id_of(&issued, "certify_v1", p, 1);
        if i < 40 {
            let u = rows.iter().find(|r| r.0 == "update" && &r.1 == p).unwrap();
            assert_eq!(
                u.4, first,
                "{p}: the update replaces the issued certificate"
            );
        } else {
            assert_eq!(id_of(&rows, "revoke", p, 1), first, "{p}: revoked once");
        }
    }
    assert_eq!(dead_reasons(&out), BTreeMap::new());
}

/// A receiver that answers 500 to its first `fail` requests, then 200, and keeps what it got.
fn receiver(
    fail: usize,
) -> (
    SocketAddr,
    std::sync::mpsc::Receiver<(String, String, String)>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = 0;
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut sig, mut key) = (0usize, String::new(), String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                } else if lower.starts_with("x-divoc-signature:") {
                    sig = line["x-divoc-signature:".len()..].trim().to_owned();
                } else if lower.starts_with("idempotency-key:") {
                    key = line["idempotency-key:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0u8; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            seen += 1;
            let status = if seen <= fail {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
            if seen > fail {
                let _ = tx.send((String::from_utf8_lossy(&body).into_owned(), sig, key));
            }
        }
    });
    (addr, rx)
}

/// Every certificate change reaches the registry's webhook, HMAC-signed, despite failed attempts.
#[test]
fn webhooks_report_every_change_signed_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (hook, got) = receiver(3);
    let secret = "webhook-secret-0123456789";
    let base = std::fs::read_to_string(repo().join("config/http.toml")).unwrap();
    let catalogue = repo().join("config/vaccines.toml").display().to_string();
    let config = format!(
        "{}\n[nodes.hook]\nkind = \"webhook\"\nurl = \"http://{hook}/divoc/events\"\nsecret_env = \"HOOK_SECRET\"\nbackoff_ms = 50\n\n[[edges]]\nfrom = \"dedupe\"\nto = \"hook\"\n",
        base.replace("\"vaccines.toml\"", &format!("{catalogue:?}"))
    );
    let path = tmp.path().join("hook.toml");
    std::fs::write(&path, config).unwrap();
    let s = start_with(tmp.path(), free_port(), &path, &[("HOOK_SECRET", secret)]);
    let certify = "/divoc/api/v1/certify";
    assert_eq!(
        send(
            &s,
            "POST",
            certify,
            &serde_json::json!([event("W", 1, "B1"), event("W", 2, "B1")])
        )
        .0,
        200
    );
    wait_rows(&out, 2);
    assert_eq!(
        send(
            &s,
            "PUT",
            "/divoc/api/v1/certificate",
            &serde_json::json!([event("W", 1, "B2")])
        )
        .0,
        200
    );
    wait_rows(&out, 3);
    let revoke = "/divoc/api/v1/certificates/W?allDoses=true&programId=C19";
    assert_eq!(send(&s, "DELETE", revoke, &serde_json::Value::Null).0, 200);
    let rows = wait_rows(&out, 5);

    let mut notices = Vec::new();
    while notices.len() < 5 {
        let (body, sig, key) = got
            .recv_timeout(Duration::from_secs(60))
            .expect("a notification within a minute");
        assert_eq!(
            sig,
            divoc_connectors::sinks::webhook::signature(secret.as_bytes(), body.as_bytes()),
            "the body's HMAC"
        );
        let n: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            key,
            format!(
                "{}/{}",
                n["transactionId"].as_str().unwrap(),
                n["status"].as_str().unwrap()
            )
        );
        notices.push(n);
    }
    let statuses: Vec<(String, String)> = notices
        .iter()
        .map(|n| {
            (
                n["status"].as_str().unwrap().to_owned(),
                n["certificateId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let status = match r.0.as_str() {
                "certify_v1" => "issued",
                "update" => "updated",
                "revoke" => "revoked",
                other => panic!("{other}"),
            };
            (status.to_owned(), r.3.clone())
        })
        .collect();
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(statuses), sorted(expected));
    let updated = notices.iter().find(|n| n["status"] == "updated").unwrap();
    assert_eq!(
        updated["previousCertificateId"].as_str(),
        Some(id_of(&rows, "certify_v1", "W", 1).as_str())
    );
    // Nothing personal beyond what the registry sent: no name, no preEnrollmentCode.
    assert!(notices
        .iter()
        .all(|n| n.get("preEnrollmentCode").is_none() && n.get("name").is_none()));
    assert!(
        got.recv_timeout(Duration::from_millis(500)).is_err(),
        "each change once"
    );
}
