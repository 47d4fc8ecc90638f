//! Shared test fixtures: the shipped config, a throw-away DSC, and credentials shaped like the
//! pipeline's output (the DIVOC signed vector plus typed v1/v2 ones).
#![allow(dead_code)]

use divoc_credential::credential::{
    Address, CredentialSubject, CredentialVersion, Dose, Evidence, Facility, VaccinationCredential,
    VaccinationNamespace, Verifier,
};
use divoc_hcert::{
    generate_self_signed_dsc, CertType, DccConfig, DscOptions, DscSigner, GeneratedDsc, HcertIssuer,
};

pub const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../config/dcc-valuesets.toml"
);
pub const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/divoc-vector/divoc-ed25519-2018-signed.json"
);

pub fn config() -> DccConfig {
    DccConfig::load(CONFIG).unwrap()
}

pub fn dsc(allowed: Vec<CertType>) -> GeneratedDsc {
    generate_self_signed_dsc(&DscOptions {
        common_name: "DIVOC Test DSC, \"1\"".into(),
        country: "IN".into(),
        organization: Some("Ministry of Health and Family Welfare".into()),
        validity_days: 730,
        allowed_types: allowed,
    })
    .unwrap()
}

pub fn issuer(g: &GeneratedDsc) -> HcertIssuer {
    HcertIssuer::new(DscSigner::from_pem(&g.pem, &g.key_pem).unwrap(), config())
}

/// DIVOC's own signed test vector (v1 context, vaccine "CoVax", empty doses).
pub fn divoc_vector() -> VaccinationCredential {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    VaccinationCredential::from_json(&v).unwrap()
}

fn addr(country: &str) -> Address {
    Address {
        street_address: Some("123, Koramangala".into()),
        street_address2: Some(String::new()),
        district: Some("Bengaluru South".into()),
        city: Some("Bengaluru".into()),
        address_region: Some("Karnataka".into()),
        address_country: Some(country.into()),
        postal_code: Some("560034".into()),
    }
}

/// A credential as the pipeline emits it (v1 or v2 context).
pub fn credential(
    version: CredentialVersion,
    name: &str,
    vaccine: &str,
    manufacturer: &str,
    (dose, total): (u32, u32),
    certificate_id: &str,
    date: &str,
) -> VaccinationCredential {
    let v2 = version == CredentialVersion::V2;
    VaccinationCredential {
        context: version.contexts(&VaccinationNamespace::default()),
        types: vec![
            "VerifiableCredential".into(),
            "ProofOfVaccinationCredential".into(),
        ],
        credential_subject: CredentialSubject {
            subject_type: "Person".into(),
            id: "did:in.gov.uidai.aadhaar:2342343334".into(),
            ref_id: Some("12346".into()),
            uhid: None,
            name: Some(name.into()),
            gender: Some("Female".into()),
            age: Some("45".into()),
            nationality: Some("Indian".into()),
            dob: v2.then(|| "1976-03-09".into()),
            address: Some(addr("IN")),
        },
        issuer: "https://divoc.dev/".into(),
        issuance_date: "2021-08-27T10:57:57.237Z".into(),
        evidence: vec![Evidence {
            id: format!("https://divoc.dev/vaccine/{certificate_id}"),
            info_url: Some("https://divoc.dev/?".into()),
            feedback_url: Some("https://divoc.dev/?".into()),
            certificate_id: Some(certificate_id.into()),
            types: vec!["Vaccination".into()],
            batch: Some("4121Z005".into()),
            vaccine: Some(vaccine.into()),
            manufacturer: Some(manufacturer.into()),
            icd11_code: v2.then(|| "XM9QW8".into()),
            prophylaxis: v2.then(|| "COVID-19 vaccine, non-replicating viral vector".into()),
            date: Some(date.into()),
            effective_start: Some(date[..10].into()),
            effective_until: Some("2022-02-24".into()),
            dose: Some(Dose::Number(dose)),
            total_doses: Some(Dose::Number(total)),
            verifier: Some(Verifier {
                name: Some("Sooraj Singh".into()),
            }),
            facility: Some(Facility {
                name: Some("ABC Medical Center".into()),
                address: Some(addr("IN")),
            }),
        }],
        non_transferable: "true".into(),
        valid_from: None,
        credential_status: Vec::new(),
        proof: None,
    }
}
