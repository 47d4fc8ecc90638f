//! Verification end to end: per-program proof suites and Bitstring Status Lists.
//!
//! For each proof suite (`Ed25519Signature2018`, `Ed25519Signature2020`, `eddsa-rdfc-2022`) the
//! pipeline (config/pipeline.toml plus a `status_list` node) issues certificates carrying
//! `credentialStatus`, then revokes one, suspends one until a day, suspends one until lifted and
//! suspends-then-lifts another. Then:
//!
//! - `divoc verify --status <lists>` decides each offline: REVOKED, SUSPENDED until the day,
//!   SUSPENDED until lifted, VALID (lifted), VALID, and INVALID for a tampered copy; a missing
//!   list is an error that names it;
//! - an independent implementation (PyLD + PyNaCl, `tests/interop/verify_credentials.py`)
//!   verifies every credential and every status list credential and decodes the lists' bits,
//!   which must be exactly the revoked and suspended certificates;
//! - an EU DCC downloaded before the revocation is decided REVOKED offline from the same lists,
//!   and a SMART Health Card verifies (its status is not carried, which the outcome says);
//! - the verify page in Chromium (tests/browser/verify-page.mjs) decides pasted and scanned
//!   certificates online and with the network cut, and the outcomes it reported land in the
//!   `verifications` analytics table.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const TOKEN: &str = "status-lists-test-token-01";
const BASE_URL: &str = "https://issuer.test/status/v1";

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn q(path: &Path) -> String {
    toml::Value::String(p(path)).to_string()
}

/// config/pipeline.toml with a `status_list` node after `qr_payload`.
fn pipeline(dir: &Path) -> PathBuf {
    let config = repo().join("config");
    let text = std::fs::read_to_string(config.join("pipeline.toml"))
        .unwrap()
        .replace(
            "catalogue = \"vaccines.toml\"",
            &format!("catalogue = {}", q(&config.join("vaccines.toml"))),
        );
    let file = dir.join("pipeline-with-status.toml");
    std::fs::write(
        &file,
        format!(
            "{text}\n[nodes.status]\nkind = \"status_list\"\nkey_file = {}\nbase_url = \"{BASE_URL}\"\n\n[[edges]]\nfrom = \"qr_payload\"\nto = \"status\"\n",
            q(&issuer_key(dir))
        ),
    )
    .unwrap();
    file
}

fn run(dir: &Path, suite: &str, file: &str, lines: &[String], events: &str) {
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    if !lines.is_empty() {
        std::fs::write(input.join(file), lines.join("\n") + "\n").unwrap();
    }
    let mut sets = dir_sets(dir, &input);
    sets.extend([
        format!("nodes.input.events={events}"),
        format!("nodes.sign.proof_suite={suite}"),
        "nodes.sign.credential_status=true".into(),
        format!("nodes.sign.status_base_url={BASE_URL}"),
    ]);
    divoc_ok(&["run", "--config", &p(&pipeline(dir))], &sets);
}

/// The issued certificates: (id, credential, preEnrollmentCode, programId, dose).
struct Issued {
    ids: Vec<String>,
    creds: Vec<String>,
    lifecycle: Vec<serde_json::Value>,
}

fn issue(dir: &Path, suite: &str) -> Issued {
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("a.ndjson"), 12, 5, 0.0, 0.0);
    run(dir, suite, "a.ndjson", &[], "certify");
    let rows = read_output(&dir.join("out"), "accepted");
    let ids = string_column(&rows, "certificate_id");
    let creds = string_column(&rows, "credential");
    let key = |i: usize| {
        let cred: serde_json::Value = serde_json::from_str(&creds[i]).unwrap();
        serde_json::json!({
            "preEnrollmentCode": cred["credentialSubject"]["refId"],
            "programId": string_column(&rows, "program_id")[i],
            "vaccination": {"dose": cred["evidence"][0]["dose"]},
        })
    };
    Issued {
        lifecycle: (0..5).map(key).collect(),
        ids,
        creds,
    }
}

