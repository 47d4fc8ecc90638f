use super::*;
use crate::dedupe::{Dedupe, DedupeConfig};
use crate::testutil::{batch_from_json, event};
use arrow::array::{ArrayRef, StringArray};
use std::path::Path;
use std::sync::Arc;

fn signer() -> Sign {
    let cfg: SignConfig = toml::from_str("key_file = 'k'\ncatalogue = 'c'").unwrap();
    let cat = VaccineCatalogue::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml"),
    )
    .unwrap();
    Sign::new(
        cfg,
        IssuerKey::from_seed("https://issuer.example", [7u8; 32]),
        cat,
    )
}

fn deduped(lines: &[String]) -> RecordBatch {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Dedupe::open(dir.path(), &toml::from_str::<DedupeConfig>("").unwrap()).unwrap();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.process(batch_from_json(&refs), "dedupe").unwrap().output
}

#[test]
fn signed_credentials_verify_and_are_deterministic() {
    let lines = vec![
        event("1", 1, |v| {
            v["recipient"]["name"] = serde_json::json!("O'Brien \"Bob\" \\ अनिल")
        }),
        event("2", 2, |_| {}),
    ];
    let batch = deduped(&lines);
    let mut s = signer();
    let out = s.process(batch.clone(), "sign").unwrap();
    assert!(out.dead_letters.is_none());
    let creds = credentials(&out.output);
    assert_eq!(creds.len(), 2);
    let vk = s.profiles[0].signing_key.verifying_key();
    for c in &creds {
        let v: serde_json::Value = serde_json::from_str(c).unwrap();
        divoc_credential::verify(&v, &vk).unwrap();
        assert_eq!(v["issuer"], "https://issuer.example");
        assert_eq!(
            v["proof"]["verificationMethod"],
            "https://issuer.example#key-1"
        );
        assert_eq!(v["issuanceDate"], "2022-06-01T00:00:00.000Z");
        let mut t = v.clone();
        t["credentialSubject"]["name"] = serde_json::json!("Mallory");
        assert!(
            divoc_credential::verify(&t, &vk).is_err(),
            "tampering is detected"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&creds[0]).unwrap();
    assert_eq!(
        v["credentialSubject"]["name"], "O'Brien \"Bob\" \\ अनिल",
        "quotes cannot break the JSON"
    );
    assert_eq!(v["evidence"][0]["certificateId"], "1000000000001");
    assert_eq!(
        v["@context"][1],
        divoc_credential::loader::DEFAULT_VACCINATION_V1_URL
    );
    assert_eq!(
        credentials(&s.process(batch, "sign").unwrap().output),
        creds,
        "same input, same bytes"
    );
}

#[test]
fn v3_events_get_the_v2_context_with_icd11() {
    let line = event("3", 1, |_| {});
    let mut batch = deduped(&[line]);
    let cols: Vec<ArrayRef> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if f.name() == schema::EVENT_KIND {
                Arc::new(StringArray::from(vec!["certify_v3"])) as ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    batch = RecordBatch::try_new(batch.schema(), cols).unwrap();
    let out = signer().process(batch, "sign").unwrap();
    let v: serde_json::Value = serde_json::from_str(&credentials(&out.output)[0]).unwrap();
    assert_eq!(
        v["@context"][1],
        divoc_credential::loader::DEFAULT_VACCINATION_V2_URL
    );
    assert_eq!(v["evidence"][0]["icd11Code"], "XM9QW8");
    assert_eq!(v["credentialSubject"]["dob"], "1980-04-01");
}

/// Status changes pass sign without a credential; an update is signed like a certify request.
#[test]
fn revocations_are_not_signed_updates_are() {
    use crate::testutil::batch_of_kinds;
    use divoc_model::event::EventKind;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Dedupe::open(dir.path(), &toml::from_str::<DedupeConfig>("").unwrap()).unwrap();
    let a = event("1", 1, |_| {});
    let b = event("1", 1, |v| v["vaccination"]["batch"] = "B9".into());
    let batch = batch_of_kinds(
        &[
            (EventKind::CertifyV1, a.as_str()),
            (EventKind::Update, b.as_str()),
            (EventKind::Revoke, b.as_str()),
        ],
        0,
    );
    let deduped = d.process(batch, "dedupe").unwrap().output;
    let out = signer().process(deduped, "sign").unwrap();
    assert!(out.dead_letters.is_none());
    let c = out
        .output
        .column_by_name(CREDENTIAL.name)
        .unwrap()
        .as_string::<i32>();
    assert_eq!(out.output.num_rows(), 3);
    assert!(c.is_valid(0) && c.is_valid(1) && c.is_null(2));
    assert!(
        c.value(1).contains("B9"),
        "the update's credential has its batch"
    );
}

/// A program listed with its own key and URLs is signed with them; the others with the node's.
#[test]
fn programs_sign_with_their_own_issuer() {
    let cfg: SignConfig = toml::from_str(
        "key_file = 'k'\ncatalogue = 'c'\n\
         [[programs]]\nid = 'MMR'\nkey_file = 'k2'\ncertificate_base_url = 'https://mmr.example/c/'\n\
         [[programs]]\nid = 'MMR'\ntenant = 'elsewhere'\nkey_file = 'k3'\n",
    )
    .unwrap();
    let cat = VaccineCatalogue::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml"),
    )
    .unwrap();
    let keys = vec![
        IssuerKey::from_seed("https://issuer.example", [7u8; 32]),
        IssuerKey::from_seed("https://mmr.example", [8u8; 32]),
        IssuerKey::from_seed("https://elsewhere.example", [9u8; 32]),
    ];
    let vks: Vec<_> = keys
        .iter()
        .map(|k| k.signing_key().verifying_key())
        .collect();
    let mut s = Sign::with_keys(cfg, keys, cat);
    let lines = vec![
        event("A", 1, |v| v["programId"] = "MMR".into()),
        event("B", 1, |v| v["programId"] = "C19".into()),
    ];
    let out = s.process(deduped(&lines), "sign").unwrap();
    let creds: Vec<serde_json::Value> = credentials(&out.output)
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    assert_eq!(creds[0]["issuer"], "https://mmr.example");
    assert!(creds[0]["evidence"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("https://mmr.example/c/"));
    divoc_credential::verify(&creds[0], &vks[1]).unwrap();
    assert!(divoc_credential::verify(&creds[0], &vks[0]).is_err());
    assert_eq!(creds[1]["issuer"], "https://issuer.example");
    divoc_credential::verify(&creds[1], &vks[0]).unwrap();

    let twice: SignConfig =
        toml::from_str("key_file = 'k'\ncatalogue = '../config/vaccines.toml'\nprograms = [{ id = 'X' }, { id = 'X' }]")
            .unwrap();
    let issue = twice
        .check(&CheckContext {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
        })
        .unwrap_err();
    assert_eq!(issue.key, "programs[1].id");
}

#[test]
fn a_program_can_sign_only_the_last_four_digits_of_the_identity() {
    let lines = vec![
        event("1", 1, |v| {
            v["recipient"]["identity"] = serde_json::json!("did:in.gov.uidai.aadhaar:123456789012");
            v["programId"] = serde_json::json!("MASKED");
        }),
        event("2", 1, |v| {
            v["recipient"]["identity"] = serde_json::json!("did:in.gov.uidai.aadhaar:123456789012");
        }),
    ];
    let batch = deduped(&lines);
    let cfg: SignConfig = toml::from_str(
        "key_file = 'k'\ncatalogue = 'c'\nprograms = [{ id = 'MASKED', mask_identity = true }]",
    )
    .unwrap();
    let cat = VaccineCatalogue::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml"),
    )
    .unwrap();
    let key = IssuerKey::from_seed("https://issuer.example", [7u8; 32]);
    let mut s = Sign::with_keys(cfg, vec![key.clone(), key], cat);
    let out = s.process(batch, "sign").unwrap();
    let creds = credentials(&out.output);
    let ids: Vec<String> = creds
        .iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(c).unwrap();
            v["credentialSubject"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        ids.contains(&"did:in.gov.uidai.aadhaar:XXXXXXXX9012".to_owned()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"did:in.gov.uidai.aadhaar:123456789012".to_owned()),
        "{ids:?}"
    );
    assert!(!creds
        .iter()
        .any(|c| c.contains("123456789012") && c.contains("XXXX")));
}
