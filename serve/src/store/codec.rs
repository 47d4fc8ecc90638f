//! Keys and values of the certificate store.
//!
//! Every key component is length-prefixed (u16, big-endian), so a prefix made of whole components
//! never matches a longer value (`P1` is not a prefix of `P10`) whatever bytes the text holds, and
//! numbers are big-endian with the sign bit flipped, so keys sort by dose and by date.

use anyhow::{bail, Context, Result};

/// Appends one text component.
pub fn push_text(key: &mut Vec<u8>, text: &str) {
    // Longer components are cut, not rejected: the pipeline's validation keeps every id and code
    // far below 64 KiB, and a cut only makes two absurd keys share an entry.
    let bytes = &text.as_bytes()[..text.len().min(usize::from(u16::MAX))];
    key.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    key.extend_from_slice(bytes);
}

pub fn push_i64(key: &mut Vec<u8>, n: i64) {
    key.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
}

pub fn push_i32(key: &mut Vec<u8>, n: i32) {
    key.extend_from_slice(&((n as u32) ^ (1 << 31)).to_be_bytes());
}

/// A key from text components.
pub fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for p in parts {
        push_text(&mut k, p);
    }
    k
}

/// Reads keys back, component by component.
pub struct KeyReader<'a>(&'a [u8]);

impl<'a> KeyReader<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        Self(key)
    }

    pub fn text(&mut self) -> Result<&'a str> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        std::str::from_utf8(self.take(len)?).context("key component is not UTF-8")
    }

    pub fn i64(&mut self) -> Result<i64> {
        let b: [u8; 8] = self.take(8)?.try_into()?;
        Ok((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            bail!("key is truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

/// What the store keeps of one certificate (tenant and id are its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pre_enrollment_code: String,
    pub dose: i64,
    pub state: Option<String>,
    pub credential_json: String,
    /// The published QR payload, only when it is not the standard ZIP of the credential (then it
    /// is derived on read instead of stored twice).
    pub qr_payload: Option<Vec<u8>>,
}

const VERSION: u8 = 1;
const NO_STATE: u16 = u16::MAX;

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let qr = self.qr_payload.as_deref().unwrap_or_default();
        let mut v = Vec::with_capacity(
            24 + self.pre_enrollment_code.len() + self.credential_json.len() + qr.len(),
        );
        v.push(VERSION);
        v.extend_from_slice(&self.dose.to_be_bytes());
        push_text(&mut v, &self.pre_enrollment_code);
        match &self.state {
            // The sentinel length stays free: a state is never 64 KiB long.
            Some(s) => push_text(&mut v, &s[..s.len().min(usize::from(NO_STATE) - 1)]),
            None => v.extend_from_slice(&NO_STATE.to_be_bytes()),
        }
        v.extend_from_slice(&(qr.len() as u32).to_be_bytes());
        v.extend_from_slice(qr);
        v.extend_from_slice(self.credential_json.as_bytes());
        v
    }

    pub fn decode(bytes: &[u8]) -> Result<Record> {
        let Some((&version, rest)) = bytes.split_first() else {
            bail!("empty record");
        };
        if version != VERSION {
            bail!(
                "record version {version} is not {VERSION}: rebuild the index (delete index_dir)"
            );
        }
        let mut r = KeyReader::new(rest);
        let dose: [u8; 8] = r.take(8)?.try_into()?;
        let pre = r.text()?.to_owned();
        let state_len = r.take(2)?;
        let state = match u16::from_be_bytes([state_len[0], state_len[1]]) {
            NO_STATE => None,
            n => Some(
                std::str::from_utf8(r.take(usize::from(n))?)
                    .context("state is not UTF-8")?
                    .to_owned(),
            ),
        };
        let qr_len = r.take(4)?;
        let qr_len = u32::from_be_bytes(qr_len.try_into()?) as usize;
        let qr = r.take(qr_len)?;
        let credential_json = std::str::from_utf8(r.0)
            .context("credential is not UTF-8")?
            .to_owned();
        Ok(Record {
            pre_enrollment_code: pre,
            dose: i64::from_be_bytes(dose),
            state,
            credential_json,
            qr_payload: (!qr.is_empty()).then(|| qr.to_vec()),
        })
    }
}

/// The latest suspension event of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspension {
    /// Ingest time of the event (ms): a later event wins, whatever order objects are read in.
    pub at_ms: i64,
    pub suspended: bool,
    /// Last day suspended (days since 1970); i32::MAX: until lifted.
    pub until: i32,
}

impl Suspension {
    pub fn encode(&self) -> [u8; 13] {
        let mut v = [0u8; 13];
        v[..8].copy_from_slice(&self.at_ms.to_be_bytes());
        v[8] = u8::from(self.suspended);
        v[9..].copy_from_slice(&self.until.to_be_bytes());
        v
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 13] = b.try_into().ok()?;
        Some(Self {
            at_ms: i64::from_be_bytes(b[..8].try_into().ok()?),
            suspended: b[8] == 1,
            until: i32::from_be_bytes(b[9..].try_into().ok()?),
        })
    }
}

/// The last 10 digits of a phone number (`tel:+91 98765-43210` and `9876543210` match), or
/// none for fewer than 6 digits.
pub fn mobile_digits(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 6).then(|| digits[digits.len().saturating_sub(10)..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_and_without_optional_parts() {
        for r in [
            Record {
                pre_enrollment_code: "P-1".into(),
                dose: 3,
                state: Some("Kerala".into()),
                credential_json: "{\"a\":1}".into(),
                qr_payload: None,
            },
            Record {
                pre_enrollment_code: String::new(),
                dose: -1,
                state: None,
                credential_json: String::new(),
                qr_payload: Some(vec![0, 1, 2]),
            },
        ] {
            assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }
        assert!(Record::decode(&[]).is_err());
        assert!(Record::decode(&[9, 0]).is_err(), "unknown version");
        let mut cut = Record {
            pre_enrollment_code: "P".into(),
            dose: 1,
            state: None,
            credential_json: "{}".into(),
            qr_payload: None,
        }
        .encode();
        cut.truncate(5);
        assert!(Record::decode(&cut).is_err(), "truncated");
    }

    #[test]
    fn whole_components_never_prefix_longer_values() {
        let short = key(&["t", "P1"]);
        let long = key(&["t", "P10"]);
        assert!(!long.starts_with(&short));
        let mut k = key(&["t"]);
        push_i64(&mut k, -2);
        let mut k2 = key(&["t"]);
        push_i64(&mut k2, 1);
        assert!(k < k2, "negative numbers sort first");
        let mut r = KeyReader::new(&k);
        assert_eq!(r.text().unwrap(), "t");
        assert_eq!(r.i64().unwrap(), -2);
    }

    #[test]
    fn mobile_numbers_match_with_or_without_prefixes() {
        assert_eq!(
            mobile_digits("tel:+91 98765-43210").as_deref(),
            Some("9876543210")
        );
        assert_eq!(mobile_digits("9876543210").as_deref(), Some("9876543210"));
        assert_eq!(mobile_digits("tel:12"), None);
    }
}
