//! Our FHIR output checked by an independent FHIR model: Python fhir.resources (pydantic models
//! generated from the FHIR specification) must parse every bundle we emit (SHC, plain, DDCC),
//! reproduce it exactly, and reject a malformed one.

mod common;

use std::process::Command;

use divoc_fhir::{ddcc_document, fhir_bundle, IssuerKey, ShcIssuer};
use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/interop/validate_fhir.py"
);

#[test]
#[ignore = "needs fhir.resources (pip install fhir.resources==8.3.0); tests/run-all.sh must install it"]
fn fhir_resources_accepts_our_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let codes = common::codes();
    let issuer = ShcIssuer::new(
        IssuerKey::generate().unwrap(),
        "https://certs.example.org",
        codes.clone(),
    )
    .unwrap();
    let mut files: Vec<(std::path::PathBuf, Value)> = Vec::new();
    let mut write = |name: &str, v: Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        files.push((p, v));
    };
    for (i, (name, vaccine, doses)) in [
        ("Priya Sharma", "COVISHIELD", 2),
        ("सुनीता देवी", "Covaxin", 3),
        ("Juan", "Janssen", 1),
    ]
    .into_iter()
    .enumerate()
    {
        let creds = common::history(name, vaccine, doses);
        if i == 0 {
            // Malformed copy: Immunization.patient must be a Reference, not a string.
            let mut bad = serde_json::to_value(
                issuer
                    .payload(&creds, 1)
                    .unwrap()
                    .vc
                    .credential_subject
                    .fhir_bundle,
            )
            .unwrap();
            bad["entry"][1]["resource"]["patient"] = "resource:0".into();
            write("bad.json", bad);
        }
        let shc = issuer
            .payload(&creds, 1_622_500_000)
            .unwrap()
            .vc
            .credential_subject
            .fhir_bundle;
        write(&format!("shc{i}.json"), serde_json::to_value(shc).unwrap());
        write(
            &format!("plain{i}.json"),
            serde_json::to_value(fhir_bundle(&creds, &codes).unwrap()).unwrap(),
        );
        for (d, c) in creds.iter().enumerate() {
            write(
                &format!("ddcc{i}-{d}.json"),
                serde_json::to_value(ddcc_document(c, &codes).unwrap()).unwrap(),
            );
        }
    }

    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(files.iter().map(|(p, _)| p))
        .output()
        .expect("python3 not runnable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validate_fhir.py failed (is fhir.resources installed?): {stderr}"
    );
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), files.len(), "{verdicts:?} {stderr}");
    let (bad, good) = verdicts.split_first().unwrap();
    for (v, (p, json)) in good.iter().zip(&files[1..]) {
        assert_eq!(
            v["ok"],
            true,
            "fhir.resources rejected {}: {v}",
            p.display()
        );
        let kinds: Vec<&str> = json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(v["resources"], serde_json::json!(kinds));
    }
    assert_eq!(bad["ok"], false, "malformed bundle accepted: {bad}");
}
