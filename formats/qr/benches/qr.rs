//! QR images per second for each payload kind, realistic sizes:
//! DIVOC ZIP of the reference-signed credential (~960 bytes), the HC1 text of an official EU DCC
//! test case (~600 characters), a SMART Health Card of 1000 digits (the first 500 characters of
//! the spec's example JWS) and the full example (785 characters, 1570 digits).
//!
//! Per kind, in one run:
//! - `old/encode`: the `qrcode` crate alone (`QrPayload::to_qr` + `qr_matrix`), the baseline;
//! - `new/encode`: `QrPayload::to_matrix` (fast_qr for ZIP and HC1; qrcode canvas + bit-parallel
//!   mask scorer for SHC);
//! - `old/encode+png`: `qr_png(&to_qr())` (qrcode encode + the same PNG writer);
//! - `new/encode+png`, `new/encode+svg`: `to_png(4)`, `to_svg()`;
//! - `png_only`, `svg_only`: rendering an already encoded matrix;
//! - `fast_qr/encode` (ZIP and HC1 only: fast_qr has one mode per symbol, so no SHC): the
//!   `fast_qr` crate with the same mode and level forced, the alternative we measured and did
//!   not adopt.
//!
//! Every symbol is decoded with rqrr before timing, so only codes that scan are compared.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/target-qr cargo bench -p divoc-qr`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use divoc_qr::{
    matrix_png, matrix_svg, qr_matrix, qr_png, zip_certificate, ModuleMatrix, QrPayload,
};

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

/// Decodes a matrix with rqrr: the symbols being timed must scan to the payload.
fn rqrr_payload(m: &ModuleMatrix) -> Vec<u8> {
    let grid = rqrr::SimpleGrid::from_func(m.width, |x, y| m.is_dark(x, y));
    let mut out = Vec::new();
    rqrr::Grid::new(grid).decode_to(&mut out).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    let payloads = payloads();
    let mut g = c.benchmark_group("qr");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, p) in &payloads {
        let old = qr_matrix(&p.to_qr().unwrap());
        let new = p.to_matrix().unwrap();
        assert_eq!(
            rqrr_payload(&old),
            p.as_bytes(),
            "{name}: qrcode symbol scans"
        );
        assert_eq!(rqrr_payload(&new), p.as_bytes(), "{name}: new symbol scans");
        assert_eq!(old.width, new.width, "{name}: same version either way");
        eprintln!(
            "{name}: version {}, {} modules, PNG(scale 4) {} bytes, SVG {} bytes",
            new.version(),
            new.width,
            matrix_png(&new, 4).unwrap().len(),
            matrix_svg(&new).len()
        );
        g.bench_function(format!("old/encode/{name}"), |b| {
            b.iter(|| qr_matrix(&black_box(p).to_qr().unwrap()))
        });
        g.bench_function(format!("new/encode/{name}"), |b| {
            b.iter(|| black_box(p).to_matrix().unwrap())
        });
        g.bench_function(format!("old/encode+png/{name}"), |b| {
            b.iter(|| qr_png(&black_box(p).to_qr().unwrap(), 4).unwrap())
        });
        g.bench_function(format!("new/encode+png/{name}"), |b| {
            b.iter(|| black_box(p).to_png(4).unwrap())
        });
        g.bench_function(format!("new/encode+svg/{name}"), |b| {
            b.iter(|| black_box(p).to_svg().unwrap())
        });
        let fast_qr_input = match p {
            QrPayload::DivocZip(_) => Some(fast_qr::Mode::Byte),
            QrPayload::Hcert(_) => Some(fast_qr::Mode::Alphanumeric),
            QrPayload::Shc(_) => None,
        };
        if let Some(mode) = fast_qr_input {
            let ecl = match p.kind().ec_level() {
                divoc_qr::EcLevel::M => fast_qr::ECL::M,
                _ => fast_qr::ECL::Q,
            };
            let build = || {
                fast_qr::QRBuilder::new(black_box(p.as_bytes()))
                    .mode(mode)
                    .ecl(ecl)
                    .build()
                    .unwrap()
            };
            let code = build();
            let size = code.size;
            let m = ModuleMatrix {
                width: size,
                modules: code.data[..size * size].iter().map(|m| m.value()).collect(),
            };
            assert_eq!(
                rqrr_payload(&m),
                p.as_bytes(),
                "{name}: fast_qr symbol scans"
            );
            g.bench_function(format!("fast_qr/encode/{name}"), |b| b.iter(build));
        }
        g.bench_function(format!("png_only/{name}"), |b| {
            b.iter(|| matrix_png(black_box(&new), 4).unwrap())
        });
        g.bench_function(format!("svg_only/{name}"), |b| {
            b.iter(|| matrix_svg(black_box(&new)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
