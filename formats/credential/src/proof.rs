//! `Ed25519Signature2018` linked-data proofs with detached, unencoded-payload JWS, exactly as
//! DIVOC's signer (jsonld-signatures) produces them, so DIVOC-issued credentials verify here and
//! ours verify in DIVOC-compatible verifiers.
//!
//! verifyData = SHA-256(C14N(proof options)) || SHA-256(C14N(credential without proof)), where the
//! proof options are the proof without `jws`, carrying the credential's `@context`. The JWS header
//! is `{"alg":"EdDSA","b64":false,"crit":["b64"]}` and the signing input is
//! ASCII(base64url(header) + ".") || verifyData (RFC 7797: the payload is not encoded).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::canon::Canonicalizer;
use crate::error::{SignError, VerifyError};
use crate::keys::VerificationMethod;
use crate::rdf::{Dataset, Escaping, Term};
use crate::urdna2015;

/// The proof type.
pub const PROOF_TYPE: &str = "Ed25519Signature2018";
/// The only proof purpose credentials are signed for.
pub const PROOF_PURPOSE: &str = "assertionMethod";
/// The JWS protected header, byte for byte.
pub const JWS_HEADER: &str = r#"{"alg":"EdDSA","b64":false,"crit":["b64"]}"#;

/// A process-wide canonicalizer with the default loader (standard contexts, DIVOC vaccination
/// contexts under the `cowin.gov.in` and `divoc.dev` namespaces) and the template fast path.
pub fn default_canonicalizer() -> &'static Canonicalizer {
    static CANON: OnceLock<Canonicalizer> = OnceLock::new();
    CANON.get_or_init(Canonicalizer::default)
}

/// Signs `credential` with [`default_canonicalizer`]. See [`sign_with`].
pub fn sign(
    credential: &Value,
    key: &SigningKey,
    verification_method: &str,
    created: &str,
) -> Result<Value, SignError> {
    sign_with(
        default_canonicalizer(),
        credential,
        key,
        verification_method,
        created,
    )
}

/// Verifies `signed` against `key` with [`default_canonicalizer`]. See [`verify_with`].
pub fn verify(signed: &Value, key: &VerifyingKey) -> Result<(), VerifyError> {
    verify_with(default_canonicalizer(), signed, key)
}

/// The proof options document: the proof without its signature value, carrying the credential's
/// `@context` unless the proof has its own (jsonld-signatures: `{'@context': doc['@context'],
/// ...proof}`).
fn proof_options(context: Option<&Value>, proof: &Map<String, Value>) -> Value {
    let mut opts = proof.clone();
    opts.remove("jws");
    opts.remove("signatureValue");
    opts.remove("proofValue");
    opts.entry("@context").or_insert_with(|| {
        context
            .cloned()
            .unwrap_or_else(|| Value::String(crate::loader::SECURITY_V2_URL.into()))
    });
    Value::Object(opts)
}

fn verify_data(
    options: &Dataset,
    document: &Dataset,
    escaping: Escaping,
) -> Result<Vec<u8>, crate::error::CanonError> {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&Sha256::digest(
        urdna2015::canonicalize(options, escaping)?.as_bytes(),
    ));
    data.extend_from_slice(&Sha256::digest(
        urdna2015::canonicalize(document, escaping)?.as_bytes(),
    ));
    Ok(data)
}

fn signing_input(encoded_header: &str, verify_data: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(encoded_header.len() + 1 + verify_data.len());
    input.extend_from_slice(encoded_header.as_bytes());
    input.push(b'.');
    input.extend_from_slice(verify_data);
    input
}

