//! Signed certificates checked by independent implementations:
//! - every credential verifies with PyLD (URDNA2015) + PyNaCl, a tampered copy does not;
//! - a QR image we render decodes with zbarimg (ZBar) and unzips to the exact signed credential;
//! - our verifier accepts DIVOC's own signed vector and rejects it tampered.
//!
//! The tools are installed by `tests/run-all.sh` (pip: pyld, pynacl; apt: zbar-tools).

mod common;

use std::process::Command;

use arrow::array::{Array, AsArray};
use common::*;

fn run_signed_pipeline(
    tmp: &std::path::Path,
    events: u64,
) -> (Vec<String>, Vec<Vec<u8>>, std::path::PathBuf) {
    let input = tmp.join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("e.ndjson"), events, 77, 0.0, 0.0);
    let config = default_config().display().to_string();
    let out = divoc(
        &with_sets(&["run", "--config", &config], &dir_sets(tmp, &input))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = read_output(&tmp.join("out"), "accepted");
    let creds = string_column(&accepted, "credential");
    let mut qrs = Vec::new();
    for b in &accepted {
        let c = b.column_by_name("qr_payload").unwrap().as_binary::<i32>();
        for i in 0..c.len() {
            qrs.push(c.value(i).to_vec());
        }
    }
    (creds, qrs, issuer_key(tmp))
}

fn key_field(key: &std::path::Path, field: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(key).unwrap()).unwrap();
    v[field].as_str().unwrap().to_owned()
}

#[test]
fn credentials_verify_with_pyld_and_pynacl() {
    let tmp = tempfile::tempdir().unwrap();
    let (creds, _, key) = run_signed_pipeline(tmp.path(), 300);
    assert!(
        creds.len() >= 250,
        "most generated events are signed: {}",
        creds.len()
    );
    let jsonl = tmp.path().join("creds.jsonl");
    std::fs::write(&jsonl, creds.join("\n") + "\n").unwrap();
    let ctx_dir = repo().join("formats/credential/contexts");
    let map = serde_json::json!({
        "https://www.w3.org/2018/credentials/v1": ctx_dir.join("credentials-v1.jsonld"),
        "https://w3id.org/security/v1": ctx_dir.join("security-v1.jsonld"),
        "https://w3id.org/security/v2": ctx_dir.join("security-v2.jsonld"),
        divoc_credential::loader::DEFAULT_VACCINATION_V1_URL: ctx_dir.join("divoc-vaccination-v1.jsonld"),
        divoc_credential::loader::DEFAULT_VACCINATION_V2_URL: ctx_dir.join("divoc-vaccination-v2.jsonld"),
    });
    let map_file = tmp.path().join("contexts.json");
    std::fs::write(&map_file, map.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tests/interop/verify_credentials.py"))
        .arg(&map_file)
        .arg(&jsonl)
        .arg(key_field(&key, "publicKeyBase58"))
        .arg(key_field(&key, "issuer"))
        .output()
        .expect("python3 runs (tests/run-all.sh installs pyld and pynacl)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "verified={} tampered_rejected={} failures=0",
            creds.len(),
            creds.len()
        )),
        "{stdout}"
    );
}

#[test]
fn qr_image_decodes_with_zbar_to_the_signed_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let (creds, qrs, key) = run_signed_pipeline(tmp.path(), 20);
    assert_eq!(creds.len(), qrs.len());
    for (i, (cred, payload)) in creds.iter().zip(&qrs).take(3).enumerate() {
        let code = divoc_qr::qr_code_bytes(payload).unwrap();
        let png = tmp.path().join(format!("qr{i}.png"));
        std::fs::write(&png, divoc_qr::qr_png(&code, 4).unwrap()).unwrap();
        let out = Command::new("zbarimg")
            .args(["--quiet", "--raw", "-Sbinary"])
            .arg(&png)
            .output()
            .expect("zbarimg runs (tests/run-all.sh installs zbar-tools)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut decoded = out.stdout;
        // zbarimg ends its output with a newline after the symbol data.
        if decoded.len() == payload.len() + 1 && decoded.last() == Some(&b'\n') {
            decoded.pop();
        }
        assert_eq!(&decoded, payload, "ZBar returns the exact payload bytes");
        let zip = tmp.path().join(format!("qr{i}.zip"));
        std::fs::write(&zip, &decoded).unwrap();
        // An independent unzip (Python's zipfile) gives back the exact signed credential.
        let unzip = Command::new("python3")
            .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.namelist()==['certificate.json'], z.namelist(); sys.stdout.buffer.write(z.read('certificate.json'))"])
            .arg(&zip)
            .output()
            .unwrap();
        assert!(
            unzip.status.success(),
            "{}",
            String::from_utf8_lossy(&unzip.stderr)
        );
        assert_eq!(String::from_utf8(unzip.stdout).unwrap(), *cred);
        // `divoc verify` takes the payload file and the QR image itself.
        for f in [&zip, &png] {
            let v = divoc(&[
                "verify",
                &f.display().to_string(),
                "--key",
                &key.display().to_string(),
            ]);
            let text = String::from_utf8_lossy(&v.stdout);
            assert!(text.starts_with("VALID"), "{}: {text}", f.display());
        }
    }
}

#[test]
fn divoc_vector_is_accepted_and_rejected_when_tampered() {
    let shared = repo().join("../shared/divoc-vector");
    let cred = shared.join("divoc-ed25519-2018-signed.json");
    let key = shared.join("divoc-issuer.json");
    let out = divoc(&[
        "verify",
        &cred.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.starts_with("VALID"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("not the key's controller"),
        "DIVOC's issuer/controller mismatch is reported: {text}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cred).unwrap()).unwrap();
    v["credentialSubject"]["name"] = serde_json::json!("Someone Else");
    let t = tmp.path().join("tampered.json");
    std::fs::write(&t, v.to_string()).unwrap();
    let out = divoc(&[
        "verify",
        &t.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("INVALID"));
}
