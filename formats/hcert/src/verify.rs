//! Verifying a decoded HCERT: kid lookup in a trust list of DSCs, ES256/PS256 signature check,
//! expiration, DSC extendedKeyUsage versus certificate type, and the DCC schema rules.

use std::collections::HashMap;

use der::{Decode, DecodePem};
use p256::ecdsa::signature::Verifier as _;
use spki::ObjectIdentifier;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::Certificate;

use crate::cose::{CoseSign1, CwtClaims, ALG_ES256, ALG_PS256};
use crate::error::{HcertError, Result};
use crate::keys::{kid_of, CertType, EKU_LEGACY, EKU_RECOVERY, EKU_TEST, EKU_VACCINATION};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// A DSC's public key.
#[derive(Debug, Clone)]
pub enum DscKey {
    /// P-256, for ES256.
    Ec(p256::ecdsa::VerifyingKey),
    /// RSA, for PS256.
    Rsa(rsa::PublicKey),
}

/// A trusted Document Signer Certificate, parsed once.
#[derive(Debug, Clone)]
pub struct Dsc {
    /// First 8 bytes of SHA-256 over the DER.
    pub kid: [u8; 8],
    /// The public key.
    pub key: DscKey,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// The DCC extendedKeyUsage OIDs present (test/vaccination/recovery); empty = unrestricted.
    pub dcc_key_usages: Vec<CertType>,
}

impl Dsc {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = Certificate::from_der(der)
            .map_err(|e| HcertError::Key(format!("DSC is not a DER X.509 certificate: {e}")))?;
        Self::from_certificate(&cert, der)
    }

    /// Parses a PEM certificate.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let cert = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| HcertError::Key(format!("DSC is not a PEM X.509 certificate: {e}")))?;
        let der = der::Encode::to_der(&cert).map_err(|e| HcertError::Key(e.to_string()))?;
        Self::from_certificate(&cert, &der)
    }

    fn from_certificate(cert: &Certificate, der: &[u8]) -> Result<Self> {
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let key_bytes = spki.subject_public_key.raw_bytes();
        let key = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => DscKey::Ec(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                    .map_err(|e| HcertError::Key(format!("DSC EC key is not P-256: {e}")))?,
            ),
            OID_RSA_ENCRYPTION | OID_RSASSA_PSS => {
                use rsa::pkcs1::DecodeRsaPublicKey;
                DscKey::Rsa(
                    rsa::PublicKey::from_pkcs1_der(key_bytes)
                        .map_err(|e| HcertError::Key(format!("DSC RSA key is malformed: {e}")))?,
                )
            }
            other => {
                return Err(HcertError::Key(format!(
                    "DSC key algorithm {other} is not EC or RSA"
                )))
            }
        };
        let unix = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        let validity = tbs.validity();
        let eku = tbs
            .get_extension::<ExtendedKeyUsage>()
            .map_err(|e| HcertError::Key(format!("DSC extendedKeyUsage is malformed: {e}")))?;
        let dcc_key_usages = eku
            .map(|(_, eku)| {
                eku.0
                    .iter()
                    .filter_map(|oid| match oid.to_string().as_str() {
                        EKU_TEST => Some(CertType::Test),
                        EKU_VACCINATION => Some(CertType::Vaccination),
                        EKU_RECOVERY => Some(CertType::Recovery),
                        other => EKU_LEGACY
                            .iter()
                            .find(|(o, _)| *o == other)
                            .map(|(_, t)| *t),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Dsc {
            kid: kid_of(der),
            key,
            not_before: unix(validity.not_before),
            not_after: unix(validity.not_after),
            dcc_key_usages,
        })
    }

    /// Checks the COSE signature with this DSC's key (ES256 for EC keys, PS256 for RSA keys).
    pub fn verify_signature(&self, cose: &CoseSign1) -> Result<()> {
        let alg = cose.alg();
        let signed = cose.signed_bytes()?;
        match (&self.key, alg) {
            (DscKey::Ec(vk), Some(ALG_ES256)) => {
                let sig = p256::ecdsa::Signature::from_slice(&cose.signature)
                    .map_err(|_| HcertError::BadSignature)?;
                vk.verify(&signed, &sig)
                    .map_err(|_| HcertError::BadSignature)
            }
            (DscKey::Rsa(pk), Some(ALG_PS256)) => {
                let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk.clone());
                let sig = rsa::pss::Signature::try_from(cose.signature.as_slice())
                    .map_err(|_| HcertError::BadSignature)?;
                vk.verify(&signed, &sig)
                    .map_err(|_| HcertError::BadSignature)
            }
            (DscKey::Ec(_), alg) => Err(HcertError::Algorithm {
                alg,
                key: "EC P-256",
            }),
            (DscKey::Rsa(_), alg) => Err(HcertError::Algorithm { alg, key: "RSA" }),
        }
    }
}

