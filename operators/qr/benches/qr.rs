//! QR images per second for each payload kind, realistic sizes:
//! DIVOC ZIP of the reference-signed credential (~890 bytes), the HC1 text of an official EU DCC
//! test case (~600 characters), a SMART Health Card of 1000 digits (the first 500 characters of
//! the spec's example JWS) and the full example (785 characters, 1570 digits).
//!
//! `encode` is payload -> QR symbol alone; `png_only` renders an already encoded symbol, so the
//! two show where the time of `encode+png` goes.
//!
//! `fast_qr/encode` measures the alternative encoder `fast_qr` on the same symbols (byte/M for the
//! ZIP, alphanumeric/Q for HC1). fast_qr has one mode per symbol, so it cannot build the SHC
//! byte + numeric symbol; `shc_digits_proxy` encodes the digits alone (numeric/L) for timing only.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/target-qr cargo bench -p divoc-qr`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use divoc_qr::{qr_matrix, qr_png, qr_svg, zip_certificate, QrPayload};

fn shared(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared")
            .join(rel),
    )
    .expect("shared test data (../shared next to the repo)")
}

fn payloads() -> Vec<(String, QrPayload)> {
    let zip = zip_certificate(&shared("divoc-vector/divoc-ed25519-2018-signed.json"));
    let case: serde_json::Value =
        serde_json::from_slice(&shared("dcc-testdata/common/2DCode/raw/CO3.json")).unwrap();
    let hc1 = case["PREFIX"].as_str().unwrap().to_owned();
    let jws = String::from_utf8(shared(
        "shc-testdata/valid/test-example-00-d-jws-utf8_bom_prefix.txt",
    ))
    .unwrap();
    let jws = jws.trim_start_matches('\u{feff}').trim();
    vec![
        (
            format!("divoc_zip_{}B", zip.len()),
            QrPayload::DivocZip(zip),
        ),
        (format!("hcert_{}ch", hc1.len()), QrPayload::Hcert(hc1)),
        (
            "shc_1000digits".into(),
            QrPayload::shc_from_jws(&jws[..500]).unwrap(),
        ),
        (
            format!("shc_{}digits", jws.len() * 2),
            QrPayload::shc_from_jws(jws).unwrap(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let mut g = c.benchmark_group("qr");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, p) in &payloads {
        let code = p.to_qr().unwrap();
        eprintln!(
            "{name}: version {:?}, {} modules, PNG(scale 4) {} bytes, SVG {} bytes",
            code.version(),
            code.width(),
            qr_png(&code, 4).unwrap().len(),
            qr_svg(&code).len()
        );
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(p).to_qr().unwrap())
        });
        g.bench_function(format!("png_only/{name}"), |b| {
            b.iter(|| qr_png(black_box(&code), 4).unwrap())
        });
        g.bench_function(format!("encode+png/{name}"), |b| {
            b.iter(|| black_box(p).to_png(4).unwrap())
        });
        g.bench_function(format!("encode+svg/{name}"), |b| {
            b.iter(|| black_box(p).to_svg().unwrap())
        });
        g.bench_function(format!("encode+matrix/{name}"), |b| {
            b.iter(|| qr_matrix(&black_box(p).to_qr().unwrap()))
        });
    }
    g.finish();
    bench_fast_qr(c, &payloads);
}

/// Reads a fast_qr symbol with rqrr, so the comparison is between codes that scan.
fn fast_qr_payload(code: &fast_qr::QRCode) -> Vec<u8> {
    let size = code.size;
    let grid = rqrr::SimpleGrid::from_func(size, |x, y| code.data[y * size + x].value());
    let mut out = Vec::new();
    rqrr::Grid::new(grid).decode_to(&mut out).unwrap();
    out
}

fn bench_fast_qr(c: &mut Criterion, payloads: &[(String, QrPayload)]) {
    use fast_qr::{Mode, QRBuilder, ECL};
    let mut g = c.benchmark_group("fast_qr");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, p) in payloads {
        let (name, bytes, mode, ecl) = match p {
            QrPayload::DivocZip(z) => (name.clone(), z.clone(), Mode::Byte, ECL::M),
            QrPayload::Hcert(t) => (
                name.clone(),
                t.clone().into_bytes(),
                Mode::Alphanumeric,
                ECL::Q,
            ),
            QrPayload::Shc(t) => (
                format!("{name}_digits_proxy"),
                t.as_bytes()[divoc_qr::SHC_PREFIX.len()..].to_vec(),
                Mode::Numeric,
                ECL::L,
            ),
        };
        let code = QRBuilder::new(bytes.clone())
            .mode(mode)
            .ecl(ecl)
            .build()
            .unwrap();
        assert_eq!(
            fast_qr_payload(&code),
            bytes,
            "fast_qr symbol for {name} scans"
        );
        eprintln!("fast_qr {name}: {} modules", code.size);
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                QRBuilder::new(black_box(bytes.as_slice()))
                    .mode(mode)
                    .ecl(ecl)
                    .build()
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
