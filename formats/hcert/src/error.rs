//! One error type for the whole crate. Every decoding/verification stage has its own variant
//! (or group of variants) so callers — and the official DCC test-case runner — can tell exactly
//! which stage rejected a certificate. [`HcertError::stage`] names that stage.

use thiserror::Error;

/// The stage of the HC1 pipeline an error belongs to (issuing errors map to [`Stage::Issue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Building the payload, reading config or keys.
    Issue,
    /// Stripping the `HC1:` context prefix.
    Unprefix,
    /// Base45 decoding.
    Base45,
    /// zlib inflation.
    Decompress,
    /// COSE_Sign1 / CWT / payload CBOR structure.
    Decode,
    /// kid lookup and signature check.
    Verify,
    /// `iat <= clock <= exp` and DSC validity.
    Expiration,
    /// DSC extendedKeyUsage versus certificate type.
    KeyUsage,
    /// DCC schema rules (one entry of exactly one of v/t/r, patterns).
    Schema,
}

/// Everything that can go wrong issuing, decoding or verifying an HCERT.
#[derive(Debug, Error)]
pub enum HcertError {
    // ---- issuing / configuration ----
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The value-set / issuer TOML is malformed.
    #[error("invalid DCC config {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A transliterated name does not match `^[A-Z<]*$` or is too long.
    #[error("invalid transliterated name {field}={value:?}: {reason} (ICAO 9303: only A-Z and '<', at most 80 characters; use transliterate_icao for Latin names)")]
    InvalidTransliteration {
        /// `fnt` or `gnt`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The name cannot be transliterated by the Latin-script ICAO helper.
    #[error("cannot transliterate {name:?}: character {ch:?} is not Latin script; supply fnt/gnt from the registry's own transliteration")]
    NonLatinName {
        /// The input name.
        name: String,
        /// The first unsupported character.
        ch: char,
    },
    /// A required credential field is missing or unusable.
    #[error("credential field {field} {problem}")]
    Credential {
        /// JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// No value-set entry matches the vaccine.
    #[error("no DCC value-set entry matches vaccine {vaccine:?} (manufacturer {manufacturer:?}); add a [[vaccine]] entry to dcc-valuesets.toml")]
    UnknownVaccine {
        /// Vaccine name from the credential.
        vaccine: String,
        /// Manufacturer from the credential.
        manufacturer: String,
    },
    /// Key or certificate handling failed.
    #[error("key/certificate error: {0}")]
    Key(String),
    /// CBOR encoding failed (should not happen for our own types).
    #[error("CBOR encoding failed: {0}")]
    Encode(String),

    // ---- decoding stages ----
    /// The text does not start with `HC1:`.
    #[error("not an HC1 certificate: expected prefix \"HC1:\", got {found:?}")]
    Prefix {
        /// First characters of the input.
        found: String,
    },
    /// Invalid Base45.
    #[error("invalid Base45: {0}")]
    Base45(String),
    /// zlib inflation failed.
    #[error("zlib decompression failed: {0}")]
    Decompress(String),
    /// COSE_Sign1 structure is wrong.
    #[error("invalid COSE_Sign1: {0}")]
    Cose(String),
    /// CWT claims structure is wrong.
    #[error("invalid CWT claims: {0}")]
    Cwt(String),
    /// The DCC payload is not valid CBOR/JSON of the expected shape.
    #[error("invalid DCC payload: {0}")]
    Payload(String),

    // ---- verification ----
    /// Neither header carries a kid.
    #[error("COSE message has no kid in its protected or unprotected header")]
    MissingKid,
    /// No trusted DSC has the message's kid.
    #[error("no trusted DSC for kid {kid_hex} (the protected-header kid takes precedence)")]
    UnknownKid {
        /// Hex of the effective kid.
        kid_hex: String,
    },
    /// Algorithm not supported or not matching the DSC key.
    #[error("unsupported or mismatched COSE algorithm {alg:?} for DSC key {key}")]
    Algorithm {
        /// `alg` from the protected header.
        alg: Option<i64>,
        /// DSC key type.
        key: &'static str,
    },
    /// The signature does not verify.
    #[error("COSE signature does not verify with the DSC")]
    BadSignature,

    // ---- expiration ----
    /// Validation clock outside `iat..=exp` or outside the DSC validity.
    #[error("expired or not yet valid: {0}")]
    Expired(String),

    // ---- key usage ----
    /// The DSC's extendedKeyUsage does not cover the certificate type.
    #[error("DSC extendedKeyUsage does not allow {cert_type} certificates")]
    KeyUsage {
        /// `v`, `t` or `r`.
        cert_type: char,
    },

    // ---- schema ----
    /// The payload violates the DCC schema rules we check.
    #[error("DCC schema violation: {0}")]
    Schema(String),
}

impl HcertError {
    /// Which pipeline stage raised this error.
    pub fn stage(&self) -> Stage {
        use HcertError::*;
        match self {
            Io { .. }
            | Config { .. }
            | InvalidTransliteration { .. }
            | NonLatinName { .. }
            | Credential { .. }
            | UnknownVaccine { .. }
            | Key(_)
            | Encode(_) => Stage::Issue,
            Prefix { .. } => Stage::Unprefix,
            Base45(_) => Stage::Base45,
            Decompress(_) => Stage::Decompress,
            Cose(_) | Cwt(_) | Payload(_) => Stage::Decode,
            MissingKid | UnknownKid { .. } | Algorithm { .. } | BadSignature => Stage::Verify,
            Expired(_) => Stage::Expiration,
            KeyUsage { .. } => Stage::KeyUsage,
            Schema(_) => Stage::Schema,
        }
    }
}

/// Crate result type.
pub type Result<T, E = HcertError> = std::result::Result<T, E>;
