//! The SMART Health Cards spec samples (health-cards-dev-tools test data): every valid sample
//! verifies against the spec issuer's JWKS, every invalid one fails at the stage its name says.

mod common;

use divoc_fhir::{Jwks, ShcVerifier, VerifyStage};

const ISSUER: &str = "https://spec.smarthealth.cards/examples/issuer";
/// After every sample's nbf (2021).
const NOW: u64 = 2_000_000_000;

fn verifier() -> ShcVerifier {
    let jwks = Jwks::load(format!("{}/spec-issuer-jwks.json", common::SHC_TESTDATA)).unwrap();
    ShcVerifier::new(&jwks, Some(ISSUER))
}

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(format!("{}/{dir}", common::SHC_TESTDATA))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no samples in {dir}");
    v
}

#[test]
fn every_valid_sample_verifies() {
    let verifier = verifier();
    let mut cards = 0;
    for path in files("valid") {
        let bytes = std::fs::read(&path).unwrap();
        let verified = verifier
            .verify_file(&bytes, NOW)
            .unwrap_or_else(|e| panic!("{} rejected: {e}", path.display()));
        for card in &verified {
            assert_eq!(card.payload.iss, ISSUER);
            let bundle = &card.payload.vc.credential_subject.fhir_bundle;
            assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Patient");
            assert_eq!(
                bundle["entry"][1]["resource"]["resourceType"],
                "Immunization"
            );
        }
        cards += verified.len();
    }
    // One bare JWS (BOM-prefixed payload) plus a file with two JWS signed by two different keys.
    assert_eq!(cards, 3);
}

fn expected_stage(name: &str) -> VerifyStage {
    if name.contains("der-signature") {
        VerifyStage::SignatureEncoding
    } else if name.contains("invalid-signature") {
        VerifyStage::Signature
    } else if name.contains("no_deflate") {
        // The header lacks "zip":"DEF"; that is where the card is refused.
        VerifyStage::Header
    } else if name.contains("wrong_jws_header_kid") {
        VerifyStage::KeyLookup
    } else {
        panic!("no expectation for invalid sample {name}: extend this test")
    }
}

#[test]
fn every_invalid_sample_rejected_at_its_stage() {
    let verifier = verifier();
    for path in files("invalid") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let err = verifier
            .verify_file(&bytes, NOW)
            .expect_err(&format!("{name} was accepted"));
        assert_eq!(err.stage, expected_stage(&name), "{name}: {err}");
    }
}

#[test]
fn clock_and_issuer_checks() {
    let bytes = std::fs::read(format!(
        "{}/valid/test-example-00-d-jws-utf8_bom_prefix.txt",
        common::SHC_TESTDATA
    ))
    .unwrap();
    // Before the sample's nbf (1636751837.847).
    let err = verifier().verify_file(&bytes, 1_600_000_000).unwrap_err();
    assert_eq!(err.stage, VerifyStage::NotYetValid);
    let jwks = Jwks::load(format!("{}/spec-issuer-jwks.json", common::SHC_TESTDATA)).unwrap();
    let other = ShcVerifier::new(&jwks, Some("https://example.org/issuer"));
    assert_eq!(
        other.verify_file(&bytes, NOW).unwrap_err().stage,
        VerifyStage::Issuer
    );
    // No issuer expectation: accepted.
    ShcVerifier::new(&jwks, None)
        .verify_file(&bytes, NOW)
        .unwrap();
}

#[test]
fn hostile_inputs_rejected_without_panic() {
    let v = verifier();
    for input in [
        &b""[..],
        b"...",
        b"a.b",
        b"a.b.c.d",
        b"\xff\xfe",
        b"{\"verifiableCredential\":[]}",
        b"{\"verifiableCredential\":\"x\"}",
        b"eyJ6aXAiOiJERUYiLCJhbGciOiJFUzI1NiJ9.AAAA.AAAA",
    ] {
        assert!(v.verify_file(input, NOW).is_err());
    }
}
