//! Our SMART Health Cards checked by an independent implementation: Python jwcrypto verifies the
//! ES256 JWS with our published JWKS and its own RFC 7638 thumbprint, zlib inflates the raw
//! DEFLATE payload, and the script checks the FHIR bundle shape.

mod common;

use std::process::Command;

use divoc_fhir::{IssuerKey, ShcIssuer};
use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/interop/verify_shc.py"
);

#[test]
#[ignore = "needs jwcrypto; tests/run-all.sh installs it"]
fn jwcrypto_verifies_our_cards() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = ShcIssuer::new(
        IssuerKey::generate().unwrap(),
        "https://certs.example.org/shc",
        common::codes(),
    )
    .unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&issuer.key().jwks()).unwrap()).unwrap();

    let people = [
        ("Priya Sharma", "COVISHIELD", 2),
        ("सुनीता देवी", "Covaxin", 3),
        ("முத்து லட்சுமி", "Comirnaty", 1),
        ("José Ñúñez", "Spikevax", 2),
        ("ශාන්ත පෙරේරා", "Sinopharm BBIBP-CorV", 2),
        ("Juan dela Cruz", "Janssen", 1),
        ("أمينة خان", "Novavax", 2),
    ];
    let mut files = Vec::new();
    for (i, (name, vaccine, doses)) in people.iter().enumerate() {
        let card = issuer
            .issue(&common::history(name, vaccine, *doses), 1_622_500_000)
            .unwrap();
        let path = dir.path().join(format!("card{i}.jws"));
        std::fs::write(&path, &card.jws).unwrap();
        std::fs::write(
            dir.path().join(format!("card{i}.jws.qr")),
            card.qr_text().unwrap(),
        )
        .unwrap();
        files.push(path);
    }
    // Tampered: a signature character in the middle changed (not the last one, whose low bits
    // are base64 padding that lenient decoders ignore).
    let mut jws: Vec<u8> = std::fs::read(&files[0]).unwrap();
    let at = jws.len() - 20;
    jws[at] = if jws[at] == b'A' { b'B' } else { b'A' };
    let tampered = dir.path().join("tampered.jws");
    std::fs::write(&tampered, jws).unwrap();

    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(&jwks)
        .args(&files)
        .arg(&tampered)
        .output()
        .expect("python3 not runnable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "verify_shc.py failed (is jwcrypto installed?): {stderr}"
    );
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), files.len() + 1, "{verdicts:?} {stderr}");
    for (v, f) in verdicts.iter().zip(&files) {
        assert_eq!(v["file"], f.to_str().unwrap());
        assert_eq!(v["ok"], true, "jwcrypto rejected our card: {v}");
    }
    let t = verdicts.last().unwrap();
    assert_eq!(t["ok"], false, "tampered card accepted: {t}");
    assert!(t["error"].as_str().unwrap().contains("Invalid"), "{t}");
}
