//! Shared test helpers: DIVOC credentials built from JSON, the shipped code map.
#![allow(dead_code)]

use divoc_credential::VaccinationCredential;
use divoc_fhir::FhirCodes;
use serde_json::json;

pub const CODES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/shc-codes.toml");
pub const SHC_TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/shc-testdata");

pub fn codes() -> FhirCodes {
    FhirCodes::load(CODES).unwrap()
}

/// A v2 DIVOC credential for one dose.
pub fn credential(
    name: &str,
    vaccine: &str,
    dose: u32,
    total: u32,
    date: &str,
    certificate_id: &str,
) -> VaccinationCredential {
    VaccinationCredential::from_json(&json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://cowin.gov.in/credentials/vaccination/v2"],
        "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
        "credentialSubject": {
            "type": "Person",
            "id": "did:in.gov.uidai.aadhaar:123456789012",
            "refId": "P-1",
            "name": name,
            "gender": "Female",
            "age": "34",
            "nationality": "Indian",
            "dob": "1987-03-14",
            "address": {"streetAddress": "12 MG Road", "district": "Pune", "addressRegion": "Maharashtra", "addressCountry": "IN", "postalCode": "411001"}
        },
        "issuer": "https://cowin.gov.in/",
        "issuanceDate": "2021-06-01T10:00:00.000Z",
        "evidence": [{
            "id": format!("https://cowin.gov.in/vaccine/{certificate_id}"),
            "infoUrl": "https://cowin.gov.in/?info",
            "feedbackUrl": "https://cowin.gov.in/?feedback",
            "certificateId": certificate_id,
            "type": ["Vaccination"],
            "batch": format!("LOT-{dose}"),
            "vaccine": vaccine,
            "manufacturer": "Serum Institute of India",
            "icd11Code": "XM9QW8",
            "prophylaxis": "COVID-19 vaccine, non-replicating viral vector",
            "date": date,
            "effectiveStart": &date[..10],
            "effectiveUntil": "2022-06-01",
            "dose": dose,
            "totalDoses": total,
            "verifier": {"name": "Dr. Anita Rao"},
            "facility": {"name": "District Hospital Pune", "address": {"district": "Pune", "addressRegion": "Maharashtra", "addressCountry": "IN"}}
        }],
        "nonTransferable": "true"
    }))
    .unwrap()
}

/// A person's doses: `doses` credentials of the same subject.
pub fn history(name: &str, vaccine: &str, doses: u32) -> Vec<VaccinationCredential> {
    (1..=doses)
        .map(|d| {
            credential(
                name,
                vaccine,
                d,
                doses.max(2),
                &format!("2021-0{}-1{}T09:30:00.000Z", d + 1, d),
                &format!("CERT-{d}"),
            )
        })
        .collect()
}
