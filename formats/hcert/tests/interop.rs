//! Interoperability: certificates we issue are decoded and verified by an independent Python
//! stack (base45, zlib, pycose, cbor2, jsonschema against DCC schema 1.3.3), and our DSC/CSR
//! parse with `cryptography.x509`. See /work/main/tests/interop/verify_dcc.py.

mod common;

use common::*;
use divoc_credential::credential::CredentialVersion;
use divoc_hcert::{decode_hc1, encode_hc1, CoseSign1, DccHolder, NameParts};
use serde_json::{json, Value};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/interop/verify_dcc.py"
);
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/dcc-schema/1.3.3.json"
);

#[test]
#[ignore = "needs python3 with pycose 1.1.0, cbor2<6, base45, cryptography, jsonschema; tests/run-all.sh installs them"]
fn python_pycose_verifies_our_certificates() {
    let g = dsc(vec![divoc_hcert::CertType::Vaccination]);
    let issuer = issuer(&g);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let csr = divoc_hcert::generate_dsc_csr(&divoc_hcert::DscOptions {
        common_name: "DSC CSR Ü-Test".into(),
        country: "IN".into(),
        organization: Some("MoHFW, India".into()),
        validity_days: 365,
        allowed_types: vec![],
    })
    .unwrap();

    let creds = [
        (
            "v2-covishield",
            credential(
                CredentialVersion::V2,
                "Anna Lövström",
                "COVISHIELD",
                "Serum Institute of India",
                (2, 2),
                "100000000001",
                "2021-08-27T10:57:57.237Z",
            ),
        ),
        (
            "v1-covaxin",
            credential(
                CredentialVersion::V1,
                "Bhaya Mitra",
                "COVAXIN",
                "Bharat Biotech",
                (1, 2),
                "100000000002",
                "2021-05-01T09:00:00.000Z",
            ),
        ),
        (
            "v2-comirnaty-booster",
            credential(
                CredentialVersion::V2,
                "Jiřina-Maria d'Červenková Panklová",
                "Pfizer-BioNTech Comirnaty",
                "Pfizer",
                (3, 3),
                "100000000003",
                "2022-01-10T12:00:00Z",
            ),
        ),
        (
            "v1-sputnik",
            credential(
                CredentialVersion::V1,
                "Ærøskøbing",
                "Sputnik V",
                "Gamaleya",
                (1, 2),
                "100000000004",
                "2021-07-07T00:00:00Z",
            ),
        ),
        (
            "v2-janssen",
            credential(
                CredentialVersion::V2,
                "Jean-Luc Picard",
                "Janssen",
                "Janssen",
                (1, 1),
                "100000000005",
                "2021-09-30T23:59:59Z",
            ),
        ),
    ];
    let mut certs: Vec<Value> = Vec::new();
    for (name, cred) in &creds {
        // Compound surnames break the last-word rule: pass explicit parts, as a registry would.
        let holder = if *name == "v2-comirnaty-booster" {
            DccHolder::from_latin_parts(NameParts {
                family: "d'Červenková Panklová".into(),
                given: Some("Jiřina-Maria".into()),
            })
            .unwrap()
        } else {
            DccHolder::from_credential_name(cred).unwrap()
        };
        certs.push(json!({"name": name, "hc1": issuer.issue(cred, &holder, now).unwrap().hc1}));
    }
    // A non-Latin holder with registry transliterations.
    let devanagari = credential(
        CredentialVersion::V2,
        "भय मित्र",
        "Covishield",
        "SII",
        (1, 2),
        "100000000006",
        "2021-06-01T00:00:00Z",
    );
    let holder = DccHolder::new(
        NameParts {
            family: "मित्र".into(),
            given: Some("भय".into()),
        },
        "MITRA".into(),
        Some("BHAYA".into()),
    )
    .unwrap();
    certs.push(json!({"name": "v2-devanagari", "hc1": issuer.issue(&devanagari, &holder, now).unwrap().hc1}));
    let good = certs.len();

    // Tampered: same signature, payload with a different dose.
    let (_, cred) = &creds[0];
    let issued = issuer
        .issue(cred, &DccHolder::from_credential_name(cred).unwrap(), now)
        .unwrap();
    let decoded = decode_hc1(&issued.hc1).unwrap();
    let mut payload = issued.payload.clone();
    payload.v[0].dn = 1;
    let claims = divoc_hcert::CwtClaims::encode(
        "IN",
        issued.iat,
        issued.exp,
        ciborium::Value::serialized(&payload).unwrap(),
    )
    .unwrap();
    let forged = CoseSign1::encode_tagged(
        decoded.cose.protected_bytes.clone(),
        claims,
        decoded.cose.signature.clone(),
    )
    .unwrap();
    certs.push(json!({"name": "tampered", "hc1": encode_hc1(&forged)}));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dsc.pem"), &g.pem).unwrap();
    std::fs::write(dir.path().join("csr.pem"), &csr.pem).unwrap();
    std::fs::write(
        dir.path().join("certs.json"),
        serde_json::to_vec(&certs).unwrap(),
    )
    .unwrap();

    let out = std::process::Command::new("python3")
        .arg(SCRIPT)
        .arg(dir.path())
        .arg(SCHEMA)
        .output()
        .expect("python3 must be installed (tests/run-all.sh installs the interop tools)");
    assert!(
        out.status.success(),
        "verify_dcc.py failed (missing pycose/cbor2/base45/cryptography/jsonschema?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());

    let signer = divoc_hcert::DscSigner::from_pem(&g.pem, &g.key_pem).unwrap();
    let kid_hex: String = signer.kid().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        report["dsc"]["kid_hex"],
        kid_hex.as_str(),
        "Python's SHA-256 kid equals ours"
    );
    assert_eq!(report["dsc"]["self_signature_ok"], true);
    assert!(report["dsc"]["subject"].as_str().unwrap().contains("C=IN"));
    assert_eq!(report["csr"]["signature_ok"], true);
    assert_eq!(
        report["csr"]["subject"],
        "CN=DSC CSR Ü-Test,O=MoHFW\\, India,C=IN"
    );

    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), good + 1);
    for r in &results[..good] {
        assert_eq!(
            r["ok"], true,
            "Python rejected {}: {}",
            r["name"], r["error"]
        );
        assert_eq!(r["iss"], "IN");
        assert_eq!(r["iat"], now);
        assert_eq!(r["dcc"]["v"][0]["tg"], "840539006");
    }
    let by_name = |n: &str| results.iter().find(|r| r["name"] == n).unwrap();
    assert_eq!(by_name("v1-covaxin")["dcc"]["dob"], "");
    assert_eq!(
        by_name("v2-comirnaty-booster")["dcc"]["nam"]["fnt"],
        "DCERVENKOVA<PANKLOVA"
    );
    assert_eq!(
        by_name("v2-comirnaty-booster")["dcc"]["nam"]["gnt"],
        "JIRINA<MARIA"
    );
    assert_eq!(by_name("v2-devanagari")["dcc"]["nam"]["fn"], "मित्र");
    let tampered = by_name("tampered");
    assert_eq!(tampered["ok"], false);
    assert!(
        tampered["error"].as_str().unwrap().contains("signature"),
        "{}",
        tampered["error"]
    );
}