/// Adds an `Ed25519Signature2018` proof to `credential` (which must not have one).
///
/// `created` is an XML Schema dateTime (e.g. `2021-08-27T10:57:57Z`); it is passed in rather than
/// read from the clock so that signing is deterministic and testable.
pub fn sign_with(
    canon: &Canonicalizer,
    credential: &Value,
    key: &SigningKey,
    verification_method: &str,
    created: &str,
) -> Result<Value, SignError> {
    let obj = credential.as_object().ok_or(SignError::NotAnObject)?;
    if obj.contains_key("proof") {
        return Err(SignError::AlreadySigned);
    }
    let mut proof = Map::new();
    proof.insert("type".into(), json!(PROOF_TYPE));
    proof.insert("created".into(), json!(created));
    proof.insert("verificationMethod".into(), json!(verification_method));
    proof.insert("proofPurpose".into(), json!(PROOF_PURPOSE));
    let options = canon.dataset(&proof_options(obj.get("@context"), &proof))?;
    let document = canon.dataset(credential)?;
    let data = verify_data(&options, &document, canon.escaping())?;
    let header = URL_SAFE_NO_PAD.encode(JWS_HEADER);
    let signature = key.sign(&signing_input(&header, &data));
    proof.insert(
        "jws".into(),
        json!(format!(
            "{header}..{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )),
    );
    let mut out = obj.clone();
    out.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(out))
}

/// Signs many credentials in parallel (rayon). Results are in input order.
pub fn sign_batch(
    canon: &Canonicalizer,
    credentials: &[Value],
    key: &SigningKey,
    verification_method: &str,
    created: &str,
) -> Vec<Result<Value, SignError>> {
    credentials
        .par_iter()
        .map(|c| sign_with(canon, c, key, verification_method, created))
        .collect()
}

fn has_ambiguous_literal(ds: &Dataset) -> bool {
    ds.quads
        .iter()
        .any(|q| matches!(&q.object, Term::Literal(l) if Escaping::is_ambiguous(&l.lexical)))
}

/// Verifies the proof of `signed` against `key`: `Ed25519Signature2018` here, the Data
/// Integrity suites (`Ed25519Signature2020`, `eddsa-rdfc-2022`) in [`crate::suite`].
///
/// Checks the proof type and purpose, the exact JWS header, and the signature over the canonical
/// form. When a literal contains control characters that RDFC-1.0 and legacy URDNA2015
/// implementations escape differently, both canonical forms are tried, so credentials signed by
/// either generation of libraries verify.
pub fn verify_with(
    canon: &Canonicalizer,
    signed: &Value,
    key: &VerifyingKey,
) -> Result<(), VerifyError> {
    let obj = signed.as_object().ok_or(VerifyError::NotAnObject)?;
    let proof = obj
        .get("proof")
        .ok_or(VerifyError::MissingProof)?
        .as_object()
        .ok_or(VerifyError::MalformedProof)?;
    let field = |name: &'static str| {
        proof
            .get(name)
            .and_then(Value::as_str)
            .ok_or(VerifyError::MissingProofField(name))
    };
    if crate::suite::is_data_integrity(proof) {
        return crate::suite::verify_data_integrity(canon, obj, proof, key);
    }
    let proof_type = field("type")?;
    if proof_type != PROOF_TYPE {
        return Err(VerifyError::UnsupportedProofType(proof_type.to_string()));
    }
    let purpose = field("proofPurpose")?;
    if purpose != PROOF_PURPOSE {
        return Err(VerifyError::WrongProofPurpose(purpose.to_string()));
    }
    field("verificationMethod")?;
    field("created")?;
    let jws = field("jws")?;
    let mut parts = jws.split('.');
    let (Some(header), Some(""), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::MalformedJws(
            "expected a detached JWS header..signature",
        ));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::MalformedJws("header is not base64url"))?;
    let header_value: Value = serde_json::from_slice(&header_json)
        .map_err(|_| VerifyError::MalformedJws("header is not JSON"))?;
    if header_value != json!({"alg": "EdDSA", "b64": false, "crit": ["b64"]}) {
        return Err(VerifyError::UnexpectedJwsHeader(
            String::from_utf8_lossy(&header_json).into_owned(),
        ));
    }
    let sig_bytes: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| VerifyError::MalformedJws("signature is not base64url"))?
        .try_into()
        .map_err(|_| VerifyError::MalformedJws("signature is not 64 bytes"))?;
    let signature = Signature::from_bytes(&sig_bytes);

    let mut document = obj.clone();
    document.remove("proof");
    let options = canon.dataset(&proof_options(obj.get("@context"), proof))?;
    let document = canon.dataset(&Value::Object(document))?;
    let mut escapings = vec![Escaping::Rdfc10];
    if has_ambiguous_literal(&options) || has_ambiguous_literal(&document) {
        escapings.push(Escaping::Legacy);
    }
    for escaping in escapings {
        let data = verify_data(&options, &document, escaping)?;
        if key
            .verify_strict(&signing_input(header, &data), &signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(VerifyError::SignatureMismatch)
}

/// Whether the credential's issuer must be the controller of the verification method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerCheck {
    /// Require `issuer` (or `issuer.id`) == method controller (what current verifiers enforce).
    Strict,
    /// Skip the check (needed for DIVOC-issued credentials, which break it).
    Lenient,
}

/// Verifies against a verification method document: the proof must name the method's id, the
/// issuer must be its controller (unless `issuer_check` is lenient), and the signature must hold.
pub fn verify_with_method(
    canon: &Canonicalizer,
    signed: &Value,
    method: &VerificationMethod,
    issuer_check: IssuerCheck,
) -> Result<(), VerifyError> {
    let found = signed
        .get("proof")
        .and_then(|p| p.get("verificationMethod"))
        .and_then(Value::as_str)
        .ok_or(VerifyError::MissingProofField("verificationMethod"))?;
    if found != method.id {
        return Err(VerifyError::VerificationMethodMismatch {
            found: found.to_string(),
            expected: method.id.clone(),
        });
    }
    if issuer_check == IssuerCheck::Strict {
        let issuer = signed.get("issuer");
        let issuer = issuer
            .and_then(Value::as_str)
            .or_else(|| issuer.and_then(|i| i.get("id")).and_then(Value::as_str))
            .unwrap_or_default();
        if issuer != method.controller {
            return Err(VerifyError::IssuerNotController {
                issuer: issuer.to_string(),
                controller: method.controller.clone(),
            });
        }
    }
    verify_with(canon, signed, &method.key)
}
