//! EU Digital COVID Certificate (HCERT): DCC payload, CWT, COSE_Sign1, zlib, Base45, HC1.
//!
//! Issuing: [`HcertIssuer::issue`] turns a stored DIVOC [`VaccinationCredential`] plus the
//! holder's transliterated names ([`DccHolder`]) into an `HC1:` string:
//! DCC JSON -> CBOR -> CWT claims -> COSE_Sign1 (ES256, RFC 6979) -> zlib -> Base45 -> `HC1:`.
//!
//! Verifying: [`decode_hc1`] undoes the transport layers stage by stage and [`verify_hc1`] adds
//! the signature (via a [`TrustList`] of DSCs), expiration, key-usage and schema checks. Each
//! stage fails with its own [`HcertError`] variant ([`HcertError::stage`]).
//!
//! Keys: [`generate_self_signed_dsc`] / [`generate_dsc_csr`] create a P-256 key with a DSC or a
//! CSR; [`DscSigner::load`] reads them back.

pub mod base45;
pub mod config;
pub mod cose;
pub mod error;
pub mod keys;
pub mod names;
pub mod payload;
pub mod verify;

use divoc_credential::credential::VaccinationCredential;

pub use config::{DccConfig, IssuerConfig, VaccineMapping};
pub use cose::{CoseSign1, CwtClaims};
pub use error::{HcertError, Result, Stage};
pub use keys::{
    generate_dsc_csr, generate_self_signed_dsc, kid_of, CertType, DscOptions, DscSigner,
    GeneratedDsc,
};
pub use names::{split_name, transliterate_icao, NameParts};
pub use payload::{build_payload, DccHolder, DccPayload, PersonName, VaccinationEntry};
pub use verify::{check_expiration, check_key_usage, check_schema, Dsc, DscKey, TrustList};

/// The HCERT context prefix.
pub const HC1_PREFIX: &str = "HC1:";

/// Decompressed COSE messages larger than this are rejected (a DCC is a few hundred bytes;
/// the limit stops zlib bombs).
pub const MAX_COSE_BYTES: usize = 64 * 1024;

/// An issued certificate.
#[derive(Debug, Clone)]
pub struct IssuedHcert {
    /// The QR text, `HC1:...` (encode as an alphanumeric QR at ECC level Q).
    pub hc1: String,
    /// The payload that was signed.
    pub payload: DccPayload,
    /// Issued-at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
}

/// Issues HCERTs with one DSC and one config. `Send + Sync`; `issue` takes `&self`, so it can be
/// shared by a rayon pool.
#[derive(Debug, Clone)]
pub struct HcertIssuer {
    signer: DscSigner,
    config: DccConfig,
}

impl HcertIssuer {
    /// Combines a signer and the issuing config.
    pub fn new(signer: DscSigner, config: DccConfig) -> Self {
        HcertIssuer { signer, config }
    }

    /// The config in use.
    pub fn config(&self) -> &DccConfig {
        &self.config
    }

    /// The signer in use.
    pub fn signer(&self) -> &DscSigner {
        &self.signer
    }

    /// Builds the payload from the credential and signs it; `iat_unix` is the issue time
    /// (`exp` = `iat` + `validity_days`).
    pub fn issue(
        &self,
        cred: &VaccinationCredential,
        holder: &DccHolder,
        iat_unix: i64,
    ) -> Result<IssuedHcert> {
        let payload = build_payload(cred, holder, &self.config)?;
        self.issue_payload(payload, iat_unix)
    }

