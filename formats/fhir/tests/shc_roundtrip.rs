//! Our own cards: issue -> verify with our verifier, tampering is caught, the FHIR bundle has
//! the minimised SMART Health Card shape.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use divoc_fhir::shc::{jws_from_qr_numeric, MAX_SINGLE_QR_JWS};
use divoc_fhir::{FhirError, IssuerKey, ShcIssuer, ShcVerifier, VerifyStage};
use serde_json::Value;

const ISS: &str = "https://certs.example.org/shc";
const NBF: u64 = 1_622_500_000;
const NOW: u64 = 1_700_000_000;

fn issuer() -> ShcIssuer {
    ShcIssuer::new(IssuerKey::generate().unwrap(), ISS, common::codes()).unwrap()
}

fn verifier(issuer: &ShcIssuer) -> ShcVerifier {
    ShcVerifier::new(&issuer.key().jwks(), Some(ISS))
}

fn segment(jws: &str, i: usize) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(jws.split('.').nth(i).unwrap())
        .unwrap()
}

#[test]
fn issue_then_verify() {
    let issuer = issuer();
    let creds = common::history("Priya Sharma", "COVISHIELD", 2);
    let card = issuer.issue(&creds, NBF).unwrap();
    let verified = verifier(&issuer).verify_jws(&card.jws, NOW).unwrap();
    assert_eq!(verified.payload.iss, ISS);
    assert_eq!(verified.payload.nbf.as_u64(), Some(NBF));
    assert_eq!(verified.header.kid, issuer.key().kid());
    // Header is exactly the spec's three members, in order.
    assert_eq!(
        String::from_utf8(segment(&card.jws, 0)).unwrap(),
        format!(
            r#"{{"zip":"DEF","alg":"ES256","kid":"{}"}}"#,
            issuer.key().kid()
        )
    );
    assert_eq!(segment(&card.jws, 2).len(), 64);
    // Deterministic RFC 6979 signing: same key, same payload, same JWS.
    assert_eq!(issuer.issue(&creds, NBF).unwrap(), card);
    // The QR text decodes back to the JWS.
    assert!(card.jws.len() <= MAX_SINGLE_QR_JWS);
    assert_eq!(
        jws_from_qr_numeric(&card.qr_text().unwrap()).unwrap(),
        card.jws
    );
    // The file form verifies too.
    let file = divoc_fhir::HealthCardFile::new(&[card.clone(), card]);
    let verified = verifier(&issuer)
        .verify_file(file.to_json().unwrap().as_bytes(), NOW)
        .unwrap();
    assert_eq!(verified.len(), 2);
}

#[test]
fn tampering_is_rejected() {
    let issuer = issuer();
    let card = issuer
        .issue(&common::history("Priya Sharma", "Covaxin", 1), NBF)
        .unwrap();
    let v = verifier(&issuer);
    let parts: Vec<&str> = card.jws.split('.').collect();

    // A payload re-deflated with a changed name, keeping the old signature.
    let mut json: Value = serde_json::from_slice(
        &miniz_oxide::inflate::decompress_to_vec(&segment(&card.jws, 1)).unwrap(),
    )
    .unwrap();
    json["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["name"][0]["text"] =
        "Mallory".into();
    let forged = miniz_oxide::deflate::compress_to_vec(&serde_json::to_vec(&json).unwrap(), 9);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged),
        parts[2]
    );
    assert_eq!(
        v.verify_jws(&tampered, NOW).unwrap_err().stage,
        VerifyStage::Signature
    );

    // One flipped signature bit.
    let mut sig = segment(&card.jws, 2);
    sig[10] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        v.verify_jws(&tampered, NOW).unwrap_err().stage,
        VerifyStage::Signature
    );

    // DER-encoded signature of the right message is refused before verification.
    let sig = segment(&card.jws, 2);
    let der = p256::ecdsa::Signature::from_slice(&sig).unwrap().to_der();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(der.as_bytes())
    );
    assert_eq!(
        v.verify_jws(&tampered, NOW).unwrap_err().stage,
        VerifyStage::SignatureEncoding
    );

    // The last character's low bits are base64 padding: a strict decoder must refuse a
    // non-canonical value rather than silently accept an altered JWS.
    let mut altered = card.jws.clone();
    let last = altered.pop().unwrap();
    let sig_len = parts[2].len();
    assert_eq!(sig_len, 86);
    for c in ['A', 'B', 'C', 'D'] {
        if c != last {
            let candidate = format!("{altered}{c}");
            assert!(v.verify_jws(&candidate, NOW).is_err(), "accepted {c}");
        }
    }

    // Another issuer's key set does not know our kid.
    let other = ShcVerifier::new(&IssuerKey::generate().unwrap().jwks(), None);
    assert_eq!(
        other.verify_jws(&card.jws, NOW).unwrap_err().stage,
        VerifyStage::KeyLookup
    );

    // Not valid before nbf.
    assert_eq!(
        v.verify_jws(&card.jws, NBF - 1).unwrap_err().stage,
        VerifyStage::NotYetValid
    );
}

