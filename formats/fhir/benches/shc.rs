//! SMART Health Card issuing throughput: FHIR bundle + JSON + DEFLATE + ES256, one thread and
//! rayon over a batch; verification for comparison.
//!
//! `CARGO_TARGET_DIR=/tmp/target-fhir cargo bench -p divoc-fhir --bench shc`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use divoc_credential::VaccinationCredential;
use divoc_fhir::{FhirCodes, IssuerKey, ShcIssuer, ShcVerifier};
use rayon::prelude::*;
use serde_json::json;

const CODES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/shc-codes.toml");
const BATCH: usize = 512;

fn person(i: usize) -> Vec<VaccinationCredential> {
    (1..=2u32)
        .map(|dose| {
            VaccinationCredential::from_json(&json!({
                "@context": ["https://www.w3.org/2018/credentials/v1", "https://cowin.gov.in/credentials/vaccination/v2"],
                "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
                "credentialSubject": {
                    "type": "Person", "id": format!("did:in.gov.uidai.aadhaar:{i:012}"),
                    "name": format!("Beneficiary Number {i}"), "gender": "Male", "age": "40",
                    "dob": "1981-01-01", "nationality": "Indian"
                },
                "issuer": "https://cowin.gov.in/", "issuanceDate": "2021-06-01T10:00:00.000Z",
                "evidence": [{
                    "id": format!("https://cowin.gov.in/vaccine/{i}-{dose}"), "certificateId": format!("{i}-{dose}"),
                    "type": ["Vaccination"], "batch": "4121Z025", "vaccine": "COVISHIELD",
                    "manufacturer": "Serum Institute of India", "date": format!("2021-0{}-15T10:00:00.000Z", dose + 3),
                    "dose": dose, "totalDoses": 2,
                    "verifier": {"name": "Vaccinator"}, "facility": {"name": "Primary Health Centre Wagholi"}
                }],
                "nonTransferable": "true"
            }))
            .unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let issuer = ShcIssuer::new(
        IssuerKey::generate().unwrap(),
        "https://cowin.gov.in/shc",
        FhirCodes::load(CODES).unwrap(),
    )
    .unwrap();
    let people: Vec<_> = (0..BATCH).map(person).collect();
    let mut g = c.benchmark_group("shc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("issue_one_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % BATCH;
            issuer.issue(&people[i], 1_622_500_000).unwrap()
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_with_input(
        BenchmarkId::new("issue_rayon_batch", BATCH),
        &people,
        |b, people| {
            b.iter(|| {
                people
                    .par_iter()
                    .map(|p| issuer.issue(p, 1_622_500_000).unwrap())
                    .collect::<Vec<_>>()
            })
        },
    );
    // Breakdown of one issue: payload JSON, DEFLATE, ES256.
    g.throughput(Throughput::Elements(1));
    let payload = serde_json::to_vec(&issuer.payload(&people[0], 1_622_500_000).unwrap()).unwrap();
    g.bench_function("part_payload_json", |b| {
        b.iter(|| serde_json::to_vec(&issuer.payload(&people[1], 1_622_500_000).unwrap()).unwrap())
    });
    g.bench_function("part_deflate", |b| {
        b.iter(|| miniz_oxide::deflate::compress_to_vec(&payload, 9))
    });
    g.bench_function("part_es256_sign", |b| {
        b.iter(|| issuer.key().sign_es256(&payload))
    });
    let cards: Vec<_> = people
        .iter()
        .map(|p| issuer.issue(p, 1_622_500_000).unwrap())
        .collect();
    let verifier = ShcVerifier::new(&issuer.key().jwks(), Some(issuer.iss()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_one_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % BATCH;
            verifier.verify_jws(&cards[i].jws, 1_700_000_000).unwrap()
        })
    });
    g.finish();
    let len: usize = cards.iter().map(|c| c.jws.len()).sum::<usize>() / cards.len();
    println!("mean JWS length for a 2-dose card: {len} characters (single-QR limit 1195)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
