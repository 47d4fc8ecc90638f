//! WHO Digital Documentation of COVID-19 Certificates, Vaccination Status (DDCC:VS).
//!
//! Two views of one DIVOC certificate (one dose):
//! - [`DdccVsCoreDataSet`]: the IG's logical model "DDCC:VS Core Data Set" (name, birthDate,
//!   identifier, sex, certificate{issuer, kid, hcid, version, period}, vaccination{vaccine, brand,
//!   manufacturer, maholder, lot, date, validFrom, dose, totalDoses, country, centre,
//!   practitioner, disease, nextDose}) as plain JSON.
//! - [`ddcc_document`]: the IG's FHIR `document` Bundle (profile DDCCDocument): Composition
//!   (DDCCVSComposition) + Patient (DDCCPatient) + Organization (issuer) + Practitioner +
//!   Immunization (DDCCImmunization, brand / market-authorisation holder / country / valid-from
//!   as extensions) + ImmunizationRecommendation (next dose, only while the series is incomplete).
//!
//! Written from our knowledge of the WHO DDCC IG (RC 2); profile and extension names are built
//! from `[ddcc] profile_base` in the code map. DIVOC data has no next-dose date, so `nextDose`
//! is absent from the core data set and the recommendation carries the dose number only.
//! DIVOC does not distinguish manufacturer from market-authorisation holder: both come from
//! `evidence.manufacturer`.

use divoc_credential::credential::Evidence;
use divoc_credential::VaccinationCredential;
use serde::{Deserialize, Serialize};

use crate::bundle::*;
use crate::codes::{FhirCodes, ICD11_SYSTEM, ISO3166_SYSTEM};
use crate::error::FhirError;
use crate::fhir::*;

/// LOINC code system.
const LOINC: &str = "http://loinc.org";

/// `certificate` of the core data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdccCertificate {
    /// Issuer (the credential's `issuer`).
    pub issuer: Identifier,
    /// Id of the key that signed the DIVOC credential (its proof's verificationMethod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Health certificate identifier (DIVOC certificateId).
    pub hcid: Identifier,
    /// Core data set version.
    pub version: String,
    /// Validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// `vaccination` of the core data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdccVaccination {
    /// Vaccine or prophylaxis (ICD-11).
    pub vaccine: Coding,
    /// Vaccine brand (DIVOC's vaccine name).
    pub brand: Coding,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<Coding>,
    /// Market authorisation holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maholder: Option<Coding>,
    /// Batch / lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Date of vaccination.
    pub date: String,
    /// Date from which the vaccination counts as valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// Dose number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<u32>,
    /// Doses in the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_doses: Option<u32>,
    /// Country of vaccination (ISO 3166-1 alpha-3).
    pub country: Coding,
    /// Administering centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre: Option<String>,
    /// Health worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<Identifier>,
    /// Disease targeted (ICD-11 RA01).
    pub disease: Coding,
    /// Due date of the next dose (never known from DIVOC data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_dose: Option<String>,
}

/// The DDCC:VS core data set for one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdccVsCoreDataSet {
    /// Full name.
    pub name: String,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Unique identifier of the person.
    pub identifier: Identifier,
    /// Administrative gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// Certificate metadata.
    pub certificate: DdccCertificate,
    /// The vaccination event.
    pub vaccination: DdccVaccination,
}

fn single_evidence(cred: &VaccinationCredential) -> Result<&Evidence, FhirError> {
    match cred.evidence.as_slice() {
        [e] => Ok(e),
        [] => Err(FhirError::Credential("credential has no evidence".into())),
        _ => Err(FhirError::Credential(format!(
            "a DDCC:VS certificate is one dose; the credential has {} evidence entries",
            cred.evidence.len()
        ))),
    }
}

/// Country of vaccination, alpha-3: facility address, else recipient address, else the
/// configured default. A named but unmapped country is an error (guessing would mislabel).
fn country_alpha3<'c>(
    cred: &VaccinationCredential,
    e: &Evidence,
    codes: &'c FhirCodes,
) -> Result<&'c str, FhirError> {
    let named = e
        .facility
        .as_ref()
        .and_then(|f| f.address.as_ref())
        .and_then(|a| non_empty(a.address_country.as_ref()))
        .or_else(|| {
            cred.credential_subject
                .address
                .as_ref()
                .and_then(|a| non_empty(a.address_country.as_ref()))
        });
    let country = named.unwrap_or_else(|| codes.ddcc.default_country_alpha2.clone());
    codes.alpha3(&country).ok_or_else(|| FhirError::Config {
        file: codes.source.clone(),
        message: format!(
            "country '{country}' has no [[country]] entry (alpha2 -> alpha3): add one"
        ),
    })
}

