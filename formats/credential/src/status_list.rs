//! W3C Bitstring Status List: the lists a verifier downloads once and checks offline.
//!
//! Each certificate of a program that enables status gets two `credentialStatus` entries
//! (`revocation`, `suspension`) pointing at a bit of a list credential. The position is a pure
//! function of the numeric certificate id ([`StatusPosition::of_certificate`]): list
//! `id / 131072`, index `id % 131072`. Certificate ids are already unique and replay-stable
//! (dedupe's counter), so no second allocator has to be made exactly-once, and a verifier holding
//! an EU DCC or a SMART Health Card (which carry the certificate id but no `credentialStatus`)
//! finds the same bit.
//!
//! A list credential is a VC 2.0 `BitstringStatusListCredential` signed with `eddsa-rdfc-2022`;
//! `encodedList` = `u` + base64url(GZIP(bits)), bit 0 the most significant bit of byte 0. A
//! suspension list may carry `suspendedUntil: [{index, until}]` (the last day of a suspension
//! with an end date), issuer-dependent terms under W3C's `undefined-terms/v2` context, so they
//! are signed with the rest.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::canon::Canonicalizer;
use crate::error::SignError;
use crate::loader::{CREDENTIALS_V2_URL, STATUS_LIST_V1_URL, UNDEFINED_TERMS_V2_URL};
use crate::suite::{sign_with_suite, ProofSuite};

/// Bits per list: the specification's minimum (16 KiB), so one list hides each holder among
/// 131,072 certificates.
pub const LIST_BITS: u64 = 131_072;

/// Where lists are served unless configured (`sign.status_base_url`, `status_list.base_url`).
pub const DEFAULT_BASE_URL: &str = "https://divoc.example/status/v1";

/// `type` of a credential status entry.
pub const ENTRY_TYPE: &str = "BitstringStatusListEntry";

/// What a list records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusPurpose {
    /// Permanently withdrawn.
    Revocation,
    /// Withdrawn until lifted or until an end date.
    Suspension,
}

impl StatusPurpose {
    /// Both purposes, in the order entries are written.
    pub const ALL: [StatusPurpose; 2] = [StatusPurpose::Revocation, StatusPurpose::Suspension];

    /// `revocation` or `suspension`.
    pub fn name(self) -> &'static str {
        match self {
            StatusPurpose::Revocation => "revocation",
            StatusPurpose::Suspension => "suspension",
        }
    }

    /// Parses [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// Why a status list could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatusListError {
    /// Missing or mistyped member.
    #[error("status list credential: {0}")]
    Malformed(String),
    /// `encodedList` is not `u` + base64url of a GZIP stream.
    #[error("status list encodedList: {0}")]
    Encoding(String),
}

/// A certificate's bit: which list, which index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusPosition {
    /// List number.
    pub list: u64,
    /// Bit index in the list.
    pub index: u64,
}

impl StatusPosition {
    /// The position of a numeric certificate id; `None` for ids that are not numbers.
    pub fn of_certificate(certificate_id: &str) -> Option<Self> {
        let n: u64 = certificate_id.parse().ok()?;
        Some(StatusPosition {
            list: n / LIST_BITS,
            index: n % LIST_BITS,
        })
    }
}

/// Program ids become URL and key segments: letters, digits, `.`, `_`, `-` only.
pub fn is_safe_program_id(program: &str) -> bool {
    !program.is_empty()
        && program != "."
        && program != ".."
        && program
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The URL (and `id`) of a program's list credential: `<base>/<program>/<purpose>/<list>`.
pub fn list_url(base: &str, program: &str, purpose: StatusPurpose, list: u64) -> String {
    format!(
        "{}/{}/{}/{list}",
        base.trim_end_matches('/'),
        program,
        purpose.name()
    )
}

/// Splits a list URL made by [`list_url`] into (program, purpose, list) given its base.
pub fn parse_list_url(base: &str, url: &str) -> Option<(String, StatusPurpose, u64)> {
    let rest = url
        .strip_prefix(base.trim_end_matches('/'))?
        .strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (Some(program), Some(purpose), Some(list), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some((
        program.to_owned(),
        StatusPurpose::parse(purpose)?,
        list.parse().ok()?,
    ))
}

/// One `credentialStatus` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusEntry {
    /// `<list url>#<index>`.
    pub id: String,
    /// [`ENTRY_TYPE`].
    #[serde(rename = "type")]
    pub entry_type: String,
    /// `revocation` or `suspension`.
    pub status_purpose: String,
    /// The bit, as a decimal string (the specification's type).
    pub status_list_index: String,
    /// The list credential's URL.
    pub status_list_credential: String,
}

impl StatusEntry {
    /// The entries (revocation, then suspension) of a certificate of `program`.
    pub fn for_certificate(base: &str, program: &str, position: StatusPosition) -> Vec<Self> {
        StatusPurpose::ALL
            .into_iter()
            .map(|purpose| {
                let url = list_url(base, program, purpose, position.list);
                StatusEntry {
                    id: format!("{url}#{}", position.index),
                    entry_type: ENTRY_TYPE.into(),
                    status_purpose: purpose.name().into(),
                    status_list_index: position.index.to_string(),
                    status_list_credential: url,
                }
            })
            .collect()
    }

    /// The context a VC 1.1 credential needs for these entries (VC 2.0 defines them itself).
    pub const VC11_CONTEXT: &'static str = STATUS_LIST_V1_URL;
}

/// A list's bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitstring {
    bytes: Vec<u8>,
}

