//! Signing and verification round trips with our own keys.

mod common;

use common::{credential, GenOptions, Rng};
use divoc_credential::proof::{sign_batch, JWS_HEADER};
use divoc_credential::{
    sign, sign_with, verify, verify_with, verify_with_method, Canonicalizer, DocumentLoader,
    IssuerCheck, SignError, SigningKey, VaccinationCredential, VerificationMethod, VerifyError,
};
use serde_json::{json, Value};

const CREATED: &str = "2021-08-27T10:57:57Z";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[11u8; 32])
}

fn sample() -> Value {
    let mut rng = Rng::new(99);
    loop {
        let c = credential(&mut rng, GenOptions::PYLD);
        if c["credentialSubject"].get("id").is_some()
            && VaccinationCredential::from_json(&c).is_ok()
            && Canonicalizer::default().canonicalize(&c).is_ok()
        {
            return c;
        }
    }
}

#[test]
fn signs_and_verifies_generated_credentials() {
    let mut rng = Rng::new(5);
    let k = key();
    let mut signed_count = 0;
    for _ in 0..300 {
        let c = credential(&mut rng, GenOptions::ALL);
        match sign(&c, &k, "did:india#key-1", CREATED) {
            Ok(s) => {
                signed_count += 1;
                verify(&s, &k.verifying_key()).expect("own signature verifies");
                let jws = s["proof"]["jws"].as_str().expect("jws");
                assert!(
                    jws.starts_with("eyJhbGciOiJFZERTQSIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..")
                );
                // The general path agrees.
                verify_with(
                    &Canonicalizer::default().without_templates(),
                    &s,
                    &k.verifying_key(),
                )
                .expect("verifies through general expansion");
            }
            Err(SignError::Canonicalization(_)) => {} // generated invalid identifiers
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(signed_count > 250);
}

#[test]
fn signatures_are_deterministic_and_typed_model_round_trips() {
    let c = sample();
    let a = sign(&c, &key(), "did:india#key-1", CREATED).expect("sign");
    let b = sign(&c, &key(), "did:india#key-1", CREATED).expect("sign");
    assert_eq!(a, b, "Ed25519 is deterministic");
    let typed = VaccinationCredential::from_json(&a).expect("typed");
    assert_eq!(typed.to_json().expect("json"), a);
    assert_eq!(
        typed.proof.as_ref().map(|p| p.proof_type.as_str()),
        Some("Ed25519Signature2018")
    );
}

#[test]
fn header_is_exact() {
    use base64::Engine as _;
    let s = sign(&sample(), &key(), "did:india#key-1", CREATED).expect("sign");
    let jws = s["proof"]["jws"].as_str().expect("jws");
    let header = jws.split('.').next().expect("header");
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    assert_eq!(decoded, JWS_HEADER.as_bytes());
}

#[test]
fn tampering_any_leaf_breaks_the_signature() {
    let k = key();
    let signed = sign(&sample(), &k, "did:india#key-1", CREATED).expect("sign");
    let paths: [&[&str]; 6] = [
        &["credentialSubject", "name"],
        &["credentialSubject", "refId"],
        &["evidence", "0", "batch"],
        &["evidence", "0", "verifier", "name"],
        &["evidence", "0", "facility", "name"],
        &["issuanceDate"],
    ];
    let mut tested = 0;
    for path in paths {
        let mut v = signed.clone();
        let mut cur = &mut v;
        for p in path {
            cur = match p.parse::<usize>() {
                Ok(i) => &mut cur[i],
                Err(_) => &mut cur[*p],
            };
        }
        if let Some(s) = cur.as_str() {
            *cur = json!(format!("{s}x"));
            assert_eq!(
                verify(&v, &k.verifying_key()),
                Err(VerifyError::SignatureMismatch),
                "{path:?}"
            );
            tested += 1;
        }
    }
    assert!(tested >= 3);
}

#[test]
fn refuses_to_sign_twice_or_non_objects() {
    let signed = sign(&sample(), &key(), "did:india#key-1", CREATED).expect("sign");
    assert!(matches!(
        sign(&signed, &key(), "x", CREATED),
        Err(SignError::AlreadySigned)
    ));
    assert!(matches!(
        sign(&json!([1]), &key(), "x", CREATED),
        Err(SignError::NotAnObject)
    ));
    let mut bad = sample();
    bad["credentialSubject"]["unknownField"] = json!("x");
    assert!(matches!(
        sign(&bad, &key(), "x", CREATED),
        Err(SignError::Canonicalization(_))
    ));
}

#[test]
fn strict_issuer_check_with_our_key_documents() {
    let k = key();
    let mut c = sample();
    c["issuer"] = json!("did:web:cowin.gov.in");
    let method = VerificationMethod {
        id: "did:web:cowin.gov.in#key-1".into(),
        controller: "did:web:cowin.gov.in".into(),
        key: k.verifying_key(),
    };
    let canon = Canonicalizer::default();
    let signed = sign_with(&canon, &c, &k, &method.id, CREATED).expect("sign");
    verify_with_method(&canon, &signed, &method, IssuerCheck::Strict)
        .expect("issuer controls the key");
    let other = VerificationMethod {
        id: "did:web:other#key-1".into(),
        ..method.clone()
    };
    assert!(matches!(
        verify_with_method(&canon, &signed, &other, IssuerCheck::Strict),
        Err(VerifyError::VerificationMethodMismatch { .. })
    ));
}

#[test]
fn control_characters_verify_under_either_escaping() {
    // A credential whose name contains a TAB-free control character (U+0001) canonicalizes
    // differently under RDFC-1.0 and legacy URDNA2015; signatures from both kinds of signer verify.
    let k = key();
    let mut c = sample();
    c["credentialSubject"]["name"] = json!("A\u{1}B\u{7f}");
    let modern = sign(&c, &k, "did:india#key-1", CREATED).expect("sign");
    verify(&modern, &k.verifying_key()).expect("RDFC-1.0 signature");
    let legacy_canon = Canonicalizer::default().with_escaping(divoc_credential::Escaping::Legacy);
    let legacy = sign_with(&legacy_canon, &c, &k, "did:india#key-1", CREATED).expect("sign legacy");
    assert_ne!(legacy["proof"]["jws"], modern["proof"]["jws"]);
    verify(&legacy, &k.verifying_key()).expect("legacy signature");
}

#[test]
fn custom_namespace_and_batch_signing() {
    let loader = DocumentLoader::with_namespaces(
        "https://vax.example.lk/credentials/vaccination/v1",
        "https://vax.example.lk/credentials/vaccination/v2",
    );
    let canon = Canonicalizer::new(loader);
    let mut c = sample();
    let version = if c["@context"][1].as_str().is_some_and(|u| u.ends_with("v2")) {
        "v2"
    } else {
        "v1"
    };
    c["@context"][1] = json!(format!(
        "https://vax.example.lk/credentials/vaccination/{version}"
    ));
    let k = key();
    let batch = vec![c.clone(); 8];
    let signed = sign_batch(&canon, &batch, &k, "did:lk#k", CREATED);
    assert_eq!(signed.len(), 8);
    for s in &signed {
        let s = s.as_ref().expect("signed");
        verify_with(&canon, s, &k.verifying_key()).expect("verify");
    }
    // The default loader does not know this namespace: a clear error, never a network fetch.
    let s = signed[0].as_ref().expect("signed");
    assert!(matches!(
        verify(s, &k.verifying_key()),
        Err(VerifyError::Canonicalization(
            divoc_credential::CanonError::UnknownContext(_)
        ))
    ));
}
