//! The crate graph keeps its promises: the engine depends on no DIVOC crate, the format libraries
//! on no engine crate, and no crate declares a dependency it does not use.
//!
//! Read from the manifests and sources directly (no `cargo` call), so it runs anywhere the tests do.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::repo;

/// Workspace member directories, from the top-level manifest.
fn members() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| repo().join(m.as_str().unwrap()))
        .collect()
}

struct Manifest {
    name: String,
    deps: Vec<String>,
    dev_deps: Vec<String>,
}

fn manifest(dir: &Path) -> Manifest {
    let doc: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    let keys = |section: &str| -> Vec<String> {
        doc.get(section)
            .and_then(|t| t.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    Manifest {
        name: doc["package"]["name"].as_str().unwrap().to_owned(),
        deps: keys("dependencies"),
        dev_deps: keys("dev-dependencies"),
    }
}

fn crates() -> BTreeMap<String, (PathBuf, Manifest)> {
    members()
        .into_iter()
        .map(|d| {
            let m = manifest(&d);
            (m.name.clone(), (d, m))
        })
        .collect()
}

#[test]
fn engine_and_formats_keep_their_dependency_rules() {
    let crates = crates();
    let engine = &crates["divoc-pipeline"].1;
    let internal: Vec<_> = engine
        .deps
        .iter()
        .filter(|d| d.starts_with("divoc"))
        .collect();
    assert!(
        internal.is_empty(),
        "the engine depends on no operator, connector, model or format crate: {internal:?}"
    );
    let formats: Vec<&String> = crates
        .iter()
        .filter(|(_, (dir, _))| dir.parent().is_some_and(|p| p.ends_with("formats")))
        .map(|(n, _)| n)
        .collect();
    assert!(
        formats.len() >= 5,
        "formats/ holds the format crates: {formats:?}"
    );
    for name in &formats {
        for dep in &crates[*name].1.deps {
            if dep.starts_with("divoc") {
                assert!(
                    formats.contains(&dep),
                    "{name} (a format library) depends on {dep}, which is not a format crate"
                );
            }
        }
    }
    // The model knows the engine's column types but nothing above it.
    for dep in &crates["divoc-model"].1.deps {
        assert!(
            !dep.starts_with("divoc") || dep == "divoc-pipeline",
            "divoc-model depends on {dep}"
        );
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn uses(text: &str, dep: &str) -> bool {
    let ident = dep.replace('-', "_");
    [
        format!("{ident}::"),
        format!("use {ident}"),
        format!("extern crate {ident}"),
        format!("{ident}!"),
        format!("#[derive({ident}"),
    ]
    .iter()
    .any(|p| text.contains(p.as_str()))
}

#[test]
fn no_crate_declares_an_unused_dependency() {
    // A machete-style check: each dependency's name must appear in the crate's code.
    // serde is used through derives (`#[derive(Deserialize)]` names serde only in `use`).
    let mut unused = Vec::new();
    for (name, (dir, m)) in crates() {
        let mut lib = Vec::new();
        sources(&dir.join("src"), &mut lib);
        let lib_text: String = lib
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        let mut all = lib.clone();
        for extra in ["tests", "benches", "examples"] {
            sources(&dir.join(extra), &mut all);
        }
        // The cli package's tests live in the top-level tests/ folder.
        if name == "divoc" {
            sources(&repo().join("tests"), &mut all);
        }
        let all_text: String = all
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        for dep in &m.deps {
            if !uses(&lib_text, dep) && !uses(&all_text, dep) {
                unused.push(format!("{name}: [dependencies] {dep}"));
            }
        }
        for dep in &m.dev_deps {
            if !uses(&all_text, dep) {
                unused.push(format!("{name}: [dev-dependencies] {dep}"));
            }
        }
    }
    assert!(unused.is_empty(), "unused dependencies: {unused:#?}");
}
