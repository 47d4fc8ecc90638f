//! SMART Health Cards: payload, compact JWS (ES256 over raw-DEFLATEd JSON), the
//! `.smart-health-card` file, and the `shc:/` numeric QR text.

use divoc_credential::VaccinationCredential;
use serde::{Deserialize, Serialize};

use crate::bundle::shc_bundle;
use crate::codes::FhirCodes;
use crate::error::FhirError;
use crate::fhir::Bundle;
use crate::jwk::{b64url, IssuerKey};

/// `vc.type` of a COVID-19 immunization card.
pub const SHC_TYPES: [&str; 3] = [
    "https://smarthealth.cards#health-card",
    "https://smarthealth.cards#immunization",
    "https://smarthealth.cards#covid19",
];
/// FHIR version carried in the card.
pub const FHIR_VERSION: &str = "4.0.1";
/// Longest JWS that fits one QR code (version 22, error correction L).
pub const MAX_SINGLE_QR_JWS: usize = 1195;
/// QR text prefix.
pub const QR_PREFIX: &str = "shc:/";
/// DEFLATE level (miniz 0..=10); 9 keeps cards small, which matters for the QR size.
const DEFLATE_LEVEL: u8 = 9;

/// The JOSE header, members in the order the SHC spec shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    /// `DEF`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    /// `ES256`.
    #[serde(default)]
    pub alg: String,
    /// RFC 7638 thumbprint of the signing key.
    #[serde(default)]
    pub kid: String,
}

/// `vc.credentialSubject`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShcSubject<B> {
    /// `4.0.1`.
    pub fhir_version: String,
    /// The FHIR bundle (typed when issuing, raw JSON when verifying cards of other issuers).
    pub fhir_bundle: B,
}

/// `vc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShcVc<B> {
    /// Card types.
    #[serde(rename = "type")]
    pub types: Vec<String>,
    /// Subject.
    pub credential_subject: ShcSubject<B>,
}

/// The JWS payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShcPayload<B> {
    /// Issuer URL (no trailing slash); keys are at `<iss>/.well-known/jwks.json`.
    pub iss: String,
    /// Not-before, seconds since the epoch (integer when we issue; other issuers use fractions).
    pub nbf: serde_json::Number,
    /// The credential.
    pub vc: ShcVc<B>,
}

/// An issued card: the compact JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCard {
    /// `header.payload.signature`, base64url without padding.
    pub jws: String,
}

impl HealthCard {
    /// The `shc:/...` QR text, or an error when the JWS exceeds one QR code (chunking is a
    /// deprecated part of the spec and not supported).
    pub fn qr_text(&self) -> Result<String, FhirError> {
        qr_numeric(&self.jws)
    }
}

/// The `.smart-health-card` file body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCardFile {
    /// Compact JWSs.
    pub verifiable_credential: Vec<String>,
}

impl HealthCardFile {
    /// File of several cards.
    pub fn new(cards: &[HealthCard]) -> Self {
        HealthCardFile {
            verifiable_credential: cards.iter().map(|c| c.jws.clone()).collect(),
        }
    }
    /// Serialized file (`application/smart-health-card`).
    pub fn to_json(&self) -> Result<String, FhirError> {
        Ok(serde_json::to_string(self)?)
    }
}

/// Issues SMART Health Cards. `Send + Sync`: share one across rayon workers.
#[derive(Debug, Clone)]
pub struct ShcIssuer {
    key: IssuerKey,
    iss: String,
    codes: FhirCodes,
}

impl ShcIssuer {
    /// An issuer for `iss` (an https URL; a trailing `/` is removed as the spec requires).
    pub fn new(key: IssuerKey, iss: &str, codes: FhirCodes) -> Result<Self, FhirError> {
        let iss = iss.trim().trim_end_matches('/');
        if !iss.starts_with("https://") && !iss.starts_with("http://") {
            return Err(FhirError::Key(format!(
                "SHC issuer '{iss}' must be an https URL (keys are served at <iss>/.well-known/jwks.json)"
            )));
        }
        Ok(ShcIssuer {
            key,
            iss: iss.to_string(),
            codes,
        })
    }

    /// The issuer URL.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// The signing key (for the JWKS).
    pub fn key(&self) -> &IssuerKey {
        &self.key
    }

    /// The code map.
    pub fn codes(&self) -> &FhirCodes {
        &self.codes
    }

    /// The payload for a person's credentials (one Immunization per dose).
    pub fn payload(
        &self,
        credentials: &[VaccinationCredential],
        nbf: u64,
    ) -> Result<ShcPayload<Bundle>, FhirError> {
        Ok(ShcPayload {
            iss: self.iss.clone(),
            nbf: nbf.into(),
            vc: ShcVc {
                types: SHC_TYPES.iter().map(|t| t.to_string()).collect(),
                credential_subject: ShcSubject {
                    fhir_version: FHIR_VERSION.into(),
                    fhir_bundle: shc_bundle(credentials, &self.codes)?,
                },
            },
        })
    }

