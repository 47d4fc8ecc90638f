//! `divoc verify`: one certificate in any format the project emits (DIVOC credential JSON, its QR
//! payload or QR image, EU DCC `HC1:`, SMART Health Card), its signature checked offline and its
//! status decided from Bitstring Status List files when given: VALID, REVOKED, SUSPENDED (until
//! when) or INVALID (why).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use divoc_credential::keys::public_key_from_base58;
use divoc_credential::status_list::{StatusList, StatusPosition, StatusPurpose};
use divoc_credential::VerifyingKey;
use divoc_qr::unzip_certificate;
use serde_json::Value;

/// What a verifier concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Valid(String),
    Revoked(String),
    /// `until`: the last day, or none (until lifted).
    Suspended {
        until: Option<String>,
        detail: String,
    },
    Invalid(String),
}

impl Outcome {
    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid(_))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Valid(d) => write!(f, "VALID: {d}"),
            Outcome::Revoked(d) => write!(f, "REVOKED: {d}"),
            Outcome::Suspended {
                until: Some(day),
                detail,
            } => write!(f, "SUSPENDED until {day}: {detail}"),
            Outcome::Suspended {
                until: None,
                detail,
            } => write!(f, "SUSPENDED until lifted: {detail}"),
            Outcome::Invalid(why) => write!(f, "INVALID: {why}"),
        }
    }
}

/// What `divoc verify` was given besides the certificate.
pub struct VerifyInputs<'a> {
    /// Issuer key file / verification method document / DID document (DIVOC credentials), the
    /// DSC certificate PEM (EU DCC) or the issuer's JWKS (SMART Health Card).
    pub key: &'a Path,
    /// Status list credentials (`GET /status/v1/...` of `divoc serve`, saved).
    pub status_lists: &'a [PathBuf],
    /// The key that signs the status lists when `key` is not an Ed25519 issuer key (DCC, SHC).
    pub status_key: Option<&'a Path>,
    /// `YYYY-MM-DD`: the day suspension ends are compared with.
    pub today: String,
}

/// A verified certificate: the outcome and, when it says, the certificate id.
pub struct Verified {
    pub outcome: Outcome,
    pub certificate_id: Option<String>,
}

/// Verifies `file`; errors only for unusable inputs (key, status files), never for a bad
/// certificate, which is `INVALID` with its reason.
pub fn verify_any(file: &Path, inputs: &VerifyInputs<'_>) -> Result<Verified> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
    if text.starts_with("HC1:") {
        return verify_dcc(text, inputs);
    }
    if text.starts_with("shc:/")
        || is_compact_jws(text)
        || text.contains("\"verifiableCredential\"")
    {
        return verify_shc(&bytes, inputs);
    }
    verify_divoc(file, inputs)
}

fn is_compact_jws(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn verify_dcc(text: &str, inputs: &VerifyInputs<'_>) -> Result<Verified> {
    let pem = std::fs::read_to_string(inputs.key)
        .with_context(|| format!("cannot read {}", inputs.key.display()))?;
    let dsc = divoc_hcert::verify::Dsc::from_pem(&pem).map_err(|e| {
        anyhow!(
            "{}: {e}; an EU DCC is checked against the document signer certificate (PEM), e.g. GET /certificate/api/v1/dsc.pem",
            inputs.key.display()
        )
    })?;
    let mut trust = divoc_hcert::verify::TrustList::new();
    trust.add(dsc);
    let verified = match divoc_hcert::verify_hc1(text, &trust, unix_now()) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Verified {
                outcome: Outcome::Invalid(e.to_string()),
                certificate_id: None,
            })
        }
    };
    let ci = verified.claims.dcc["v"][0]["ci"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The UVCI ends with the certificate id (`<prefix><certificateId>`).
    let digits: String = ci
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let id = (!digits.is_empty()).then_some(digits);
    let detail = format!("EU DCC signature verified (UVCI {ci})");
    let outcome = match (&id, inputs.status_lists.is_empty()) {
        (Some(id), false) => {
            let key = status_key(inputs)?;
            let lists = read_lists(inputs.status_lists, &key)?;
            status_by_position(id, &lists, &inputs.today, detail)?
        }
        _ => Outcome::Valid(format!(
            "{detail}; status not checked (give --status lists)"
        )),
    };
    Ok(Verified {
        outcome,
        certificate_id: id,
    })
}

