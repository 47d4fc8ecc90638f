//! COSE_Sign1 (RFC 9052) and CWT (RFC 8392) for HCERT: building the signed structure and
//! parsing it back, tagged (18), untagged, or wrapped in the CWT tag 61.

use ciborium::value::{Integer, Value};

use crate::error::{HcertError, Result};

/// COSE header label `alg`.
pub const HEADER_ALG: i64 = 1;
/// COSE header label `kid`.
pub const HEADER_KID: i64 = 4;
/// COSE algorithm ES256 (ECDSA P-256 / SHA-256).
pub const ALG_ES256: i64 = -7;
/// COSE algorithm PS256 (RSASSA-PSS / SHA-256).
pub const ALG_PS256: i64 = -37;
/// CBOR tag of COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;
/// CBOR tag of a CWT.
pub const TAG_CWT: u64 = 61;
/// CWT claim keys.
pub const CLAIM_ISS: i64 = 1;
/// `exp`.
pub const CLAIM_EXP: i64 = 4;
/// `iat`.
pub const CLAIM_IAT: i64 = 6;
/// `hcert`.
pub const CLAIM_HCERT: i64 = -260;

/// Encodes a CBOR value to bytes.
pub fn to_cbor(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    ciborium::into_writer(value, &mut out).map_err(|e| HcertError::Encode(e.to_string()))?;
    Ok(out)
}

fn int(i: i64) -> Value {
    Value::Integer(Integer::from(i))
}

/// A parsed COSE_Sign1 message.
#[derive(Debug, Clone)]
pub struct CoseSign1 {
    /// The protected header exactly as serialized (it is what was signed).
    pub protected_bytes: Vec<u8>,
    /// The decoded protected header.
    pub protected: Vec<(Value, Value)>,
    /// The unprotected header.
    pub unprotected: Vec<(Value, Value)>,
    /// The payload (CWT claims CBOR).
    pub payload: Vec<u8>,
    /// The signature (raw r||s for ES256).
    pub signature: Vec<u8>,
}

fn header_get(map: &[(Value, Value)], label: i64) -> Option<&Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Integer(i) if i128::from(*i) == i128::from(label) => Some(v),
        _ => None,
    })
}

impl CoseSign1 {
    /// Builds the protected header `{1: alg, 4: kid}`.
    pub fn protected_header(alg: i64, kid: &[u8]) -> Result<Vec<u8>> {
        to_cbor(&Value::Map(vec![
            (int(HEADER_ALG), int(alg)),
            (int(HEADER_KID), Value::Bytes(kid.to_vec())),
        ]))
    }

    /// `Sig_structure = ["Signature1", protected, external_aad = h'', payload]`, the bytes that
    /// are signed.
    pub fn sig_structure(protected_bytes: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
        to_cbor(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected_bytes.to_vec()),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload.to_vec()),
        ]))
    }

    /// Serializes the tagged (18) COSE_Sign1 with an empty unprotected header.
    pub fn encode_tagged(
        protected_bytes: Vec<u8>,
        payload: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<Vec<u8>> {
        to_cbor(&Value::Tag(
            TAG_COSE_SIGN1,
            Box::new(Value::Array(vec![
                Value::Bytes(protected_bytes),
                Value::Map(Vec::new()),
                Value::Bytes(payload),
                Value::Bytes(signature),
            ])),
        ))
    }

    /// Parses a COSE_Sign1: tag 18, untagged, or either wrapped in the CWT tag 61.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| HcertError::Cose(m);
        let mut value: Value =
            ciborium::from_reader(bytes).map_err(|e| bad(format!("not CBOR: {e}")))?;
        if let Value::Tag(TAG_CWT, inner) = value {
            value = *inner;
        }
        if let Value::Tag(TAG_COSE_SIGN1, inner) = value {
            value = *inner;
        }
        let items = match value {
            Value::Array(items) if items.len() == 4 => items,
            Value::Tag(t, _) => {
                return Err(bad(format!("unexpected CBOR tag {t} (want 18 or 61)")))
            }
            other => {
                return Err(bad(format!(
                    "expected a 4-element array, got {}",
                    kind(&other)
                )))
            }
        };
        let mut it = items.into_iter();
        let (Some(p), Some(u), Some(pl), Some(s)) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad("expected 4 elements".into()));
        };
        let protected_bytes = match p {
            Value::Bytes(b) => b,
            other => {
                return Err(bad(format!(
                    "protected header must be a byte string, got {}",
                    kind(&other)
                )))
            }
        };
        let protected = if protected_bytes.is_empty() {
            Vec::new()
        } else {
            match ciborium::from_reader::<Value, _>(protected_bytes.as_slice()) {
                Ok(Value::Map(m)) => m,
                Ok(other) => {
                    return Err(bad(format!(
                        "protected header must encode a map, got {}",
                        kind(&other)
                    )))
                }
                Err(e) => return Err(bad(format!("protected header is not CBOR: {e}"))),
            }
        };
        let unprotected = match u {
            Value::Map(m) => m,
            other => {
                return Err(bad(format!(
                    "unprotected header must be a map, got {}",
                    kind(&other)
                )))
            }
        };
        let payload = match pl {
            Value::Bytes(b) => b,
            other => {
                return Err(bad(format!(
                    "payload must be an embedded byte string, got {}",
                    kind(&other)
                )))
            }
        };
        let signature = match s {
            Value::Bytes(b) => b,
            other => {
                return Err(bad(format!(
                    "signature must be a byte string, got {}",
                    kind(&other)
                )))
            }
        };
        Ok(CoseSign1 {
            protected_bytes,
            protected,
            unprotected,
            payload,
            signature,
        })
    }

    /// `alg` from the protected header (it must be protected to be trusted).
    pub fn alg(&self) -> Option<i64> {
        match header_get(&self.protected, HEADER_ALG) {
            Some(Value::Integer(i)) => i64::try_from(i128::from(*i)).ok(),
            _ => None,
        }
    }

    /// The effective kid: the protected header's when present (even if it is wrong — it is
    /// the signed one), otherwise the unprotected header's.
    pub fn kid(&self) -> Option<&[u8]> {
        fn as_bytes(v: &Value) -> Option<&[u8]> {
            match v {
                Value::Bytes(b) => Some(b.as_slice()),
                _ => None,
            }
        }
        match header_get(&self.protected, HEADER_KID) {
            Some(v) => as_bytes(v),
            None => header_get(&self.unprotected, HEADER_KID).and_then(as_bytes),
        }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        Self::sig_structure(&self.protected_bytes, &self.payload)
    }
}

