//! The issuer key file lives in `divoc_credential` (the sinks that sign tree heads read it too).
pub use divoc_credential::IssuerKey;
