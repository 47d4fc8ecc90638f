//! QR images for every certificate payload kind, each at the level its format prescribes:
//!
//! | kind | QR text | segments | EC level | versions |
//! |---|---|---|---|---|
//! | DIVOC native | ZIP of `certificate.json` | byte | M | 1-40 |
//! | EU DCC | `HC1:` + Base45 | alphanumeric | Q | 1-40 |
//! | SMART Health Card | `shc:/` + digit pairs | byte + numeric | L | 1-22 |
//!
//! Build a [`QrPayload`], call [`QrPayload::to_qr`], then render with [`qr_png`], [`qr_svg`] or
//! [`qr_matrix`] (module matrix for vector output such as PDF). Everything here is pure and
//! `Send + Sync`, so batches can be rendered from rayon.

mod error;
mod payload;
mod render;
mod shc;
mod zip;

#[cfg(test)]
mod tests;

pub use error::QrError;
pub use payload::{
    is_qr_alphanumeric, PayloadKind, QrPayload, Segment, HCERT_PREFIX, MAX_HCERT_CHARS,
    MAX_QR_BYTES_M, MAX_SHC_JWS_CHARS, SHC_MAX_VERSION,
};
pub use qrcode::{EcLevel, QrCode, Version};
pub use render::{
    qr_matrix, qr_png, qr_svg, DarkRun, ModuleMatrix, MAX_PNG_SIDE, QUIET_ZONE_MODULES,
};
pub use shc::{shc_numeric_decode, shc_numeric_encode, SHC_PREFIX};
pub use zip::{unzip_certificate, zip_certificate, ENTRY_NAME};

/// A byte-mode QR code at error correction M for `payload`, smallest version that fits (the DIVOC
/// native QR; same as `QrPayload::DivocZip(payload).to_qr()` without copying the bytes).
pub fn qr_code_bytes(payload: &[u8]) -> Result<QrCode, QrError> {
    if payload.len() > MAX_QR_BYTES_M {
        return Err(QrError::TooLarge(payload.len()));
    }
    payload::encode_segments(&[Segment::Byte(payload)], PayloadKind::DivocZip)
}

impl QrPayload {
    /// Encodes and renders as PNG (see [`qr_png`]).
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>, QrError> {
        qr_png(&self.to_qr()?, scale)
    }

    /// Encodes and renders as SVG (see [`qr_svg`]).
    pub fn to_svg(&self) -> Result<String, QrError> {
        Ok(qr_svg(&self.to_qr()?))
    }

    /// Encodes and returns the module matrix (see [`ModuleMatrix`]).
    pub fn to_matrix(&self) -> Result<ModuleMatrix, QrError> {
        Ok(qr_matrix(&self.to_qr()?))
    }
}
