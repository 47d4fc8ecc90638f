//! The proof suites a program can sign with, and the two Data Integrity ones besides DIVOC's
//! native `Ed25519Signature2018` (which lives in [`crate::proof`]):
//!
//! - `Ed25519Signature2020` on a VC 1.1 credential (context `.../suites/ed25519-2020/v1`);
//! - `DataIntegrityProof` with cryptosuite `eddsa-rdfc-2022` on a VC 2.0 credential.
//!
//! Both sign the same bytes (W3C vc-di-eddsa): proofConfig = the proof without `proofValue`, with
//! the document's `@context`; hashData = SHA-256(RDFC-1.0(proofConfig)) ||
//! SHA-256(RDFC-1.0(document without proof)); `proofValue` = `z` + base58btc(Ed25519(hashData)).
//! The W3C test vectors reproduce byte for byte (`tests/vectors.rs`).

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::canon::Canonicalizer;
use crate::error::{SignError, VerifyError};
use crate::loader::{CREDENTIALS_V1_URL, CREDENTIALS_V2_URL, ED25519_2020_URL};
use crate::proof::PROOF_PURPOSE;
use crate::urdna2015;

/// `proof.type` of an eddsa-rdfc-2022 proof.
pub const DATA_INTEGRITY_PROOF: &str = "DataIntegrityProof";
/// `proof.cryptosuite` of an eddsa-rdfc-2022 proof.
pub const EDDSA_RDFC_2022: &str = "eddsa-rdfc-2022";
/// `proof.type` of an Ed25519Signature2020 proof.
pub const ED25519_SIGNATURE_2020: &str = "Ed25519Signature2020";

/// How a program's credentials are signed (config: `proof_suite`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProofSuite {
    /// DIVOC's own: VC 1.1, detached JWS over URDNA2015. What DIVOC's verifiers accept.
    #[default]
    #[serde(rename = "Ed25519Signature2018")]
    Ed25519Signature2018,
    /// VC 1.1 with the Ed25519Signature2020 suite context.
    #[serde(rename = "Ed25519Signature2020")]
    Ed25519Signature2020,
    /// VC 2.0 (`validFrom`) with a `DataIntegrityProof`, cryptosuite `eddsa-rdfc-2022`.
    #[serde(rename = "eddsa-rdfc-2022")]
    EddsaRdfc2022,
}

impl ProofSuite {
    /// The name used in config and in the proof (`type` or `cryptosuite`).
    pub fn name(self) -> &'static str {
        match self {
            ProofSuite::Ed25519Signature2018 => crate::proof::PROOF_TYPE,
            ProofSuite::Ed25519Signature2020 => ED25519_SIGNATURE_2020,
            ProofSuite::EddsaRdfc2022 => EDDSA_RDFC_2022,
        }
    }

    /// Whether the credential follows the VC Data Model 2.0 (`validFrom`, the v2 context).
    pub fn is_vc2(self) -> bool {
        self == ProofSuite::EddsaRdfc2022
    }

    /// The base context: credentials v1 or v2.
    pub fn base_context(self) -> &'static str {
        if self.is_vc2() {
            CREDENTIALS_V2_URL
        } else {
            CREDENTIALS_V1_URL
        }
    }

    /// A context the suite's proof terms need after the credential's own ones.
    pub fn suite_context(self) -> Option<&'static str> {
        (self == ProofSuite::Ed25519Signature2020).then_some(ED25519_2020_URL)
    }
}

/// Signs `credential` with `suite` (the credential's `@context` must already suit it).
pub fn sign_with_suite(
    canon: &Canonicalizer,
    credential: &Value,
    key: &SigningKey,
    verification_method: &str,
    created: &str,
    suite: ProofSuite,
) -> Result<Value, SignError> {
    if suite == ProofSuite::Ed25519Signature2018 {
        return crate::proof::sign_with(canon, credential, key, verification_method, created);
    }
    let obj = credential.as_object().ok_or(SignError::NotAnObject)?;
    if obj.contains_key("proof") {
        return Err(SignError::AlreadySigned);
    }
    let mut proof = Map::new();
    match suite {
        ProofSuite::EddsaRdfc2022 => {
            proof.insert("type".into(), json!(DATA_INTEGRITY_PROOF));
            proof.insert("cryptosuite".into(), json!(EDDSA_RDFC_2022));
        }
        _ => {
            proof.insert("type".into(), json!(ED25519_SIGNATURE_2020));
        }
    }
    proof.insert("created".into(), json!(created));
    proof.insert("verificationMethod".into(), json!(verification_method));
    proof.insert("proofPurpose".into(), json!(PROOF_PURPOSE));
    let data = hash_data(canon, obj, &proof)?;
    let signature = key.sign(&data);
    proof.insert(
        "proofValue".into(),
        json!(format!(
            "z{}",
            bs58::encode(signature.to_bytes()).into_string()
        )),
    );
    let mut out = obj.clone();
    out.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(out))
}