impl Default for Bitstring {
    fn default() -> Self {
        Bitstring {
            bytes: vec![0; (LIST_BITS / 8) as usize],
        }
    }
}

impl Bitstring {
    /// The bit at `index` (false past the end).
    pub fn get(&self, index: u64) -> bool {
        let byte = (index / 8) as usize;
        self.bytes
            .get(byte)
            .is_some_and(|b| b & (0x80 >> (index % 8)) != 0)
    }

    /// Sets or clears the bit at `index`; indexes past the end grow the list (whole bytes).
    pub fn set(&mut self, index: u64, value: bool) {
        let byte = (index / 8) as usize;
        if byte >= self.bytes.len() {
            self.bytes.resize(byte + 1, 0);
        }
        let mask = 0x80 >> (index % 8);
        if value {
            self.bytes[byte] |= mask;
        } else {
            self.bytes[byte] &= !mask;
        }
    }

    /// The raw bytes (what a state file keeps).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Bitstring { bytes }
    }

    /// How many bits are set.
    pub fn count_ones(&self) -> u64 {
        self.bytes.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// `u` + base64url (no padding) of the GZIP-compressed bits.
    pub fn encode(&self) -> String {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&self.bytes);
        let compressed = gz.finish().unwrap_or_default();
        format!("u{}", URL_SAFE_NO_PAD.encode(compressed))
    }

    /// Parses [`Self::encode`]'s output (at most 16 MiB of bits, so a hostile list cannot
    /// exhaust memory).
    pub fn decode(encoded: &str) -> Result<Self, StatusListError> {
        let b64 = encoded
            .strip_prefix('u')
            .ok_or_else(|| StatusListError::Encoding("not multibase base64url (u...)".into()))?;
        let compressed = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| StatusListError::Encoding(format!("base64url: {e}")))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .take(16 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| StatusListError::Encoding(format!("gzip: {e}")))?;
        Ok(Bitstring { bytes })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListCredential<'a> {
    #[serde(rename = "@context")]
    context: Vec<&'a str>,
    id: &'a str,
    #[serde(rename = "type")]
    types: [&'a str; 2],
    issuer: &'a str,
    valid_from: &'a str,
    credential_subject: ListSubject<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListSubject<'a> {
    id: String,
    #[serde(rename = "type")]
    subject_type: &'a str,
    status_purpose: &'a str,
    encoded_list: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suspended_until: Vec<SuspensionEnd>,
}

/// The last day of one suspension with an end date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionEnd {
    /// The bit, as a decimal string.
    pub index: String,
    /// `YYYY-MM-DD`, inclusive.
    pub until: String,
}

/// What a list credential says, before its signature is checked.
#[derive(Debug, Clone)]
pub struct StatusList {
    /// Its URL (`id`).
    pub url: String,
    /// Its issuer.
    pub issuer: String,
    /// Revocation or suspension.
    pub purpose: StatusPurpose,
    /// When it was published.
    pub valid_from: String,
    /// The bits.
    pub bits: Bitstring,
    /// Suspension end dates by index (suspension lists only).
    pub ends: BTreeMap<u64, String>,
}

impl StatusList {
    /// The list credential, signed with `eddsa-rdfc-2022`.
    pub fn sign(
        &self,
        canon: &Canonicalizer,
        key: &SigningKey,
        verification_method: &str,
    ) -> Result<Value, SignError> {
        let unsigned = ListCredential {
            context: if self.ends.is_empty() {
                vec![CREDENTIALS_V2_URL]
            } else {
                vec![CREDENTIALS_V2_URL, UNDEFINED_TERMS_V2_URL]
            },
            id: &self.url,
            types: ["VerifiableCredential", "BitstringStatusListCredential"],
            issuer: &self.issuer,
            valid_from: &self.valid_from,
            credential_subject: ListSubject {
                id: format!("{}#list", self.url),
                subject_type: "BitstringStatusList",
                status_purpose: self.purpose.name(),
                encoded_list: self.bits.encode(),
                suspended_until: self
                    .ends
                    .iter()
                    .map(|(i, until)| SuspensionEnd {
                        index: i.to_string(),
                        until: until.clone(),
                    })
                    .collect(),
            },
        };
        let doc = serde_json::to_value(&unsigned).map_err(|_| SignError::NotAnObject)?;
        sign_with_suite(
            canon,
            &doc,
            key,
            verification_method,
            &self.valid_from,
            ProofSuite::EddsaRdfc2022,
        )
    }

