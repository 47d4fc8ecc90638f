//! Every download format of a stored certificate, derived on request from the signed credential.

use std::path::PathBuf;

use anyhow::{Context, Result};
use divoc_credential::VaccinationCredential;
use divoc_fhir::{FhirCodes, IssuerKey, ShcIssuer};
use divoc_hcert::{DccConfig, DccHolder, DscSigner, HcertIssuer};
use divoc_qr::QrPayload;
use divoc_render::{RenderRequest, Renderer};
use serde::Deserialize;

use super::store::StoredCertificate;

/// `[dcc]` of the serve config: the DSC and its key, and the value sets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DccSection {
    /// DSC certificate (PEM); create with `divoc keys dsc`.
    pub certificate: PathBuf,
    /// Its P-256 private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// Value-set mapping and issuer settings.
    #[serde(default = "default_valuesets")]
    pub valuesets: PathBuf,
}

fn default_valuesets() -> PathBuf {
    PathBuf::from("dcc-valuesets.toml")
}

/// `[shc]` of the serve config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShcSection {
    /// Private JWK of the issuer key; create with `divoc keys shc`.
    pub key: PathBuf,
    /// The issuer URL (`iss`); its keys are served at `<iss>/.well-known/jwks.json`.
    pub issuer: String,
    /// Vaccine code map (CVX/SNOMED) and country codes.
    #[serde(default = "default_codes")]
    pub codes: PathBuf,
}

fn default_codes() -> PathBuf {
    PathBuf::from("shc-codes.toml")
}

/// What a request can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    QrPng,
    QrSvg,
    Credential,
    Dcc,
    DccPng,
    DccSvg,
    Shc,
    ShcPng,
    ShcSvg,
    Fhir,
    Ddcc,
}

impl Format {
    pub const ALL: [(&'static str, Format); 12] = [
        ("pdf", Format::Pdf),
        ("qr.png", Format::QrPng),
        ("qr.svg", Format::QrSvg),
        ("credential.json", Format::Credential),
        ("dcc.txt", Format::Dcc),
        ("dcc.png", Format::DccPng),
        ("dcc.svg", Format::DccSvg),
        ("smart-health-card", Format::Shc),
        ("shc.png", Format::ShcPng),
        ("shc.svg", Format::ShcSvg),
        ("fhir.json", Format::Fhir),
        ("ddcc.json", Format::Ddcc),
    ];

    pub fn parse(name: &str) -> Option<Format> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::QrPng | Format::DccPng | Format::ShcPng => "image/png",
            Format::QrSvg | Format::DccSvg | Format::ShcSvg => "image/svg+xml",
            Format::Credential => "application/vc+ld+json",
            Format::Dcc => "text/plain; charset=utf-8",
            Format::Shc => "application/smart-health-card",
            Format::Fhir | Format::Ddcc => "application/fhir+json",
        }
    }
}

/// Per-request options.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// PDF language (`en`, `hi`, `ta`, `bn`, `ur`, ...); default from the recipient's state.
    pub language: Option<String>,
    /// DCC: ICAO 9303 transliteration of the family name, for a name not in Latin script (a
    /// Latin name is transliterated by us, and a differing `fnt` is refused). Only the
    /// transliteration comes from the request: the names, date of birth and vaccination on a
    /// signed DCC always come from the stored credential.
    pub fnt: Option<String>,
    /// DCC: transliteration of the given name(s).
    pub gnt: Option<String>,
}

/// A request the certificate cannot satisfy, with a machine-readable code.
#[derive(Debug)]
pub struct FormatError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl FormatError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        FormatError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The issuers and renderer the server was configured with.
pub struct Formats {
    pub renderer: Renderer,
    pub fallback_template: String,
    pub dcc: Option<HcertIssuer>,
    pub shc: Option<ShcIssuer>,
    pub fhir_codes: FhirCodes,
}

impl Formats {
    /// Loads what a serve config names.
    pub fn for_plan(plan: &super::ServePlan) -> Result<Formats> {
        Formats::load(
            &plan.resolve(&plan.cfg.templates),
            &plan.cfg.fallback_template,
            plan.cfg.dcc.as_ref(),
            plan.cfg.shc.as_ref(),
            &plan.resolve(&plan.cfg.fhir_codes),
            |p| plan.resolve(p),
        )
    }

