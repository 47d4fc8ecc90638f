//! Ed25519 key encodings used by linked-data proofs: `publicKeyBase58`
//! (Ed25519VerificationKey2018, what DIVOC publishes) and multibase/multicodec
//! (`z6Mk...`, Ed25519VerificationKey2020 / Multikey).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};

use crate::error::KeyError;

/// Multicodec prefix of an Ed25519 public key (0xed, varint-encoded).
const ED25519_PUB_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// Multicodec prefix of an Ed25519 private key seed (0x1300, varint-encoded).
const ED25519_PRIV_MULTICODEC: [u8; 2] = [0x80, 0x26];

/// Decodes a base58btc (Bitcoin alphabet) Ed25519 public key.
pub fn public_key_from_base58(s: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = bs58::decode(s)
        .into_vec()
        .map_err(|e| KeyError::Encoding(e.to_string()))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| KeyError::Encoding("expected 32 bytes".into()))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::InvalidKey)
}

/// Encodes a public key as base58btc (`publicKeyBase58`).
pub fn public_key_to_base58(key: &VerifyingKey) -> String {
    bs58::encode(key.as_bytes()).into_string()
}

fn multibase_decode(s: &str, prefix: [u8; 2]) -> Result<[u8; 32], KeyError> {
    let body = s.strip_prefix('z').ok_or_else(|| {
        KeyError::Encoding("multibase value must start with 'z' (base58btc)".into())
    })?;
    let bytes = bs58::decode(body)
        .into_vec()
        .map_err(|e| KeyError::Encoding(e.to_string()))?;
    if bytes.len() != 34 || bytes[..2] != prefix {
        return Err(KeyError::Encoding(
            "unexpected multicodec header or length".into(),
        ));
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[2..]);
    Ok(out)
}

/// Decodes a multibase (`z...`) multicodec Ed25519 public key (`publicKeyMultibase`).
pub fn public_key_from_multibase(s: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&multibase_decode(s, ED25519_PUB_MULTICODEC)?)
        .map_err(|_| KeyError::InvalidKey)
}

/// Encodes a public key as multibase multicodec (`z6Mk...`).
pub fn public_key_to_multibase(key: &VerifyingKey) -> String {
    let mut bytes = ED25519_PUB_MULTICODEC.to_vec();
    bytes.extend_from_slice(key.as_bytes());
    format!("z{}", bs58::encode(bytes).into_string())
}

/// Decodes a multibase multicodec Ed25519 private key seed (`privateKeyMultibase`).
pub fn signing_key_from_multibase(s: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&multibase_decode(
        s,
        ED25519_PRIV_MULTICODEC,
    )?))
}

/// A verification method document: the key plus who controls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationMethod {
    /// The method's id (what proofs put in `verificationMethod`).
    pub id: String,
    /// The controller (must equal the credential's issuer for strict verifiers).
    pub controller: String,
    /// The public key.
    pub key: VerifyingKey,
}

impl VerificationMethod {
    /// Reads an `Ed25519VerificationKey2018` (`publicKeyBase58`) or `Ed25519VerificationKey2020` /
    /// `Multikey` (`publicKeyMultibase`) document.
    pub fn from_json(doc: &Value) -> Result<Self, KeyError> {
        let field = |name: &'static str| {
            doc.get(name)
                .and_then(Value::as_str)
                .ok_or(KeyError::MissingField(name))
        };
        let key = match field("type")? {
            "Ed25519VerificationKey2018" => public_key_from_base58(field("publicKeyBase58")?)?,
            "Ed25519VerificationKey2020" | "Multikey" => {
                public_key_from_multibase(field("publicKeyMultibase")?)?
            }
            other => return Err(KeyError::UnsupportedType(other.to_string())),
        };
        Ok(VerificationMethod {
            id: field("id")?.to_string(),
            controller: field("controller")?.to_string(),
            key,
        })
    }

    /// The `Ed25519VerificationKey2018` document for this key (security v2 context), as DIVOC
    /// publishes its keys.
    pub fn to_json_2018(&self) -> Value {
        json!({
            "@context": crate::loader::SECURITY_V2_URL,
            "id": self.id,
            "type": "Ed25519VerificationKey2018",
            "controller": self.controller,
            "publicKeyBase58": public_key_to_base58(&self.key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_and_multibase_round_trip() {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let pk = sk.verifying_key();
        assert_eq!(public_key_from_base58(&public_key_to_base58(&pk)), Ok(pk));
        let mb = public_key_to_multibase(&pk);
        assert!(mb.starts_with("z6Mk"));
        assert_eq!(public_key_from_multibase(&mb), Ok(pk));
        assert!(public_key_from_base58("0OIl").is_err());
    }

    #[test]
    fn verification_method_round_trip() {
        let vm = VerificationMethod {
            id: "did:example:issuer#key-1".into(),
            controller: "did:example:issuer".into(),
            key: SigningKey::from_bytes(&[9u8; 32]).verifying_key(),
        };
        assert_eq!(VerificationMethod::from_json(&vm.to_json_2018()), Ok(vm));
    }
}
