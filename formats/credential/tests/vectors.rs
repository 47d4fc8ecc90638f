//! Checks against external reference data: DIVOC's own signed credential and the W3C
//! vc-di-eddsa test vectors (read in place from `shared/`).

mod common;

use common::{read_json, shared};
use divoc_credential::keys::{public_key_from_multibase, signing_key_from_multibase};
use divoc_credential::proof::{verify_with, verify_with_method, IssuerCheck};
use divoc_credential::{
    sign_with_suite, verify, Canonicalizer, DocumentLoader, Escaping, ProofSuite,
    VaccinationCredential, VerificationMethod, VerifyError,
};
use ed25519_dalek::{Signature, Signer as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn divoc_signed() -> Value {
    read_json(shared().join("divoc-vector/divoc-ed25519-2018-signed.json"))
}

fn divoc_method() -> VerificationMethod {
    let issuer = read_json(shared().join("divoc-vector/divoc-issuer.json"));
    VerificationMethod::from_json(&issuer["verificationMethods"]["did:india"])
        .expect("DIVOC key document")
}

#[test]
fn shipped_divoc_contexts_equal_divoc_published_ones() {
    use divoc_credential::loader::documents;
    for (ours, theirs) in [
        (
            documents::VACCINATION_V1,
            "divoc-contexts/vaccination-v1.jsonld",
        ),
        (
            documents::VACCINATION_V2,
            "divoc-contexts/vaccination-v2.jsonld",
        ),
    ] {
        let ours: Value = serde_json::from_str(ours).expect("our context parses");
        assert_eq!(ours, read_json(shared().join(theirs)), "{theirs}");
    }
}

#[test]
fn divoc_vector_canonical_form_matches_reference() {
    // Produced by PyLD 2.0.4 (jsonld.normalize, URDNA2015) with our context documents.
    let expected = include_str!("fixtures/divoc-vector.canonical.nq");
    let mut doc = divoc_signed();
    doc.as_object_mut().expect("object").remove("proof");
    let canon = Canonicalizer::default();
    assert_eq!(canon.canonicalize_general(&doc).expect("general"), expected);
    assert_eq!(canon.canonicalize(&doc).expect("template"), expected);
}

#[test]
fn accepts_divoc_signed_vector() {
    let method = divoc_method();
    verify(&divoc_signed(), &method.key).expect("DIVOC's own signature verifies");
    // Both canonicalization paths agree.
    let general = Canonicalizer::default().without_templates();
    verify_with(&general, &divoc_signed(), &method.key).expect("general path verifies");
    // The key document names the method the proof uses; DIVOC's issuer is not its controller.
    let canon = Canonicalizer::default();
    verify_with_method(&canon, &divoc_signed(), &method, IssuerCheck::Lenient).expect("lenient");
    assert!(matches!(
        verify_with_method(&canon, &divoc_signed(), &method, IssuerCheck::Strict),
        Err(VerifyError::IssuerNotController { .. })
    ));
}

#[test]
fn divoc_vector_round_trips_through_typed_model() {
    let signed = divoc_signed();
    let typed = VaccinationCredential::from_json(&signed).expect("typed parse");
    assert_eq!(typed.to_json().expect("serialize"), signed);
    assert_eq!(
        typed.version(),
        Some(divoc_credential::CredentialVersion::V1)
    );
}

#[test]
fn rejects_tampered_divoc_vector() {
    let key = divoc_method().key;
    type Tamper = (&'static str, Box<dyn Fn(&mut Value)>);
    let tamper: Vec<Tamper> = vec![
        (
            "name",
            Box::new(|v| v["credentialSubject"]["name"] = json!("Bhaya Mitra ")),
        ),
        (
            "age",
            Box::new(|v| v["credentialSubject"]["age"] = json!("27")),
        ),
        (
            "batch",
            Box::new(|v| v["evidence"][0]["batch"] = json!("MB3428BY")),
        ),
        (
            "dose type",
            Box::new(|v| v["evidence"][0]["dose"] = json!(1)),
        ),
        (
            "facility",
            Box::new(|v| v["evidence"][0]["facility"]["name"] = json!("XYZ")),
        ),
        (
            "issuer",
            Box::new(|v| v["issuer"] = json!("https://evil.example/")),
        ),
        (
            "issuanceDate",
            Box::new(|v| v["issuanceDate"] = json!("2021-08-27T10:57:58.237Z")),
        ),
        (
            "created",
            Box::new(|v| v["proof"]["created"] = json!("2021-08-27T10:57:58Z")),
        ),
        (
            "verificationMethod",
            Box::new(|v| v["proof"]["verificationMethod"] = json!("did:other")),
        ),
        (
            "subject id",
            Box::new(|v| v["credentialSubject"]["id"] = json!("did:in.gov.uidai.aadhaar:1")),
        ),
    ];
    for (what, f) in tamper {
        let mut v = divoc_signed();
        f(&mut v);
        assert_eq!(
            verify(&v, &key),
            Err(VerifyError::SignatureMismatch),
            "tampered {what}"
        );
    }
    // Structural tampering gives specific reasons.
    let mut v = divoc_signed();
    v["credentialSubject"]["email"] = json!("x@example.com");
    assert_eq!(
        verify(&v, &key),
        Err(VerifyError::Canonicalization(
            divoc_credential::CanonError::UndefinedTerm("email".into())
        ))
    );
    let mut v = divoc_signed();
    v["proof"]["proofPurpose"] = json!("authentication");
    assert_eq!(
        verify(&v, &key),
        Err(VerifyError::WrongProofPurpose("authentication".into()))
    );
    let mut v = divoc_signed();
    v["proof"]["jws"] = json!("eyJhbGciOiJFZERTQSJ9..AAAA");
    assert!(matches!(
        verify(&v, &key),
        Err(VerifyError::UnexpectedJwsHeader(_))
    ));
    let mut v = divoc_signed();
    v.as_object_mut().expect("object").remove("proof");
    assert_eq!(verify(&v, &key), Err(VerifyError::MissingProof));
    // A different key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]).verifying_key();
    assert_eq!(
        verify(&divoc_signed(), &other),
        Err(VerifyError::SignatureMismatch)
    );
}

/// Loader for the W3C vectors: the shipped contexts (credentials v2, ed25519-2020) plus the
/// examples v2 vocabulary, which only the vectors use (tests/contexts/README.md).
fn w3c_canonicalizer() -> Canonicalizer {
    let mut loader = DocumentLoader::default();
    loader
        .insert_json(
            "https://www.w3.org/ns/credentials/examples/v2",
            include_str!("contexts/examples-v2.jsonld"),
        )
        .expect("test context parses");
    Canonicalizer::new(loader)
}

fn w3c_dir() -> std::path::PathBuf {
    shared().join("w3c-vc-di-eddsa-vectors/TestVectors")
}

/// Checks one W3C vector: canonical document, signature over
/// SHA-256(C14N(proof options)) || SHA-256(C14N(document)), and re-signing reproduces it.
fn check_w3c_vector(signed_file: &str, canon_file: &str) {
    let canon = w3c_canonicalizer();
    let signed = read_json(w3c_dir().join(signed_file));
    let mut doc = signed.clone();
    let proof = doc
        .as_object_mut()
        .and_then(|o| o.remove("proof"))
        .expect("proof");
    let expected = std::fs::read_to_string(w3c_dir().join(canon_file)).expect("canonical document");
    let ours = canon.canonicalize_general(&doc).expect("canonicalize");
    assert_eq!(ours.trim_end(), expected.trim_end(), "{canon_file}");
    assert_eq!(canon.canonicalize(&doc).expect("template"), ours);

    let mut options = proof.clone();
    let proof_value = options
        .as_object_mut()
        .and_then(|o| o.remove("proofValue"))
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("proofValue");
    options["@context"] = doc["@context"].clone();
    let options_nq = canon.canonicalize(&options).expect("proof options");
    let mut data = Sha256::digest(options_nq.as_bytes()).to_vec();
    data.extend_from_slice(&Sha256::digest(ours.as_bytes()));

    let keys = read_json(w3c_dir().join("keyPair.json"));
    let public = public_key_from_multibase(keys["publicKeyMultibase"].as_str().expect("pk"))
        .expect("public key");
    let secret = signing_key_from_multibase(keys["privateKeyMultibase"].as_str().expect("sk"))
        .expect("secret key");
    assert_eq!(secret.verifying_key(), public);
    let sig_bytes: [u8; 64] = bs58::decode(&proof_value[1..])
        .into_vec()
        .expect("base58")
        .try_into()
        .expect("64 bytes");
    public
        .verify_strict(&data, &Signature::from_bytes(&sig_bytes))
        .expect("W3C vector signature verifies over our canonical forms");
    let resigned = format!(
        "z{}",
        bs58::encode(secret.sign(&data).to_bytes()).into_string()
    );
    assert_eq!(
        resigned, proof_value,
        "Ed25519 is deterministic: same proofValue"
    );

    // The production signer, given the vector's document, key, method and time, writes the
    // vector's signed credential byte for byte.
    let suite = match proof["type"].as_str() {
        Some("DataIntegrityProof") => ProofSuite::EddsaRdfc2022,
        _ => ProofSuite::Ed25519Signature2020,
    };
    let ours = sign_with_suite(
        &canon,
        &doc,
        &secret,
        proof["verificationMethod"].as_str().expect("method"),
        proof["created"].as_str().expect("created"),
        suite,
    )
    .expect("signs");
    assert_eq!(
        serde_json::to_string_pretty(&ours).expect("json"),
        serde_json::to_string_pretty(&signed).expect("json"),
        "{signed_file}"
    );
    divoc_credential::proof::verify_with(&canon, &signed, &public)
        .expect("the W3C vector verifies through the production verifier");
}

#[test]
fn w3c_ed25519_signature_2020_vector() {
    check_w3c_vector(
        "Ed25519Signature2020/signedEdSig.json",
        "Ed25519Signature2020/canonDocEdSig.txt",
    );
}

#[test]
fn w3c_eddsa_rdfc_2022_vector() {
    check_w3c_vector(
        "eddsa-rdfc-2022/signedDataInt.json",
        "eddsa-rdfc-2022/canonDocDataInt.txt",
    );
}

#[test]
fn escaping_modes_agree_without_control_characters() {
    let mut doc = divoc_signed();
    doc.as_object_mut().expect("object").remove("proof");
    let a = Canonicalizer::default().canonicalize(&doc).expect("rdfc");
    let b = Canonicalizer::default()
        .with_escaping(Escaping::Legacy)
        .canonicalize(&doc)
        .expect("legacy");
    assert_eq!(a, b);
}