/// 0 revoked, 1 suspended until 2999-12-31, 2 suspended then lifted, 3 suspended until lifted.
fn change_statuses(dir: &Path, suite: &str, issued: &Issued) {
    let l = &issued.lifecycle;
    run(dir, suite, "b.ndjson", &[l[0].to_string()], "revoke");
    let mut until = l[1].clone();
    until["suspendUntil"] = "2999-12-31".into();
    run(
        dir,
        suite,
        "c.ndjson",
        &[until.to_string(), l[2].to_string(), l[3].to_string()],
        "suspend",
    );
    run(
        dir,
        suite,
        "d.ndjson",
        &[l[2].to_string()],
        "lift_suspension",
    );
}

fn status_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("out/status")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn verify(file: &Path, key: &Path, lists: &[PathBuf], extra: &[String]) -> (bool, String) {
    let mut args = vec!["verify".to_owned(), p(file), "--key".into(), p(key)];
    for l in lists {
        args.push("--status".into());
        args.push(p(l));
    }
    args.extend(extra.iter().cloned());
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

/// Runs the independent verifier over credentials and status lists; returns its stdout.
fn independent_check(dir: &Path, creds: &[String], lists: &[PathBuf]) -> String {
    let ctx = repo().join("formats/credential/contexts");
    let map = serde_json::json!({
        "https://www.w3.org/2018/credentials/v1": ctx.join("credentials-v1.jsonld"),
        "https://www.w3.org/ns/credentials/v2": ctx.join("credentials-v2.jsonld"),
        "https://www.w3.org/ns/credentials/undefined-terms/v2": ctx.join("undefined-terms-v2.jsonld"),
        "https://www.w3.org/ns/credentials/status/v1": ctx.join("bitstring-status-list-v1.jsonld"),
        "https://w3id.org/security/suites/ed25519-2020/v1": ctx.join("ed25519-signature-2020-v1.jsonld"),
        divoc_credential::loader::DEFAULT_VACCINATION_V1_URL: ctx.join("divoc-vaccination-v1.jsonld"),
        divoc_credential::loader::DEFAULT_VACCINATION_V2_URL: ctx.join("divoc-vaccination-v2.jsonld"),
    });
    let map_file = dir.join("contexts.json");
    std::fs::write(&map_file, map.to_string()).unwrap();
    let mut lines: Vec<String> = creds.to_vec();
    for l in lists {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(l).unwrap()).unwrap();
        lines.push(v.to_string());
    }
    let jsonl = dir.join("to-verify.jsonl");
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(issuer_key(dir)).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/verify_credentials.py"))
        .arg(&map_file)
        .arg(&jsonl)
        .arg(key["publicKeyBase58"].as_str().unwrap())
        .arg(key["issuer"].as_str().unwrap())
        .output()
        .expect("python3 runs (tests/run-all.sh installs pyld and pynacl)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "independent verifier: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "verified={n} tampered_rejected={n} failures=0",
            n = lines.len()
        )),
        "{stdout}"
    );
    stdout
}

/// The set indexes the independent verifier printed for one purpose (all lists).
fn printed_bits(report: &str, purpose: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for line in report.lines().filter(|l| l.starts_with("list ")) {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts[2] != purpose {
            continue;
        }
        let list: u64 = parts[1].rsplit('/').next().unwrap().parse().unwrap();
        let set = parts[3].strip_prefix("set=").unwrap();
        out.extend(
            set.split(',')
                .filter(|s| !s.is_empty())
                .map(|i| (list, i.parse().unwrap())),
        );
    }
    out.sort();
    out
}

fn position(id: &str) -> (u64, u64) {
    let n: u64 = id.parse().unwrap();
    (n / 131_072, n % 131_072)
}

fn keys(dir: &Path) {
    let keys = dir.join("keys");
    issuer_key(dir);
    divoc_ok(
        &[
            "keys",
            "dsc",
            "--key-out",
            &p(&keys.join("dsc-key.pem")),
            "--out",
            &p(&keys.join("dsc.pem")),
        ],
        &[],
    );
    divoc_ok(
        &["keys", "shc", "--out", &p(&keys.join("shc.jwk.json"))],
        &[],
    );
}