/// The DDCC:VS core data set of one DIVOC certificate.
pub fn ddcc_core_data_set(
    cred: &VaccinationCredential,
    codes: &FhirCodes,
) -> Result<DdccVsCoreDataSet, FhirError> {
    let e = single_evidence(cred)?;
    let subject = &cred.credential_subject;
    let name = vaccine_name(e)?;
    let vaccine = match non_empty(e.icd11_code.as_ref()) {
        Some(code) => Coding::new(ICD11_SYSTEM, &code, e.prophylaxis.as_deref()),
        None => Coding::new(ICD11_SYSTEM, &codes.vaccine(name)?.icd11, None),
    };
    let manufacturer = non_empty(e.manufacturer.as_ref()).map(|m| Coding {
        system: None,
        code: None,
        display: Some(m),
    });
    let start = e
        .effective_start
        .as_deref()
        .map(|d| date_part(d, "evidence.effectiveStart"))
        .transpose()?;
    let end = e
        .effective_until
        .as_deref()
        .map(|d| date_part(d, "evidence.effectiveUntil"))
        .transpose()?;
    let period = (start.is_some() || end.is_some()).then(|| Period {
        start: start.clone(),
        end,
    });
    Ok(DdccVsCoreDataSet {
        name: subject_name(subject)?.to_string(),
        birth_date: birth_date(subject)?,
        identifier: Identifier {
            system: None,
            value: Some(subject.id.clone()),
        },
        sex: gender(subject),
        certificate: DdccCertificate {
            issuer: Identifier {
                system: None,
                value: Some(cred.issuer.clone()),
            },
            kid: cred.proof.as_ref().map(|p| p.verification_method.clone()),
            hcid: Identifier {
                system: None,
                value: Some(non_empty(e.certificate_id.as_ref()).unwrap_or_else(|| e.id.clone())),
            },
            version: codes.ddcc.core_data_set_version.clone(),
            period,
        },
        vaccination: DdccVaccination {
            vaccine,
            brand: Coding {
                system: None,
                code: Some(name.to_string()),
                display: Some(name.to_string()),
            },
            maholder: manufacturer.clone(),
            manufacturer,
            lot: non_empty(e.batch.as_ref()),
            date: fhir_date_time(dose_date(e)?, "evidence.date")?,
            valid_from: start,
            dose: dose_number(e.dose.as_ref()),
            total_doses: dose_number(e.total_doses.as_ref()),
            country: Coding::new(ISO3166_SYSTEM, country_alpha3(cred, e, codes)?, None),
            centre: e.facility.as_ref().and_then(|f| non_empty(f.name.as_ref())),
            practitioner: e
                .verifier
                .as_ref()
                .and_then(|v| non_empty(v.name.as_ref()))
                .map(|n| Identifier {
                    system: None,
                    value: Some(n),
                }),
            disease: Coding::new(ICD11_SYSTEM, "RA01", Some("COVID-19")),
            next_dose: None,
        },
    })
}

fn profile(codes: &FhirCodes, name: &str) -> Option<Meta> {
    Some(Meta {
        profile: vec![format!("{}/{name}", codes.ddcc.profile_base)],
    })
}

fn extension(codes: &FhirCodes, name: &str) -> Extension {
    Extension {
        url: format!("{}/{name}", codes.ddcc.profile_base),
        value_coding: None,
        value_code: None,
        value_date: None,
        value_string: None,
    }
}

