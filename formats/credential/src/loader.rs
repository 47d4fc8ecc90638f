//! Offline JSON-LD document loader.
//!
//! Canonicalization must never depend on the network: a verifier that fetches contexts can be
//! made to accept a different meaning for the same bytes (or fail when offline, DIVOC's weakness),
//! so every context the project accepts is compiled into the binary and looked up by URL here.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::CanonError;

/// W3C Verifiable Credentials v1 context URL.
pub const CREDENTIALS_V1_URL: &str = "https://www.w3.org/2018/credentials/v1";
/// Security vocabulary v1 context URL.
pub const SECURITY_V1_URL: &str = "https://w3id.org/security/v1";
/// Security vocabulary v2 context URL (what jsonld-signatures puts on proofs and keys).
pub const SECURITY_V2_URL: &str = "https://w3id.org/security/v2";
/// W3C Verifiable Credentials 2.0 context URL (also defines Data Integrity and Bitstring Status
/// List terms).
pub const CREDENTIALS_V2_URL: &str = "https://www.w3.org/ns/credentials/v2";
/// The VC 2.0 context that maps otherwise undefined terms to issuer-dependent IRIs.
pub const UNDEFINED_TERMS_V2_URL: &str = "https://www.w3.org/ns/credentials/undefined-terms/v2";
/// `Ed25519Signature2020` suite context URL.
pub const ED25519_2020_URL: &str = "https://w3id.org/security/suites/ed25519-2020/v1";
/// Bitstring Status List context for VC 1.1 credentials (VC 2.0 has the terms built in).
pub const STATUS_LIST_V1_URL: &str = "https://www.w3.org/ns/credentials/status/v1";
/// Default URL of the DIVOC vaccination context v1 (India's deployment).
pub const DEFAULT_VACCINATION_V1_URL: &str = "https://cowin.gov.in/credentials/vaccination/v1";
/// Default URL of the DIVOC vaccination context v2 (DDCC flavour).
pub const DEFAULT_VACCINATION_V2_URL: &str = "https://cowin.gov.in/credentials/vaccination/v2";
/// URL under which DIVOC's own tests (and its signed test vector) bind the v1 document.
pub const DIVOC_DEV_VACCINATION_V1_URL: &str = "https://divoc.dev/credentials/vaccination/v1";
/// URL under which DIVOC's own tests bind the v2 document.
pub const DIVOC_DEV_VACCINATION_V2_URL: &str = "https://divoc.dev/credentials/vaccination/v2";

/// The shipped context documents (see `contexts/README.md` for sources and licences).
pub mod documents {
    /// W3C credentials v1.
    pub const CREDENTIALS_V1: &str = include_str!("../contexts/credentials-v1.jsonld");
    /// W3C CCG security v1.
    pub const SECURITY_V1: &str = include_str!("../contexts/security-v1.jsonld");
    /// W3C CCG security v2.
    pub const SECURITY_V2: &str = include_str!("../contexts/security-v2.jsonld");
    /// W3C credentials v2.
    pub const CREDENTIALS_V2: &str = include_str!("../contexts/credentials-v2.jsonld");
    /// W3C credentials undefined-terms v2 (`@vocab` issuer-dependent).
    pub const UNDEFINED_TERMS_V2: &str = include_str!("../contexts/undefined-terms-v2.jsonld");
    /// W3C CCG Ed25519Signature2020 suite.
    pub const ED25519_2020: &str = include_str!("../contexts/ed25519-signature-2020-v1.jsonld");
    /// Bitstring Status List v1 (for VC 1.1 credentials).
    pub const STATUS_LIST_V1: &str = include_str!("../contexts/bitstring-status-list-v1.jsonld");
    /// DIVOC vaccination v1 (same definitions as DIVOC's published context).
    pub const VACCINATION_V1: &str = include_str!("../contexts/divoc-vaccination-v1.jsonld");
    /// DIVOC vaccination v2 (same definitions as DIVOC's published context).
    pub const VACCINATION_V2: &str = include_str!("../contexts/divoc-vaccination-v2.jsonld");
}

/// Maps context URLs to parsed context documents. Cheap to clone (documents are shared).
#[derive(Debug, Clone)]
pub struct DocumentLoader {
    docs: HashMap<String, Arc<Value>>,
}

