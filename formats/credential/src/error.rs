//! Error types. Every failure carries enough context (term, URL, reason) for an operator to see
//! *why* a credential could not be canonicalized, signed or verified.

use thiserror::Error;

/// A document could not be turned into canonical N-Quads.
///
/// The JSON-LD processor runs in "safe mode": anything that a lenient processor would silently drop
/// (an undefined term, a relative IRI) is an error here, because a signature over a canonical form
/// that lost data would not protect that data.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CanonError {
    /// A context URL that the offline document loader does not serve.
    #[error(
        "context {0} is not available offline (the document loader never fetches over the network)"
    )]
    UnknownContext(String),
    /// Remote contexts nest too deeply (or recursively).
    #[error("context {0} nests too deeply (recursive context inclusion?)")]
    ContextOverflow(String),
    /// A context document is malformed.
    #[error("invalid context: {0}")]
    InvalidContext(String),
    /// A protected term was redefined with a different definition.
    #[error("protected term {0:?} cannot be redefined")]
    ProtectedTermRedefinition(String),
    /// A property name that no active context defines (safe mode).
    #[error("term {0:?} is not defined by any active context")]
    UndefinedTerm(String),
    /// A `@type` value that does not expand to an absolute IRI (safe mode).
    #[error("type {0:?} is not defined by any active context")]
    UndefinedType(String),
    /// An `@id` (or `@type: @id` value) that is not an absolute IRI (safe mode: no base IRI).
    #[error("{0:?} is not an absolute IRI (relative IRIs are rejected)")]
    RelativeIri(String),
    /// The document is not valid JSON-LD.
    #[error("invalid JSON-LD: {0}")]
    InvalidJsonLd(String),
    /// A JSON-LD feature this processor deliberately does not implement.
    #[error("unsupported JSON-LD feature: {0}")]
    Unsupported(&'static str),
    /// Canonicalization would exceed its work budget (a "poison" graph of many
    /// indistinguishable blank nodes).
    #[error("dataset too complex to canonicalize within the work budget")]
    TooComplex,
}

/// Signing failed.
#[derive(Debug, Error)]
pub enum SignError {
    /// The credential is not a JSON object.
    #[error("credential must be a JSON object")]
    NotAnObject,
    /// The credential already carries a `proof`.
    #[error("credential already has a proof")]
    AlreadySigned,
    /// The credential (or proof options) could not be canonicalized.
    #[error("cannot canonicalize: {0}")]
    Canonicalization(#[from] CanonError),
}

/// Why a credential failed verification.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The document is not a JSON object.
    #[error("credential must be a JSON object")]
    NotAnObject,
    /// No `proof` member.
    #[error("credential has no proof")]
    MissingProof,
    /// `proof` is not a single object (proof sets/chains are not supported).
    #[error("proof must be a single JSON object")]
    MalformedProof,
    /// A proof member is missing or not a string.
    #[error("proof is missing {0:?}")]
    MissingProofField(&'static str),
    /// Not a proof type (or cryptosuite) this crate verifies.
    #[error("unsupported proof type {0:?} (expected Ed25519Signature2018, Ed25519Signature2020 or eddsa-rdfc-2022)")]
    UnsupportedProofType(String),
    /// The proof purpose is not `assertionMethod`.
    #[error("proof purpose {0:?} is not assertionMethod")]
    WrongProofPurpose(String),
    /// The proof names a different verification method than the key we were given.
    #[error("proof verification method {found:?} does not match the expected {expected:?}")]
    VerificationMethodMismatch {
        /// What the proof says.
        found: String,
        /// What the caller's key document says.
        expected: String,
    },
    /// The credential's issuer is not the controller of the verification method.
    #[error("issuer {issuer:?} is not the controller {controller:?} of the verification method")]
    IssuerNotController {
        /// The credential's `issuer`.
        issuer: String,
        /// The key's `controller`.
        controller: String,
    },
    /// The `jws` is not a detached JWS (`header..signature`).
    #[error("malformed jws: {0}")]
    MalformedJws(&'static str),
    /// The JWS header is not `{"alg":"EdDSA","b64":false,"crit":["b64"]}`.
    #[error("unexpected JWS header {0}")]
    UnexpectedJwsHeader(String),
    /// The credential or proof options could not be canonicalized.
    #[error("cannot canonicalize: {0}")]
    Canonicalization(#[from] CanonError),
    /// The signature does not match the canonical form: the credential was altered or signed by
    /// another key.
    #[error("signature does not match (credential altered or signed with another key)")]
    SignatureMismatch,
}

/// A key document could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not a JSON object / missing member.
    #[error("key document is missing {0:?}")]
    MissingField(&'static str),
    /// Unsupported verification key type.
    #[error("unsupported key type {0:?}")]
    UnsupportedType(String),
    /// Not valid base58 / multibase.
    #[error("invalid key encoding: {0}")]
    Encoding(String),
    /// Decodes, but not to a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    InvalidKey,
}