/// The DDCC:VS FHIR `document` Bundle of one DIVOC certificate (see the module docs).
pub fn ddcc_document(cred: &VaccinationCredential, codes: &FhirCodes) -> Result<Bundle, FhirError> {
    let core = ddcc_core_data_set(cred, codes)?;
    let v = &core.vaccination;
    let hcid = core.certificate.hcid.value.clone().unwrap_or_default();
    let url = |kind: &str| urn_uuid(&format!("ddcc:{kind}:{}:{hcid}", cred.issuer));
    let (patient_url, org_url, imm_url) =
        (url("patient"), url("organization"), url("immunization"));
    let (pract_url, rec_url, comp_url) = (
        url("practitioner"),
        url("recommendation"),
        url("composition"),
    );
    let issued = fhir_date_time(cred.issued_at(), "issuanceDate")?;

    let mut entries = Vec::new();
    let patient = full_patient(
        &cred.credential_subject,
        None,
        profile(codes, "DDCCPatient"),
    )?;
    entries.push((patient_url.clone(), Resource::Patient(patient)));
    entries.push((
        org_url.clone(),
        Resource::Organization(Organization {
            id: None,
            identifier: vec![core.certificate.issuer.clone()],
            name: Some(cred.issuer.clone()),
        }),
    ));
    let vaccinator = v.practitioner.as_ref().and_then(|p| p.value.clone());
    if let Some(name) = &vaccinator {
        entries.push((
            pract_url.clone(),
            Resource::Practitioner(Practitioner {
                id: None,
                name: vec![human_name(name)],
            }),
        ));
    }

    let mut ext = Vec::new();
    ext.push(Extension {
        value_coding: Some(v.brand.clone()),
        ..extension(codes, "DDCCVaccineBrand")
    });
    if let Some(ma) = &v.maholder {
        ext.push(Extension {
            value_coding: Some(ma.clone()),
            ..extension(codes, "DDCCVaccineMarketAuthorization")
        });
    }
    ext.push(Extension {
        value_code: v.country.code.clone(),
        ..extension(codes, "DDCCCountryOfEvent")
    });
    if let Some(from) = &v.valid_from {
        ext.push(Extension {
            value_date: Some(from.clone()),
            ..extension(codes, "DDCCVaccineValidFrom")
        });
    }
    let disease = CodeableConcept::single(v.disease.clone());
    let immunization = Immunization {
        id: None,
        meta: profile(codes, "DDCCImmunization"),
        extension: ext,
        status: "completed".into(),
        vaccine_code: CodeableConcept::single(v.vaccine.clone()),
        patient: Reference::to(patient_url.clone()),
        occurrence_date_time: v.date.clone(),
        location: v.centre.clone().map(Reference::display),
        manufacturer: v
            .manufacturer
            .as_ref()
            .and_then(|m| m.display.clone())
            .map(Reference::display),
        lot_number: v.lot.clone(),
        performer: vaccinator
            .map(|n| ImmunizationPerformer {
                actor: Reference {
                    reference: Some(pract_url.clone()),
                    display: Some(n),
                },
            })
            .into_iter()
            .collect(),
        protocol_applied: vec![ProtocolApplied {
            target_disease: vec![disease.clone()],
            dose_number_positive_int: v.dose,
            dose_number_string: v.dose.is_none().then(|| "unknown".to_string()),
            series_doses_positive_int: v.total_doses,
        }],
    };
    entries.push((imm_url.clone(), Resource::Immunization(immunization)));

    let mut sections = vec![CompositionSection {
        title: Some("Vaccination".into()),
        code: Some(CodeableConcept::single(Coding::new(
            LOINC,
            "11369-6",
            Some("History of Immunization Narrative"),
        ))),
        entry: vec![Reference::to(imm_url.clone())],
    }];
    if let (Some(dose), Some(total)) = (v.dose, v.total_doses) {
        if dose < total {
            entries.push((
                rec_url.clone(),
                Resource::ImmunizationRecommendation(ImmunizationRecommendation {
                    id: None,
                    meta: profile(codes, "DDCCImmunizationRecommendation"),
                    patient: Reference::to(patient_url.clone()),
                    date: issued.clone(),
                    recommendation: vec![Recommendation {
                        vaccine_code: vec![CodeableConcept::single(v.vaccine.clone())],
                        target_disease: Some(disease),
                        forecast_status: CodeableConcept::single(Coding::new(
                            "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
                            "due",
                            None,
                        )),
                        dose_number_positive_int: Some(dose + 1),
                        series_doses_positive_int: Some(total),
                        supporting_immunization: vec![Reference::to(imm_url.clone())],
                    }],
                }),
            ));
            sections.push(CompositionSection {
                title: Some("Next dose".into()),
                code: Some(CodeableConcept::single(Coding::new(
                    LOINC,
                    "18776-5",
                    Some("Plan of care note"),
                ))),
                entry: vec![Reference::to(rec_url)],
            });
        }
    }
    let composition = Composition {
        id: None,
        meta: profile(codes, "DDCCVSComposition"),
        extension: core
            .certificate
            .kid
            .iter()
            .map(|kid| Extension {
                value_string: Some(kid.clone()),
                ..extension(codes, "DDCCCertificateKid")
            })
            .collect(),
        identifier: Some(core.certificate.hcid.clone()),
        status: "final".into(),
        composition_type: CodeableConcept::single(Coding::new(
            LOINC,
            "82593-5",
            Some("Immunization summary report"),
        )),
        subject: Reference::to(patient_url),
        date: issued.clone(),
        author: vec![Reference::to(org_url)],
        title: "International Certificate of Vaccination or Prophylaxis".into(),
        event: core
            .certificate
            .period
            .iter()
            .map(|p| CompositionEvent {
                period: Some(p.clone()),
            })
            .collect(),
        section: sections,
    };
    let mut entry = vec![BundleEntry {
        full_url: Some(comp_url),
        resource: Resource::Composition(composition),
    }];
    entry.extend(entries.into_iter().map(|(u, r)| BundleEntry {
        full_url: Some(u),
        resource: r,
    }));
    Ok(Bundle {
        resource_type: BundleResourceType::Bundle,
        id: None,
        identifier: Some(Identifier {
            system: Some(format!("{}/hcid", cred.issuer.trim_end_matches('/'))),
            value: Some(hcid),
        }),
        bundle_type: BundleType::Document,
        timestamp: Some(issued),
        entry,
    })
}
