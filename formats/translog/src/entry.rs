//! What the log records per certificate change, and where a log is published.
//!
//! An entry is one JSON line (no personal data: ids, status, the credential's hash); its leaf hash
//! is RFC 6962's over exactly those bytes, so an auditor recomputes the tree from the published
//! lines alone.

use serde::{Deserialize, Serialize};

use crate::merkle::{leaf_hash, Hash};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogEntry {
    /// Position in the log (0-based).
    pub index: u64,
    pub tenant: String,
    pub certificate_id: String,
    /// `issued`, `updated`, `revoked`, `suspended`, `active` or `reissued`.
    pub status: String,
    /// For an update or re-issue: the certificate it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_certificate_id: Option<String>,
    /// Hex SHA-256 of the signed credential's bytes as published (certificates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_sha256: Option<String>,
}

impl LogEntry {
    /// The entry's line (what is published and hashed).
    pub fn line(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(self.line().as_bytes())
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Object key of the entries appended in one epoch, starting at leaf `first`.
pub fn entries_key(prefix: &str, first: u64) -> String {
    format!("{prefix}/entries/{first:012}.jsonl")
}

/// Object key of the latest signed tree head.
pub fn latest_head_key(prefix: &str) -> String {
    format!("{prefix}/sth/latest.json")
}

/// Object key of the signed tree head of a size (kept, so consistency can be checked later).
pub fn head_key(prefix: &str, size: u64) -> String {
    format!("{prefix}/sth/{size:012}.json")
}
