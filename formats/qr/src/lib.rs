//! QR images for every certificate payload kind, each at the level its format prescribes:
//!
//! | kind | QR text | segments | EC level | versions |
//! |---|---|---|---|---|
//! | DIVOC native | ZIP of `certificate.json` | byte | M | 1-40 |
//! | EU DCC | `HC1:` + Base45 | alphanumeric | Q | 1-40 |
//! | SMART Health Card | `shc:/` + digit pairs | byte + numeric | L | 1-22 |
//!
//! Build a [`QrPayload`], call [`QrPayload::to_matrix`] (the symbol as a [`ModuleMatrix`], also
//! what vector renderers such as PDF draw), then render with [`matrix_png`] or [`matrix_svg`]
//! (or [`QrPayload::to_png`] / [`QrPayload::to_svg`] in one step). Renderers depend only on
//! [`ModuleMatrix`], not on a QR library.
//!
//! Encoder: every kind is built with `qrcode`'s bit, error-correction and canvas modules from the
//! segments its format prescribes, and the mask is chosen by a bit-parallel ISO/IEC 18004 penalty
//! scorer (`mask.rs`) instead of `qrcode`'s own, which is where ~95% of its time went.
//! [`QrPayload::to_qr`], [`qr_code_bytes`], [`qr_png`] and [`qr_svg`] keep the older
//! `qrcode::QrCode` API working (same symbol layout, qrcode's mask choice, ~10-30x slower).
//!
//! Everything here is pure and `Send + Sync`, so batches can be rendered from rayon.

mod encode;
mod error;
mod mask;
mod payload;
mod png_writer;
mod render;
mod shc;
mod zip;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_matrix;

pub use error::QrError;
pub use payload::{
    is_qr_alphanumeric, PayloadKind, QrPayload, Segment, HCERT_PREFIX, MAX_HCERT_CHARS,
    MAX_QR_BYTES_M, MAX_SHC_JWS_CHARS, SHC_MAX_VERSION,
};
pub use qrcode::{EcLevel, QrCode, Version};
pub use render::{
    matrix_png, matrix_svg, qr_matrix, qr_png, qr_svg, DarkRun, ModuleMatrix, MAX_PNG_SIDE,
    QUIET_ZONE_MODULES,
};
pub use shc::{shc_numeric_decode, shc_numeric_encode, SHC_PREFIX};
pub use zip::{unzip_certificate, zip_certificate, ENTRY_NAME};

/// The DIVOC native QR symbol for `payload`: byte mode, error correction M, smallest version
/// (same as `QrPayload::DivocZip(payload).to_matrix()` without copying the bytes). Fast path.
pub fn divoc_zip_matrix(payload: &[u8]) -> Result<ModuleMatrix, QrError> {
    if payload.len() > MAX_QR_BYTES_M {
        return Err(QrError::TooLarge(payload.len()));
    }
    encode::symbol(&[Segment::Byte(payload)], PayloadKind::DivocZip)
}

/// A byte-mode QR code at error correction M for `payload`, smallest version that fits, built by
/// the `qrcode` crate (legacy API; prefer [`divoc_zip_matrix`], several times faster).
pub fn qr_code_bytes(payload: &[u8]) -> Result<QrCode, QrError> {
    if payload.len() > MAX_QR_BYTES_M {
        return Err(QrError::TooLarge(payload.len()));
    }
    payload::encode_segments(&[Segment::Byte(payload)], PayloadKind::DivocZip)
}

impl QrPayload {
    /// Encodes ([`QrPayload::to_matrix`]) and renders as PNG (see [`matrix_png`]).
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>, QrError> {
        matrix_png(&self.to_matrix()?, scale)
    }

    /// Encodes ([`QrPayload::to_matrix`]) and renders as SVG (see [`matrix_svg`]).
    pub fn to_svg(&self) -> Result<String, QrError> {
        Ok(matrix_svg(&self.to_matrix()?))
    }
}