fn serve_config(dir: &Path) -> PathBuf {
    let config = repo().join("config");
    let keys = dir.join("keys");
    let text = format!(
        r#"listen = "127.0.0.1:0"
storage_url = {store}
index_dir = {index}
refresh_interval_ms = 200
events_flush_interval_ms = 300
tokens = [{{ token = "{TOKEN}", tenant = "default" }}]
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

[verify]
key_files = [{issuer}]
status_base_url = "{BASE_URL}"
"#,
        store = q(&dir.join("out")),
        index = q(&dir.join("index")),
        templates = q(&config),
        codes = q(&config.join("shc-codes.toml")),
        valuesets = q(&config.join("dcc-valuesets.toml")),
        dsc = q(&keys.join("dsc.pem")),
        dsc_key = q(&keys.join("dsc-key.pem")),
        shc = q(&keys.join("shc.jwk.json")),
        issuer = q(&issuer_key(dir)),
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// GET with the test token; waits (the index follows the store) until it answers 200.
fn download(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let auth = format!("Bearer {TOKEN}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = http_bytes(addr, "GET", path, Some(&auth), "text/plain", b"");
        if status == 200 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A DCC download. Generated names may hold characters the ICAO transliteration does not cover;
/// for those the server asks for the Latin names, which are then given.
fn dcc(addr: std::net::SocketAddr, id: &str) -> Vec<u8> {
    let plain = cert(id, "dcc.txt");
    download(addr, &cert(id, "credential.json"));
    let auth = format!("Bearer {TOKEN}");
    let (status, body) = http_bytes(addr, "GET", &plain, Some(&auth), "text/plain", b"");
    if status == 422 && String::from_utf8_lossy(&body).contains("TRANSLITERATION_REQUIRED") {
        return download(addr, &format!("{plain}?fnt=HOLDER&gnt=TEST"));
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

fn cert(id: &str, format: &str) -> String {
    format!("/certificate/api/v1/certificates/{id}/{format}")
}

#[test]
fn every_suite_carries_status_that_verifiers_decide_offline() {
    for (suite, proof_type) in [
        ("Ed25519Signature2018", "Ed25519Signature2018"),
        ("Ed25519Signature2020", "Ed25519Signature2020"),
        ("eddsa-rdfc-2022", "DataIntegrityProof"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let issued = issue(dir, suite);
        let first: serde_json::Value = serde_json::from_str(&issued.creds[0]).unwrap();
        assert_eq!(first["proof"]["type"], proof_type, "{suite}");
        assert_eq!(first["credentialStatus"].as_array().map(Vec::len), Some(2));
        let (list, index) = position(&issued.ids[0]);
        assert_eq!(
            first["credentialStatus"][0]["statusListCredential"],
            format!(
                "{BASE_URL}/{}/revocation/{list}",
                issued.lifecycle[0]["programId"].as_str().unwrap()
            )
        );
        assert_eq!(
            first["credentialStatus"][0]["statusListIndex"],
            index.to_string()
        );
        if suite == "eddsa-rdfc-2022" {
            assert!(first["validFrom"].is_string() && first["issuanceDate"].is_null());
            assert_eq!(first["@context"][0], "https://www.w3.org/ns/credentials/v2");
        }

        change_statuses(dir, suite, &issued);
        let lists = status_files(dir);
        assert!(lists.len() >= 2, "{lists:?}");
        let key = issuer_key(dir);
        let expect = [
            (0, false, "REVOKED: "),
            (1, false, "SUSPENDED until 2999-12-31: "),
            (2, true, "VALID: "),
            (3, false, "SUSPENDED until lifted: "),
            (4, true, "VALID: "),
        ];
        for (i, ok, prefix) in expect {
            let file = dir.join(format!("cert-{i}.json"));
            std::fs::write(&file, &issued.creds[i]).unwrap();
            let (success, report) = verify(&file, &key, &lists, &[]);
            assert!(
                success == ok && report.starts_with(prefix),
                "{suite} certificate {i}: {report}"
            );
        }
        // A tampered copy of a valid certificate.
        let mut forged: serde_json::Value = serde_json::from_str(&issued.creds[4]).unwrap();
        forged["credentialSubject"]["name"] = "Someone Else".into();
        let file = dir.join("forged.json");
        std::fs::write(&file, forged.to_string()).unwrap();
        let (success, report) = verify(&file, &key, &lists, &[]);
        assert!(
            !success && report.starts_with("INVALID: signature does not match"),
            "{report}"
        );
        // Without the revocation list: an error naming the list to fetch, never VALID.
        let only_suspension: Vec<PathBuf> = lists
            .iter()
            .filter(|l| l.to_string_lossy().contains("/suspension/"))
            .cloned()
            .collect();
        let (success, report) = verify(&dir.join("cert-0.json"), &key, &only_suspension, &[]);
        assert!(
            !success && report.contains("no status list") && report.contains("/revocation/"),
            "{report}"
        );
        // A status list altered by someone else is refused.
        let mut altered: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&lists[0]).unwrap()).unwrap();
        altered["credentialSubject"]["encodedList"] =
            divoc_credential::status_list::Bitstring::default()
                .encode()
                .into();
        let altered_file = dir.join("altered-list.json");
        std::fs::write(&altered_file, altered.to_string()).unwrap();
        let (success, report) = verify(&dir.join("cert-4.json"), &key, &[altered_file], &[]);
        assert!(!success && report.contains("does not verify"), "{report}");

        // The independent implementation agrees on every signature and on the bits.
        let report = independent_check(dir, &issued.creds, &lists);
        let ids = |rows: &[usize]| {
            let mut v: Vec<(u64, u64)> = rows.iter().map(|&i| position(&issued.ids[i])).collect();
            v.sort();
            v
        };
        assert_eq!(printed_bits(&report, "revocation"), ids(&[0]), "{report}");
        assert_eq!(
            printed_bits(&report, "suspension"),
            ids(&[1, 3]),
            "{report}"
        );
        assert!(
            report.contains(&format!("{}:2999-12-31", position(&issued.ids[1]).1)),
            "{report}"
        );
    }
}

#[test]
fn an_eu_dcc_is_decided_from_the_same_lists_and_a_health_card_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    keys(dir);
    let suite = "Ed25519Signature2018";
    let issued = issue(dir, suite);
    let server = start_serve(&serve_config(dir));
    let hc1 = dir.join("revoked.hc1.txt");
    std::fs::write(&hc1, dcc(server.addr, &issued.ids[0])).unwrap();
    let kept = dir.join("kept.hc1.txt");
    std::fs::write(&kept, dcc(server.addr, &issued.ids[4])).unwrap();
    let card = dir.join("card.smart-health-card");
    std::fs::write(
        &card,
        download(server.addr, &cert(&issued.ids[4], "smart-health-card")),
    )
    .unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, download(server.addr, "/.well-known/jwks.json")).unwrap();
    stop_serve(server);

    change_statuses(dir, suite, &issued);
    let lists = status_files(dir);
    let dsc = dir.join("keys/dsc.pem");
    let status_key = ["--status-key".to_owned(), p(&issuer_key(dir))];
    let (ok, report) = verify(&hc1, &dsc, &lists, &status_key);
    assert!(
        !ok && report.starts_with("REVOKED: EU DCC signature verified"),
        "{report}"
    );
    let (ok, report) = verify(&kept, &dsc, &lists, &status_key);
    assert!(
        ok && report.starts_with("VALID: EU DCC signature verified"),
        "{report}"
    );
    // The lists are signed by the issuer, not the DSC: without --status-key, a clear error.
    let (ok, report) = verify(&kept, &dsc, &lists, &[]);
    assert!(!ok && report.contains("--status-key"), "{report}");
    // A DCC checked against a key that did not sign it.
    let (ok, report) = verify(&kept, &issuer_key(dir), &[], &[]);
    assert!(!ok && report.contains("PEM"), "{report}");
    let (ok, report) = verify(&card, &jwks, &[], &[]);
    assert!(
        ok && report.starts_with("VALID: SMART Health Card signature verified")
            && report.contains("status is not checked"),
        "{report}"
    );
}

#[test]
fn the_verify_page_decides_in_chromium_online_and_with_the_network_cut() {
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the verify page test needs node, /usr/bin/chromium and tests/browser/node_modules; tests/run-all.sh installs them"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    keys(dir);
    let suite = "eddsa-rdfc-2022";
    let issued = issue(dir, suite);
    let server = start_serve(&serve_config(dir));
    let addr = server.addr;
    // QR images before the changes (downloads of withdrawn certificates stop afterwards).
    let png = |i: usize| {
        let file = dir.join(format!("qr-{i}.png"));
        std::fs::write(&file, download(addr, &cert(&issued.ids[i], "qr.png"))).unwrap();
        p(&file)
    };
    let (qr_valid, qr_revoked) = (png(4), png(0));
    change_statuses(dir, suite, &issued);
    // The server picks up the new lists (its trust bundle is rebuilt every few seconds).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = http(addr, "GET", "/verify/v1/trust", None, "text/plain", b"");
        assert_eq!(status, 200, "{body}");
        let trust: serde_json::Value = serde_json::from_str(&body).unwrap();
        let lists = trust["statusLists"].as_object().unwrap();
        let revoked_bit = lists.values().any(|l| {
            l["credentialSubject"]["statusPurpose"] == "revocation"
                && divoc_credential::status_list::StatusList::read(l)
                    .is_ok_and(|r| r.bits.count_ones() > 0)
        });
        if revoked_bit {
            assert!(trust["keys"].as_array().is_some_and(|k| !k.is_empty()));
            assert!(trust["contexts"]["https://www.w3.org/ns/credentials/v2"].is_object());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation never reached the trust bundle"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, body) = http(addr, "GET", "/status/v1/../x/1", None, "text/plain", b"");
    assert_eq!(status, 404, "{body}");
    let (status, _) = http(
        addr,
        "POST",
        "/verify/v1/outcomes",
        None,
        "application/json",
        br#"{"outcome":"VALID","format":"divoc-vc","reason":"Name: Asha"}"#,
    );
    assert_eq!(status, 400, "free text in an outcome is refused");

    let mut forged: serde_json::Value = serde_json::from_str(&issued.creds[4]).unwrap();
    forged["evidence"][0]["batch"] = "FORGED-BATCH".into();
    let cases = serde_json::json!([
        {"name": "valid (paste)", "paste": issued.creds[4], "image": null, "expect": "VALID"},
        {"name": "tampered (paste)", "paste": forged.to_string(), "image": null, "expect": "INVALID"},
        {"name": "revoked (paste)", "paste": issued.creds[0], "image": null, "expect": "REVOKED"},
        {"name": "suspended (paste)", "paste": issued.creds[1], "image": null, "expect": "SUSPENDED"},
        {"name": "lifted (paste)", "paste": issued.creds[2], "image": null, "expect": "VALID"},
        {"name": "valid (QR image)", "paste": null, "image": qr_valid, "expect": "VALID"},
        {"name": "revoked (QR image)", "paste": null, "image": qr_revoked, "expect": "REVOKED"},
    ]);
    let cases_file = dir.join("cases.json");
    std::fs::write(&cases_file, cases.to_string()).unwrap();
    let out = Command::new("node")
        .arg(browser.join("verify-page.mjs"))
        .arg(format!("http://{addr}"))
        .arg(&cases_file)
        .arg(dir.join("verify-page.png"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify page: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(
        summary["online"].as_array().map(Vec::len),
        Some(7),
        "{summary}"
    );
    assert_eq!(
        summary["offline"].as_array().map(Vec::len),
        Some(7),
        "{summary}"
    );
    stop_serve(server);

    // The outcomes the page reported online are in the analytics table: counts per outcome,
    // and nothing identifying in any column.
    let rows = read_output(&dir.join("out"), "analytics/verifications");
    let outcomes = string_column(&rows, "outcome");
    let count = |o: &str| outcomes.iter().filter(|x| x.as_str() == o).count();
    assert!(count("VALID") >= 3 && count("REVOKED") >= 2, "{outcomes:?}");
    assert!(
        count("INVALID") >= 1 && count("SUSPENDED") >= 1,
        "{outcomes:?}"
    );
    let text = rows_as_text(&rows).join("\n");
    for i in [0, 1, 4] {
        assert!(
            !text.contains(&issued.ids[i]),
            "a certificate id reached the outcomes"
        );
    }
}
