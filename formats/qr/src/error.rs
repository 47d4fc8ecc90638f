//! The one error type of this crate.

use crate::payload::PayloadKind;
use crate::{MAX_PNG_SIDE, MAX_QR_BYTES_M};

/// What went wrong building, encoding or reading a QR payload.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QrError {
    /// A DIVOC ZIP payload longer than a byte-mode QR at error correction M holds.
    #[error("payload of {0} bytes does not fit a byte-mode QR at error correction M (at most {MAX_QR_BYTES_M})")]
    TooLarge(usize),
    /// An HC1 or shc:/ payload longer than its format allows in one QR code.
    #[error("{kind} payload is {len} {unit} long but one QR code of this format holds at most {max}; {hint}",
        unit = .kind.length_unit(), hint = .kind.too_long_hint())]
    TooLong {
        kind: PayloadKind,
        len: usize,
        max: usize,
    },
    /// The payload text does not follow its format (prefix, character set, digit pairs).
    #[error("{kind} payload is malformed: {reason}")]
    Malformed { kind: PayloadKind, reason: String },
    /// A PNG scale of 0, or one that makes the image wider than `MAX_PNG_SIDE` pixels.
    #[error("PNG scale {scale} is out of range for a {modules}-module QR code: use 1 to {max} pixels per module (images are at most {MAX_PNG_SIDE} pixels wide)")]
    BadScale {
        scale: u32,
        modules: usize,
        max: u32,
    },
    /// The QR encoder refused the segments (should not happen after validation).
    #[error("QR encoding failed: {0}")]
    Encode(String),
    /// A DIVOC payload that is neither the expected ZIP archive nor JSON.
    #[error("not a DIVOC QR archive: {0}")]
    BadArchive(String),
}

impl QrError {
    pub(crate) fn malformed(kind: PayloadKind, reason: impl Into<String>) -> Self {
        QrError::Malformed {
            kind,
            reason: reason.into(),
        }
    }
}