    pub fn load(
        templates_dir: &std::path::Path,
        fallback_template: &str,
        dcc: Option<&DccSection>,
        shc: Option<&ShcSection>,
        codes_path: &std::path::Path,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> Result<Formats> {
        let renderer = Renderer::load(templates_dir)
            .with_context(|| format!("PDF templates in {}", templates_dir.display()))?;
        let dcc = match dcc {
            None => None,
            Some(d) => {
                let signer = DscSigner::load(resolve(&d.certificate), resolve(&d.key))
                    .context("[dcc] certificate/key (create them with `divoc keys dsc`)")?;
                let config = DccConfig::load(resolve(&d.valuesets)).context("[dcc] valuesets")?;
                Some(HcertIssuer::new(signer, config))
            }
        };
        let fhir_codes = FhirCodes::load(codes_path)
            .with_context(|| format!("FHIR code map {}", codes_path.display()))?;
        let shc = match shc {
            None => None,
            Some(s) => {
                let key = IssuerKey::load(resolve(&s.key))
                    .context("[shc] key (create it with `divoc keys shc`)")?;
                let codes = FhirCodes::load(resolve(&s.codes)).context("[shc] codes")?;
                Some(ShcIssuer::new(key, &s.issuer, codes).context("[shc] issuer")?)
            }
        };
        Ok(Formats {
            renderer,
            fallback_template: fallback_template.to_owned(),
            dcc,
            shc,
            fhir_codes,
        })
    }

    /// Builds `format` for `cert`; `doses` are all of the beneficiary's certificates.
    pub fn produce(
        &self,
        format: Format,
        cert: &StoredCertificate,
        doses: &[std::sync::Arc<StoredCertificate>],
        query: &FormatQuery,
        now_unix: i64,
    ) -> Result<(Vec<u8>, Option<String>), FormatError> {
        let bad = |e: &dyn std::fmt::Display| FormatError::new(500, "FORMAT_FAILED", e.to_string());
        let qr_out = |payload: QrPayload, f: Format| -> Result<Vec<u8>, FormatError> {
            let matrix = payload
                .to_matrix()
                .map_err(|e| FormatError::new(422, "QR_FAILED", e.to_string()))?;
            match f {
                Format::QrSvg | Format::DccSvg | Format::ShcSvg => {
                    Ok(divoc_qr::matrix_svg(&matrix).into_bytes())
                }
                _ => divoc_qr::matrix_png(&matrix, 4).map_err(|e| bad(&e)),
            }
        };
        match format {
            Format::Credential => Ok((cert.credential_json.clone().into_bytes(), None)),
            Format::QrPng | Format::QrSvg => Ok((
                qr_out(QrPayload::DivocZip(cert.qr_payload.clone()), format)?,
                None,
            )),
            Format::Pdf => self.pdf(cert, doses, query),
            Format::Dcc | Format::DccPng | Format::DccSvg => {
                let hc1 = self.dcc(cert, query, now_unix)?;
                match format {
                    Format::Dcc => Ok((hc1.into_bytes(), None)),
                    _ => Ok((qr_out(QrPayload::Hcert(hc1), format)?, None)),
                }
            }
            Format::Shc | Format::ShcPng | Format::ShcSvg => {
                let issuer = self.shc.as_ref().ok_or_else(|| {
                    FormatError::new(
                        404,
                        "SHC_NOT_CONFIGURED",
                        "this server has no [shc] section: SMART Health Cards are not issued",
                    )
                })?;
                let creds: Vec<VaccinationCredential> =
                    doses.iter().map(|d| d.credential.clone()).collect();
                let nbf = issuance_unix(&cert.credential).unwrap_or(now_unix).max(0) as u64;
                let card = issuer
                    .issue(&creds, nbf)
                    .map_err(|e| FormatError::new(422, "SHC_FAILED", e.to_string()))?;
                match format {
                    Format::Shc => Ok((
                        divoc_fhir::HealthCardFile::new(&[card])
                            .to_json()
                            .map_err(|e| bad(&e))?
                            .into_bytes(),
                        None,
                    )),
                    _ => {
                        let payload = QrPayload::shc_from_jws(&card.jws)
                            .map_err(|e| FormatError::new(422, "SHC_TOO_LARGE", e.to_string()))?;
                        Ok((qr_out(payload, format)?, None))
                    }
                }
            }
            Format::Fhir => {
                let creds: Vec<VaccinationCredential> =
                    doses.iter().map(|d| d.credential.clone()).collect();
                let bundle = divoc_fhir::fhir_bundle(&creds, &self.fhir_codes)
                    .map_err(|e| FormatError::new(422, "FHIR_FAILED", e.to_string()))?;
                Ok((serde_json::to_vec(&bundle).map_err(|e| bad(&e))?, None))
            }
            Format::Ddcc => {
                let bundle = divoc_fhir::ddcc_document(&cert.credential, &self.fhir_codes)
                    .map_err(|e| FormatError::new(422, "DDCC_FAILED", e.to_string()))?;
                Ok((serde_json::to_vec(&bundle).map_err(|e| bad(&e))?, None))
            }
        }
    }

    fn pdf(
        &self,
        cert: &StoredCertificate,
        doses: &[std::sync::Arc<StoredCertificate>],
        query: &FormatQuery,
    ) -> Result<(Vec<u8>, Option<String>), FormatError> {
        let creds: Vec<VaccinationCredential> =
            doses.iter().map(|d| d.credential.clone()).collect();
        let current = doses
            .iter()
            .position(|d| d.certificate_id == cert.certificate_id)
            .unwrap_or(0);
        let matrix = QrPayload::DivocZip(cert.qr_payload.clone())
            .to_matrix()
            .map_err(|e| FormatError::new(422, "QR_FAILED", e.to_string()))?;
        let tenant = if self.renderer.has_tenant(&cert.tenant) {
            cert.tenant.as_str()
        } else {
            self.fallback_template.as_str()
        };
        let language = query.language.as_deref().map(str::to_ascii_lowercase);
        let rendered = self
            .renderer
            .render_with_report(&RenderRequest {
                tenant,
                language: language.as_deref(),
                doses: &creds,
                current,
                qr: &matrix,
            })
            .map_err(|e| match e {
                divoc_render::RenderError::UnknownLanguage { .. } => {
                    FormatError::new(400, "UNKNOWN_LANGUAGE", e.to_string())
                }
                other => FormatError::new(500, "RENDER_FAILED", other.to_string()),
            })?;
        Ok((rendered.pdf, Some(rendered.language)))
    }

    fn dcc(
        &self,
        cert: &StoredCertificate,
        q: &FormatQuery,
        now_unix: i64,
    ) -> Result<String, FormatError> {
        let issuer = self.dcc.as_ref().ok_or_else(|| {
            FormatError::new(
                404,
                "DCC_NOT_CONFIGURED",
                "this server has no [dcc] section: EU DCCs are not issued",
            )
        })?;
        let name = cert
            .credential
            .credential_subject
            .name
            .as_deref()
            .unwrap_or("");
        let parts = divoc_hcert::split_name(name).ok_or_else(|| {
            FormatError::new(422, "DCC_FAILED", "the credential has no recipient name")
        })?;
        let holder = match (DccHolder::from_latin_parts(parts.clone()), &q.fnt) {
            (Ok(derived), None) => derived,
            (Ok(derived), Some(fnt)) if *fnt == derived.family_t && q.gnt == derived.given_t => {
                derived
            }
            (Ok(derived), Some(_)) => {
                return Err(FormatError::new(
                    422,
                    "TRANSLITERATION_MISMATCH",
                    format!(
                        "the name is in Latin script and transliterates to fnt={} gnt={}; leave fnt/gnt out",
                        derived.family_t,
                        derived.given_t.as_deref().unwrap_or("")
                    ),
                ))
            }
            (Err(_), Some(fnt)) => DccHolder::new(parts, fnt.clone(), q.gnt.clone())
                .map_err(|e| FormatError::new(422, "BAD_TRANSLITERATION", e.to_string()))?,
            (Err(e), None) => {
                return Err(FormatError::new(
                    422,
                    "TRANSLITERATION_REQUIRED",
                    format!("{e}; pass fnt (and gnt) = the ICAO 9303 transliteration of the family (and given) name, e.g. ?fnt=SHARMA&gnt=ANANYA"),
                ))
            }
        };
        issuer
            .issue(&cert.credential, &holder, now_unix)
            .map(|i| i.hc1)
            .map_err(|e| FormatError::new(422, "DCC_FAILED", e.to_string()))
    }
}

/// The credential's issuanceDate as Unix seconds (SHC `nbf`, so a card is reproducible).
fn issuance_unix(c: &VaccinationCredential) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(c.issued_at())
        .ok()
        .map(|d| d.timestamp())
}