impl Default for DocumentLoader {
    /// The standard contexts, with the DIVOC vaccination contexts under both the default
    /// (`cowin.gov.in`) and DIVOC's test (`divoc.dev`) namespaces.
    fn default() -> Self {
        let mut l = Self::with_namespaces(DEFAULT_VACCINATION_V1_URL, DEFAULT_VACCINATION_V2_URL);
        l.add_vaccination_aliases(DIVOC_DEV_VACCINATION_V1_URL, DIVOC_DEV_VACCINATION_V2_URL);
        l
    }
}

impl DocumentLoader {
    /// An empty loader (serves nothing).
    pub fn empty() -> Self {
        DocumentLoader {
            docs: HashMap::new(),
        }
    }

    /// The W3C/security contexts plus the DIVOC vaccination v1/v2 contexts served under the
    /// given URLs (a deployment's namespace, e.g. `https://example.gov/credentials/vaccination/v1`).
    ///
    /// Only the URL changes: the document content (including its internal `vac` term) stays
    /// exactly DIVOC's, because the canonical N-Quads, and so every signature, depend on it.
    pub fn with_namespaces(vaccination_v1_url: &str, vaccination_v2_url: &str) -> Self {
        let mut l = Self::empty();
        l.insert_builtin(CREDENTIALS_V1_URL, documents::CREDENTIALS_V1);
        l.insert_builtin(SECURITY_V1_URL, documents::SECURITY_V1);
        l.insert_builtin(SECURITY_V2_URL, documents::SECURITY_V2);
        l.insert_builtin(CREDENTIALS_V2_URL, documents::CREDENTIALS_V2);
        l.insert_builtin(UNDEFINED_TERMS_V2_URL, documents::UNDEFINED_TERMS_V2);
        l.insert_builtin(ED25519_2020_URL, documents::ED25519_2020);
        l.insert_builtin(STATUS_LIST_V1_URL, documents::STATUS_LIST_V1);
        l.add_vaccination_aliases(vaccination_v1_url, vaccination_v2_url);
        l
    }

    /// Also serves the vaccination contexts under these URLs.
    pub fn add_vaccination_aliases(&mut self, v1_url: &str, v2_url: &str) {
        self.insert_builtin(v1_url, documents::VACCINATION_V1);
        self.insert_builtin(v2_url, documents::VACCINATION_V2);
    }

    fn insert_builtin(&mut self, url: &str, text: &'static str) {
        // The built-in documents are compile-time constants checked by unit tests; a parse
        // failure is a build defect, and skipping the entry surfaces it as UnknownContext.
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            self.docs.insert(url.to_string(), Arc::new(v));
        }
    }

    /// Serves `document` (a full JSON-LD document with an `@context` member) under `url`.
    pub fn insert(&mut self, url: impl Into<String>, document: Value) {
        self.docs.insert(url.into(), Arc::new(document));
    }

    /// Parses and serves `document` under `url`.
    pub fn insert_json(
        &mut self,
        url: impl Into<String>,
        document: &str,
    ) -> Result<(), CanonError> {
        let v: Value = serde_json::from_str(document)
            .map_err(|e| CanonError::InvalidContext(format!("not JSON: {e}")))?;
        self.insert(url, v);
        Ok(())
    }

    /// Looks up a context document.
    pub fn load(&self, url: &str) -> Result<Arc<Value>, CanonError> {
        self.docs
            .get(url)
            .cloned()
            .ok_or_else(|| CanonError::UnknownContext(url.to_string()))
    }

    /// The URLs served.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_documents_parse() {
        for text in [
            documents::CREDENTIALS_V1,
            documents::SECURITY_V1,
            documents::SECURITY_V2,
            documents::CREDENTIALS_V2,
            documents::UNDEFINED_TERMS_V2,
            documents::ED25519_2020,
            documents::STATUS_LIST_V1,
            documents::VACCINATION_V1,
            documents::VACCINATION_V2,
        ] {
            let v: Value = serde_json::from_str(text).expect("built-in context parses");
            assert!(v.get("@context").is_some());
        }
        let l = DocumentLoader::default();
        assert_eq!(l.urls().count(), 11);
        assert!(l.load("https://example.com/nope").is_err());
    }
}