    /// Signs an already-built payload (validated first with [`DccPayload::validate`]).
    pub fn issue_payload(&self, payload: DccPayload, iat_unix: i64) -> Result<IssuedHcert> {
        payload.validate()?;
        let exp = iat_unix.saturating_add(i64::from(self.config.issuer.validity_days) * 86_400);
        let dcc =
            ciborium::Value::serialized(&payload).map_err(|e| HcertError::Encode(e.to_string()))?;
        let claims = CwtClaims::encode(&self.config.issuer.country, iat_unix, exp, dcc)?;
        let protected = CoseSign1::protected_header(cose::ALG_ES256, &self.signer.kid())?;
        let signature = self
            .signer
            .sign(&CoseSign1::sig_structure(&protected, &claims)?);
        let cose = CoseSign1::encode_tagged(protected, claims, signature.to_vec())?;
        Ok(IssuedHcert {
            hc1: encode_hc1(&cose),
            payload,
            iat: iat_unix,
            exp,
        })
    }
}

/// zlib-compresses (level 9) and Base45-encodes a COSE message and prepends `HC1:`.
pub fn encode_hc1(cose: &[u8]) -> String {
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(cose, 9);
    let mut out = String::with_capacity(HC1_PREFIX.len() + compressed.len() * 3 / 2 + 2);
    out.push_str(HC1_PREFIX);
    out.push_str(&base45::encode(&compressed));
    out
}

/// Stage 1: strips the `HC1:` prefix.
pub fn unprefix(text: &str) -> Result<&str> {
    text.strip_prefix(HC1_PREFIX)
        .ok_or_else(|| HcertError::Prefix {
            found: text.chars().take(4).collect(),
        })
}

/// Stage 3: inflates zlib data. HCERT mandates zlib, so data without a valid zlib header is
/// rejected (official case Z1), as is output above [`MAX_COSE_BYTES`].
pub fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    let looks_zlib = data.len() >= 2
        && data[0] & 0x0F == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    if !looks_zlib {
        return Err(HcertError::Decompress("data has no zlib header".into()));
    }
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, MAX_COSE_BYTES)
        .map_err(|e| HcertError::Decompress(format!("{:?}", e.status)))
}

/// A decoded (not yet verified) HCERT.
#[derive(Debug, Clone)]
pub struct DecodedHcert {
    /// The COSE_Sign1 message.
    pub cose: CoseSign1,
    /// Its CWT claims and DCC payload.
    pub claims: CwtClaims,
}

/// Stages 1–4: `HC1:` text to COSE message and CWT claims, without any trust decision.
pub fn decode_hc1(text: &str) -> Result<DecodedHcert> {
    let b45 = unprefix(text)?;
    let compressed = base45::decode(b45)?;
    let cose_bytes = decompress(&compressed)?;
    decode_cose(&cose_bytes)
}

/// Stage 4 alone: COSE bytes to message and claims.
pub fn decode_cose(cose_bytes: &[u8]) -> Result<DecodedHcert> {
    let cose = CoseSign1::from_cbor(cose_bytes)?;
    let claims = CwtClaims::decode(&cose.payload)?;
    Ok(DecodedHcert { cose, claims })
}

/// A fully verified HCERT.
#[derive(Debug, Clone)]
pub struct VerifiedHcert {
    /// Claims and the DCC payload.
    pub claims: CwtClaims,
    /// The kid of the DSC that verified it.
    pub kid: [u8; 8],
    /// Vaccination, test or recovery.
    pub cert_type: CertType,
}

/// Decodes and fully verifies an `HC1:` string at `clock_unix`: signature (kid from the
/// protected header, else the unprotected one), `iat <= clock <= exp` and DSC validity, DSC
/// key usage, schema rules.
pub fn verify_hc1(text: &str, trust: &TrustList, clock_unix: i64) -> Result<VerifiedHcert> {
    let decoded = decode_hc1(text)?;
    let dsc = trust.verify(&decoded.cose)?;
    check_expiration(&decoded.claims, Some(dsc), clock_unix)?;
    let cert_type = check_schema(&decoded.claims.dcc)?;
    check_key_usage(&decoded.claims.dcc, dsc)?;
    Ok(VerifiedHcert {
        claims: decoded.claims,
        kid: dsc.kid,
        cert_type,
    })
}