fn verify_shc(bytes: &[u8], inputs: &VerifyInputs<'_>) -> Result<Verified> {
    let jwks_text = std::fs::read_to_string(inputs.key)
        .with_context(|| format!("cannot read {}", inputs.key.display()))?;
    let jwks = divoc_fhir::jwk::Jwks::from_json(&jwks_text).map_err(|e| {
        anyhow!(
            "{}: {e}; a SMART Health Card is checked against the issuer's JWKS (GET /.well-known/jwks.json)",
            inputs.key.display()
        )
    })?;
    let verifier = divoc_fhir::verify::ShcVerifier::new(&jwks, None);
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let now = unix_now().max(0) as u64;
    let result = if text.starts_with("shc:/") {
        verifier.verify_qr_text(text, now).map(|c| vec![c])
    } else if is_compact_jws(text) {
        verifier.verify_jws(text, now).map(|c| vec![c])
    } else {
        verifier.verify_file(bytes, now)
    };
    let outcome = match result {
        Ok(cards) => Outcome::Valid(format!(
            "SMART Health Card signature verified ({} card(s), issuer {}); SMART Health Cards carry no certificate id, so their status is not checked",
            cards.len(),
            cards.first().map(|c| c.payload.iss.as_str()).unwrap_or("-")
        )),
        Err(e) => Outcome::Invalid(e.to_string()),
    };
    Ok(Verified {
        outcome,
        certificate_id: None,
    })
}

/// The key a status list must verify with.
fn status_key(inputs: &VerifyInputs<'_>) -> Result<VerifyingKey> {
    let file = inputs.status_key.ok_or_else(|| {
        anyhow!("--status needs --status-key <issuer key file> for this format (the lists are signed by the credential issuer's Ed25519 key)")
    })?;
    let doc = read_json(file)?;
    let b58 = first_public_key(&doc)
        .with_context(|| format!("{}: no publicKeyBase58", file.display()))?;
    public_key_from_base58(&b58).map_err(|e| anyhow!("{}: {e}", file.display()))
}

fn read_json(file: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))
}

fn first_public_key(doc: &Value) -> Option<String> {
    doc["publicKeyBase58"]
        .as_str()
        .or_else(|| {
            doc["verificationMethod"]
                .as_array()?
                .iter()
                .find_map(|m| m["publicKeyBase58"].as_str())
        })
        .map(str::to_owned)
}

/// Reads and verifies status list credentials; a list that fails its signature is an error
/// (the verifier was handed a forged or damaged file).
fn read_lists(files: &[PathBuf], key: &VerifyingKey) -> Result<Vec<StatusList>> {
    let mut lists = Vec::new();
    for file in files {
        let doc = read_json(file)?;
        divoc_credential::verify(&doc, key).map_err(|e| {
            anyhow!(
                "{}: the status list does not verify with the issuer key: {e}",
                file.display()
            )
        })?;
        lists.push(StatusList::read(&doc).map_err(|e| anyhow!("{}: {e}", file.display()))?);
    }
    Ok(lists)
}

/// Decides from the bits at `(list url, index)` for each purpose.
fn decide(bits: &[(StatusPurpose, &StatusList, u64)], today: &str, detail: String) -> Outcome {
    let mut suspended = None;
    for (purpose, list, index) in bits {
        if let Some(until) = list.withdrawn(*index, today) {
            match purpose {
                StatusPurpose::Revocation => {
                    return Outcome::Revoked(format!("{detail}; revoked in {}", list.url))
                }
                StatusPurpose::Suspension => suspended = Some(until),
            }
        }
    }
    match suspended {
        Some(until) => Outcome::Suspended { until, detail },
        None => Outcome::Valid(format!("{detail}; not revoked or suspended (status lists)")),
    }
}

/// Status of a certificate id (DCC) from lists of any program: the list number and purpose
/// come from the list URL's last two segments.
fn status_by_position(
    id: &str,
    lists: &[StatusList],
    today: &str,
    detail: String,
) -> Result<Outcome> {
    let position = StatusPosition::of_certificate(id)
        .ok_or_else(|| anyhow!("certificate id {id} is not numeric: no status list position"))?;
    let mut bits = Vec::new();
    for purpose in StatusPurpose::ALL {
        let suffix = format!("/{}/{}", purpose.name(), position.list);
        let list = lists
            .iter()
            .find(|l| l.purpose == purpose && l.url.ends_with(&suffix))
            .ok_or_else(|| {
                anyhow!("no {} status list number {} among --status files; fetch it from /status/v1/<program>{suffix}", purpose.name(), position.list)
            })?;
        bits.push((purpose, list, position.index));
    }
    Ok(decide(&bits, today, detail))
}

