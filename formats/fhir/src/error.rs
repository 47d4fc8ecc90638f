//! Errors of the issuing side (bundles, keys, config) and of the SHC verifier.

use thiserror::Error;

/// Errors building FHIR / DDCC / SHC output, handling keys, or loading config.
#[derive(Debug, Error)]
pub enum FhirError {
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The code map is malformed.
    #[error("code map {file}: {message}")]
    Config {
        /// The config file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No `[[vaccine]]` entry matches the credential's vaccine name.
    #[error("vaccine '{vaccine}' has no CVX/SNOMED mapping: add a [[vaccine]] entry matching it to {file}")]
    UnmappedVaccine {
        /// The DIVOC vaccine name.
        vaccine: String,
        /// The code map to extend.
        file: String,
    },
    /// The credential lacks something the output needs, or is inconsistent.
    #[error("credential unusable for FHIR: {0}")]
    Credential(String),
    /// A key file or JWK is unusable.
    #[error("key: {0}")]
    Key(String),
    /// Refusing to overwrite an existing private key file.
    #[error("refusing to overwrite existing key file {0}: move it away or choose another path")]
    KeyExists(String),
    /// The JWS does not fit one QR code and chunking is not supported.
    #[error("SMART Health Card JWS is {len} characters, over the single-QR limit of {limit} (chunked QR codes are not supported): shorten names or split the doses across cards")]
    TooLargeForQr {
        /// JWS length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A QR numeric text is malformed.
    #[error("SHC QR text: {0}")]
    QrText(String),
    /// JSON serialization failed (should not happen with our types).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The stage of SHC verification that rejected a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStage {
    /// Not a compact JWS / not a `.smart-health-card` file.
    Format,
    /// JOSE header missing fields or with wrong values (`alg`, `zip`).
    Header,
    /// No key with the header's `kid` in the key set.
    KeyLookup,
    /// The signature is not 64 raw bytes r||s (e.g. DER).
    SignatureEncoding,
    /// The signature does not verify.
    Signature,
    /// The payload is not raw DEFLATE data.
    Inflate,
    /// The inflated payload is not a health card payload.
    Payload,
    /// `iss` differs from the expected issuer.
    Issuer,
    /// `nbf` is in the future.
    NotYetValid,
}

/// Why a SMART Health Card was rejected.
#[derive(Debug, Error)]
#[error("SMART Health Card rejected at {stage:?}: {message}")]
pub struct VerifyError {
    /// The stage that failed.
    pub stage: VerifyStage,
    /// Details.
    pub message: String,
}

impl VerifyError {
    pub(crate) fn new(stage: VerifyStage, message: impl Into<String>) -> Self {
        VerifyError {
            stage,
            message: message.into(),
        }
    }
}
