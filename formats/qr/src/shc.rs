//! SMART Health Card numeric encoding: each JWS character `c` becomes the two decimal digits of
//! `ord(c) - 45`, so the whole JWS fits a QR numeric segment (3.33 bits per digit).

use crate::payload::PayloadKind;
use crate::QrError;

/// Prefix of a SMART Health Card QR text (carried as a byte segment).
pub const SHC_PREFIX: &str = "shc:/";

/// A character of a compact JWS: base64url alphabet or the `.` separator. All of them lie in
/// `45..=122`, so `ord(c) - 45` always has two digits.
pub(crate) fn is_jws_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Encodes a compact JWS as SHC digit pairs (without the `shc:/` prefix).
///
/// Fails on characters a compact JWS cannot contain (whitespace, a BOM, `=` padding, ...), which
/// would otherwise turn into digits no verifier decodes back.
pub fn shc_numeric_encode(jws: &str) -> Result<String, QrError> {
    let mut out = String::with_capacity(jws.len() * 2);
    for (at, c) in jws.char_indices() {
        let b = u8::try_from(c)
            .ok()
            .filter(|&b| is_jws_char(b))
            .ok_or_else(|| {
                QrError::malformed(
                    PayloadKind::Shc,
                    format!(
                    "JWS has {c:?} at byte {at}; only base64url characters and '.' are allowed \
                     (strip whitespace and byte-order marks first)"
                ),
                )
            })?;
        let v = b - 45;
        out.push(char::from(b'0' + v / 10));
        out.push(char::from(b'0' + v % 10));
    }
    Ok(out)
}

/// Decodes SHC digit pairs back to the JWS. Accepts the digits alone or the whole scanned text
/// with its `shc:/` prefix; the chunked form `shc:/<i>/<n>/...` is rejected.
pub fn shc_numeric_decode(s: &str) -> Result<String, QrError> {
    let digits = s.strip_prefix(SHC_PREFIX).unwrap_or(s);
    let bad = |reason: String| QrError::malformed(PayloadKind::Shc, reason);
    if digits.contains('/') {
        return Err(bad(
            "chunked form shc:/<i>/<n>/... is not supported; decode each chunk's digits".into(),
        ));
    }
    if let Some((at, c)) = digits.char_indices().find(|&(_, c)| !c.is_ascii_digit()) {
        return Err(bad(format!("{c:?} at byte {at} is not a digit")));
    }
    if digits.len() % 2 != 0 {
        return Err(bad(format!(
            "{} digits; each JWS character takes two",
            digits.len()
        )));
    }
    let mut jws = String::with_capacity(digits.len() / 2);
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        let b = (pair[0] - b'0') * 10 + (pair[1] - b'0') + 45;
        if !is_jws_char(b) {
            return Err(bad(format!(
                "digit pair {} ({}{}) is not a JWS character (base64url or '.')",
                i + 1,
                char::from(pair[0]),
                char::from(pair[1])
            )));
        }
        jws.push(char::from(b));
    }
    Ok(jws)
}
