//! DIVOC's QR payload: a ZIP archive holding one DEFLATE entry `certificate.json` (the signed
//! credential), carried as raw bytes in a byte-mode QR code at error correction M.
//!
//! The archive is built by hand so it is byte-for-byte deterministic (fixed 1980-01-01 timestamp,
//! no extra fields): a replay produces the same payload.

use crate::QrError;

/// Name of the one entry, as DIVOC's verifier expects.
pub const ENTRY_NAME: &str = "certificate.json";

const DOS_DATE_1980_01_01: u16 = 0x21;

/// Zips `credential_json` as `certificate.json` with DEFLATE.
pub fn zip_certificate(credential_json: &[u8]) -> Vec<u8> {
    let compressed = miniz_oxide::deflate::compress_to_vec(credential_json, 6);
    let crc = crc32fast::hash(credential_json);
    let name = ENTRY_NAME.as_bytes();
    let mut out = Vec::with_capacity(compressed.len() + 2 * name.len() + 100);
    let header = |out: &mut Vec<u8>, central: bool| {
        out.extend_from_slice(if central {
            &[0x50, 0x4b, 0x01, 0x02]
        } else {
            &[0x50, 0x4b, 0x03, 0x04]
        });
        if central {
            out.extend_from_slice(&20u16.to_le_bytes()); // version made by
        }
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0 (deflate)
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&8u16.to_le_bytes()); // method: deflate
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&DOS_DATE_1980_01_01.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
        out.extend_from_slice(&(credential_json.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        if central {
            out.extend_from_slice(&0u16.to_le_bytes()); // comment length
            out.extend_from_slice(&0u16.to_le_bytes()); // disk number
            out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        }
        out.extend_from_slice(name);
    };
    header(&mut out, false);
    out.extend_from_slice(&compressed);
    let cd_offset = out.len() as u32;
    header(&mut out, true);
    let cd_size = out.len() as u32 - cd_offset;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06]);
    out.extend_from_slice(&[0, 0, 0, 0]); // disk numbers
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Reads `certificate.json` back from a DIVOC QR payload; falls back to plain JSON text like
/// DIVOC's reader does.
pub fn unzip_certificate(payload: &[u8]) -> Result<Vec<u8>, QrError> {
    if !payload.starts_with(&[0x50, 0x4b, 0x03, 0x04]) {
        let trimmed = payload
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .copied()
            .next();
        return if trimmed == Some(b'{') {
            Ok(payload.to_vec())
        } else {
            Err(QrError::BadArchive("neither a ZIP archive nor JSON".into()))
        };
    }
    let u16_at = |i: usize| -> Result<u16, QrError> {
        payload
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| QrError::BadArchive("truncated header".into()))
    };
    let u32_at = |i: usize| -> Result<u32, QrError> {
        payload
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| QrError::BadArchive("truncated header".into()))
    };
    let method = u16_at(8)?;
    let crc = u32_at(14)?;
    let csize = u32_at(18)? as usize;
    let usize_ = u32_at(22)? as usize;
    let name_len = u16_at(26)? as usize;
    let extra_len = u16_at(28)? as usize;
    let name = payload
        .get(30..30 + name_len)
        .ok_or_else(|| QrError::BadArchive("truncated name".into()))?;
    if name != ENTRY_NAME.as_bytes() {
        return Err(QrError::BadArchive(format!(
            "first entry is {:?}, expected {ENTRY_NAME}",
            String::from_utf8_lossy(name)
        )));
    }
    let start = 30 + name_len + extra_len;
    let data = payload
        .get(start..start + csize)
        .ok_or_else(|| QrError::BadArchive("truncated data".into()))?;
    let out = match method {
        0 => data.to_vec(),
        8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, 1 << 20)
            .map_err(|e| QrError::BadArchive(format!("inflate: {e:?}")))?,
        m => {
            return Err(QrError::BadArchive(format!(
                "compression method {m} is not supported"
            )))
        }
    };
    if out.len() != usize_ || crc32fast::hash(&out) != crc {
        return Err(QrError::BadArchive("size or CRC mismatch".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_round_trip_and_determinism() {
        let json = br#"{"name":"\u0905\u0928\u093f\u0932 \"x\"","n":1}"#;
        let z = zip_certificate(json);
        assert_eq!(z, zip_certificate(json));
        assert_eq!(unzip_certificate(&z).unwrap(), json.to_vec());
        assert_eq!(
            unzip_certificate(b" {\"a\":1}").unwrap(),
            b" {\"a\":1}".to_vec()
        );
        assert!(unzip_certificate(b"garbage").is_err());
    }

    #[test]
    fn damaged_archives_are_errors_not_panics() {
        let z = zip_certificate(br#"{"credentialSubject":{"name":"A"}}"#);
        for cut in 0..z.len() {
            let _ = unzip_certificate(&z[..cut]);
        }
        for i in 0..z.len() {
            let mut bad = z.clone();
            bad[i] ^= 0xff;
            let _ = unzip_certificate(&bad);
        }
        let mut bad_crc = z.clone();
        bad_crc[14] ^= 1;
        assert!(matches!(
            unzip_certificate(&bad_crc),
            Err(QrError::BadArchive(_))
        ));
    }
}