/// Short description of a CBOR value's type for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "a byte string",
        Value::Float(_) => "a float",
        Value::Text(_) => "a text string",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(..) => "a tagged value",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "an unknown CBOR item",
    }
}

/// The CWT claims of an HCERT.
#[derive(Debug, Clone, PartialEq)]
pub struct CwtClaims {
    /// Claim 1: issuing country.
    pub iss: Option<String>,
    /// Claim 6: issued at (Unix seconds).
    pub iat: i64,
    /// Claim 4: expires (Unix seconds).
    pub exp: i64,
    /// Claim -260/1: the DCC payload as JSON.
    pub dcc: serde_json::Value,
}

impl CwtClaims {
    /// Encodes the claims map `{1: iss, 4: exp, 6: iat, -260: {1: dcc}}`.
    pub fn encode(iss: &str, iat: i64, exp: i64, dcc: Value) -> Result<Vec<u8>> {
        to_cbor(&Value::Map(vec![
            (int(CLAIM_ISS), Value::Text(iss.to_string())),
            (int(CLAIM_EXP), int(exp)),
            (int(CLAIM_IAT), int(iat)),
            (int(CLAIM_HCERT), Value::Map(vec![(int(1), dcc)])),
        ]))
    }

    /// Parses the COSE payload as CWT claims and converts the DCC to JSON.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        let bad = |m: String| HcertError::Cwt(m);
        let value: Value =
            ciborium::from_reader(payload).map_err(|e| bad(format!("not CBOR: {e}")))?;
        let Value::Map(map) = value else {
            return Err(bad(format!("claims must be a map, got {}", kind(&value))));
        };
        let time = |label: i64, name: &str| -> Result<i64> {
            match header_get(&map, label) {
                Some(Value::Integer(i)) => {
                    i64::try_from(i128::from(*i)).map_err(|_| bad(format!("{name} out of range")))
                }
                Some(Value::Float(f)) if f.is_finite() && f.abs() < 1e15 => Ok(*f as i64),
                Some(other) => Err(bad(format!("{name} must be a number, got {}", kind(other)))),
                None => Err(bad(format!("claim {label} ({name}) is missing"))),
            }
        };
        let iat = time(CLAIM_IAT, "iat")?;
        let exp = time(CLAIM_EXP, "exp")?;
        let iss = match header_get(&map, CLAIM_ISS) {
            Some(Value::Text(s)) => Some(s.clone()),
            None => None,
            Some(other) => return Err(bad(format!("iss must be text, got {}", kind(other)))),
        };
        let hcert = match header_get(&map, CLAIM_HCERT) {
            Some(Value::Map(m)) => m,
            Some(other) => {
                return Err(bad(format!(
                    "claim -260 must be a map, got {}",
                    kind(other)
                )))
            }
            None => return Err(bad("claim -260 (hcert) is missing".into())),
        };
        let dcc = header_get(hcert, 1)
            .ok_or_else(|| bad("claim -260 has no key 1 (eu_dgc_v1)".into()))?;
        Ok(CwtClaims {
            iss,
            iat,
            exp,
            dcc: cbor_to_json(dcc)?,
        })
    }
}

/// Converts the DCC's CBOR to JSON. Only JSON-representable data is accepted: text map keys,
/// no byte strings; tags (e.g. 0/1004 dates some issuers use) are unwrapped.
pub fn cbor_to_json(v: &Value) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    let bad = |m: String| HcertError::Payload(m);
    Ok(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Text(s) => J::String(s.clone()),
        Value::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(n) = i64::try_from(i) {
                J::from(n)
            } else if let Ok(n) = u64::try_from(i) {
                J::from(n)
            } else {
                return Err(bad(format!("integer {i} out of range")));
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| bad(format!("float {f} has no JSON form")))?,
        Value::Tag(_, inner) => cbor_to_json(inner)?,
        Value::Array(a) => J::Array(a.iter().map(cbor_to_json).collect::<Result<_>>()?),
        Value::Map(m) => {
            let mut obj = serde_json::Map::with_capacity(m.len());
            for (k, val) in m {
                let Value::Text(key) = k else {
                    return Err(bad(format!("DCC map key must be text, got {}", kind(k))));
                };
                obj.insert(key.clone(), cbor_to_json(val)?);
            }
            J::Object(obj)
        }
        other => return Err(bad(format!("{} has no JSON form", kind(other)))),
    })
}
