//! WHO DDCC:VS (core data set + document bundle) and the plain FHIR R4 bundle.

mod common;

use divoc_fhir::{ddcc_core_data_set, ddcc_document, fhir_bundle, FhirCodes, FhirError};
use serde_json::{json, Value};

fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect()
}

#[test]
fn core_data_set_fields() {
    let cred = common::credential(
        "Priya Sharma",
        "COVISHIELD",
        1,
        2,
        "2021-05-03T09:30:00.000Z",
        "C-77",
    );
    let core = serde_json::to_value(ddcc_core_data_set(&cred, &common::codes()).unwrap()).unwrap();
    assert_eq!(core["name"], "Priya Sharma");
    assert_eq!(core["birthDate"], "1987-03-14");
    assert_eq!(
        core["identifier"]["value"],
        "did:in.gov.uidai.aadhaar:123456789012"
    );
    assert_eq!(core["sex"], "female");
    let cert = &core["certificate"];
    assert_eq!(cert["issuer"]["value"], "https://cowin.gov.in/");
    assert_eq!(cert["hcid"]["value"], "C-77");
    assert_eq!(
        cert["period"],
        json!({"start": "2021-05-03", "end": "2022-06-01"})
    );
    assert!(cert["version"].is_string());
    let v = &core["vaccination"];
    assert_eq!(v["vaccine"]["system"], "http://id.who.int/icd11/mms");
    assert_eq!(v["vaccine"]["code"], "XM9QW8");
    assert_eq!(v["brand"]["code"], "COVISHIELD");
    assert_eq!(v["manufacturer"]["display"], "Serum Institute of India");
    assert_eq!(v["maholder"]["display"], "Serum Institute of India");
    assert_eq!(v["lot"], "LOT-1");
    assert_eq!(v["date"], "2021-05-03T09:30:00.000Z");
    assert_eq!(v["validFrom"], "2021-05-03");
    assert_eq!(v["dose"], 1);
    assert_eq!(v["totalDoses"], 2);
    assert_eq!(v["country"]["code"], "IND");
    assert_eq!(v["centre"], "District Hospital Pune");
    assert_eq!(v["practitioner"]["value"], "Dr. Anita Rao");
    assert_eq!(v["disease"]["code"], "RA01");
}

#[test]
fn country_alpha3_from_config() {
    let codes = common::codes();
    for (a2, a3) in [
        ("IN", "IND"),
        ("LK", "LKA"),
        ("PH", "PHL"),
        ("JM", "JAM"),
        ("ID", "IDN"),
    ] {
        assert_eq!(codes.alpha3(a2), Some(a3));
        let mut cred = common::credential("A B", "Covaxin", 1, 2, "2021-05-03", "C");
        cred.evidence[0]
            .facility
            .as_mut()
            .unwrap()
            .address
            .as_mut()
            .unwrap()
            .address_country = Some(a2.into());
        let core = ddcc_core_data_set(&cred, &codes).unwrap();
        assert_eq!(core.vaccination.country.code.as_deref(), Some(a3));
    }
    assert_eq!(codes.alpha3("India"), Some("IND"));
    let mut cred = common::credential("A B", "Covaxin", 1, 2, "2021-05-03", "C");
    cred.evidence[0]
        .facility
        .as_mut()
        .unwrap()
        .address
        .as_mut()
        .unwrap()
        .address_country = Some("Atlantis".into());
    let err = ddcc_core_data_set(&cred, &codes).unwrap_err().to_string();
    assert!(
        err.contains("Atlantis") && err.contains("shc-codes.toml"),
        "{err}"
    );
}

