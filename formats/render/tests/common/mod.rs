//! Shared fixtures: the shipped config, sample credentials, a QR code.
#![allow(dead_code)]

use std::path::PathBuf;

use divoc_credential::VaccinationCredential;
use divoc_qr::{ModuleMatrix, QrPayload};
use divoc_render::Renderer;

/// The shipped config directory.
pub fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

/// The renderer over the shipped config.
pub fn renderer() -> Renderer {
    Renderer::load(&config_dir()).unwrap()
}

/// A credential for one dose.
pub fn credential(
    name: &str,
    state: &str,
    dose: u32,
    certificate_id: &str,
    date: &str,
) -> VaccinationCredential {
    let v = serde_json::json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://cowin.gov.in/credentials/vaccination/v1"],
        "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
        "credentialSubject": {
            "type": "Person",
            "id": "did:in.gov.uidai.aadhaar:987654325678",
            "refId": "12345678901234",
            "name": name,
            "gender": "Female",
            "age": "34",
            "nationality": "Indian",
            "address": {"streetAddress": "", "district": "Chennai", "addressRegion": state, "addressCountry": "IN"}
        },
        "issuer": "https://cowin.gov.in/",
        "issuanceDate": format!("{date}T10:20:30.000Z"),
        "evidence": [{
            "id": format!("https://cowin.gov.in/vaccine/{certificate_id}"),
            "infoUrl": "https://cowin.gov.in/?",
            "feedbackUrl": "https://cowin.gov.in/?",
            "certificateId": certificate_id,
            "type": ["Vaccination"],
            "batch": format!("4121Z0{dose}5"),
            "vaccine": "COVISHIELD",
            "manufacturer": "Serum Institute of India",
            "date": format!("{date}T10:00:00.000Z"),
            "effectiveStart": date,
            "effectiveUntil": "2022-12-31",
            "dose": dose,
            "totalDoses": 2,
            "verifier": {"name": "Dr. Kavitha Raman"},
            "facility": {"name": "Primary Health Centre Adyar", "address": {"streetAddress": "", "district": "Chennai", "addressRegion": state, "addressCountry": "IN"}}
        }],
        "nonTransferable": "true"
    });
    VaccinationCredential::from_json(&v).unwrap()
}

/// Both doses of a beneficiary (second first, to prove order does not matter).
pub fn doses(name: &str, state: &str) -> Vec<VaccinationCredential> {
    vec![
        credential(name, state, 2, "281740953215", "2021-06-20"),
        credential(name, state, 1, "281740953102", "2021-05-03"),
    ]
}

/// A real DIVOC QR payload: the ZIP of a signed-credential-sized JSON document (DIVOC's are
/// ~700-1000 bytes).
pub fn qr_payload() -> Vec<u8> {
    let mut s = String::from("{\"certificateId\":\"281740953215\",\"demo\":\"");
    let mut i = 0u64;
    while s.len() < 1400 {
        // Varied text so DEFLATE leaves a realistic ~800-byte archive.
        s.push_str(&format!("{:x}-", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        i += 1;
    }
    s.push_str("\"}");
    divoc_qr::zip_certificate(s.as_bytes())
}

/// The QR of [`qr_payload`]: byte mode, ECC M, as DIVOC prints it.
pub fn qr() -> ModuleMatrix {
    QrPayload::DivocZip(qr_payload()).to_matrix().unwrap()
}

/// Recipient names in every script, with the language whose template they suit.
pub const NAMES: [(&str, &str); 5] = [
    ("en", "Ananya Kshatriya"),
    ("hi", "अनन्या क्षत्रिय"),
    ("ta", "முத்துலட்சுமி"),
    ("bn", "সৌমিত্র চট্টোপাধ্যায়"),
    ("ur", "محمد عمران"),
];
