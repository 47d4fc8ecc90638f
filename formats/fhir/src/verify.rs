//! SMART Health Card verifier: compact JWS or `.smart-health-card` file in, verified payloads out,
//! with the rejecting stage named in every error.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;

use crate::error::{VerifyError, VerifyStage};
use crate::jwk::{b64url_decode, Jwks};
use crate::shc::{HealthCardFile, JwsHeader, ShcPayload};

/// Upper bound on an inflated payload; real cards are a few kB, this stops DEFLATE bombs.
const MAX_INFLATED: usize = 1 << 20;
/// Upper bound on a JWS we look at (a card must fit a QR code; files may hold several).
const MAX_JWS: usize = 64 * 1024;

/// A card that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCard {
    /// The JOSE header.
    pub header: JwsHeader,
    /// The payload; the FHIR bundle is kept as JSON so cards of any issuer can be read.
    pub payload: ShcPayload<serde_json::Value>,
}

/// Verifies SMART Health Cards against a key set.
#[derive(Debug, Clone)]
pub struct ShcVerifier {
    keys: Vec<(String, VerifyingKey)>,
    issuer: Option<String>,
}

impl ShcVerifier {
    /// A verifier trusting every usable EC P-256 key of `jwks` (looked up by `kid`); when `issuer`
    /// is given, a card's `iss` must equal it (trailing `/` ignored). Keys that are not P-256
    /// points are skipped, as a JWKS may hold keys for other purposes.
    pub fn new(jwks: &Jwks, issuer: Option<&str>) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|k| k.verifying_key().ok().map(|v| (k.kid.clone(), v)))
            .collect();
        ShcVerifier {
            keys,
            issuer: issuer.map(|i| i.trim_end_matches('/').to_string()),
        }
    }

    /// Verifies one compact JWS; `now` (Unix seconds) is the clock `nbf` is checked against.
    pub fn verify_jws(&self, jws: &str, now: u64) -> Result<VerifiedCard, VerifyError> {
        let jws = jws.trim_start_matches('\u{feff}').trim();
        if jws.len() > MAX_JWS {
            return Err(VerifyError::new(
                VerifyStage::Format,
                format!("JWS is {} bytes, over the {MAX_JWS} limit", jws.len()),
            ));
        }
        let mut parts = jws.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::new(
                VerifyStage::Format,
                "not a compact JWS (expected header.payload.signature)",
            ));
        };
        let header_bytes = b64url_decode(h64)
            .ok_or_else(|| VerifyError::new(VerifyStage::Format, "header is not base64url"))?;
        let header: JwsHeader = serde_json::from_slice(&header_bytes)
            .map_err(|e| VerifyError::new(VerifyStage::Header, format!("header JSON: {e}")))?;
        if header.alg != "ES256" {
            return Err(VerifyError::new(
                VerifyStage::Header,
                format!("alg is '{}', SMART Health Cards require ES256", header.alg),
            ));
        }
        if header.zip.as_deref() != Some("DEF") {
            return Err(VerifyError::new(
                VerifyStage::Header,
                format!(
                    "zip is {:?}, SMART Health Cards require \"DEF\" (raw DEFLATE payload)",
                    header.zip
                ),
            ));
        }
        let key = self
            .keys
            .iter()
            .find(|(kid, _)| *kid == header.kid)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                VerifyError::new(
                    VerifyStage::KeyLookup,
                    format!("no key with kid '{}' in the issuer's key set", header.kid),
                )
            })?;
        let sig_bytes = b64url_decode(s64).ok_or_else(|| {
            VerifyError::new(VerifyStage::SignatureEncoding, "signature is not base64url")
        })?;
        // JWS ES256 is exactly 64 bytes r||s (RFC 7518 3.4); DER (0x30 ...) is a common bug.
        if sig_bytes.len() != 64 {
            return Err(VerifyError::new(
                VerifyStage::SignatureEncoding,
                format!(
                    "signature is {} bytes{}; ES256 requires 64 bytes raw r||s",
                    sig_bytes.len(),
                    if sig_bytes.first() == Some(&0x30) {
                        " (looks DER-encoded)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let signature = Signature::from_slice(&sig_bytes).map_err(|_| {
            VerifyError::new(
                VerifyStage::SignatureEncoding,
                "signature r or s is out of range",
            )
        })?;
        let signing_input = &jws[..h64.len() + 1 + p64.len()];
        key.verify(signing_input.as_bytes(), &signature)
            .map_err(|_| {
                VerifyError::new(VerifyStage::Signature, "ES256 signature does not verify")
            })?;
        let deflated = b64url_decode(p64)
            .ok_or_else(|| VerifyError::new(VerifyStage::Inflate, "payload is not base64url"))?;
        let inflated = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_INFLATED)
            .map_err(|e| {
                VerifyError::new(
                    VerifyStage::Inflate,
                    format!("payload is not raw DEFLATE data: {:?}", e.status),
                )
            })?;
        // Some issuers put a UTF-8 byte order mark before the JSON.
        let json = inflated
            .strip_prefix(b"\xef\xbb\xbf")
            .unwrap_or(&inflated[..]);
        let payload: ShcPayload<serde_json::Value> = serde_json::from_slice(json)
            .map_err(|e| VerifyError::new(VerifyStage::Payload, format!("payload JSON: {e}")))?;
        check_payload(&payload)?;
        if let Some(expected) = &self.issuer {
            if payload.iss.trim_end_matches('/') != expected {
                return Err(VerifyError::new(
                    VerifyStage::Issuer,
                    format!("iss '{}' is not the expected '{expected}'", payload.iss),
                ));
            }
        }
        let nbf = payload.nbf.as_f64().unwrap_or(f64::INFINITY);
        if nbf > now as f64 {
            return Err(VerifyError::new(
                VerifyStage::NotYetValid,
                format!("nbf {} is after the verification time {now}", payload.nbf),
            ));
        }
        Ok(VerifiedCard { header, payload })
    }

    /// Verifies the text of a scanned QR code (`shc:/` + digits; single-chunk only).
    pub fn verify_qr_text(&self, text: &str, now: u64) -> Result<VerifiedCard, VerifyError> {
        let jws = crate::shc::jws_from_qr_numeric(text)
            .map_err(|e| VerifyError::new(VerifyStage::Format, e.to_string()))?;
        self.verify_jws(&jws, now)
    }

    /// Verifies a file: a `.smart-health-card` JSON (`{"verifiableCredential":[...]}`) or a bare
    /// JWS, either possibly prefixed with a UTF-8 BOM. Every card must verify.
    pub fn verify_file(&self, bytes: &[u8], now: u64) -> Result<Vec<VerifiedCard>, VerifyError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| VerifyError::new(VerifyStage::Format, "file is not UTF-8"))?;
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.starts_with('{') {
            let file: HealthCardFile = serde_json::from_str(text).map_err(|e| {
                VerifyError::new(
                    VerifyStage::Format,
                    format!("not a .smart-health-card file: {e}"),
                )
            })?;
            if file.verifiable_credential.is_empty() {
                return Err(VerifyError::new(
                    VerifyStage::Format,
                    "verifiableCredential is empty",
                ));
            }
            file.verifiable_credential
                .iter()
                .map(|jws| self.verify_jws(jws, now))
                .collect()
        } else {
            Ok(vec![self.verify_jws(text, now)?])
        }
    }
}

/// The shape checks that make a JWS a SMART Health Card.
fn check_payload(p: &ShcPayload<serde_json::Value>) -> Result<(), VerifyError> {
    let bad = |m: String| Err(VerifyError::new(VerifyStage::Payload, m));
    if !p
        .vc
        .types
        .iter()
        .any(|t| t == "https://smarthealth.cards#health-card")
    {
        return bad(format!(
            "vc.type {:?} lacks https://smarthealth.cards#health-card",
            p.vc.types
        ));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct BundleHead {
        resource_type: String,
    }
    match BundleHead::deserialize(&p.vc.credential_subject.fhir_bundle) {
        Ok(b) if b.resource_type == "Bundle" => Ok(()),
        Ok(b) => bad(format!("fhirBundle is a {}, not a Bundle", b.resource_type)),
        Err(e) => bad(format!("fhirBundle: {e}")),
    }
}