#[test]
fn ddcc_document_structure() {
    let cred = common::credential(
        "Priya Sharma",
        "COVISHIELD",
        1,
        2,
        "2021-05-03T09:30:00.000Z",
        "C-77",
    );
    let doc = serde_json::to_value(ddcc_document(&cred, &common::codes()).unwrap()).unwrap();
    assert_eq!(doc["resourceType"], "Bundle");
    assert_eq!(doc["type"], "document");
    assert!(doc["timestamp"].is_string());
    assert_eq!(doc["identifier"]["value"], "C-77");
    let rs = resources(&doc);
    let kinds: Vec<&str> = rs
        .iter()
        .map(|r| r["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Composition",
            "Patient",
            "Organization",
            "Practitioner",
            "Immunization",
            "ImmunizationRecommendation"
        ]
    );
    // Every reference resolves to an entry's fullUrl.
    let urls: Vec<&str> = doc["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    for u in &urls {
        assert!(u.starts_with("urn:uuid:") && u.len() == 45, "{u}");
    }
    let text = doc.to_string();
    let mut refs = 0;
    for (i, _) in text.match_indices("\"reference\":\"") {
        let rest = &text[i + 13..];
        let r = &rest[..rest.find('"').unwrap()];
        assert!(urls.contains(&r), "dangling reference {r}");
        refs += 1;
    }
    assert!(refs >= 6);
    let comp = rs[0];
    assert_eq!(comp["type"]["coding"][0]["code"], "82593-5");
    assert_eq!(comp["subject"]["reference"], urls[1]);
    assert_eq!(comp["event"][0]["period"]["end"], "2022-06-01");
    let imm = rs[4];
    assert_eq!(imm["vaccineCode"]["coding"][0]["code"], "XM9QW8");
    assert_eq!(imm["protocolApplied"][0]["doseNumberPositiveInt"], 1);
    assert_eq!(imm["protocolApplied"][0]["seriesDosesPositiveInt"], 2);
    assert_eq!(
        imm["protocolApplied"][0]["targetDisease"][0]["coding"][0]["code"],
        "RA01"
    );
    let ext: Vec<&str> = imm["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(ext.iter().any(|u| u.ends_with("DDCCCountryOfEvent")));
    assert!(imm["extension"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["valueCode"] == "IND"));
    let rec = rs[5];
    assert_eq!(rec["recommendation"][0]["doseNumberPositiveInt"], 2);
    assert_eq!(
        rec["recommendation"][0]["forecastStatus"]["coding"][0]["code"],
        "due"
    );

    // Final dose: no next-dose recommendation.
    let last = common::credential("Priya Sharma", "COVISHIELD", 2, 2, "2021-07-03", "C-78");
    let doc = serde_json::to_value(ddcc_document(&last, &common::codes()).unwrap()).unwrap();
    assert!(!resources(&doc)
        .iter()
        .any(|r| r["resourceType"] == "ImmunizationRecommendation"));
}

#[test]
fn plain_fhir_bundle() {
    let creds = common::history("सुनीता देवी", "Covaxin", 2);
    let bundle = serde_json::to_value(fhir_bundle(&creds, &common::codes()).unwrap()).unwrap();
    assert_eq!(bundle["type"], "collection");
    let rs = resources(&bundle);
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0]["resourceType"], "Patient");
    assert_eq!(rs[0]["name"][0]["text"], "सुनीता देवी");
    assert_eq!(rs[0]["gender"], "female");
    let patient_url = bundle["entry"][0]["fullUrl"].as_str().unwrap();
    for (i, imm) in rs[1..].iter().enumerate() {
        assert_eq!(imm["resourceType"], "Immunization");
        assert_eq!(imm["patient"]["reference"], patient_url);
        assert_eq!(
            imm["vaccineCode"]["coding"][0]["system"],
            "http://hl7.org/fhir/sid/cvx"
        );
        assert_eq!(imm["vaccineCode"]["coding"][0]["code"], "502");
        assert!(imm["vaccineCode"]["coding"][0]["display"].is_string());
        assert_eq!(imm["protocolApplied"][0]["doseNumberPositiveInt"], i + 1);
        assert_eq!(imm["performer"][0]["actor"]["display"], "Dr. Anita Rao");
        assert_eq!(imm["location"]["display"], "District Hospital Pune");
        assert!(imm["occurrenceDateTime"].as_str().unwrap().ends_with('Z'));
    }
    // Typed round trip: what we write, we read back identically.
    let typed: divoc_fhir::fhir::Bundle = serde_json::from_value(bundle.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), bundle);
}

#[test]
fn divoc_vector_v1_credential() {
    // DIVOC's own signed v1 credential: no dob (omitted, not invented), string doses, and a
    // vaccine name ("CoVax") no code map knows.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/divoc-vector/divoc-ed25519-2018-signed.json"
    ))
    .unwrap();
    let cred =
        divoc_credential::VaccinationCredential::from_json(&serde_json::from_str(&text).unwrap())
            .unwrap();
    let codes = common::codes();
    assert!(matches!(
        fhir_bundle(std::slice::from_ref(&cred), &codes),
        Err(FhirError::UnmappedVaccine { .. })
    ));
    // DDCC needs ICD-11 only; v1 has no icd11Code and the vaccine is unmapped -> clear error.
    assert!(matches!(
        ddcc_core_data_set(&cred, &codes),
        Err(FhirError::UnmappedVaccine { .. })
    ));
    let mut mapped = cred.clone();
    mapped.evidence[0].vaccine = Some("Covaxin".into());
    let core = ddcc_core_data_set(&mapped, &codes).unwrap();
    assert_eq!(core.birth_date, None);
    assert_eq!(core.vaccination.dose, None);
    assert_eq!(core.vaccination.vaccine.code.as_deref(), Some("XM1NL1"));
    assert_eq!(core.certificate.kid.as_deref(), Some("did:india"));
    let b = serde_json::to_value(fhir_bundle(&[mapped], &codes).unwrap()).unwrap();
    assert!(b["entry"][0]["resource"].get("birthDate").is_none());
}

#[test]
fn code_map_validation() {
    let shipped = std::fs::read_to_string(common::CODES).unwrap();
    FhirCodes::from_toml(&shipped, "shipped").unwrap();
    let icd_as_cvx = shipped.replacen("cvx = \"208\"", "cvx = \"XM0GQ8\"", 1);
    let err = FhirCodes::from_toml(&icd_as_cvx, "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("XM0GQ8"), "{err}");
    let upper_match = shipped.replacen("\"comirnaty\"", "\"Comirnaty\"", 1);
    assert!(FhirCodes::from_toml(&upper_match, "t").is_err());
    let unknown_key = format!("{shipped}\n[extra]\nx = 1\n");
    assert!(FhirCodes::from_toml(&unknown_key, "t").is_err());
    assert!(FhirCodes::load("/nonexistent/shc-codes.toml").is_err());
}
