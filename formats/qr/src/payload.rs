//! The three payload kinds and how each one becomes a QR code: which segments (byte,
//! alphanumeric, numeric), which error-correction level, and which versions are allowed.
//!
//! The version is picked by counting bits per segment (mode indicator + character-count field +
//! data) against the capacity table, so each payload is encoded exactly once.

use std::fmt;

use qrcode::bits::Bits;
use qrcode::{EcLevel, QrCode, Version};

use crate::encode;
use crate::shc::{is_jws_char, shc_numeric_encode, SHC_PREFIX};
use crate::{ModuleMatrix, QrError};

/// Largest payload a byte-mode QR holds at error correction M (version 40).
pub const MAX_QR_BYTES_M: usize = 2331;

/// Largest HC1 text an alphanumeric QR holds at error correction Q (version 40).
pub const MAX_HCERT_CHARS: usize = 2420;

/// Largest JWS that fits one SMART Health Card QR: version 22 at error correction L holds
/// `shc:/` plus 2 × 1195 digits (SMART Health Cards spec, "Chunking": longer JWS SHALL be split).
pub const MAX_SHC_JWS_CHARS: usize = 1195;

/// Highest QR version a SMART Health Card QR may use ("V22 or lower, to ensure ease of scanning").
pub const SHC_MAX_VERSION: i16 = 22;

/// Prefix of an EU DCC (HCERT) QR text: context identifier `HC1` and a colon.
pub const HCERT_PREFIX: &str = "HC1:";

/// Which certificate format a QR payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// DIVOC native: ZIP archive holding `certificate.json`.
    DivocZip,
    /// EU Digital COVID Certificate: `HC1:` + Base45.
    Hcert,
    /// SMART Health Card: `shc:/` + numeric-encoded JWS.
    Shc,
}

impl PayloadKind {
    /// Error-correction level the format prescribes: DIVOC M, EU DCC Q, SMART Health Card L
    /// (the level the SHC spec's 1195-character single-QR limit is computed for).
    pub fn ec_level(self) -> EcLevel {
        match self {
            PayloadKind::DivocZip => EcLevel::M,
            PayloadKind::Hcert => EcLevel::Q,
            PayloadKind::Shc => EcLevel::L,
        }
    }

    /// Highest QR version the format allows.
    pub fn max_version(self) -> i16 {
        match self {
            PayloadKind::DivocZip | PayloadKind::Hcert => 40,
            PayloadKind::Shc => SHC_MAX_VERSION,
        }
    }

    /// Largest payload one QR of this kind holds: bytes (DIVOC), characters (HC1), JWS
    /// characters (SHC, two digits each).
    pub fn max_len(self) -> usize {
        match self {
            PayloadKind::DivocZip => MAX_QR_BYTES_M,
            PayloadKind::Hcert => MAX_HCERT_CHARS,
            PayloadKind::Shc => MAX_SHC_JWS_CHARS,
        }
    }

    pub(crate) fn length_unit(self) -> &'static str {
        match self {
            PayloadKind::DivocZip => "bytes",
            PayloadKind::Hcert => "characters",
            PayloadKind::Shc => "JWS characters",
        }
    }

    pub(crate) fn too_long_hint(self) -> &'static str {
        match self {
            PayloadKind::DivocZip => "shrink the credential (fewer optional fields)",
            PayloadKind::Hcert => {
                "an EU DCC must fit one QR code at level Q; drop optional fields or certificates"
            }
            PayloadKind::Shc => {
                "the SMART Health Cards spec requires splitting a longer JWS into chunks \
                 (shc:/<i>/<n>/...), which this crate does not produce"
            }
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadKind::DivocZip => "DIVOC ZIP",
            PayloadKind::Hcert => "EU DCC (HC1)",
            PayloadKind::Shc => "SMART Health Card (shc:/)",
        })
    }
}

/// A certificate payload to put in a QR code. Each variant holds exactly what a QR reader gives
/// back when it scans the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrPayload {
    /// DIVOC ZIP bytes (see [`crate::zip_certificate`]); byte mode, level M.
    DivocZip(Vec<u8>),
    /// `HC1:` + Base45 text; alphanumeric mode, level Q.
    Hcert(String),
    /// `shc:/` + digit pairs; a byte segment for the prefix, a numeric segment for the digits,
    /// level L, version 22 or lower.
    Shc(String),
}

