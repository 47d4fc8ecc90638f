//! `divoc validate-config` rejects bad pipeline files with an error naming file, key and fix.

mod common;

use common::*;

fn validate(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    // Every case starts from the shipped pipeline so the catalogue path resolves.
    std::fs::copy(
        repo().join("config/vaccines.toml"),
        dir.path().join("vaccines.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(&p, text).unwrap();
    let out = divoc(&["validate-config", "--config", &p.display().to_string()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const NODES: &str = r#"
[nodes.input]
kind = "file_source"
path = "in"
[nodes.validate]
kind = "validate"
catalogue = "vaccines.toml"
[nodes.publish]
kind = "publish"
"#;

const EDGES: &str = r#"
[[edges]]
from = "input"
to = "validate"
[[edges]]
from = "validate"
to = "publish"
"#;

#[test]
fn shipped_pipeline_is_valid() {
    let input = tempfile::tempdir().unwrap();
    let set = format!("nodes.input.path={}", input.path().display());
    let key = format!("nodes.sign.key_file={}", issuer_key(input.path()).display());
    let out = divoc(&[
        "validate-config",
        "--config",
        &default_config().display().to_string(),
        "--list",
        "--set",
        &set,
        "--set",
        &key,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("input -> validate -> dedupe -> sign -> qr_payload -> publish"),
        "{text}"
    );
    for kind in [
        "file_source",
        "http_source",
        "validate",
        "dedupe",
        "sign",
        "qr_payload",
        "publish",
    ] {
        assert!(text.contains(kind), "--list names {kind}");
    }
}

#[test]
fn minimal_valid_file_passes() {
    let (ok, text) = validate(&format!("{NODES}{EDGES}"));
    assert!(ok, "{text}");
}

#[test]
fn unknown_operator_is_named_with_the_known_kinds() {
    let (ok, text) = validate(&format!("{NODES}{EDGES}[nodes.x]\nkind = \"sharpen\"\n"));
    assert!(!ok);
    assert!(
        text.contains("p.toml") && text.contains("nodes.x.kind") && text.contains("sharpen"),
        "{text}"
    );
    assert!(
        text.contains("fix: use one of:") && text.contains("dedupe"),
        "{text}"
    );
}

#[test]
fn cycle_is_rejected() {
    let cyc = "[[edges]]\nfrom = \"publish\"\nto = \"validate\"\n";
    let (ok, text) = validate(&format!("{NODES}{EDGES}{cyc}"));
    assert!(!ok);
    assert!(text.contains("cycle") && text.contains("`edges`"), "{text}");
}

#[test]
fn dangling_edge_is_rejected() {
    let e = "[[edges]]\nfrom = \"validate\"\nto = \"nowhere\"\n";
    let (ok, text) = validate(&format!("{NODES}{EDGES}{e}"));
    assert!(!ok);
    assert!(
        text.contains("edges[2].to") && text.contains("dangling"),
        "{text}"
    );
}

#[test]
fn bad_options_name_the_key() {
    let (ok, text) = validate(&format!(
        "{}{EDGES}",
        NODES.replace("kind = \"publish\"", "kind = \"publish\"\nprefx = \"x\"")
    ));
    assert!(!ok);
    assert!(
        text.contains("nodes.publish") && text.contains("prefx"),
        "{text}"
    );
    let (ok, text) = validate(&format!(
        "{}{EDGES}",
        NODES.replace(
            "catalogue = \"vaccines.toml\"",
            "catalogue = \"missing.toml\""
        )
    ));
    assert!(!ok);
    assert!(
        text.contains("nodes.validate.catalogue") && text.contains("missing.toml"),
        "{text}"
    );
    let (ok, text) = validate(&format!("[pipeline]\nbatch_size = 0\n{NODES}{EDGES}"));
    assert!(!ok);
    assert!(text.contains("pipeline.batch_size"), "{text}");
    let (ok, text) = validate(&format!("{NODES}{EDGES}[storage]\nurl = \"ftp://x\"\n"));
    assert!(!ok);
    assert!(
        text.contains("storage.url") && text.contains("ftp"),
        "{text}"
    );
}

#[test]
fn operator_without_input_and_syntax_errors() {
    let (ok, text) = validate(NODES);
    assert!(!ok);
    assert!(text.contains("has no input edge"), "{text}");
    let (ok, text) = validate("[nodes.input\nkind=");
    assert!(!ok);
    assert!(text.contains("p.toml") && text.contains("line"), "{text}");
}

#[test]
fn missing_issuer_key_names_the_fix() {
    let input = tempfile::tempdir().unwrap();
    let out = divoc(&[
        "validate-config",
        "--config",
        &default_config().display().to_string(),
        "--set",
        &format!("nodes.input.path={}", input.path().display()),
        "--set",
        &format!(
            "nodes.sign.key_file={}",
            input.path().join("nope.json").display()
        ),
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("nodes.sign.key_file") && text.contains("divoc keys generate"),
        "{text}"
    );
}
