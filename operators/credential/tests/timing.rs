//! Quick release-mode timings (ignored by default; numbers are printed, not asserted):
//! `cargo test --release -p divoc-credential --test timing -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::{credential, GenOptions, Rng};
use divoc_credential::proof::sign_with;
use divoc_credential::{urdna2015, verify_with, Canonicalizer, Escaping, SigningKey};
use ed25519_dalek::Signer as _;
use serde_json::Value;

/// Microseconds per item: the best of five rounds (the machine is shared; the minimum is the
/// least disturbed measurement).
fn per_item<F: FnMut(&Value)>(docs: &[Value], mut f: F) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for d in docs {
                f(d);
            }
            start.elapsed().as_secs_f64() * 1e6 / docs.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "timing; run explicitly with --ignored --nocapture"]
fn print_costs_per_certificate() {
    let mut rng = Rng::new(7);
    // Realistic certificates: valid ids, one deployment shape mix.
    let docs: Vec<Value> = (0..5000)
        .map(|_| credential(&mut rng, GenOptions::PYLD))
        .filter(|d| d["credentialSubject"].get("id").is_some())
        .collect();
    let canon = Canonicalizer::default();
    let general = Canonicalizer::default().without_templates();
    // warm up caches / templates
    for d in docs.iter().take(500) {
        let _ = canon.canonicalize(d);
        let _ = general.canonicalize(d);
    }
    let template_us = per_item(&docs, |d| {
        canon.canonicalize(d).expect("canonicalize");
    });
    let general_us = per_item(&docs, |d| {
        general.canonicalize(d).expect("canonicalize");
    });
    let fill_us = per_item(&docs, |d| {
        canon.dataset(d).expect("dataset");
    });
    let expand_us = per_item(&docs, |d| {
        general.processor().to_rdf(d).expect("to_rdf");
    });
    let datasets: Vec<_> = docs
        .iter()
        .map(|d| canon.dataset(d).expect("dataset"))
        .collect();
    let urdna_us = (0..5)
        .map(|_| {
            let start = Instant::now();
            for ds in &datasets {
                urdna2015::canonicalize(ds, Escaping::Rdfc10).expect("urdna2015");
            }
            start.elapsed().as_secs_f64() * 1e6 / datasets.len() as f64
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "breakdown: template fill {fill_us:.1} us, general toRdf {expand_us:.1} us, URDNA2015 on the dataset {urdna_us:.1} us"
    );
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let sign_us = per_item(&docs, |d| {
        sign_with(&canon, d, &key, "did:india#key-1", "2021-08-27T10:57:57Z").expect("sign");
    });
    let signed: Vec<Value> = docs
        .iter()
        .map(|d| {
            sign_with(&canon, d, &key, "did:india#key-1", "2021-08-27T10:57:57Z").expect("sign")
        })
        .collect();
    let vk = key.verifying_key();
    let verify_us = per_item(&signed, |d| {
        verify_with(&canon, d, &vk).expect("verify");
    });
    let msg = [7u8; 104]; // the size of a 2018 signing input
    let n = 20_000;
    let raw_sign_per_s = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                std::hint::black_box(key.sign(std::hint::black_box(&msg)));
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max);
    println!(
        "{} certificates, 1 thread: template canonicalization {template_us:.1} us/cert, general {general_us:.1} us/cert, \
         full sign (2 canonicalizations + SHA-256 + Ed25519) {sign_us:.1} us/cert, verify {verify_us:.1} us/cert, \
         raw Ed25519 sign {raw_sign_per_s:.0}/s ({:.1} us); template stats {:?}",
        docs.len(),
        1e6 / raw_sign_per_s,
        canon.template_stats()
    );
}
