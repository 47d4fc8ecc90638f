//! From DIVOC credentials to FHIR: the shared extraction rules, the SMART Health Card bundle
//! (minimised) and the plain FHIR R4 bundle (Patient + Immunization, full detail).
//!
//! A DIVOC credential carries one dose. A person's history is several credentials; callers pass
//! them all (any order, sorted here by dose date) and get one Immunization per dose.

use divoc_credential::credential::{CredentialSubject, Dose, Evidence};
use divoc_credential::VaccinationCredential;
use sha2::{Digest, Sha256};

use crate::codes::{FhirCodes, CVX_SYSTEM, ICD11_SYSTEM, SNOMED_SYSTEM};
use crate::error::FhirError;
use crate::fhir::*;

/// Doses of one person, checked and sorted by date (earliest first).
pub(crate) struct History<'a> {
    pub subject: &'a CredentialSubject,
    pub doses: Vec<(&'a VaccinationCredential, &'a Evidence)>,
}

impl<'a> History<'a> {
    /// Collects every evidence of every credential; all must be about the same subject id.
    pub fn new(credentials: &'a [VaccinationCredential]) -> Result<Self, FhirError> {
        let first = credentials
            .first()
            .ok_or_else(|| FhirError::Credential("no credential given".into()))?;
        let subject = &first.credential_subject;
        let mut doses = Vec::new();
        for c in credentials {
            if c.credential_subject.id != subject.id {
                return Err(FhirError::Credential(format!(
                    "credentials are about different people ('{}' and '{}'): one card per person",
                    subject.id, c.credential_subject.id
                )));
            }
            for e in &c.evidence {
                doses.push((c, e));
            }
        }
        if doses.is_empty() {
            return Err(FhirError::Credential(
                "credential has no evidence (dose)".into(),
            ));
        }
        doses.sort_by(|a, b| a.1.date.cmp(&b.1.date));
        Ok(History { subject, doses })
    }
}

/// The recipient's name, required by every output.
pub(crate) fn subject_name(subject: &CredentialSubject) -> Result<&str, FhirError> {
    match subject.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(FhirError::Credential(
            "credentialSubject.name is missing or empty".into(),
        )),
    }
}