/// One QR data segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// 8 bits per byte, any bytes.
    Byte(&'a [u8]),
    /// 5.5 bits per character, QR alphanumeric set only.
    Alphanumeric(&'a [u8]),
    /// 3.33 bits per digit, ASCII digits only.
    Numeric(&'a [u8]),
}

impl Segment<'_> {
    /// Bits this segment takes in a code of `version` (1..=40): 4-bit mode indicator,
    /// character-count field, data.
    fn bit_len(&self, version: i16) -> usize {
        // Character-count field widths for versions 1-9, 10-26, 27-40 (ISO/IEC 18004 table 3).
        let class = match version {
            ..=9 => 0,
            10..=26 => 1,
            _ => 2,
        };
        let (count_bits, data_bits) = match *self {
            Segment::Numeric(d) => {
                let tail = [0, 4, 7][d.len() % 3];
                ([10, 12, 14][class], d.len() / 3 * 10 + tail)
            }
            Segment::Alphanumeric(d) => ([9, 11, 13][class], d.len() / 2 * 11 + d.len() % 2 * 6),
            Segment::Byte(d) => ([8, 16, 16][class], d.len() * 8),
        };
        4 + count_bits + data_bits
    }

    pub(crate) fn push(&self, bits: &mut Bits) -> Result<(), qrcode::types::QrError> {
        match *self {
            Segment::Byte(d) => bits.push_byte_data(d),
            Segment::Alphanumeric(d) => bits.push_alphanumeric_data(d),
            Segment::Numeric(d) => bits.push_numeric_data(d),
        }
    }
}

/// The QR alphanumeric character set: 0-9, A-Z, space, `$ % * + - . / :`.
pub fn is_qr_alphanumeric(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':')
}

impl QrPayload {
    /// The SMART Health Card payload `shc:/<digits>` for a compact JWS.
    pub fn shc_from_jws(jws: &str) -> Result<Self, QrError> {
        Ok(QrPayload::Shc(format!(
            "{SHC_PREFIX}{}",
            shc_numeric_encode(jws)?
        )))
    }

    /// Classifies what a QR reader returned by its prefix: `HC1:` is an EU DCC, `shc:/` a SMART
    /// Health Card, anything else is taken as DIVOC's ZIP (or plain JSON). Nothing is validated
    /// here; [`QrPayload::segments`] and the format's own decoder do that.
    pub fn from_scanned(data: Vec<u8>) -> Self {
        let prefixed = |p: &str| data.starts_with(p.as_bytes());
        let kind = if prefixed(HCERT_PREFIX) {
            PayloadKind::Hcert
        } else if prefixed(SHC_PREFIX) {
            PayloadKind::Shc
        } else {
            PayloadKind::DivocZip
        };
        match (kind, String::from_utf8(data)) {
            (PayloadKind::Hcert, Ok(text)) => QrPayload::Hcert(text),
            (PayloadKind::Shc, Ok(text)) => QrPayload::Shc(text),
            (_, Ok(text)) => QrPayload::DivocZip(text.into_bytes()),
            (_, Err(e)) => QrPayload::DivocZip(e.into_bytes()),
        }
    }

    /// Which format this payload is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            QrPayload::DivocZip(_) => PayloadKind::DivocZip,
            QrPayload::Hcert(_) => PayloadKind::Hcert,
            QrPayload::Shc(_) => PayloadKind::Shc,
        }
    }

    /// The bytes a QR reader returns for this payload.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            QrPayload::DivocZip(b) => b,
            QrPayload::Hcert(s) | QrPayload::Shc(s) => s.as_bytes(),
        }
    }

    /// Validates the payload and splits it into the segments its format prescribes.
    pub fn segments(&self) -> Result<Vec<Segment<'_>>, QrError> {
        let kind = self.kind();
        match self {
            QrPayload::DivocZip(bytes) => {
                if bytes.len() > MAX_QR_BYTES_M {
                    return Err(QrError::TooLarge(bytes.len()));
                }
                Ok(vec![Segment::Byte(bytes)])
            }
            QrPayload::Hcert(text) => {
                if !text.starts_with(HCERT_PREFIX) {
                    return Err(QrError::malformed(
                        kind,
                        format!("it must start with {HCERT_PREFIX:?} followed by the Base45 text"),
                    ));
                }
                if let Some((at, c)) = text
                    .char_indices()
                    .find(|&(_, c)| !u8::try_from(c).is_ok_and(is_qr_alphanumeric))
                {
                    return Err(QrError::malformed(
                        kind,
                        format!(
                            "{c:?} at byte {at} is outside the QR alphanumeric set \
                             (0-9 A-Z space $ % * + - . / :); pass the Base45 text unchanged"
                        ),
                    ));
                }
                if text.len() > MAX_HCERT_CHARS {
                    return Err(QrError::TooLong {
                        kind,
                        len: text.len(),
                        max: MAX_HCERT_CHARS,
                    });
                }
                Ok(vec![Segment::Alphanumeric(text.as_bytes())])
            }
            QrPayload::Shc(text) => {
                let digits = shc_digits(text)?;
                if digits.len() / 2 > MAX_SHC_JWS_CHARS {
                    return Err(QrError::TooLong {
                        kind,
                        len: digits.len() / 2,
                        max: MAX_SHC_JWS_CHARS,
                    });
                }
                Ok(vec![
                    Segment::Byte(SHC_PREFIX.as_bytes()),
                    Segment::Numeric(digits.as_bytes()),
                ])
            }
        }
    }

    /// The payload's symbol as a module matrix: the format's segments and error-correction
    /// level, the smallest version that holds them. This is the fast path every renderer uses
    /// (`qrcode`'s building blocks with a bit-parallel mask choice, see `encode.rs`).
    pub fn to_matrix(&self) -> Result<ModuleMatrix, QrError> {
        encode::symbol(&self.segments()?, self.kind())
    }

    /// Encodes the payload with the `qrcode` crate alone (same segments, level and version as
    /// [`QrPayload::to_matrix`], mask by qrcode's own scorer). Several times slower; kept for
    /// callers that need a [`QrCode`] and as the benchmark baseline.
    pub fn to_qr(&self) -> Result<QrCode, QrError> {
        encode_segments(&self.segments()?, self.kind())
    }
}

