//! The transparency log end to end: the pipeline's `transparency_log` node logs every change,
//! `divoc serve` follows the published log and serves proofs, `divoc verify --audit` checks a
//! certificate against it (in the log, a tampered credential not, the log only grew since an
//! earlier tree head), and a server refuses a published log rewritten under its signed head.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn ok(args: &[String]) -> String {
    divoc_ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// config/pipeline.toml with a `transparency_log` node after `qr_payload`.
fn pipeline_with_log(dir: &Path, log_key: &Path) -> PathBuf {
    let config = repo().join("config");
    let text = std::fs::read_to_string(config.join("pipeline.toml"))
        .unwrap()
        .replace(
            "catalogue = \"vaccines.toml\"",
            &format!(
                "catalogue = {}",
                toml::Value::String(config.join("vaccines.toml").display().to_string())
            ),
        );
    let file = dir.join("pipeline-with-log.toml");
    std::fs::write(
        &file,
        format!(
            "{text}\n[nodes.tlog]\nkind = \"transparency_log\"\nkey_file = {}\n\n[[edges]]\nfrom = \"qr_payload\"\nto = \"tlog\"\n",
            toml::Value::String(log_key.display().to_string())
        ),
    )
    .unwrap();
    file
}

fn run(dir: &Path, config: &Path, input: &Path, events: &str) {
    let mut args = vec![
        "run".to_owned(),
        "--config".into(),
        config.display().to_string(),
    ];
    let mut sets = dir_sets(dir, input);
    sets.push(format!("nodes.input.events={events}"));
    args = with_sets(&args.iter().map(String::as_str).collect::<Vec<_>>(), &sets);
    ok(&args);
}

