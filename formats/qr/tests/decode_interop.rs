//! Every payload kind, rendered as PNG, decoded by independent readers back to the exact payload:
//! rqrr (a Rust decoder from another project) always, and ZBar's `zbarimg` (C) when ignored tests
//! run. The DIVOC ZIP is also unzipped by Python's `zipfile`, the shc:/ digits decoded by a
//! Python transcription of the SHC spec (`tests/interop/qr_payloads.py`). SVGs are painted by
//! that script from Python's XML parse and read by zbarimg.

use std::path::{Path, PathBuf};
use std::process::Command;

use divoc_qr::{qr_png, shc_numeric_decode, zip_certificate, QrPayload};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

fn interop_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/qr_payloads.py")
}

/// The DIVOC-signed credential shipped with the reference, as issued (JSON text).
fn divoc_credential() -> Vec<u8> {
    std::fs::read(shared("divoc-vector/divoc-ed25519-2018-signed.json")).unwrap()
}

/// The QR text of an official EU DCC test case (PREFIX = what the QR holds).
fn hc1_text() -> String {
    let raw = std::fs::read(shared("dcc-testdata/common/2DCode/raw/CO3.json")).unwrap();
    let case: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    case["PREFIX"].as_str().unwrap().to_owned()
}

/// A valid SMART Health Card JWS from the spec's examples (BOM and whitespace stripped).
fn shc_jws() -> String {
    let raw = std::fs::read_to_string(shared(
        "shc-testdata/valid/test-example-00-d-jws-utf8_bom_prefix.txt",
    ))
    .unwrap();
    raw.trim_start_matches('\u{feff}').trim().to_owned()
}

/// The three payloads, named.
fn payloads() -> Vec<(&'static str, QrPayload)> {
    vec![
        (
            "divoc",
            QrPayload::DivocZip(zip_certificate(&divoc_credential())),
        ),
        ("hcert", QrPayload::Hcert(hc1_text())),
        ("shc", QrPayload::shc_from_jws(&shc_jws()).unwrap()),
    ]
}

/// Finds and decodes the one QR code in a PNG with rqrr's image detector.
fn rqrr_decode(png_bytes: &[u8]) -> Vec<u8> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Grayscale);
    let (w, h, stride) = (frame.width as usize, frame.height as usize, frame.line_size);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    let mut out = Vec::new();
    grids[0].decode_to(&mut out).unwrap();
    out
}

#[test]
fn png_images_decode_with_rqrr() {
    for (name, payload) in payloads() {
        for scale in [2, 4] {
            let png = payload.to_png(scale).unwrap();
            assert_eq!(
                rqrr_decode(&png),
                payload.as_bytes(),
                "{name} at scale {scale}"
            );
        }
    }
}

#[test]
fn realistic_payload_sizes() {
    // The bench relies on these being realistic; keep them in the ranges it states.
    let zip = zip_certificate(&divoc_credential());
    assert!((700..=1000).contains(&zip.len()), "zip {} bytes", zip.len());
    assert!((500..=700).contains(&hc1_text().len()));
    assert!((1000..=1800).contains(&(shc_jws().len() * 2)));
}

/// Runs zbarimg on a PNG and returns the raw symbol data (with `--oneshot` ZBar writes the one
/// symbol's bytes and no trailing newline; `-Sbinary` turns off its charset guessing).
fn zbar(png: &Path, binary: bool) -> Vec<u8> {
    let mut cmd = Command::new("zbarimg");
    cmd.args(["--raw", "-q", "--oneshot"]);
    if binary {
        cmd.arg("-Sbinary");
    }
    let out = cmd.arg(png).output().unwrap_or_else(|e| {
        panic!("cannot run zbarimg ({e}); install zbar-tools (tests/run-all.sh does)")
    });
    assert!(
        out.status.success(),
        "zbarimg failed on {}: {}",
        png.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn python(args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg(interop_script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e})"));
    assert!(
        out.status.success(),
        "qr_payloads.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
#[ignore = "needs zbarimg; tests/run-all.sh installs it"]
fn png_images_decode_with_zbarimg_to_the_exact_payload() {
    let dir = std::env::temp_dir().join(format!("divoc-qr-zbar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, payload) in payloads() {
        let png = dir.join(format!("{name}.png"));
        std::fs::write(&png, payload.to_png(4).unwrap()).unwrap();
        let decoded = zbar(&png, name == "divoc");
        assert_eq!(
            decoded,
            payload.as_bytes(),
            "{name}: zbarimg returns the exact payload"
        );
        let file = dir.join(format!("{name}.payload"));
        std::fs::write(&file, &decoded).unwrap();
        let path = file.to_str().unwrap();
        match name {
            "divoc" => assert_eq!(python(&["unzip", path]), divoc_credential()),
            "shc" => {
                let jws = String::from_utf8(python(&["shc-jws", path])).unwrap();
                assert_eq!(jws, shc_jws());
                assert_eq!(
                    shc_numeric_decode(std::str::from_utf8(&decoded).unwrap()).unwrap(),
                    jws
                );
            }
            _ => assert!(decoded.starts_with(b"HC1:")),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs zbarimg; tests/run-all.sh installs it"]
fn zbarimg_reads_the_legacy_qr_code_bytes_entry_point() {
    // `qr_code_bytes` + `qr_png` is what the pipeline demo and `divoc verify` use today.
    let zip = zip_certificate(&divoc_credential());
    let png = std::env::temp_dir().join(format!("divoc-qr-legacy-{}.png", std::process::id()));
    std::fs::write(
        &png,
        qr_png(&divoc_qr::qr_code_bytes(&zip).unwrap(), 3).unwrap(),
    )
    .unwrap();
    assert_eq!(zbar(&png, true), zip);
    std::fs::remove_file(&png).unwrap();
}

#[test]
#[ignore = "needs zbarimg; tests/run-all.sh installs it"]
fn svg_images_decode_with_zbarimg_to_the_exact_payload() {
    // Python's XML parser reads the SVG and paints its path (qr_payloads.py svg-to-png), so the
    // check covers what the SVG draws, not our matrix.
    let dir = std::env::temp_dir().join(format!("divoc-qr-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, payload) in payloads() {
        let svg = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        std::fs::write(&svg, payload.to_svg().unwrap()).unwrap();
        python(&["svg-to-png", svg.to_str().unwrap(), png.to_str().unwrap()]);
        assert_eq!(
            zbar(&png, name == "divoc"),
            payload.as_bytes(),
            "{name}: zbarimg reads the SVG's drawing back to the payload"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