/// SHA-256(C14N(proof config)) || SHA-256(C14N(document)); `document` may still hold its proof
/// (it is left out).
fn hash_data(
    canon: &Canonicalizer,
    document: &Map<String, Value>,
    proof: &Map<String, Value>,
) -> Result<Vec<u8>, crate::error::CanonError> {
    let mut config = proof.clone();
    config.remove("proofValue");
    config.insert(
        "@context".into(),
        document.get("@context").cloned().unwrap_or(Value::Null),
    );
    let mut unsecured = document.clone();
    unsecured.remove("proof");
    let canonical = |v: &Value| -> Result<String, crate::error::CanonError> {
        urdna2015::canonicalize(&canon.dataset(v)?, canon.escaping())
    };
    let mut data = Sha256::digest(canonical(&Value::Object(config))?.as_bytes()).to_vec();
    data.extend_from_slice(&Sha256::digest(
        canonical(&Value::Object(unsecured))?.as_bytes(),
    ));
    Ok(data)
}

/// Whether `proof` is one this module verifies.
pub(crate) fn is_data_integrity(proof: &Map<String, Value>) -> bool {
    matches!(
        proof.get("type").and_then(Value::as_str),
        Some(ED25519_SIGNATURE_2020 | DATA_INTEGRITY_PROOF)
    )
}

/// Verifies an `Ed25519Signature2020` or `eddsa-rdfc-2022` proof of `signed` against `key`.
pub(crate) fn verify_data_integrity(
    canon: &Canonicalizer,
    signed: &Map<String, Value>,
    proof: &Map<String, Value>,
    key: &VerifyingKey,
) -> Result<(), VerifyError> {
    let field = |name: &'static str| {
        proof
            .get(name)
            .and_then(Value::as_str)
            .ok_or(VerifyError::MissingProofField(name))
    };
    if field("type")? == DATA_INTEGRITY_PROOF {
        let suite = field("cryptosuite")?;
        if suite != EDDSA_RDFC_2022 {
            return Err(VerifyError::UnsupportedProofType(format!(
                "DataIntegrityProof with cryptosuite {suite}"
            )));
        }
    }
    let purpose = field("proofPurpose")?;
    if purpose != PROOF_PURPOSE {
        return Err(VerifyError::WrongProofPurpose(purpose.to_string()));
    }
    field("verificationMethod")?;
    let value = field("proofValue")?;
    let encoded = value.strip_prefix('z').ok_or(VerifyError::MalformedJws(
        "proofValue is not multibase base58btc (z...)",
    ))?;
    let bytes: [u8; 64] = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| VerifyError::MalformedJws("proofValue is not base58btc"))?
        .try_into()
        .map_err(|_| VerifyError::MalformedJws("proofValue is not a 64-byte signature"))?;
    let data = hash_data(canon, signed, proof)?;
    key.verify_strict(&data, &Signature::from_bytes(&bytes))
        .map_err(|_| VerifyError::SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vc2() -> Value {
        json!({
            "@context": [CREDENTIALS_V2_URL],
            "type": ["VerifiableCredential"],
            "issuer": "did:web:issuer.example",
            "validFrom": "2026-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:1"}
        })
    }

    #[test]
    fn each_suite_signs_and_verifies_and_detects_tampering() {
        let canon = Canonicalizer::default();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let vc11 = json!({
            "@context": [CREDENTIALS_V1_URL, ED25519_2020_URL],
            "type": ["VerifiableCredential"],
            "issuer": "did:web:issuer.example",
            "issuanceDate": "2026-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:example:1"}
        });
        for (suite, doc) in [
            (ProofSuite::EddsaRdfc2022, vc2()),
            (ProofSuite::Ed25519Signature2020, vc11),
        ] {
            let signed = sign_with_suite(
                &canon,
                &doc,
                &key,
                "did:web:issuer.example#k1",
                "2026-01-01T00:00:00Z",
                suite,
            )
            .expect("signs");
            crate::proof::verify_with(&canon, &signed, &key.verifying_key()).expect("verifies");
            let mut tampered = signed.clone();
            tampered["issuer"] = json!("did:web:other.example");
            assert_eq!(
                crate::proof::verify_with(&canon, &tampered, &key.verifying_key()),
                Err(VerifyError::SignatureMismatch),
                "{suite:?}"
            );
            let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
            assert_eq!(
                crate::proof::verify_with(&canon, &signed, &other),
                Err(VerifyError::SignatureMismatch)
            );
        }
    }

    #[test]
    fn an_unknown_cryptosuite_is_refused_by_name() {
        let canon = Canonicalizer::default();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let mut signed = sign_with_suite(
            &canon,
            &vc2(),
            &key,
            "did:web:i#k",
            "2026-01-01T00:00:00Z",
            ProofSuite::EddsaRdfc2022,
        )
        .expect("signs");
        signed["proof"]["cryptosuite"] = json!("ecdsa-rdfc-2019");
        let err = crate::proof::verify_with(&canon, &signed, &key.verifying_key()).unwrap_err();
        assert!(err.to_string().contains("ecdsa-rdfc-2019"), "{err}");
    }

    #[test]
    fn suite_names_parse_from_config() {
        for s in [
            ProofSuite::Ed25519Signature2018,
            ProofSuite::Ed25519Signature2020,
            ProofSuite::EddsaRdfc2022,
        ] {
            let parsed: ProofSuite = serde_json::from_value(json!(s.name())).expect("parses");
            assert_eq!(parsed, s);
        }
    }
}
