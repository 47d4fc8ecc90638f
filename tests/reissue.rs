//! `divoc reissue`: stored certificates signed again with a new key through the same DAG,
//! exactly once, resumable after SIGKILL, without disturbing the main pipeline's position or the
//! analytics counts.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn ok(args: &[&str], sets: &[String]) -> String {
    divoc_ok(args, sets)
}

fn summary_number(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

fn run_pipeline(dir: &Path, input: &Path, extra: &[String]) -> String {
    let config = default_config().display().to_string();
    let mut sets = dir_sets(dir, input);
    sets.extend(extra.iter().cloned());
    ok(&["run", "--config", &config], &sets)
}

/// (certificate id -> previous id) of the published rows of one event kind.
fn rows_of_kind(dir: &Path, kind: &str) -> Vec<(String, String)> {
    let rows = read_output(&dir.join("out"), "accepted");
    let kinds = string_column(&rows, "event_kind");
    let ids = string_column(&rows, "certificate_id");
    let prev = string_column(&rows, "previous_certificate_id");
    (0..kinds.len())
        .filter(|&i| kinds[i] == kind)
        .map(|i| (ids[i].clone(), prev[i].clone()))
        .collect()
}

fn certificates_counted(dir: &Path) -> String {
    ok(
        &[
            "sql",
            "--storage",
            &dir.join("out").display().to_string(),
            "--format",
            "csv",
            "SELECT count(*) AS n FROM certificates",
        ],
        &[],
    )
}

#[test]
fn reissue_signs_the_current_certificates_again_with_the_new_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("a.ndjson"), 600, 11, 0.0, 0.0);
    run_pipeline(dir, &input, &[]);
    let certified = rows_of_kind(dir, "certify_v1");
    assert!(certified.len() > 500, "{}", certified.len());

    // Correct one dose and revoke another: neither old certificate may be re-issued.
    let rows = read_output(&dir.join("out"), "accepted");
    let pres = string_column(&rows, "pre_enrollment_code");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(input.join("a.ndjson"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let corrected_pre = first["preEnrollmentCode"].as_str().unwrap().to_owned();
    let mut correction = first.clone();
    correction["vaccination"]["batch"] = "CORRECTED-1".into();
    std::fs::write(input.join("b.ndjson"), format!("{correction}\n")).unwrap();
    run_pipeline(dir, &input, &["nodes.input.events=update".into()]);
    let revoked_pre = pres.iter().find(|p| **p != corrected_pre).unwrap().clone();
    let revoked_row = (0..pres.len()).find(|&i| pres[i] == revoked_pre).unwrap();
    let doses: Vec<i64> = rows
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("dose").unwrap();
            let c = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(c);
            c.values().to_vec()
        })
        .collect();
    let revoke = serde_json::json!({"preEnrollmentCode": revoked_pre, "programId": first["programId"],
        "vaccination": {"dose": doses[revoked_row]}});
    std::fs::write(input.join("c.ndjson"), format!("{revoke}\n")).unwrap();
    run_pipeline(dir, &input, &["nodes.input.events=revoke".into()]);
    let updated = rows_of_kind(dir, "update");
    assert_eq!(updated.len(), 1);
    let revoked: Vec<String> = rows_of_kind(dir, "revoke")
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(revoked.len(), 1);
    let counted_before = certificates_counted(dir);

    let current: HashSet<String> = certified
        .iter()
        .chain(&updated)
        .map(|(id, _)| id.clone())
        .filter(|id| *id != updated[0].1 && !revoked.contains(id))
        .collect();
    assert_eq!(current.len(), certified.len() - 1);

    let new_key = dir.join("keys/new-issuer.json");
    ok(
        &[
            "keys",
            "generate",
            "--out",
            &new_key.display().to_string(),
            "--issuer",
            "https://issuer.test",
        ],
        &[],
    );
    let config = default_config().display().to_string();
    let reissue_args = [
        "reissue",
        "--config",
        &config,
        "--where",
        "true",
        "--key",
        new_key.to_str().unwrap(),
        "--plain-progress",
    ]
    .map(|s| s.to_owned());
    let reissue_args: Vec<&str> = reissue_args.iter().map(String::as_str).collect();
    let sets = dir_sets(dir, &input);
    let out = ok(&reissue_args, &sets);
    assert!(
        out.contains(&format!("{} certificates selected", current.len())),
        "{out}"
    );
    assert!(
        out.contains(&format!("re-issued {0}/{0} (100.0%)", current.len())),
        "{out}"
    );
    assert_eq!(
        summary_number(&out, "accepted (published):"),
        current.len() as u64
    );

    // Exactly the current certificates, once each, each replaced by a new id.
    let reissued = rows_of_kind(dir, "reissue");
    let replaced: Vec<&String> = reissued.iter().map(|(_, prev)| prev).collect();
    assert_eq!(replaced.len(), current.len());
    assert_eq!(
        replaced.iter().cloned().cloned().collect::<HashSet<_>>(),
        current
    );
    let all_ids: HashSet<&String> = certified.iter().map(|(id, _)| id).collect();
    assert!(
        reissued.iter().all(|(id, _)| !all_ids.contains(id)),
        "new ids"
    );

    // Signed with the new key: valid with it, not with the old one.
    let rows = read_output(&dir.join("out"), "accepted");
    let kinds = string_column(&rows, "event_kind");
    let creds = string_column(&rows, "credential");
    let batches = string_column(&rows, "vaccine_batch");
    let pre_now = string_column(&rows, "pre_enrollment_code");
    let i = (0..kinds.len()).find(|&i| kinds[i] == "reissue").unwrap();
    let cred = dir.join("reissued.json");
    std::fs::write(&cred, &creds[i]).unwrap();
    let with_new = divoc(&[
        "verify",
        cred.to_str().unwrap(),
        "--key",
        new_key.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&with_new.stdout).starts_with("VALID"),
        "{}",
        String::from_utf8_lossy(&with_new.stdout)
    );
    let old_key = issuer_key(dir);
    let with_old = divoc(&[
        "verify",
        cred.to_str().unwrap(),
        "--key",
        old_key.to_str().unwrap(),
    ]);
    assert!(!with_old.status.success(), "the old key must not verify it");
    // The corrected dose is re-issued from its corrected data.
    let corrected = (0..kinds.len())
        .find(|&i| kinds[i] == "reissue" && pre_now[i] == corrected_pre)
        .unwrap();
    assert_eq!(batches[corrected], "CORRECTED-1");

    // Analytics count vaccinations: re-issues add none.
    assert_eq!(certificates_counted(dir), counted_before);
    // The same command again: the job is done, nothing is signed twice.
    let again = ok(&reissue_args, &sets);
    assert!(again.contains("resuming job"), "{again}");
    assert_eq!(summary_number(&again, "accepted (published):"), 0);
    // The main pipeline resumes where it was: only the new file is read.
    gen(&input.join("d.ndjson"), 5, 99, 0.0, 0.0);
    let main = run_pipeline(dir, &input, &[]);
    assert_eq!(summary_number(&main, "accepted (published):"), 5, "{main}");
    assert_eq!(summary_number(&main, "duplicates:"), 0, "{main}");
}