    /// Reads a list credential (the caller verifies its proof with the issuer's key).
    pub fn read(credential: &Value) -> Result<Self, StatusListError> {
        let bad = |what: &str| StatusListError::Malformed(what.to_owned());
        let text = |v: &Value, name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("missing {name}")))
        };
        let types = credential
            .get("type")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("missing type"))?;
        if !types
            .iter()
            .any(|t| t.as_str() == Some("BitstringStatusListCredential"))
        {
            return Err(bad("not a BitstringStatusListCredential"));
        }
        let subject = credential
            .get("credentialSubject")
            .ok_or_else(|| bad("missing credentialSubject"))?;
        let purpose = text(subject, "statusPurpose")?;
        let purpose = StatusPurpose::parse(&purpose)
            .ok_or_else(|| bad(&format!("unsupported statusPurpose {purpose:?}")))?;
        let ends: Vec<SuspensionEnd> = match subject.get("suspendedUntil") {
            None => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| bad(&format!("suspendedUntil: {e}")))?,
        };
        let ends = ends
            .into_iter()
            .map(|e| {
                e.index
                    .parse()
                    .map(|i| (i, e.until))
                    .map_err(|_| bad("suspendedUntil index is not a number"))
            })
            .collect::<Result<_, _>>()?;
        let issuer = credential
            .get("issuer")
            .and_then(|i| i.as_str().or_else(|| i.get("id").and_then(Value::as_str)))
            .ok_or_else(|| bad("missing issuer"))?;
        Ok(StatusList {
            url: text(credential, "id")?,
            issuer: issuer.to_owned(),
            purpose,
            valid_from: text(credential, "validFrom").unwrap_or_default(),
            bits: Bitstring::decode(&text(subject, "encodedList")?)?,
            ends,
        })
    }

    /// Whether the bit at `index` withdraws the certificate on `today` (`YYYY-MM-DD`): a set
    /// revocation bit always, a set suspension bit unless its end date has passed. Returns the
    /// end date of a suspension when there is one.
    pub fn withdrawn(&self, index: u64, today: &str) -> Option<Option<String>> {
        if !self.bits.get(index) {
            return None;
        }
        match self.ends.get(&index) {
            Some(until) if until.as_str() < today => None,
            until => Some(until.cloned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_the_specification_order_and_round_trip() {
        let mut bits = Bitstring::default();
        bits.set(0, true);
        bits.set(9, true);
        assert_eq!(bits.as_bytes()[0], 0x80);
        assert_eq!(bits.as_bytes()[1], 0x40);
        let decoded = Bitstring::decode(&bits.encode()).expect("decodes");
        assert_eq!(decoded, bits);
        assert!(decoded.get(9) && !decoded.get(10));
        bits.set(9, false);
        assert_eq!(bits.count_ones(), 1);
        assert!(Bitstring::decode("zabc").is_err());
        assert!(Bitstring::decode("uAAAA").is_err());
    }

    #[test]
    fn positions_and_urls() {
        let p = StatusPosition::of_certificate("100000131073").expect("numeric");
        assert_eq!(
            p,
            StatusPosition {
                list: 100000131073 / LIST_BITS,
                index: 100000131073 % LIST_BITS
            }
        );
        assert!(StatusPosition::of_certificate("abc").is_none());
        let url = list_url(
            "https://x.example/status/v1/",
            "C19",
            StatusPurpose::Suspension,
            7,
        );
        assert_eq!(url, "https://x.example/status/v1/C19/suspension/7");
        assert_eq!(
            parse_list_url("https://x.example/status/v1", &url),
            Some(("C19".into(), StatusPurpose::Suspension, 7))
        );
        let entries = StatusEntry::for_certificate("https://x.example/status/v1", "C19", p);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].status_purpose, "revocation");
        assert_eq!(entries[1].status_list_index, p.index.to_string());
    }

    #[test]
    fn a_signed_list_verifies_reads_back_and_reports_suspension_ends() {
        let canon = Canonicalizer::default();
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut bits = Bitstring::default();
        bits.set(5, true);
        bits.set(6, true);
        let list = StatusList {
            url: "https://x.example/status/v1/C19/suspension/0".into(),
            issuer: "did:web:x.example".into(),
            purpose: StatusPurpose::Suspension,
            valid_from: "2026-12-01T00:00:00Z".into(),
            bits,
            ends: BTreeMap::from([(6, "2026-12-10".to_string())]),
        };
        let signed = list
            .sign(&canon, &key, "did:web:x.example#k1")
            .expect("signs");
        crate::proof::verify_with(&canon, &signed, &key.verifying_key()).expect("verifies");
        let read = StatusList::read(&signed).expect("reads");
        assert_eq!(read.withdrawn(5, "2026-12-06"), Some(None));
        assert_eq!(
            read.withdrawn(6, "2026-12-10"),
            Some(Some("2026-12-10".into()))
        );
        assert_eq!(read.withdrawn(6, "2026-12-11"), None);
        assert_eq!(read.withdrawn(7, "2026-12-06"), None);
        let mut tampered = signed.clone();
        tampered["credentialSubject"]["encodedList"] =
            serde_json::json!(Bitstring::default().encode());
        assert!(crate::proof::verify_with(&canon, &tampered, &key.verifying_key()).is_err());
    }
}
