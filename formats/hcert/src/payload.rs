//! The DCC 1.3.x vaccination payload (the JSON under CWT claim -260/1), as typed serde structs,
//! and its construction from a stored DIVOC credential.

use divoc_credential::credential::{Dose, VaccinationCredential};
use serde::{Deserialize, Serialize};

use crate::config::DccConfig;
use crate::error::{HcertError, Result};
use crate::names::{
    split_name, transliterate_icao, validate_transliterated, NameParts, MAX_NAME_LEN,
};

/// Schema version we claim (`ver`); payloads validate against `dcc-schema/1.3.x.json`.
pub const DCC_SCHEMA_VERSION: &str = "1.3.0";
/// SNOMED CT code for COVID-19 (`tg`).
pub const DISEASE_COVID19: &str = "840539006";

/// The DCC payload for a vaccination certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DccPayload {
    /// Schema version.
    pub ver: String,
    /// Holder name.
    pub nam: PersonName,
    /// Date of birth: `YYYY-MM-DD`, `YYYY-MM`, `YYYY` or empty (the schema allows all four).
    pub dob: String,
    /// Exactly one vaccination entry.
    pub v: Vec<VaccinationEntry>,
}

impl DccPayload {
    /// Checks the rules the DCC schema imposes on what we emit, so a hand-built payload passed
    /// to [`crate::HcertIssuer::issue_payload`] cannot produce an invalid certificate.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| HcertError::Schema(m);
        validate_transliterated("fnt", &self.nam.family_t)?;
        if let Some(g) = &self.nam.given_t {
            validate_transliterated("gnt", g)?;
        }
        check_dob(&self.dob)?;
        let [v] = self.v.as_slice() else {
            return Err(bad(format!(
                "v must hold exactly one entry, found {}",
                self.v.len()
            )));
        };
        if v.dn == 0 || v.sd == 0 {
            return Err(bad("dn and sd must be positive".into()));
        }
        if !is_calendar_date(&v.dt) {
            return Err(bad(format!("dt {:?} is not a YYYY-MM-DD date", v.dt)));
        }
        if v.co.is_empty() || v.co.len() > 10 || !v.co.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(format!(
                "co {:?} is not an upper-case country code",
                v.co
            )));
        }
        for (name, value) in [("is", &v.issuer), ("ci", &v.ci)] {
            if value.chars().count() > MAX_NAME_LEN {
                return Err(bad(format!("{name} is longer than 80 characters")));
            }
        }
        Ok(())
    }
}

/// `nam`: family name first, as the schema orders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonName {
    /// Surname as written.
    #[serde(rename = "fn", default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Surname, ICAO 9303 transliterated.
    #[serde(rename = "fnt")]
    pub family_t: String,
    /// Forename(s) as written.
    #[serde(rename = "gn", default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Forename(s), ICAO 9303 transliterated.
    #[serde(rename = "gnt", default, skip_serializing_if = "Option::is_none")]
    pub given_t: Option<String>,
}

/// `v[0]`: one vaccination event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccinationEntry {
    /// Disease targeted (always COVID-19).
    pub tg: String,
    /// Vaccine or prophylaxis code.
    pub vp: String,
    /// Medicinal product code.
    pub mp: String,
    /// Marketing authorisation holder / manufacturer code.
    pub ma: String,
    /// Dose number (>= 1).
    pub dn: u32,
    /// Total doses in the series (>= 1).
    pub sd: u32,
    /// Vaccination date `YYYY-MM-DD`.
    pub dt: String,
    /// Country of vaccination, ISO 3166-1 alpha-2.
    pub co: String,
    /// Certificate issuer name.
    #[serde(rename = "is")]
    pub issuer: String,
    /// UVCI.
    pub ci: String,
}

/// Who the certificate is for, beyond what the credential says: DIVOC stores one `name`, but the
/// DCC needs family/given names and their ICAO 9303 transliterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DccHolder {
    /// Family name and given name(s) as written.
    pub parts: NameParts,
    /// `fnt`.
    pub family_t: String,
    /// `gnt`.
    pub given_t: Option<String>,
    /// Date of birth override (`YYYY[-MM[-DD]]` or empty); `None` = take it from the credential.
    pub dob: Option<String>,
}