    /// Issues a card for one person's credentials, valid from `nbf` (Unix seconds).
    pub fn issue(
        &self,
        credentials: &[VaccinationCredential],
        nbf: u64,
    ) -> Result<HealthCard, FhirError> {
        let payload = serde_json::to_vec(&self.payload(credentials, nbf)?)?;
        Ok(self.sign_payload(&payload))
    }

    /// Deflates and signs an already serialized payload (exposed for tests and re-signing).
    pub fn sign_payload(&self, payload_json: &[u8]) -> HealthCard {
        let header = JwsHeader {
            zip: Some("DEF".into()),
            alg: "ES256".into(),
            kid: self.key.kid().to_string(),
        };
        // A struct of three strings always serializes.
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        let deflated = miniz_oxide::deflate::compress_to_vec(payload_json, DEFLATE_LEVEL);
        let signing_input = format!("{}.{}", b64url(&header_json), b64url(&deflated));
        let signature = self.key.sign_es256(signing_input.as_bytes());
        HealthCard {
            jws: format!("{signing_input}.{}", b64url(&signature)),
        }
    }
}

/// The current time in Unix seconds, for `nbf` and verification clocks (0 if the system clock is
/// before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `shc:/` + two digits per JWS character (`ord(c) - 45`). Errors when the JWS is longer than
/// one QR code holds or contains a character outside the JWS alphabet.
pub fn qr_numeric(jws: &str) -> Result<String, FhirError> {
    if jws.len() > MAX_SINGLE_QR_JWS {
        return Err(FhirError::TooLargeForQr {
            len: jws.len(),
            limit: MAX_SINGLE_QR_JWS,
        });
    }
    let mut out = String::with_capacity(QR_PREFIX.len() + 2 * jws.len());
    out.push_str(QR_PREFIX);
    for c in jws.chars() {
        let code = (c as u32).wrapping_sub(45);
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') || code > 99 {
            return Err(FhirError::QrText(format!(
                "character {c:?} is not allowed in a compact JWS"
            )));
        }
        out.push(char::from(b'0' + (code / 10) as u8));
        out.push(char::from(b'0' + (code % 10) as u8));
    }
    Ok(out)
}

/// Inverse of [`qr_numeric`]: the JWS from `shc:/` numeric text (single-chunk only).
pub fn jws_from_qr_numeric(text: &str) -> Result<String, FhirError> {
    let digits = text
        .trim()
        .strip_prefix(QR_PREFIX)
        .ok_or_else(|| FhirError::QrText(format!("does not start with {QR_PREFIX}")))?;
    if digits.contains('/') {
        return Err(FhirError::QrText(
            "chunked SHC QR codes (shc:/N/M/...) are not supported".into(),
        ));
    }
    let bytes = digits.as_bytes();
    if bytes.len() % 2 != 0 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(FhirError::QrText(
            "payload must be an even number of digits".into(),
        ));
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let n = (pair[0] - b'0') * 10 + (pair[1] - b'0');
            if n > 77 {
                Err(FhirError::QrText(format!(
                    "digit pair {n} is outside the JWS alphabet (00..77)"
                )))
            } else {
                Ok(char::from(n + 45))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_encoding_per_spec() {
        // Spec: '-' (45) -> "00", '.' -> "01", '0' -> "03", 'A' -> "20", 'z' -> "77".
        assert_eq!(qr_numeric("-.0Az_").unwrap(), "shc:/000103207750");
        assert_eq!(jws_from_qr_numeric("shc:/000103207750").unwrap(), "-.0Az_");
        // The spec's example QR text starts with "shc:/56762909524320603460292437404460": that
        // is "eyJ6aXAiOiJERUYi" (base64url of `{"zip":"DEF"`).
        assert_eq!(
            qr_numeric("eyJ6aXAiOiJERUYi").unwrap(),
            "shc:/56762909524320603460292437404460"
        );
    }

    #[test]
    fn numeric_rejects_bad_input() {
        assert!(qr_numeric("a b").is_err());
        assert!(qr_numeric("é").is_err());
        assert!(matches!(
            qr_numeric(&"a".repeat(MAX_SINGLE_QR_JWS + 1)),
            Err(FhirError::TooLargeForQr { .. })
        ));
        assert!(qr_numeric(&"a".repeat(MAX_SINGLE_QR_JWS)).is_ok());
        assert!(jws_from_qr_numeric("shc:/1").is_err());
        assert!(jws_from_qr_numeric("shc:/99").is_err());
        assert!(jws_from_qr_numeric("shc:/1/2/00").is_err());
        assert!(jws_from_qr_numeric("xx:/00").is_err());
    }
}
