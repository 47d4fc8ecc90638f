//! Renders one certificate in a loop, for `perf record` (setup kept out of the profile).
//! `cargo run --release -p divoc-render --example profile_render -- hi 2000`

use std::path::PathBuf;

use divoc_credential::VaccinationCredential;
use divoc_qr::QrPayload;
use divoc_render::{RenderRequest, Renderer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lang = args.get(1).map_or("en", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let config = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"));
    let loading = std::time::Instant::now();
    let renderer = Renderer::load(&config).unwrap();
    println!(
        "Renderer::load: {:.1} ms",
        loading.elapsed().as_secs_f64() * 1000.0
    );
    let v = serde_json::json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://cowin.gov.in/credentials/vaccination/v1"],
        "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
        "credentialSubject": {"type": "Person", "id": "did:x:123456789012", "refId": "12345678901234",
            "name": "अनन्या क्षत्रिय", "gender": "Female", "age": "34"},
        "issuer": "https://cowin.gov.in/", "issuanceDate": "2021-06-20T10:20:30.000Z",
        "evidence": [{"id": "https://cowin.gov.in/vaccine/1", "certificateId": "281740953215", "type": ["Vaccination"],
            "batch": "4121Z025", "vaccine": "COVISHIELD", "manufacturer": "Serum Institute of India",
            "date": "2021-06-20T10:00:00.000Z", "dose": 2, "totalDoses": 2, "verifier": {"name": "Dr. Kavitha Raman"},
            "facility": {"name": "Primary Health Centre Adyar"}}],
        "nonTransferable": "true"
    });
    let doses = vec![VaccinationCredential::from_json(&v).unwrap()];
    let qr = QrPayload::DivocZip(divoc_qr::zip_certificate("x".repeat(1400).as_bytes()))
        .to_matrix()
        .unwrap();
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut last = Vec::new();
    for _ in 0..n {
        last = renderer
            .render(&RenderRequest {
                tenant: "default",
                language: Some(lang),
                doses: &doses,
                current: 0,
                qr: &qr,
            })
            .unwrap();
        bytes += last.len();
    }
    std::fs::write(
        std::env::temp_dir().join(format!("profile-{lang}.pdf")),
        &last,
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{lang}: {n} PDFs in {secs:.3} s = {:.0} PDFs/s, {} bytes each",
        n as f64 / secs,
        bytes / n
    );
}
