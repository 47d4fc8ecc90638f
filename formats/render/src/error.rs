//! Errors of loading the renderer's configuration and of rendering.

use std::path::PathBuf;

/// Everything that can go wrong loading templates or rendering a certificate.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A configuration file is malformed.
    #[error("invalid configuration {path}: {message}")]
    Config {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A font file is not a usable TrueType (glyf) font.
    #[error("font {path}: {message}")]
    Font {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An image is not a usable PNG.
    #[error("image {path}: {message}")]
    Image {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tenant has no templates.
    #[error("unknown tenant {tenant:?}; configured tenants: {available}")]
    UnknownTenant {
        /// Requested tenant.
        tenant: String,
        /// Comma-separated configured tenants.
        available: String,
    },
    /// The tenant has no template in this language.
    #[error("tenant {tenant:?} has no template for language {language:?}; available: {available}")]
    UnknownLanguage {
        /// Tenant.
        tenant: String,
        /// Requested language.
        language: String,
        /// Comma-separated languages of the tenant.
        available: String,
    },
    /// The request itself is unusable.
    #[error("invalid render request: {0}")]
    Request(String),
}