#[test]
fn minimised_bundle_shape() {
    let issuer = issuer();
    let creds = common::history("Ravi Kumar Iyer", "Comirnaty", 3);
    let payload = serde_json::to_value(issuer.payload(&creds, NBF).unwrap()).unwrap();
    assert_eq!(
        payload["vc"]["type"],
        serde_json::json!([
            "https://smarthealth.cards#health-card",
            "https://smarthealth.cards#immunization",
            "https://smarthealth.cards#covid19"
        ])
    );
    let subject = &payload["vc"]["credentialSubject"];
    assert_eq!(subject["fhirVersion"], "4.0.1");
    let bundle = &subject["fhirBundle"];
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["fullUrl"], format!("resource:{i}"));
        let r = e["resource"].as_object().unwrap();
        for forbidden in ["id", "meta", "text"] {
            assert!(!r.contains_key(forbidden), "resource {i} has {forbidden}");
        }
    }
    let patient = &entries[0]["resource"];
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["birthDate"], "1987-03-14");
    assert_eq!(patient["name"][0]["family"], "Iyer");
    assert_eq!(
        patient["name"][0]["given"],
        serde_json::json!(["Ravi", "Kumar"])
    );
    let dates: Vec<&str> = entries[1..]
        .iter()
        .map(|e| e["resource"]["occurrenceDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2021-02-11", "2021-03-12", "2021-04-13"]);
    for e in &entries[1..] {
        let imm = &e["resource"];
        assert_eq!(imm["resourceType"], "Immunization");
        assert_eq!(imm["status"], "completed");
        assert_eq!(imm["patient"]["reference"], "resource:0");
        assert_eq!(
            imm["performer"][0]["actor"]["display"],
            "District Hospital Pune"
        );
        assert!(imm["lotNumber"].as_str().unwrap().starts_with("LOT-"));
        let coding = imm["vaccineCode"]["coding"].as_array().unwrap();
        assert!(imm["vaccineCode"].get("text").is_none());
        // CDC CVX 208 = Pfizer-BioNTech; SNOMED CT 1119349007 = SARS-CoV-2 mRNA vaccine.
        assert_eq!(
            coding[0],
            serde_json::json!({"system": "http://hl7.org/fhir/sid/cvx", "code": "208"})
        );
        assert_eq!(
            coding[1],
            serde_json::json!({"system": "http://snomed.info/sct", "code": "1119349007"})
        );
        let text = imm.to_string();
        assert!(
            !text.contains("icd11") && !text.contains("XM"),
            "ICD-11 leaked: {text}"
        );
    }
}

#[test]
fn vaccine_names_map_to_cvx() {
    let codes = common::codes();
    // DIVOC normalisation: lower-case, whitespace stripped, "contains". Expected CVX codes are
    // from the CDC CVX table.
    for (name, cvx) in [
        ("COVISHIELD", "210"),
        ("Covaxin", "502"),
        ("Pfizer-BioNTech Comirnaty", "208"),
        ("Spike Vax", "207"),
        ("Vaxzevria", "210"),
        ("Janssen", "212"),
        ("Sinopharm BBIBP-CorV", "510"),
        ("CoronaVac", "511"),
        ("Novavax", "211"),
        ("COVOVAX", "211"),
        ("Sputnik V", "505"),
    ] {
        assert_eq!(codes.vaccine(name).unwrap().cvx, cvx, "{name}");
    }
    for name in ["Corbevax", "ZyCoV-D"] {
        codes.vaccine(name).unwrap();
    }
}

#[test]
fn unmapped_vaccine_is_a_clear_error() {
    let issuer = issuer();
    let err = issuer
        .issue(&common::history("A B", "CoVax", 1), NBF)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FhirError::UnmappedVaccine { .. }));
    assert!(
        msg.contains("CoVax") && msg.contains("shc-codes.toml"),
        "{msg}"
    );
}

#[test]
fn oversize_card_refuses_qr() {
    let issuer = issuer();
    // A name too long for one QR code even after DEFLATE (random-ish, so it does not compress).
    let name: String = (0..900u32)
        .map(|i| char::from_u32(0x0900 + (i * 7919 % 0x7f)).unwrap())
        .collect();
    let card = issuer
        .issue(&common::history(&name, "Covishield", 1), NBF)
        .unwrap();
    assert!(card.jws.len() > MAX_SINGLE_QR_JWS);
    assert!(matches!(
        card.qr_text(),
        Err(FhirError::TooLargeForQr { .. })
    ));
    // It still verifies (it could go in a .smart-health-card file).
    verifier(&issuer).verify_jws(&card.jws, NOW).unwrap();
}

#[test]
fn different_people_are_refused() {
    let issuer = issuer();
    let mut creds = common::history("A B", "Covishield", 2);
    creds[1].credential_subject.id = "did:x:someone-else".into();
    assert!(matches!(
        issuer.issue(&creds, NBF),
        Err(FhirError::Credential(_))
    ));
    assert!(issuer.issue(&[], NBF).is_err());
}

#[test]
fn issuer_is_send_sync_and_works_from_rayon() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ShcIssuer>();
    assert_send_sync::<ShcVerifier>();
    use rayon::prelude::*;
    let issuer = issuer();
    let people: Vec<_> = (0..8)
        .map(|i| common::history(&format!("P {i}"), "Covaxin", 2))
        .collect();
    let cards: Vec<_> = people
        .par_iter()
        .map(|c| issuer.issue(c, NBF).unwrap())
        .collect();
    let v = verifier(&issuer);
    for c in &cards {
        v.verify_jws(&c.jws, NOW).unwrap();
    }
}