/// The DSCs a verifier trusts, indexed by kid.
#[derive(Debug, Clone, Default)]
pub struct TrustList {
    by_kid: HashMap<[u8; 8], Vec<Dsc>>,
}

impl TrustList {
    /// An empty trust list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a DSC.
    pub fn add(&mut self, dsc: Dsc) {
        self.by_kid.entry(dsc.kid).or_default().push(dsc);
    }

    /// Number of DSCs.
    pub fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum()
    }

    /// True when no DSC is trusted.
    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    /// Finds the DSC for the message's effective kid (protected header first) and verifies the
    /// signature with it. kid collisions are possible (8 bytes), so every candidate is tried.
    pub fn verify(&self, cose: &CoseSign1) -> Result<&Dsc> {
        let kid = cose.kid().ok_or(HcertError::MissingKid)?;
        let candidates = <[u8; 8]>::try_from(kid)
            .ok()
            .and_then(|k| self.by_kid.get(&k));
        let Some(candidates) = candidates else {
            return Err(HcertError::UnknownKid { kid_hex: hex(kid) });
        };
        let mut last = HcertError::BadSignature;
        for dsc in candidates {
            match dsc.verify_signature(cose) {
                Ok(()) => return Ok(dsc),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `iat <= clock <= exp`, and the clock within the DSC's validity.
pub fn check_expiration(claims: &CwtClaims, dsc: Option<&Dsc>, clock_unix: i64) -> Result<()> {
    if clock_unix < claims.iat {
        return Err(HcertError::Expired(format!(
            "validation time {clock_unix} is before issued-at {}",
            claims.iat
        )));
    }
    if clock_unix > claims.exp {
        return Err(HcertError::Expired(format!(
            "validation time {clock_unix} is after expiry {}",
            claims.exp
        )));
    }
    if let Some(d) = dsc {
        if clock_unix < d.not_before || clock_unix > d.not_after {
            return Err(HcertError::Expired(format!(
                "validation time {clock_unix} is outside the DSC validity {}..{}",
                d.not_before, d.not_after
            )));
        }
    }
    Ok(())
}

/// The certificate type of a DCC payload (first of v/t/r present).
pub fn cert_type(dcc: &serde_json::Value) -> Option<CertType> {
    [CertType::Vaccination, CertType::Test, CertType::Recovery]
        .into_iter()
        .find(|t| dcc.get(t.key().to_string()).is_some())
}

/// If the DSC restricts itself with DCC extendedKeyUsage OIDs, the payload's type must be one of them.
pub fn check_key_usage(dcc: &serde_json::Value, dsc: &Dsc) -> Result<()> {
    let t =
        cert_type(dcc).ok_or_else(|| HcertError::Schema("payload has none of v, t, r".into()))?;
    if dsc.dcc_key_usages.is_empty() || dsc.dcc_key_usages.contains(&t) {
        Ok(())
    } else {
        Err(HcertError::KeyUsage { cert_type: t.key() })
    }
}

/// The DCC schema rules a verifier must enforce beyond CBOR structure: `ver`, `nam` (with
/// `fnt` or `gnt` matching `^[A-Z<]*$`), `dob`, and exactly one of `v`/`t`/`r` holding exactly
/// one entry. (Full JSON-Schema validation is done in the interop test with Python `jsonschema`.)
pub fn check_schema(dcc: &serde_json::Value) -> Result<CertType> {
    let bad = |m: String| HcertError::Schema(m);
    let obj = dcc
        .as_object()
        .ok_or_else(|| bad("payload is not a JSON object".into()))?;
    if !obj.get("ver").is_some_and(serde_json::Value::is_string) {
        return Err(bad("ver (schema version string) is missing".into()));
    }
    if !obj.get("dob").is_some_and(serde_json::Value::is_string) {
        return Err(bad("dob is missing".into()));
    }
    let nam = obj
        .get("nam")
        .and_then(|n| n.as_object())
        .ok_or_else(|| bad("nam is missing".into()))?;
    let std_name = |k: &str| nam.get(k).and_then(|v| v.as_str());
    if std_name("fnt").is_none() && std_name("gnt").is_none() {
        return Err(bad("nam needs fnt or gnt".into()));
    }
    for field in ["fnt", "gnt"] {
        if let Some(v) = std_name(field) {
            crate::names::validate_transliterated(field, v).map_err(|e| bad(e.to_string()))?;
        }
    }
    let present: Vec<CertType> = [CertType::Vaccination, CertType::Test, CertType::Recovery]
        .into_iter()
        .filter(|t| obj.contains_key(&t.key().to_string()))
        .collect();
    let [t] = present.as_slice() else {
        return Err(bad(format!(
            "a DCC holds exactly one of v, t, r; found {}",
            present
                .iter()
                .map(|t| t.key().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let entries = obj[&t.key().to_string()].as_array().map_or(0, Vec::len);
    if entries != 1 {
        return Err(bad(format!(
            "{} must hold exactly one entry, found {entries}",
            t.key()
        )));
    }
    Ok(*t)
}