#[test]
fn a_killed_reissue_resumes_without_signing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("a.ndjson"), 40_000, 5, 0.0, 0.0);
    run_pipeline(dir, &input, &[]);
    let certified = rows_of_kind(dir, "certify_v1").len() + rows_of_kind(dir, "bulk_csv").len();

    let config = default_config().display().to_string();
    let mut args = vec![
        "reissue".to_owned(),
        "--config".into(),
        config,
        "--where".into(),
        "dose >= 1".into(),
        "--revoke-superseded".into(),
        "--plain-progress".into(),
    ];
    let mut sets = dir_sets(dir, &input);
    sets.push("pipeline.checkpoint_interval_ms=100".into());
    sets.push("pipeline.batch_size=512".into());
    args = with_sets(&args.iter().map(String::as_str).collect::<Vec<_>>(), &sets);
    let manifests = |dir: &Path| {
        std::fs::read_dir(dir.join("out/checkpoints"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = manifests(dir);
    let mut child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while manifests(dir) < before + 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let done_before_kill = rows_of_kind(dir, "reissue_revoking").len();
    assert!(done_before_kill > 0 && done_before_kill < certified);

    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(out.contains("resuming job"), "{out}");
    let resumed = summary_number(&out, "accepted (published):") as usize;
    assert!(
        resumed < certified,
        "the resumed run signs only what was not committed: {resumed} of {certified}"
    );
    let reissued = rows_of_kind(dir, "reissue_revoking");
    assert_eq!(reissued.len(), certified, "every certificate once");
    let mut per_old: BTreeMap<&String, usize> = BTreeMap::new();
    for (_, prev) in &reissued {
        *per_old.entry(prev).or_default() += 1;
    }
    assert!(per_old.values().all(|n| *n == 1), "none re-issued twice");
    assert_eq!(per_old.len(), certified);
    let new_ids: HashSet<&String> = reissued.iter().map(|(id, _)| id).collect();
    assert_eq!(new_ids.len(), certified, "one new id each");
}

/// A key rotation: new certificates are signed with `key-2`, the DID document the server
/// publishes lists both keys, and certificates of either key verify against it.
#[test]
fn a_rotated_key_keeps_old_certificates_verifiable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("a.ndjson"), 30, 21, 0.0, 0.0);
    run_pipeline(dir, &input, &[]);
    let old_key = issuer_key(dir);
    let new_key = dir.join("keys/issuer-2.json");
    let printed = ok(
        &[
            "keys",
            "rotate",
            "--current",
            old_key.to_str().unwrap(),
            "--out",
            new_key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        printed.contains("https://issuer.test#key-2 follows https://issuer.test#key-1"),
        "{printed}"
    );
    gen(&input.join("b.ndjson"), 30, 22, 0.0, 0.0);
    run_pipeline(
        dir,
        &input,
        &[format!("nodes.sign.key_file={}", new_key.display())],
    );
    let rows = read_output(&dir.join("out"), "accepted");
    let creds = string_column(&rows, "credential");
    let methods: Vec<String> = creds
        .iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(c).unwrap();
            v["proof"]["verificationMethod"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let old_cred = methods.iter().position(|m| m.ends_with("#key-1")).unwrap();
    let new_cred = methods.iter().position(|m| m.ends_with("#key-2")).unwrap();

    let config = repo().join("config");
    let serve_file = dir.join("serve.toml");
    let quote = |p: &std::path::Path| toml::Value::String(p.display().to_string()).to_string();
    std::fs::write(
        &serve_file,
        format!(
            "listen = \"127.0.0.1:0\"\nstorage_url = {}\ntokens = [{{ token = \"rotation-test-token-0001\", tenant = \"default\" }}]\n\
             templates = {}\nfhir_codes = {}\n[did]\nkey_files = [{}, {}]\n",
            quote(&dir.join("out")),
            quote(&config),
            quote(&config.join("shc-codes.toml")),
            quote(&old_key),
            quote(&new_key),
        ),
    )
    .unwrap();
    let server = start_serve(&serve_file);
    let (status, body) = http(
        server.addr,
        "GET",
        "/.well-known/did.json",
        None,
        "text/plain",
        b"",
    );
    assert_eq!(status, 200, "{body}");
    stop_serve(server);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["id"], "https://issuer.test");
    assert_eq!(doc["verificationMethod"].as_array().unwrap().len(), 2);
    assert!(
        !body.contains("privateKeyBase58"),
        "only public parts are published"
    );
    let did = dir.join("did.json");
    std::fs::write(&did, &body).unwrap();
    for i in [old_cred, new_cred] {
        let file = dir.join(format!("cred-{i}.json"));
        std::fs::write(&file, &creds[i]).unwrap();
        let out = divoc(&[
            "verify",
            file.to_str().unwrap(),
            "--key",
            did.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with("VALID"),
            "{}: {text}",
            methods[i]
        );
    }
    // A DID document without the old key: the old certificates no longer verify.
    let mut only_new = doc.clone();
    only_new["verificationMethod"] = serde_json::json!([doc["verificationMethod"][1].clone()]);
    std::fs::write(&did, only_new.to_string()).unwrap();
    let file = dir.join(format!("cred-{old_cred}.json"));
    let out = divoc(&[
        "verify",
        file.to_str().unwrap(),
        "--key",
        did.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