/// The Ed25519 key of the method a credential's proof names, from an issuer key file, a
/// verification method document, DIVOC's `verificationMethods` set or a DID document.
fn method_key(key_doc: &Value, wanted: &str) -> Option<(String, Option<String>)> {
    let mut candidates = vec![key_doc];
    if let Some(m) = key_doc["verificationMethods"].as_object() {
        candidates.extend(m.values());
    }
    if let Some(m) = key_doc["verificationMethod"].as_array() {
        candidates.extend(m.iter());
    }
    let chosen = candidates
        .iter()
        .find(|d| {
            d["id"].as_str() == Some(wanted) || d["verificationMethod"].as_str() == Some(wanted)
        })
        .or_else(|| candidates.iter().find(|d| d["publicKeyBase58"].is_string()))?;
    let b58 = chosen["publicKeyBase58"].as_str()?.to_owned();
    let controller = chosen["issuer"]
        .as_str()
        .or_else(|| chosen["controller"].as_str())
        .map(str::to_owned);
    Some((b58, controller))
}

fn verify_divoc(file: &Path, inputs: &VerifyInputs<'_>) -> Result<Verified> {
    let key_doc = read_json(inputs.key)?;
    let invalid = |why: String| {
        Ok(Verified {
            outcome: Outcome::Invalid(why),
            certificate_id: None,
        })
    };
    let json = match credential_bytes(file)? {
        Ok(j) => j,
        Err(e) => return invalid(e),
    };
    let cred: Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => return invalid(format!("not a JSON credential: {e}")),
    };
    let wanted = cred["proof"]["verificationMethod"]
        .as_str()
        .unwrap_or_default();
    let (b58, controller) = method_key(&key_doc, wanted).with_context(|| {
        format!(
            "{}: no publicKeyBase58; pass an issuer key file, a verification method document or the DID document",
            inputs.key.display()
        )
    })?;
    let vk = public_key_from_base58(&b58).map_err(|e| anyhow!("{}: {e}", inputs.key.display()))?;
    if let Err(e) = divoc_credential::verify(&cred, &vk) {
        return invalid(e.to_string());
    }
    let issuer = cred["issuer"].as_str().unwrap_or_default();
    let note = match controller {
        Some(c) if c == issuer => "issuer is the key's controller".to_owned(),
        Some(c) => format!("warning: issuer {issuer:?} is not the key's controller {c:?} (DIVOC's own credentials have this flaw)"),
        None => "key has no controller to compare with the issuer".to_owned(),
    };
    let id = cred["evidence"][0]["certificateId"]
        .as_str()
        .map(str::to_owned);
    let suite = cred["proof"]["cryptosuite"]
        .as_str()
        .or_else(|| cred["proof"]["type"].as_str())
        .unwrap_or("-");
    let detail = format!(
        "signature verified ({suite}, certificate {}); {note}",
        id.as_deref().unwrap_or("-")
    );
    let entries = match &cred["credentialStatus"] {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        single => vec![single.clone()],
    };
    let outcome = if inputs.status_lists.is_empty() {
        let why = if entries.is_empty() {
            "the credential has no credentialStatus"
        } else {
            "give its status lists with --status"
        };
        Outcome::Valid(format!("{detail}; status not checked ({why})"))
    } else if entries.is_empty() {
        Outcome::Valid(format!(
            "{detail}; the credential has no credentialStatus (its program does not publish status lists)"
        ))
    } else {
        let key = match inputs.status_key {
            Some(_) => status_key(inputs)?,
            None => vk,
        };
        let lists = read_lists(inputs.status_lists, &key)?;
        let mut bits = Vec::new();
        for entry in &entries {
            let (Some(purpose), Some(url), Some(index)) = (
                entry["statusPurpose"]
                    .as_str()
                    .and_then(StatusPurpose::parse),
                entry["statusListCredential"].as_str(),
                entry["statusListIndex"]
                    .as_str()
                    .and_then(|i| i.parse::<u64>().ok()),
            ) else {
                return invalid(format!("malformed credentialStatus entry {entry}"));
            };
            let list = lists.iter().find(|l| l.url == url).ok_or_else(|| {
                anyhow!("no status list {url} among --status files; fetch it (divoc serve answers /status/v1/...)")
            })?;
            if list.purpose != purpose {
                bail!(
                    "{url} is a {} list, the credential expects {}",
                    list.purpose.name(),
                    purpose.name()
                );
            }
            if list.issuer != issuer {
                return invalid(format!(
                    "status list {url} is issued by {:?}, the credential by {issuer:?}",
                    list.issuer
                ));
            }
            bits.push((purpose, list, index));
        }
        decide(&bits, &inputs.today, detail)
    };
    Ok(Verified {
        outcome,
        certificate_id: id,
    })
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
