//! Signed tree heads: the RFC 6962 `TreeHeadSignature` structure (version v1, signature type
//! tree_hash, timestamp in ms, tree size, root hash) signed with the log's Ed25519 key.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeHeadError {
    #[error("the tree head's signature does not verify with this log key")]
    BadSignature,
    #[error("malformed tree head: {0}")]
    Malformed(String),
}

/// What a log publishes after each append: anyone with the log's public key can check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// Milliseconds since 1970.
    pub timestamp: u64,
    /// Hex SHA-256 root hash.
    pub root_hash: String,
    /// Hex Ed25519 signature over [`SignedTreeHead::signed_bytes`].
    pub signature: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, TreeHeadError> {
    if s.len() % 2 != 0 {
        return Err(TreeHeadError::Malformed("odd-length hex".into()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| TreeHeadError::Malformed(format!("not hex: {s:?}")))
        })
        .collect()
}

impl SignedTreeHead {
    /// The RFC 6962 section 3.5 `TreeHeadSignature` bytes.
    pub fn signed_bytes(tree_size: u64, timestamp: u64, root: &Hash) -> Vec<u8> {
        let mut v = Vec::with_capacity(50);
        v.push(0); // version v1
        v.push(1); // signature_type tree_hash
        v.extend_from_slice(&timestamp.to_be_bytes());
        v.extend_from_slice(&tree_size.to_be_bytes());
        v.extend_from_slice(root);
        v
    }

    pub fn sign(key: &SigningKey, tree_size: u64, timestamp: u64, root: &Hash) -> Self {
        let sig = key.sign(&Self::signed_bytes(tree_size, timestamp, root));
        Self {
            tree_size,
            timestamp,
            root_hash: hex(root),
            signature: hex(&sig.to_bytes()),
        }
    }

    pub fn root(&self) -> Result<Hash, TreeHeadError> {
        unhex(&self.root_hash)?
            .try_into()
            .map_err(|_| TreeHeadError::Malformed("root hash is not 32 bytes".into()))
    }

    /// Checks the signature; returns the root hash it vouches for.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Hash, TreeHeadError> {
        let root = self.root()?;
        let sig: [u8; 64] = unhex(&self.signature)?
            .try_into()
            .map_err(|_| TreeHeadError::Malformed("signature is not 64 bytes".into()))?;
        key.verify(
            &Self::signed_bytes(self.tree_size, self.timestamp, &root),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| TreeHeadError::BadSignature)?;
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_verifies_with_its_key_only_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let root = crate::leaf_hash(b"x");
        let sth = SignedTreeHead::sign(&key, 7, 1_700_000_000_000, &root);
        assert_eq!(sth.verify(&key.verifying_key()).unwrap(), root);
        let other = SigningKey::from_bytes(&[6u8; 32]);
        assert_eq!(
            sth.verify(&other.verifying_key()),
            Err(TreeHeadError::BadSignature)
        );
        for tampered in [
            SignedTreeHead {
                tree_size: 8,
                ..sth.clone()
            },
            SignedTreeHead {
                timestamp: sth.timestamp + 1,
                ..sth.clone()
            },
            SignedTreeHead {
                root_hash: hex(&crate::leaf_hash(b"y")),
                ..sth.clone()
            },
        ] {
            assert_eq!(
                tampered.verify(&key.verifying_key()),
                Err(TreeHeadError::BadSignature)
            );
        }
        let text = serde_json::to_string(&sth).unwrap();
        assert!(text.contains("\"treeSize\":7"), "{text}");
    }
}
