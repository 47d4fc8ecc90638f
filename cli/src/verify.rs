//! `divoc verify`: offline signature check of a credential or a DIVOC QR payload.

use std::path::Path;

use anyhow::{Context, Result};
use divoc_credential::keys::public_key_from_base58;
use divoc_qr::unzip_certificate;

/// Returns `VALID ...` or `INVALID: <reason>`; errors only when the key file is unusable.
pub fn verify_file(file: &Path, key_file: &Path) -> Result<String> {
    let key_text = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read key file {}", key_file.display()))?;
    let key_file_doc: serde_json::Value = serde_json::from_str(&key_text)
        .with_context(|| format!("{}: not JSON", key_file.display()))?;
    let json = match credential_bytes(file)? {
        Ok(j) => j,
        Err(e) => return Ok(format!("INVALID: {e}")),
    };
    let cred: serde_json::Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => return Ok(format!("INVALID: not a JSON credential: {e}")),
    };
    // A key file is our issuer key, one verification method document, or a set of them under
    // `verificationMethods` (DIVOC's format); pick the method the proof names.
    let wanted = cred["proof"]["verificationMethod"]
        .as_str()
        .unwrap_or_default();
    let mut candidates = vec![&key_file_doc];
    if let Some(m) = key_file_doc["verificationMethods"].as_object() {
        candidates.extend(m.values());
    }
    // A DID document (`/.well-known/did.json`): every key the issuer published, old ones too.
    if let Some(m) = key_file_doc["verificationMethod"].as_array() {
        candidates.extend(m.iter());
    }
    let key_doc = candidates
        .iter()
        .find(|d| {
            d["id"].as_str() == Some(wanted) || d["verificationMethod"].as_str() == Some(wanted)
        })
        .or_else(|| candidates.iter().find(|d| d["publicKeyBase58"].is_string()))
        .copied()
        .unwrap_or(&key_file_doc);
    let b58 = key_doc["publicKeyBase58"].as_str().with_context(|| {
        format!(
            "{}: no publicKeyBase58; pass an issuer key file or a verification method document",
            key_file.display()
        )
    })?;
    let vk =
        public_key_from_base58(b58).map_err(|e| anyhow::anyhow!("{}: {e}", key_file.display()))?;
    let controller = key_doc["issuer"]
        .as_str()
        .or_else(|| key_doc["controller"].as_str())
        .map(str::to_owned);

    if let Err(e) = divoc_credential::verify(&cred, &vk) {
        return Ok(format!("INVALID: {e}"));
    }
    let issuer = cred["issuer"].as_str().unwrap_or_default();
    let note = match controller {
        Some(c) if c == issuer => "issuer is the key's controller".to_owned(),
        Some(c) => format!("warning: issuer {issuer:?} is not the key's controller {c:?} (DIVOC's own credentials have this flaw)"),
        None => "key has no controller to compare with the issuer".to_owned(),
    };
    let id = cred["evidence"][0]["certificateId"].as_str().unwrap_or("-");
    Ok(format!(
        "VALID: signature verified (certificate {id}); {note}"
    ))
}

/// The credential JSON bytes in a file: the JSON itself, a DIVOC QR payload (ZIP) or a QR image.
/// The outer error is I/O; the inner one says why the content is not a credential.
pub fn credential_bytes(file: &Path) -> Result<Result<Vec<u8>, String>> {
    let mut bytes =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.starts_with(b"\x89PNG") {
        bytes = match decode_qr_png(&bytes) {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("QR image: {e}"))),
        };
    }
    Ok(unzip_certificate(&bytes).map_err(|e| e.to_string()))
}

/// Decodes the first QR code in a PNG image to its raw payload bytes.
pub fn decode_qr_png(png_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("PNG frame: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    if info.bit_depth != png::BitDepth::Eight {
        return Err("only 8-bit PNG images are supported".into());
    }
    let stride = info.line_size;
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x * channels]);
    let grids = img.detect_grids();
    let grid = grids.first().ok_or("no QR code found in the image")?;
    let mut out = Vec::new();
    grid.decode_to(&mut out)
        .map_err(|e| format!("QR decode: {e}"))?;
    Ok(out)
}
