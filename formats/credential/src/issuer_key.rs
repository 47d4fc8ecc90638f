//! The issuer's Ed25519 key file (`divoc keys generate`): JSON, mode 0600, never logged.

use std::io::Read;
use std::path::Path;

use crate::keys::public_key_to_base58;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// An issuer key pair and its identifiers. The issuer is the key's controller.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerKey {
    /// Issuer URL or DID; the controller of `verification_method`.
    pub issuer: String,
    /// `<issuer>#key-1`.
    pub verification_method: String,
    /// The public key, base58 (Ed25519VerificationKey2018).
    pub public_key_base58: String,
    private_key_base58: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("IssuerKey")
            .field("issuer", &self.issuer)
            .field("verification_method", &self.verification_method)
            .field("public_key_base58", &self.public_key_base58)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(issuer: &str) -> Result<Self, String> {
        Self::generate_with_id(issuer, "key-1")
    }

    /// A fresh key with its own key id.
    pub fn generate_with_id(issuer: &str, key_id: &str) -> Result<Self, String> {
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        Ok(Self::from_seed_with_id(issuer, key_id, seed))
    }

    /// The successor of this key for a rotation: same issuer, the next key id (`key-N` ->
    /// `key-N+1`; another id gets `-2` appended).
    pub fn rotated(&self) -> Result<Self, String> {
        let id = self
            .verification_method
            .rsplit_once('#')
            .map_or("key-1", |(_, id)| id);
        let next = match id.strip_prefix("key-").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => format!("key-{}", n + 1),
            None => format!("{id}-2"),
        };
        Self::generate_with_id(&self.issuer, &next)
    }

    /// The key of a 32-byte seed (tests, benchmarks).
    pub fn from_seed(issuer: &str, seed: [u8; 32]) -> Self {
        Self::from_seed_with_id(issuer, "key-1", seed)
    }

    /// The key of a seed, with its own key id (`<issuer>#<key_id>`).
    pub fn from_seed_with_id(issuer: &str, key_id: &str, seed: [u8; 32]) -> Self {
        let sk = SigningKey::from_bytes(&seed);
        Self {
            issuer: issuer.to_owned(),
            verification_method: format!("{issuer}#{key_id}"),
            public_key_base58: public_key_to_base58(&sk.verifying_key()),
            private_key_base58: bs58::encode(seed).into_string(),
        }
    }

    /// The private key.
    pub fn signing_key(&self) -> SigningKey {
        let mut seed = [0u8; 32];
        if let Ok(v) = bs58::decode(&self.private_key_base58).into_vec() {
            if v.len() == 32 {
                seed.copy_from_slice(&v);
            }
        }
        SigningKey::from_bytes(&seed)
    }

    /// Reads and checks a key file (the public key must match the private one).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let k: Self = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not an issuer key file: {e}", path.display()))?;
        let seed = bs58::decode(&k.private_key_base58)
            .into_vec()
            .map_err(|e| format!("{}: privateKeyBase58: {e}", path.display()))?;
        if seed.len() != 32 {
            return Err(format!(
                "{}: privateKeyBase58 must decode to 32 bytes",
                path.display()
            ));
        }
        if public_key_to_base58(&k.signing_key().verifying_key()) != k.public_key_base58 {
            return Err(format!(
                "{}: publicKeyBase58 does not match the private key",
                path.display()
            ));
        }
        Ok(k)
    }

    /// Writes the key file with mode 0600 (refuses to overwrite).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                format!(
                    "cannot create {}: {e} (an existing key is never overwritten)",
                    path.display()
                )
            })?;
        f.write_all(&json)
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The public verification method document (Ed25519VerificationKey2018).
    pub fn verification_method_doc(&self) -> serde_json::Value {
        serde_json::json!({
            "@context": ["https://w3id.org/security/v2"],
            "id": self.verification_method,
            "type": "Ed25519VerificationKey2018",
            "controller": self.issuer,
            "publicKeyBase58": self.public_key_base58,
        })
    }

    /// The controller document a verifier dereferences from the issuer id.
    pub fn controller_doc(&self) -> serde_json::Value {
        serde_json::json!({
            "@context": ["https://w3id.org/security/v2"],
            "id": self.issuer,
            "assertionMethod": [self.verification_method],
            "authentication": [self.verification_method],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_save_load_mode_and_no_secret_in_debug() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k/issuer.json");
        let k = IssuerKey::generate("https://issuer.example").unwrap();
        k.save(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(k.save(&p).is_err(), "never overwrites");
        let back = IssuerKey::load(&p).unwrap();
        assert_eq!(back.public_key_base58, k.public_key_base58);
        assert!(!format!("{k:?}").contains(&k.private_key_base58));
        assert_eq!(
            k.verification_method_doc()["controller"],
            "https://issuer.example"
        );
        let mut tampered: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        tampered["publicKeyBase58"] = "11111111111111111111111111111111".into();
        std::fs::write(&p, tampered.to_string()).unwrap();
        assert!(IssuerKey::load(&p).unwrap_err().contains("does not match"));
    }
}
