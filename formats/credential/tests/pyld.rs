//! Independent check against Python PyLD (`tests/pyld_check.py`).
//!
//! Ignored by default (needs Python with PyLD 2.0.4). Run with
//! `cargo test --release -p divoc-credential --test pyld -- --ignored --nocapture`
//! (optionally `DIVOC_PYLD_N=<documents>`, default 3000).

mod common;

use std::io::Write;
use std::process::Command;

use common::{credential, proof_options, GenOptions, Rng};
use divoc_credential::Canonicalizer;
use serde_json::{Map, Value};

#[test]
#[ignore = "needs Python PyLD (pip install pyld==2.0.4); tests/run-all.sh installs it and runs this"]
fn pyld_agrees_with_our_canonicalization() {
    let n: u64 = std::env::var("DIVOC_PYLD_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let dir = std::env::temp_dir().join(format!("divoc-pyld-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let canon = Canonicalizer::default();
    let loader = canon.processor().loader();
    let mut contexts = Map::new();
    for url in loader.urls() {
        let doc = loader.load(url).expect("served");
        contexts.insert(url.to_string(), (*doc).clone());
    }
    std::fs::write(
        dir.join("contexts.json"),
        Value::Object(contexts).to_string(),
    )
    .expect("write contexts");

    let mut docs = std::fs::File::create(dir.join("docs.jsonl")).expect("docs file");
    let mut ours = std::fs::File::create(dir.join("ours.jsonl")).expect("ours file");
    let mut rng = Rng::new(0x5EED_0F1D);
    let mut written = 0u64;
    let mut add = |doc: &Value, docs: &mut std::fs::File, ours: &mut std::fs::File| {
        let nq = canon
            .canonicalize(doc)
            .expect("generated documents are valid");
        writeln!(docs, "{doc}").expect("write doc");
        writeln!(ours, "{}", Value::String(nq)).expect("write ours");
        written += 1;
    };
    add(
        &common::read_json(common::shared().join("divoc-vector/divoc-ed25519-2018-signed.json"))
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.remove("proof");
                Value::Object(o)
            })
            .expect("vector"),
        &mut docs,
        &mut ours,
    );
    for _ in 0..n {
        let doc = credential(&mut rng, GenOptions::PYLD);
        add(&doc, &mut docs, &mut ours);
        if rng.chance(10) {
            add(
                &proof_options(&mut rng, &doc["@context"]),
                &mut docs,
                &mut ours,
            );
        }
    }
    drop((docs, ours));

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyld_check.py");
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(&script)
        .arg(dir.join("contexts.json"))
        .arg(dir.join("docs.jsonl"))
        .arg(dir.join("ours.jsonl"))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "{written} documents written to {}\n{stdout}{stderr}",
        dir.display()
    );
    assert!(
        out.status.success(),
        "PyLD disagrees (status {:?})",
        out.status.code()
    );
    assert!(
        stdout.contains(&format!("compared {written} documents, 0 mismatches")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
