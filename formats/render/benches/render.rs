//! PDFs per second, with QR, per language: one thread, and rayon over a batch of 256.
//!
//! `CARGO_TARGET_DIR=/tmp/target-render cargo bench -p divoc-render --bench render`

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use divoc_credential::VaccinationCredential;
use divoc_qr::{ModuleMatrix, QrPayload};
use divoc_render::{RenderRequest, Renderer};
use rayon::prelude::*;

const NAMES: [(&str, &str, &str); 5] = [
    ("en", "Ananya Kshatriya", "Kerala"),
    ("hi", "अनन्या क्षत्रिय", "Uttar Pradesh"),
    ("ta", "முத்துலட்சுமி", "Tamil Nadu"),
    ("bn", "সৌমিত্র চট্টোপাধ্যায়", "West Bengal"),
    ("ur", "محمد عمران", "Jammu and Kashmir"),
];

fn credential(name: &str, state: &str, dose: u32, id: u64) -> VaccinationCredential {
    let v = serde_json::json!({
        "@context": ["https://www.w3.org/2018/credentials/v1", "https://cowin.gov.in/credentials/vaccination/v1"],
        "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
        "credentialSubject": {
            "type": "Person", "id": format!("did:in.gov.uidai.aadhaar:{:012}", 900_000_000_000u64 + id),
            "refId": format!("{:014}", id), "name": name, "gender": "Female", "age": "34",
            "address": {"district": "Chennai", "addressRegion": state, "addressCountry": "IN"}
        },
        "issuer": "https://cowin.gov.in/",
        "issuanceDate": "2021-06-20T10:20:30.000Z",
        "evidence": [{
            "id": format!("https://cowin.gov.in/vaccine/{id}"), "certificateId": format!("{}", 281_740_000_000u64 + id * 2 + u64::from(dose)),
            "type": ["Vaccination"], "batch": format!("4121Z0{dose}5"), "vaccine": "COVISHIELD",
            "manufacturer": "Serum Institute of India", "date": format!("2021-0{}-20T10:00:00.000Z", 4 + dose),
            "dose": dose, "totalDoses": 2, "verifier": {"name": "Dr. Kavitha Raman"},
            "facility": {"name": "Primary Health Centre Adyar", "address": {"district": "Chennai", "addressRegion": state}}
        }],
        "nonTransferable": "true"
    });
    VaccinationCredential::from_json(&v).unwrap()
}

struct Case {
    doses: Vec<VaccinationCredential>,
    /// The DIVOC QR payload (ZIP), for the benches that encode the QR too.
    zip: Vec<u8>,
    qr: ModuleMatrix,
}

fn cases(name: &str, state: &str, n: u64) -> Vec<Case> {
    (0..n)
        .map(|i| {
            // A realistic ~800-byte DIVOC ZIP (a version-25-ish QR): varied text, not a
            // run of one character that DEFLATE would shrink to nothing.
            let pad: String = (0..90u64)
                .map(|k| format!("{:x}-", (i * 131 + k).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                .collect();
            let payload = format!("{{\"certificateId\":\"{i}\",\"pad\":\"{pad}\"}}");
            Case {
                doses: vec![credential(name, state, 1, i), credential(name, state, 2, i)],
                zip: divoc_qr::zip_certificate(payload.as_bytes()),
                qr: QrPayload::DivocZip(divoc_qr::zip_certificate(payload.as_bytes()))
                    .to_matrix()
                    .unwrap(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"));
    let renderer = Renderer::load(&config).unwrap();
    let mut single = c.benchmark_group("render_one_thread");
    single.throughput(Throughput::Elements(1));
    for (lang, name, state) in NAMES {
        let case = &cases(name, state, 1)[0];
        single.bench_function(BenchmarkId::from_parameter(lang), |b| {
            b.iter(|| {
                renderer
                    .render(&RenderRequest {
                        tenant: "default",
                        language: Some(lang),
                        doses: &case.doses,
                        current: 1,
                        qr: &case.qr,
                    })
                    .unwrap()
            })
        });
    }
    single.finish();

    let mut batch = c.benchmark_group("render_rayon_batch_256");
    batch.throughput(Throughput::Elements(256));
    batch.sample_size(20);
    for (lang, name, state) in NAMES {
        let batch_cases = cases(name, state, 256);
        batch.bench_function(BenchmarkId::from_parameter(lang), |b| {
            b.iter(|| {
                batch_cases
                    .par_iter()
                    .map(|case| {
                        renderer
                            .render(&RenderRequest {
                                tenant: "default",
                                language: None,
                                doses: &case.doses,
                                current: 1,
                                qr: &case.qr,
                            })
                            .unwrap()
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }
    batch.finish();

    // What the render operator and the download API do per certificate: encode the QR from the
    // DIVOC ZIP, then render the PDF.
    let mut with_qr = c.benchmark_group("render_with_qr_encode_rayon_batch_256");
    with_qr.throughput(Throughput::Elements(256));
    with_qr.sample_size(20);
    for (lang, name, state) in NAMES {
        let batch_cases = cases(name, state, 256);
        with_qr.bench_function(BenchmarkId::from_parameter(lang), |b| {
            b.iter(|| {
                batch_cases
                    .par_iter()
                    .map(|case| {
                        let qr = QrPayload::DivocZip(case.zip.clone()).to_matrix().unwrap();
                        renderer
                            .render(&RenderRequest {
                                tenant: "default",
                                language: None,
                                doses: &case.doses,
                                current: 1,
                                qr: &qr,
                            })
                            .unwrap()
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }
    with_qr.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
