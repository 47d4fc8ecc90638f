//! FHIR R4 bundles, WHO DDCC:VS, and SMART Health Cards from DIVOC vaccination credentials.
//!
//! - [`shc::ShcIssuer::issue`]: SMART Health Card (compact JWS, `shc:/` QR text, file).
//! - [`verify::ShcVerifier`]: SMART Health Card verification with per-stage errors.
//! - [`bundle::fhir_bundle`]: plain FHIR R4 Patient + Immunization collection.
//! - [`ddcc::ddcc_document`]: WHO DDCC:VS document bundle; [`ddcc::DdccVsCoreDataSet`] the
//!   core data set as a flat record.
//! - [`jwk::IssuerKey`]: P-256 issuer keys, key files, JWKS, RFC 7638 thumbprints.
//! - [`codes::FhirCodes`]: the vaccine/country code map (`config/shc-codes.toml`).

pub mod bundle;
pub mod codes;
pub mod ddcc;
pub mod error;
pub mod fhir;
pub mod jwk;
pub mod shc;
pub mod verify;

pub use bundle::{fhir_bundle, shc_bundle};
pub use codes::FhirCodes;
pub use ddcc::{ddcc_core_data_set, ddcc_document, DdccVsCoreDataSet};
pub use error::{FhirError, VerifyError, VerifyStage};
pub use jwk::{IssuerKey, Jwks, PublicJwk};
pub use shc::{qr_numeric, HealthCard, HealthCardFile, ShcIssuer};
pub use verify::{ShcVerifier, VerifiedCard};