impl DccHolder {
    /// Holder with explicit names and transliterations (e.g. from the registry); checks the
    /// transliterations against `^[A-Z<]*$` / 80 characters.
    pub fn new(parts: NameParts, family_t: String, given_t: Option<String>) -> Result<Self> {
        validate_transliterated("fnt", &family_t)?;
        if let Some(g) = &given_t {
            validate_transliterated("gnt", g)?;
        }
        for (field, value) in [("fn", Some(&parts.family)), ("gn", parts.given.as_ref())] {
            if let Some(v) = value {
                if v.chars().count() > MAX_NAME_LEN {
                    return Err(HcertError::Credential {
                        field,
                        problem: format!("is longer than {MAX_NAME_LEN} characters"),
                    });
                }
            }
        }
        if family_t.is_empty() && given_t.as_deref().unwrap_or("").is_empty() {
            return Err(HcertError::InvalidTransliteration {
                field: "fnt",
                value: family_t,
                reason: "fnt and gnt are both empty; the schema needs at least one".into(),
            });
        }
        Ok(DccHolder {
            parts,
            family_t,
            given_t,
            dob: None,
        })
    }

    /// Holder from explicit Latin-script name parts, transliterated with [`transliterate_icao`].
    pub fn from_latin_parts(parts: NameParts) -> Result<Self> {
        let family_t = transliterate_icao(&parts.family)?;
        let given_t = parts.given.as_deref().map(transliterate_icao).transpose()?;
        Self::new(parts, family_t, given_t)
    }

    /// Holder from the credential's single Latin-script `name`, split by [`split_name`]
    /// (last word = family name) and transliterated.
    pub fn from_credential_name(cred: &VaccinationCredential) -> Result<Self> {
        let name = cred.credential_subject.name.as_deref().unwrap_or("");
        let parts = split_name(name).ok_or(HcertError::Credential {
            field: "credentialSubject.name",
            problem: "is missing or empty".into(),
        })?;
        Self::from_latin_parts(parts)
    }

    /// Sets the date-of-birth override.
    pub fn with_dob(mut self, dob: impl Into<String>) -> Self {
        self.dob = Some(dob.into());
        self
    }
}

/// Builds the DCC payload for the credential's vaccination.
///
/// * `dob`: the holder override, else the credential's `dob` (v2 credentials); v1 credentials
///   carry only an age, and a birth year computed from it could be off by one, so the payload
///   gets an empty `dob`, which the DCC schema explicitly permits (`"dob": ""`).
/// * `dt`: the date part of `evidence[0].date`. `dn`/`sd`: `dose`/`totalDoses`, which must be
///   positive integers (numbers or numeric strings).
/// * `co`: the facility's `addressCountry` when it is an alpha-2 code, else the configured
///   default. `ci`: the configured UVCI prefix + `certificateId` (or the last path segment of
///   `evidence[0].id`), upper-cased.
pub fn build_payload(
    cred: &VaccinationCredential,
    holder: &DccHolder,
    cfg: &DccConfig,
) -> Result<DccPayload> {
    let ev = cred.evidence.first().ok_or(HcertError::Credential {
        field: "evidence",
        problem: "is empty".into(),
    })?;
    let vaccine = ev.vaccine.as_deref().unwrap_or("");
    let manufacturer = ev.manufacturer.as_deref().unwrap_or("");
    let mapping = cfg.vaccine_for(vaccine, manufacturer)?;

    // v2 credentials carry `dob`; v1 ones do not (only an age), and the schema permits "".
    let dob = holder
        .dob
        .clone()
        .or_else(|| cred.credential_subject.dob.clone())
        .unwrap_or_default();
    check_dob(&dob)?;

    let date = ev.date.as_deref().unwrap_or("");
    let dt = date.get(..10).unwrap_or(date);
    if !is_calendar_date(dt) {
        return Err(HcertError::Credential {
            field: "evidence[0].date",
            problem: format!("{date:?} does not start with a YYYY-MM-DD date"),
        });
    }

    let co = ev
        .facility
        .as_ref()
        .and_then(|f| f.address.as_ref())
        .and_then(|a| a.address_country.as_deref())
        .map(str::trim)
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| cfg.issuer.default_vaccination_country.clone());

    let payload = DccPayload {
        ver: DCC_SCHEMA_VERSION.into(),
        nam: PersonName {
            family: Some(holder.parts.family.clone()).filter(|s| !s.is_empty()),
            family_t: holder.family_t.clone(),
            given: holder.parts.given.clone(),
            given_t: holder.given_t.clone(),
        },
        dob,
        v: vec![VaccinationEntry {
            tg: DISEASE_COVID19.into(),
            vp: mapping.vp.clone(),
            mp: mapping.mp.clone(),
            ma: mapping.ma.clone(),
            dn: dose_number("evidence[0].dose", ev.dose.as_ref())?,
            sd: dose_number("evidence[0].totalDoses", ev.total_doses.as_ref())?,
            dt: dt.to_string(),
            co,
            issuer: cfg.issuer.name.clone(),
            ci: uvci(cfg, ev.certificate_id.as_deref(), &ev.id)?,
        }],
    };
    payload.validate()?;
    Ok(payload)
}