fn serve_config(dir: &Path, public_key: &str, index: &str) -> PathBuf {
    let config = repo().join("config");
    let file = dir.join(format!("serve-{index}.toml"));
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = {}\nindex_dir = {}\nrefresh_interval_ms = 200\n\
             tokens = [{{ token = \"transparency-test-token-01\", tenant = \"default\" }}]\n\
             templates = {}\nfhir_codes = {}\n\n[transparency]\npublic_key_base58 = \"{public_key}\"\n",
            toml::Value::String(dir.join("out").display().to_string()),
            toml::Value::String(dir.join(index).display().to_string()),
            toml::Value::String(config.display().to_string()),
            toml::Value::String(config.join("shc-codes.toml").display().to_string()),
        ),
    )
    .unwrap();
    file
}

fn audit(
    cred: &Path,
    addr: std::net::SocketAddr,
    key: &str,
    since: Option<&Path>,
) -> (bool, String) {
    let mut args = vec![
        "verify".to_owned(),
        cred.display().to_string(),
        "--audit".into(),
        format!("http://{addr}"),
        "--log-key".into(),
        key.into(),
    ];
    if let Some(s) = since {
        args.push("--since".into());
        args.push(s.display().to_string());
    }
    let out = divoc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_for_size(addr: std::net::SocketAddr, size: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = http(addr, "GET", "/transparency/v1/sth", None, "text/plain", b"");
        if status == 200 {
            let head: serde_json::Value = serde_json::from_str(&body).unwrap();
            if head["treeSize"].as_u64() == Some(size) {
                return body;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tree head never reached {size}: {status} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn certificates_are_proven_in_the_log_and_a_rewritten_log_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let log_key = dir.join("keys/log.json");
    let printed = ok(&[
        "keys".into(),
        "generate".into(),
        "--out".into(),
        log_key.display().to_string(),
        "--issuer".into(),
        "https://log.test".into(),
    ]);
    let key_doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&log_key).unwrap()).unwrap();
    let public = key_doc["publicKeyBase58"].as_str().unwrap().to_owned();
    assert!(!printed.contains(key_doc["privateKeyBase58"].as_str().unwrap()));
    let config = pipeline_with_log(dir, &log_key);
    gen(&input.join("a.ndjson"), 200, 3, 0.0, 0.0);
    run(dir, &config, &input, "certify");

    // Revoke the first certificate.
    let rows = read_output(&dir.join("out"), "accepted");
    let ids = string_column(&rows, "certificate_id");
    let creds = string_column(&rows, "credential");
    let pres = string_column(&rows, "pre_enrollment_code");
    let issued = ids.len() as u64;
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(input.join("a.ndjson"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let revoked_row = pres
        .iter()
        .position(|p| p == first["preEnrollmentCode"].as_str().unwrap())
        .unwrap();
    let revoke = serde_json::json!({"preEnrollmentCode": first["preEnrollmentCode"],
        "programId": first["programId"], "vaccination": {"dose": first["vaccination"]["dose"]}});
    std::fs::write(input.join("b.ndjson"), format!("{revoke}\n")).unwrap();
    run(dir, &config, &input, "revoke");

    let server = start_serve(&serve_config(dir, &public, "index"));
    let addr = server.addr;
    let head_text = wait_for_size(addr, issued + 1);
    let old_head = dir.join("sth-old.json");
    std::fs::write(&old_head, &head_text).unwrap();

    // A certificate in the log; the revoked one shows its revocation.
    let other = (0..ids.len()).find(|&i| i != revoked_row).unwrap();
    let cred = dir.join("cred.json");
    std::fs::write(&cred, &creds[other]).unwrap();
    let (ok_in, report) = audit(&cred, addr, &public, None);
    assert!(ok_in, "{report}");
    assert!(
        report.starts_with(&format!(
            "IN LOG: certificate {} issued at leaf",
            ids[other]
        )),
        "{report}"
    );
    std::fs::write(&cred, &creds[revoked_row]).unwrap();
    let (_, report) = audit(&cred, addr, &public, None);
    assert!(report.contains("logged since: revoked at leaf"), "{report}");

    // The same certificate with a changed name is not what was logged.
    let mut forged: serde_json::Value = serde_json::from_str(&creds[other]).unwrap();
    forged["credentialSubject"]["name"] = "Someone Else".into();
    std::fs::write(&cred, forged.to_string()).unwrap();
    let (ok_forged, report) = audit(&cred, addr, &public, None);
    assert!(!ok_forged && report.starts_with("NOT IN LOG"), "{report}");

    // The wrong log key refuses the server's tree head.
    let wrong = dir.join("keys/wrong.json");
    ok(&[
        "keys".into(),
        "generate".into(),
        "--out".into(),
        wrong.display().to_string(),
    ]);
    let wrong_doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&wrong).unwrap()).unwrap();
    std::fs::write(&cred, &creds[other]).unwrap();
    let (ok_wrong, report) = audit(
        &cred,
        addr,
        wrong_doc["publicKeyBase58"].as_str().unwrap(),
        None,
    );
    assert!(!ok_wrong && report.contains("tree head"), "{report}");

    // More certificates: the log grows, consistently with the head saved before.
    gen(&input.join("c.ndjson"), 20, 77, 0.0, 0.0);
    run(dir, &config, &input, "certify");
    wait_for_size(addr, issued + 1 + 20);
    let (ok_since, report) = audit(&cred, addr, &public, Some(&old_head));
    assert!(ok_since, "{report}");
    assert!(
        report.contains(&format!(
            "grew consistently from {} to {}",
            issued + 1,
            issued + 21
        )),
        "{report}"
    );
    let (status, _) = http(
        addr,
        "GET",
        "/transparency/v1/inclusion?certificateId=nope",
        None,
        "text/plain",
        b"",
    );
    assert_eq!(status, 404);
    stop_serve(server);

    // Someone rewrites a published entry (the status of leaf 0): a server building its copy of
    // the log finds that the entries no longer hash to the signed root, and serves no head.
    let entries = dir.join("out/transparency/entries/000000000000.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    let tampered = text.replacen("\"status\":\"issued\"", "\"status\":\"revoked\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&entries, tampered).unwrap();
    let server = start_serve(&serve_config(dir, &public, "fresh-index"));
    let (status, _) = http(
        server.addr,
        "GET",
        "/transparency/v1/sth",
        None,
        "text/plain",
        b"",
    );
    assert_eq!(status, 404, "no head vouches for the rewritten entries");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = http(server.addr, "GET", "/health", None, "text/plain", b"");
        if status == 503 && body.contains("do not hash to the signed root") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health never reported the rewrite: {status} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    stop_serve(server);
}