/// Encodes already validated `segments` at `kind`'s level, in the smallest allowed version.
pub(crate) fn encode_segments(
    segments: &[Segment<'_>],
    kind: PayloadKind,
) -> Result<QrCode, QrError> {
    let ec = kind.ec_level();
    let version = smallest_version(segments, ec, kind.max_version()).ok_or_else(|| {
        // Unreachable after `segments()`: each kind's length limit is its version-limit capacity.
        QrError::Encode(format!(
            "no QR version up to {} at level {ec:?} holds these segments",
            kind.max_version()
        ))
    })?;
    let mut bits = Bits::new(Version::Normal(version));
    for segment in segments {
        segment
            .push(&mut bits)
            .map_err(|e| QrError::Encode(e.to_string()))?;
    }
    bits.push_terminator(ec)
        .map_err(|e| QrError::Encode(e.to_string()))?;
    QrCode::with_bits(bits, ec).map_err(|e| QrError::Encode(e.to_string()))
}

/// The digit part of an `shc:/` text, checked: digits only, in pairs that decode to JWS
/// characters.
fn shc_digits(text: &str) -> Result<&str, QrError> {
    let kind = PayloadKind::Shc;
    let digits = text
        .strip_prefix(SHC_PREFIX)
        .ok_or_else(|| QrError::malformed(kind, format!("it must start with {SHC_PREFIX:?}")))?;
    if digits.contains('/') {
        return Err(QrError::malformed(
            kind,
            "chunked form shc:/<i>/<n>/... is not supported; encode each chunk's JWS on its own",
        ));
    }
    if digits.is_empty() {
        return Err(QrError::malformed(
            kind,
            format!("no digits after {SHC_PREFIX:?}"),
        ));
    }
    if let Some((at, c)) = digits.char_indices().find(|&(_, c)| !c.is_ascii_digit()) {
        return Err(QrError::malformed(
            kind,
            format!("{c:?} at byte {} is not a digit", at + SHC_PREFIX.len()),
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(QrError::malformed(
            kind,
            format!(
                "{} digits after the prefix; each JWS character takes two",
                digits.len()
            ),
        ));
    }
    if let Some(pair) = digits
        .as_bytes()
        .chunks_exact(2)
        .position(|p| !is_jws_char((p[0] - b'0') * 10 + (p[1] - b'0') + 45))
    {
        return Err(QrError::malformed(
            kind,
            format!(
                "digit pair {} ({}) is not a JWS character (base64url or '.')",
                pair + 1,
                &digits[pair * 2..pair * 2 + 2]
            ),
        ));
    }
    Ok(digits)
}

/// Smallest version in `1..=max_version` whose data capacity at `ec` holds all `segments`.
pub(crate) fn smallest_version(
    segments: &[Segment<'_>],
    ec: EcLevel,
    max_version: i16,
) -> Option<i16> {
    (1..=max_version).find(|&v| {
        let needed: usize = segments.iter().map(|s| s.bit_len(v)).sum();
        Bits::new(Version::Normal(v))
            .max_len(ec)
            .is_ok_and(|capacity| needed <= capacity)
    })
}
