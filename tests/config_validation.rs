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
    let order: Vec<&str> = text
        .split("order: ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .split(" -> ")
        .collect();
    let at = |n: &str| {
        order
            .iter()
            .position(|o| *o == n)
            .unwrap_or_else(|| panic!("{n} in {order:?}"))
    };
    for pair in [
        "input",
        "validate",
        "dedupe",
        "sign",
        "qr_payload",
        "publish",
    ]
    .windows(2)
    {
        assert!(at(pair[0]) < at(pair[1]), "{pair:?} in {order:?}");
    }
    assert!(at("qr_payload") < at("analytics"), "{order:?}");
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
    let cyc = "[[edges]]\nfrom = \"validate\"\nto = \"validate\"\n";
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
    let (ok, text) = validate("# a comment\n[nodes.input\nkind=");
    assert!(!ok);
    assert!(
        text.contains("p.toml:2:"),
        "syntax errors name their line: {text}"
    );
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

#[test]
fn errors_name_the_line_of_the_users_file() {
    // The key sits on line 9 of the file as written (comments and blank lines included), even
    // though --set overrides force the document to be rebuilt before it is checked.
    let text = format!(
        "# pipeline for a line-number test\n\n[pipeline]\nbatch_size = 64\n\n{NODES}{EDGES}"
    )
    .replace(
        "catalogue = \"vaccines.toml\"",
        "catalogue = \"vaccines.toml\"\nmax_doses = 0",
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("max_doses"))
        .unwrap()
        + 1;
    assert_eq!(line, 13, "the fixture puts the key on line 13");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::copy(
        repo().join("config/vaccines.toml"),
        dir.path().join("vaccines.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(&p, &text).unwrap();
    let out = divoc(&[
        "validate-config",
        "--config",
        &p.display().to_string(),
        "--set",
        "pipeline.linger_ms=5",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("p.toml:13: `nodes.validate.max_doses`"),
        "names line 13 of the user's file: {err}"
    );

    // A mistyped engine setting: the line of that key.
    let (ok, err) = validate(&format!(
        "[pipeline]\nlinger_ms = 5\nbatch_size = \"big\"\n{NODES}{EDGES}"
    ));
    assert!(!ok);
    assert!(err.contains("p.toml:3: `pipeline.batch_size`"), "{err}");
}

#[test]
fn wrong_node_order_names_the_missing_producer() {
    let sign_key = tempfile::tempdir().unwrap();
    let key = issuer_key(sign_key.path());
    let nodes = format!(
        r#"
[nodes.input]
kind = "file_source"
path = "in"
[nodes.validate]
kind = "validate"
catalogue = "vaccines.toml"
[nodes.dedupe]
kind = "dedupe"
[nodes.qr_payload]
kind = "qr_payload"
[nodes.sign]
kind = "sign"
key_file = "{}"
catalogue = "vaccines.toml"
[nodes.publish]
kind = "publish"
"#,
        key.display()
    );
    let edges = |chain: &[&str]| -> String {
        chain
            .windows(2)
            .map(|w| format!("[[edges]]\nfrom = \"{}\"\nto = \"{}\"\n", w[0], w[1]))
            .collect()
    };
    let (ok, text) = validate(&format!(
        "{nodes}{}",
        edges(&[
            "input",
            "validate",
            "dedupe",
            "qr_payload",
            "sign",
            "publish"
        ])
    ));
    assert!(!ok, "qr_payload before sign must fail");
    assert!(
        text.contains("`qr_payload` (qr_payload) needs `credential` (Utf8)")
            && text.contains("fix: put `sign` before it"),
        "{text}"
    );
    let line = nodes
        .lines()
        .position(|l| l == "[nodes.qr_payload]")
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!("p.toml:{line}:")),
        "names the node's line {line}: {text}"
    );

    // sign without dedupe: the certificate id is missing.
    let (ok, text) = validate(&format!(
        "{nodes}{}{}",
        edges(&["input", "validate", "sign", "qr_payload", "publish"]),
        edges(&["input", "dedupe", "publish"])
    ));
    assert!(!ok);
    assert!(
        text.contains("needs `certificate_id` (Utf8)") && text.contains("put `dedupe` before it"),
        "{text}"
    );

    // The right order passes.
    let (ok, text) = validate(&format!(
        "{nodes}{}",
        edges(&[
            "input",
            "validate",
            "dedupe",
            "sign",
            "qr_payload",
            "publish"
        ])
    ));
    assert!(ok, "{text}");
}

#[test]
fn pdf_sink_needs_render_and_sinks_end_the_flow() {
    let (ok, text) = validate(&format!(
        "{NODES}{EDGES}[nodes.pdfs]\nkind = \"pdf_sink\"\n[[edges]]\nfrom = \"validate\"\nto = \"pdfs\"\n"
    ));
    assert!(!ok);
    assert!(
        text.contains("needs `pdf`") && text.contains("put `render` before it"),
        "{text}"
    );
    let (ok, text) = validate(&format!(
        "{NODES}{EDGES}[nodes.more]\nkind = \"validate\"\ncatalogue = \"vaccines.toml\"\n[[edges]]\nfrom = \"publish\"\nto = \"more\"\n"
    ));
    assert!(!ok);
    assert!(text.contains("is a sink"), "{text}");
    let (ok, text) = validate(&format!(
        "{NODES}{EDGES}[[edges]]\nfrom = \"validate\"\nto = \"dead_letter\"\n"
    ));
    assert!(!ok, "the default dead-letter node takes no edges");
    assert!(text.contains("dead_letter"), "{text}");
}

#[test]
fn dead_letter_and_manifest_nodes_are_there_by_default_and_configurable() {
    let (ok, text) = validate(&format!("{NODES}{EDGES}"));
    assert!(ok, "{text}");
    assert!(
        text.contains("input -> validate -> publish -> ")
            && text.contains("-> dead_letter")
            && text.contains("-> manifest"),
        "defaults appended: {text}"
    );
    let (ok, text) = validate(&format!(
        "{NODES}{EDGES}[nodes.rejects]\nkind = \"dead_letter\"\nprefix = \"rejected\"\n[nodes.debug]\nkind = \"ndjson_sink\"\nstream = \"dead_letters\"\n"
    ));
    assert!(ok, "{text}");
    assert!(
        text.contains("rejects") && text.contains("debug") && !text.contains("-> dead_letter"),
        "a declared dead_letter node replaces the default one: {text}"
    );
    let (ok, text) = validate(&format!(
        "{NODES}{EDGES}[nodes.rejects]\nkind = \"dead_letter\"\nprefix = \"../up\"\n"
    ));
    assert!(!ok);
    assert!(text.contains("nodes.rejects.prefix"), "{text}");
}