/// DIVOC has one free-text name. `text` keeps it exactly; family/given are a best-effort split
/// at the last space (absent for one-word names) so that viewers that only read family/given
/// show something sensible.
pub fn human_name(full: &str) -> HumanName {
    let full = full.split_whitespace().collect::<Vec<_>>().join(" ");
    let (family, given) = match full.rsplit_once(' ') {
        Some((given, family)) => (
            Some(family.to_string()),
            given.split(' ').map(str::to_string).collect(),
        ),
        None => (None, Vec::new()),
    };
    HumanName {
        text: Some(full),
        family,
        given,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD` prefix of a DIVOC date or date-time, validated.
pub(crate) fn date_part(value: &str, what: &str) -> Result<String, FhirError> {
    let v = value.trim();
    let d = v.get(..10).unwrap_or("");
    let ok = d.len() == 10
        && is_digits(&d[..4])
        && &d[4..5] == "-"
        && is_digits(&d[5..7])
        && &d[7..8] == "-"
        && is_digits(&d[8..10])
        && (v.len() == 10 || v.as_bytes().get(10) == Some(&b'T'));
    if ok {
        Ok(d.to_string())
    } else {
        Err(FhirError::Credential(format!(
            "{what} '{value}' is not an ISO-8601 date (YYYY-MM-DD...)"
        )))
    }
}

/// A FHIR dateTime: the DIVOC value when it is a full date-time with a zone, else its date.
pub(crate) fn fhir_date_time(value: &str, what: &str) -> Result<String, FhirError> {
    let date = date_part(value, what)?;
    let v = value.trim();
    let zoned = v.ends_with('Z')
        || v.get(v.len().saturating_sub(6)..).is_some_and(|t| {
            t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) && &t[3..4] == ":"
        });
    if v.len() > 10 && zoned {
        Ok(v.to_string())
    } else {
        Ok(date)
    }
}

/// Birth date: v2 `dob` (full or partial date). v1 credentials only carry an age, which is not
/// turned into an invented date: the element is then absent.
pub(crate) fn birth_date(subject: &CredentialSubject) -> Result<Option<String>, FhirError> {
    match subject.dob.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) if d.len() == 4 && is_digits(d) => Ok(Some(d.to_string())),
        Some(d) => date_part(d, "credentialSubject.dob").map(Some),
    }
}

/// FHIR administrative gender from DIVOC's free text.
pub(crate) fn gender(subject: &CredentialSubject) -> Option<String> {
    let g = subject.gender.as_deref()?.trim().to_ascii_lowercase();
    Some(
        match g.as_str() {
            "male" | "m" => "male",
            "female" | "f" => "female",
            "" => return None,
            "other" | "o" | "transgender" => "other",
            _ => "unknown",
        }
        .to_string(),
    )
}

/// A DIVOC dose value as a number, when it is one.
pub(crate) fn dose_number(dose: Option<&Dose>) -> Option<u32> {
    match dose? {
        Dose::Number(n) => Some(*n),
        Dose::Text(t) => t.trim().parse().ok(),
    }
    .filter(|n| *n > 0)
}

pub(crate) fn non_empty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(crate) fn vaccine_name(e: &Evidence) -> Result<&str, FhirError> {
    match e.vaccine.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(FhirError::Credential(
            "evidence.vaccine is missing or empty".into(),
        )),
    }
}

pub(crate) fn dose_date(e: &Evidence) -> Result<&str, FhirError> {
    e.date
        .as_deref()
        .ok_or_else(|| FhirError::Credential("evidence.date (vaccination date) is missing".into()))
}

/// COVID-19 as the target disease (ICD-11 RA01, DDCC's value set).
pub(crate) fn covid19_disease() -> CodeableConcept {
    CodeableConcept::single(Coding::new(ICD11_SYSTEM, "RA01", Some("COVID-19")))
}

/// A deterministic `urn:uuid:` from a seed (SHA-256 based, RFC 9562 version 8 "custom"), so the
/// same certificate always yields the same bundle.
pub fn urn_uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The SMART Health Card FHIR bundle, minimised per the SHC spec: no `id`, `meta` or `text`,
/// `fullUrl` = `resource:N`, references `resource:0`, no `Coding.display` or
/// `CodeableConcept.text`, dates without time. The vaccine is coded CVX + SNOMED CT, never ICD-11.
pub fn shc_bundle(
    credentials: &[VaccinationCredential],
    codes: &FhirCodes,
) -> Result<Bundle, FhirError> {
    let history = History::new(credentials)?;
    let patient = Patient {
        name: vec![human_name(subject_name(history.subject)?)],
        birth_date: birth_date(history.subject)?,
        ..Patient::default()
    };
    let mut entry = vec![BundleEntry {
        full_url: Some("resource:0".into()),
        resource: Resource::Patient(patient),
    }];
    for (i, (_, e)) in history.doses.iter().enumerate() {
        let v = codes.vaccine(vaccine_name(e)?)?;
        let performer = e
            .facility
            .as_ref()
            .and_then(|f| non_empty(f.name.as_ref()))
            .map(|name| ImmunizationPerformer {
                actor: Reference::display(name),
            });
        let imm = Immunization {
            status: "completed".into(),
            vaccine_code: CodeableConcept {
                coding: vec![
                    Coding::new(CVX_SYSTEM, &v.cvx, None),
                    Coding::new(SNOMED_SYSTEM, &v.snomed, None),
                ],
                text: None,
            },
            patient: Reference::to("resource:0"),
            occurrence_date_time: date_part(dose_date(e)?, "evidence.date")?,
            lot_number: non_empty(e.batch.as_ref()),
            performer: performer.into_iter().collect(),
            ..Immunization::default()
        };
        entry.push(BundleEntry {
            full_url: Some(format!("resource:{}", i + 1)),
            resource: Resource::Immunization(imm),
        });
    }
    Ok(Bundle {
        resource_type: BundleResourceType::Bundle,
        id: None,
        identifier: None,
        bundle_type: BundleType::Collection,
        timestamp: None,
        entry,
    })
}

/// Patient resource with identifier, name, gender and birth date (plain FHIR and DDCC).
pub(crate) fn full_patient(
    subject: &CredentialSubject,
    id: Option<String>,
    meta: Option<Meta>,
) -> Result<Patient, FhirError> {
    Ok(Patient {
        id,
        meta,
        identifier: vec![Identifier {
            system: None,
            value: Some(subject.id.clone()),
        }],
        name: vec![human_name(subject_name(subject)?)],
        gender: gender(subject),
        birth_date: birth_date(subject)?,
    })
}

/// A plain FHIR R4 `collection` Bundle: one Patient plus one Immunization per dose, not
/// minimised (ids, `urn:uuid:` full URLs, code displays, manufacturer, location, vaccinator,
/// dose numbers). Vaccine coded CVX + SNOMED CT.
pub fn fhir_bundle(
    credentials: &[VaccinationCredential],
    codes: &FhirCodes,
) -> Result<Bundle, FhirError> {
    let history = History::new(credentials)?;
    let patient_url = urn_uuid(&format!("patient:{}", history.subject.id));
    let mut entry = vec![BundleEntry {
        full_url: Some(patient_url.clone()),
        resource: Resource::Patient(full_patient(history.subject, None, None)?),
    }];
    for (c, e) in &history.doses {
        let v = codes.vaccine(vaccine_name(e)?)?;
        let facility = e.facility.as_ref().and_then(|f| non_empty(f.name.as_ref()));
        let vaccinator = e.verifier.as_ref().and_then(|v| non_empty(v.name.as_ref()));
        let dose = dose_number(e.dose.as_ref());
        let protocol = ProtocolApplied {
            target_disease: vec![covid19_disease()],
            dose_number_positive_int: dose,
            dose_number_string: match (dose, &e.dose) {
                (None, Some(Dose::Text(t))) if !t.trim().is_empty() => Some(t.trim().into()),
                _ => None,
            },
            series_doses_positive_int: dose_number(e.total_doses.as_ref()),
        };
        let has_dose =
            protocol.dose_number_positive_int.is_some() || protocol.dose_number_string.is_some();
        let imm = Immunization {
            status: "completed".into(),
            vaccine_code: CodeableConcept {
                coding: vec![
                    Coding::new(CVX_SYSTEM, &v.cvx, Some(&v.cvx_display)),
                    Coding::new(SNOMED_SYSTEM, &v.snomed, Some(&v.snomed_display)),
                ],
                text: Some(vaccine_name(e)?.to_string()),
            },
            patient: Reference::to(patient_url.clone()),
            occurrence_date_time: fhir_date_time(dose_date(e)?, "evidence.date")?,
            location: facility.map(Reference::display),
            manufacturer: non_empty(e.manufacturer.as_ref()).map(Reference::display),
            lot_number: non_empty(e.batch.as_ref()),
            performer: vaccinator
                .map(|n| ImmunizationPerformer {
                    actor: Reference::display(n),
                })
                .into_iter()
                .collect(),
            // DIVOC allows a dose without a number; FHIR requires doseNumber inside protocolApplied.
            protocol_applied: if has_dose { vec![protocol] } else { Vec::new() },
            ..Immunization::default()
        };
        entry.push(BundleEntry {
            full_url: Some(urn_uuid(&format!("immunization:{}:{}", c.issuer, e.id))),
            resource: Resource::Immunization(imm),
        });
    }
    Ok(Bundle {
        resource_type: BundleResourceType::Bundle,
        id: None,
        identifier: None,
        bundle_type: BundleType::Collection,
        timestamp: None,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = human_name("  Ravi   Kumar Iyer ");
        assert_eq!(n.text.as_deref(), Some("Ravi Kumar Iyer"));
        assert_eq!(n.family.as_deref(), Some("Iyer"));
        assert_eq!(n.given, ["Ravi", "Kumar"]);
        let n = human_name("Madonna");
        assert_eq!(n.text.as_deref(), Some("Madonna"));
        assert_eq!(n.family, None);
        assert!(n.given.is_empty());
    }

    #[test]
    fn dates() {
        assert_eq!(
            date_part("2021-04-22T10:27:39.000Z", "d").unwrap(),
            "2021-04-22"
        );
        assert_eq!(date_part("2021-04-22", "d").unwrap(), "2021-04-22");
        for bad in [
            "",
            "22-04-2021",
            "2021-4-22",
            "2021-04-22 10:00",
            "२०२१-०४-२२",
            "2021-04-2x",
        ] {
            assert!(date_part(bad, "d").is_err(), "{bad}");
        }
        assert_eq!(
            fhir_date_time("2021-04-22T10:27:39.000Z", "d").unwrap(),
            "2021-04-22T10:27:39.000Z"
        );
        assert_eq!(
            fhir_date_time("2021-04-22T10:27:39+05:30", "d").unwrap(),
            "2021-04-22T10:27:39+05:30"
        );
        // FHIR dateTime with a time needs a zone: without one, keep the date only.
        assert_eq!(
            fhir_date_time("2021-04-22T10:27:39", "d").unwrap(),
            "2021-04-22"
        );
    }

    #[test]
    fn genders() {
        let mut s = CredentialSubject {
            subject_type: "Person".into(),
            id: "x".into(),
            ref_id: None,
            uhid: None,
            name: None,
            gender: Some("Female".into()),
            age: None,
            nationality: None,
            dob: None,
            address: None,
        };
        assert_eq!(gender(&s).as_deref(), Some("female"));
        s.gender = Some("M".into());
        assert_eq!(gender(&s).as_deref(), Some("male"));
        s.gender = Some("xyz".into());
        assert_eq!(gender(&s).as_deref(), Some("unknown"));
        s.gender = None;
        assert_eq!(gender(&s), None);
    }

    #[test]
    fn uuids_are_well_formed_and_stable() {
        let u = urn_uuid("a");
        assert_eq!(u, urn_uuid("a"));
        assert_ne!(u, urn_uuid("b"));
        let hex = u.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<&str> = hex.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('8'), "version 8");
        assert!(
            matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
            "RFC variant"
        );
    }

    #[test]
    fn doses() {
        assert_eq!(dose_number(Some(&Dose::Number(2))), Some(2));
        assert_eq!(dose_number(Some(&Dose::Text(" 3 ".into()))), Some(3));
        assert_eq!(dose_number(Some(&Dose::Text("".into()))), None);
        assert_eq!(dose_number(Some(&Dose::Number(0))), None);
        assert_eq!(dose_number(None), None);
    }
}
