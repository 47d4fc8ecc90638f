//! HCERT throughput: issue (payload + CBOR + ES256 + zlib + Base45) single-threaded and with
//! rayon over a batch, and full verification.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use divoc_credential::credential::{CredentialVersion, VaccinationCredential};
use divoc_hcert::{
    generate_self_signed_dsc, verify_hc1, DccConfig, DccHolder, Dsc, DscOptions, DscSigner,
    HcertIssuer, TrustList,
};
use rayon::prelude::*;

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../config/dcc-valuesets.toml"
);
const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/divoc-vector/divoc-ed25519-2018-signed.json"
);

fn credential(i: usize) -> VaccinationCredential {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    let mut c = VaccinationCredential::from_json(&v).unwrap();
    c.context = CredentialVersion::V2.contexts(&Default::default());
    c.credential_subject.dob = Some("1990-04-01".into());
    let ev = &mut c.evidence[0];
    ev.vaccine = Some(["COVISHIELD", "COVAXIN", "Comirnaty", "Sputnik V"][i % 4].into());
    ev.dose = Some(divoc_credential::credential::Dose::Number(
        1 + (i % 2) as u32,
    ));
    ev.total_doses = Some(divoc_credential::credential::Dose::Number(2));
    ev.certificate_id = Some(format!("{:012}", 100_000_000_000u64 + i as u64));
    c
}

fn bench(c: &mut Criterion) {
    let g = generate_self_signed_dsc(&DscOptions {
        common_name: "Bench DSC".into(),
        country: "IN".into(),
        organization: None,
        validity_days: 30,
        allowed_types: vec![],
    })
    .unwrap();
    let issuer = HcertIssuer::new(
        DscSigner::from_pem(&g.pem, &g.key_pem).unwrap(),
        DccConfig::load(CONFIG).unwrap(),
    );
    let mut trust = TrustList::new();
    trust.add(Dsc::from_pem(&g.pem).unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let creds: Vec<_> = (0..1024).map(credential).collect();
    let holder = DccHolder::from_credential_name(&creds[0]).unwrap();

    let mut group = c.benchmark_group("hcert");
    group.throughput(Throughput::Elements(1));
    // Component costs, to see where issuing time goes.
    let signer = issuer.signer().clone();
    let msg = vec![0x5Au8; 320];
    group.bench_function("part_es256_sign", |b| b.iter(|| signer.sign(&msg)));
    let cose =
        divoc_hcert::decode_hc1(&issuer.issue(&creds[0], &holder, now).unwrap().hc1).unwrap();
    let cose_bytes = divoc_hcert::CoseSign1::encode_tagged(
        cose.cose.protected_bytes,
        cose.cose.payload,
        cose.cose.signature,
    )
    .unwrap();
    let dsc = Dsc::from_pem(&g.pem).unwrap();
    let decoded =
        divoc_hcert::decode_hc1(&issuer.issue(&creds[0], &holder, now).unwrap().hc1).unwrap();
    group.bench_function("part_es256_verify", |b| {
        b.iter(|| dsc.verify_signature(&decoded.cose).unwrap())
    });
    let hc1 = issuer.issue(&creds[0], &holder, now).unwrap().hc1;
    group.bench_function("part_decode_only", |b| {
        b.iter(|| divoc_hcert::decode_hc1(&hc1).unwrap())
    });
    group.bench_function("part_zlib_base45", |b| {
        b.iter(|| divoc_hcert::encode_hc1(&cose_bytes))
    });
    group.bench_function("issue_1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % creds.len();
            issuer.issue(&creds[i], &holder, now).unwrap()
        })
    });
    let hc1s: Vec<String> = creds
        .iter()
        .map(|c| issuer.issue(c, &holder, now).unwrap().hc1)
        .collect();
    group.bench_function("verify_1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hc1s.len();
            verify_hc1(&hc1s[i], &trust, now + 1).unwrap()
        })
    });
    group.throughput(Throughput::Elements(creds.len() as u64));
    group.sample_size(10);
    group.bench_function("issue_rayon_batch_1024", |b| {
        b.iter(|| {
            creds
                .par_iter()
                .map(|c| issuer.issue(c, &holder, now).unwrap().hc1)
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("verify_rayon_batch_1024", |b| {
        b.iter(|| {
            hc1s.par_iter()
                .map(|h| verify_hc1(h, &trust, now + 1).unwrap().kid)
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
