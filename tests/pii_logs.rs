//! Logs never carry personal data: a whole run of the default pipeline and of `divoc serve` at
//! `RUST_LOG=debug` (valid, invalid and duplicate events; downloads, listings by
//! preEnrollmentCode and by mobile number + date of birth), and then every name, mobile number,
//! e-mail address, identity number and address line of the generated events is searched for in
//! everything both processes printed.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

const TOKEN: &str = "pii-logs-test-token-0001";

/// The personal values of the generated events, each long enough not to match by chance.
fn personal_values(ndjson: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in ndjson.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let r = &v["recipient"];
        let mut push = |s: Option<&str>| {
            if let Some(s) = s.map(str::trim).filter(|s| s.chars().count() >= 6) {
                out.insert(s.to_owned());
            }
        };
        push(r["name"].as_str());
        push(r["identity"].as_str());
        push(r["address"]["addressLine1"].as_str());
        for c in r["contact"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap_or_default();
            push(c.strip_prefix("tel:").map(|t| t.trim_start_matches('+')));
            push(c.strip_prefix("mailto:"));
        }
    }
    out
}

#[test]
fn a_debug_run_of_the_pipeline_and_the_server_logs_no_personal_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let file = input.join("a.ndjson");
    gen(&file, 2000, 31, 0.05, 0.02);
    let text = std::fs::read_to_string(&file).unwrap();
    let values = personal_values(&text);
    assert!(
        values.len() > 2000,
        "the generator gave personal values to look for"
    );

    let args = with_sets(
        &["run", "--config", &default_config().display().to_string()],
        &dir_sets(dir, &input),
    );
    let run = Command::new(bin())
        .args(&args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut logs = String::from_utf8_lossy(&run.stdout).into_owned();
    logs.push_str(&String::from_utf8_lossy(&run.stderr));
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "debug logging was on"
    );

    // The read side, with the lookups whose queries hold personal data.
    let config = repo().join("config");
    let q = |p: &std::path::Path| toml::Value::String(p.display().to_string()).to_string();
    let serve_file = dir.join("serve.toml");
    std::fs::write(
        &serve_file,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = {}\nrefresh_interval_ms = 200\n\
             tokens = [{{ token = \"{TOKEN}\", tenant = \"default\" }}]\ntemplates = {}\nfhir_codes = {}\n",
            q(&dir.join("out")),
            q(&config),
            q(&config.join("shc-codes.toml"))
        ),
    )
    .unwrap();
    std::env::set_var("RUST_LOG", "debug");
    let server = start_serve(&serve_file);
    std::env::remove_var("RUST_LOG");
    let auth = format!("Bearer {TOKEN}");
    for line in text.lines().take(20) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let pre = v["preEnrollmentCode"].as_str().unwrap_or_default();
        let mobile = v["recipient"]["contact"][0]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("tel:+91");
        let dob = v["recipient"]["dob"].as_str().unwrap_or_default();
        for path in [
            format!("/certificate/api/v1/certificates?preEnrollmentCode={pre}"),
            format!("/certificate/api/v1/certificates?mobile={mobile}&dob={dob}"),
            format!("/certificate/api/certificatePDF/{pre}"),
        ] {
            http(server.addr, "GET", &path, Some(&auth), "text/plain", b"");
        }
    }
    let serve_logs = String::from_utf8_lossy(&server.stderr.lock().unwrap()).into_owned();
    stop_serve(server);
    logs.push_str(&serve_logs);

    let leaked: Vec<&String> = values
        .iter()
        .filter(|v| logs.contains(v.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} personal values appear in the logs, e.g. {:?}",
        leaked.len(),
        leaked.iter().take(5).collect::<Vec<_>>()
    );
}
