//! W3C Verifiable Credentials for the DIVOC vaccination certificate pipeline.
//!
//! - [`loader`]: the JSON-LD context documents the project ships (never fetched over the network).
//! - [`jsonld`]: general JSON-LD expansion to RDF in safe mode (the reference implementation).
//! - [`urdna2015`]: RDFC-1.0 / URDNA2015 canonical N-Quads, including Hash N-Degree Quads.
//! - [`template`]: the fast path that canonicalizes certificates of a known shape without JSON-LD
//!   expansion, byte-identical to the general path (property-tested).
//! - [`credential`]: typed DIVOC credential (v1/v2).
//! - [`proof`]: `Ed25519Signature2018` signing and verification (detached JWS), compatible with
//!   DIVOC's signer.
//! - [`suite`]: `Ed25519Signature2020` and `eddsa-rdfc-2022` (Data Integrity), chosen per program.
//! - [`status_list`]: W3C Bitstring Status List credentials (revocation, suspension).
//! - [`keys`]: Ed25519 key encodings (`publicKeyBase58`, multibase).
//!
//! ```
//! use divoc_credential::{sign, verify};
//! use ed25519_dalek::SigningKey;
//!
//! let credential = serde_json::json!({
//!     "@context": ["https://www.w3.org/2018/credentials/v1",
//!                  "https://cowin.gov.in/credentials/vaccination/v1"],
//!     "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
//!     "issuer": "https://cowin.gov.in/",
//!     "issuanceDate": "2021-08-27T10:57:57.237Z",
//!     "nonTransferable": "true",
//!     "credentialSubject": {"type": "Person", "id": "did:in.gov.uidai.aadhaar:1234", "name": "Asha"},
//!     "evidence": [{"id": "https://cowin.gov.in/vaccine/1", "type": ["Vaccination"], "dose": 1}]
//! });
//! let key = SigningKey::from_bytes(&[1u8; 32]);
//! let signed = sign(&credential, &key, "did:india#key-1", "2021-08-27T10:57:57Z")?;
//! assert!(verify(&signed, &key.verifying_key()).is_ok());
//! # Ok::<(), divoc_credential::SignError>(())
//! ```

#![warn(missing_docs)]

pub mod canon;
pub mod credential;
pub mod error;
pub mod issuer_key;
pub mod jsonld;
pub mod keys;
pub mod loader;
pub mod proof;
pub mod rdf;
pub mod status_list;
pub mod suite;
pub mod template;
pub mod urdna2015;

pub use canon::Canonicalizer;
pub use credential::{CredentialVersion, VaccinationCredential, VaccinationNamespace};
pub use error::{CanonError, KeyError, SignError, VerifyError};
pub use issuer_key::IssuerKey;
pub use jsonld::JsonLdProcessor;
pub use keys::VerificationMethod;
pub use loader::DocumentLoader;
pub use proof::{sign, sign_with, verify, verify_with, verify_with_method, IssuerCheck};
pub use rdf::{Dataset, Escaping};
pub use suite::{sign_with_suite, ProofSuite};

/// Re-exported so callers use the same key types as this crate.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