fn dose_number(field: &'static str, dose: Option<&Dose>) -> Result<u32> {
    let n = match dose {
        Some(Dose::Number(n)) => Some(*n),
        Some(Dose::Text(t)) => t.trim().parse::<u32>().ok(),
        None => None,
    };
    n.filter(|n| *n >= 1).ok_or_else(|| HcertError::Credential {
        field,
        problem: format!("must be a positive integer for a DCC, got {dose:?}"),
    })
}

fn uvci(cfg: &DccConfig, certificate_id: Option<&str>, evidence_id: &str) -> Result<String> {
    let id = certificate_id
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| evidence_id.rsplit('/').next().unwrap_or(""))
        .trim()
        .to_ascii_uppercase();
    // UVCI characters: upper-case alphanumerics and the separators / # :
    let ok = !id.is_empty()
        && id.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'/' | b'#' | b':')
        });
    let ci = format!("{}{id}", cfg.issuer.uvci_prefix);
    if !ok || ci.len() > 80 {
        return Err(HcertError::Credential {
            field: "evidence[0].certificateId",
            problem: format!("{id:?} cannot form a UVCI (A-Z, 0-9, / # : only; at most 80 characters with the prefix)"),
        });
    }
    Ok(ci)
}

/// `^((19|20)\d\d(-\d\d){0,2}){0,1}$`, plus real month/day ranges.
fn check_dob(dob: &str) -> Result<()> {
    // ASCII first, so the byte slicing below always falls on character boundaries.
    let ok = dob.is_ascii()
        && match dob.len() {
            0 => true,
            4 => is_year(dob),
            7 => is_year(&dob[..4]) && dob.as_bytes()[4] == b'-' && month(&dob[5..7]).is_some(),
            10 => is_calendar_date(dob) && (dob.starts_with("19") || dob.starts_with("20")),
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(HcertError::Credential {
            field: "credentialSubject.dob",
            problem: format!("{dob:?} is not YYYY-MM-DD, YYYY-MM, YYYY (1900-2099) or empty"),
        })
    }
}

fn is_year(s: &str) -> bool {
    s.len() == 4
        && (s.starts_with("19") || s.starts_with("20"))
        && s.bytes().all(|b| b.is_ascii_digit())
}

fn month(s: &str) -> Option<u32> {
    let m: u32 = s
        .parse()
        .ok()
        .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))?;
    (1..=12).contains(&m).then_some(m)
}

/// `YYYY-MM-DD` with a day that exists in that month.
pub(crate) fn is_calendar_date(s: &str) -> bool {
    let b = s.as_bytes();
    if !s.is_ascii()
        || b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !s[..4].bytes().all(|c| c.is_ascii_digit())
    {
        return false;
    }
    let (Ok(y), Some(m)) = (s[..4].parse::<u32>(), month(&s[5..7])) else {
        return false;
    };
    let Some(d) = s[8..10]
        .parse::<u32>()
        .ok()
        .filter(|_| s[8..10].bytes().all(|c| c.is_ascii_digit()))
    else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dob_forms() {
        for ok in ["", "1958", "1958-11", "1958-11-11", "2000-02-29"] {
            check_dob(ok).unwrap();
        }
        for bad in [
            "1858-11-11",
            "1958-13",
            "1958-02-30",
            "58-11-11",
            "1958-11-11T00:00",
        ] {
            assert!(check_dob(bad).is_err(), "{bad}");
        }
    }
}
