//! Exactly one outcome per event across SIGKILL and restart.
//!
//! 200k generated events (with invalid and duplicate ones) run through the default pipeline; the
//! process is killed with SIGKILL at pseudo-random points at least five times and restarted each
//! time, then allowed to finish. Every event must end as exactly one published row or exactly one
//! dead letter, matching the generator's own tally, and the content must equal a clean run's.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const EVENTS: u64 = 200_000;

fn run_to_completion(args: &[String]) {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_and_restart_publish_every_event_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let summary = gen(&input.join("events.ndjson"), EVENTS, 2024, 0.05, 0.03);
    let (total, valid, dups, invalid) = gen_counts(&summary);
    assert_eq!(total, EVENTS);

    // Small epochs so checkpoints commit many times during the run.
    let tune = [
        "pipeline.checkpoint_max_records=5000".to_owned(),
        "pipeline.batch_size=2048".to_owned(),
    ];
    let crashed = tmp.path().join("crashed");
    let mut sets = dir_sets(&crashed, &input);
    sets.extend(tune.iter().cloned());
    // Two staging sinks beside the default ones: accepted events and dead letters as NDJSON,
    // committed after each checkpoint (the two-phase commit's second phase).
    sets.extend(ndjson_sinks());
    let config = default_config().display().to_string();
    let args = with_sets(&["run", "--config", &config], &sets);

    // A fixed-seed LCG picks kill delays: reproducible, yet spread over the run.
    let mut state: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 5 {
        attempts += 1;
        assert!(attempts < 40, "could not kill the run mid-way 5 times");
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay_ms = 800 + (state >> 33) % 2000;
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    // The kills must have landed mid-run, after some epochs committed, so the last run resumes.
    let cp = divoc_pipeline::checkpoint::load_checkpoint(&crashed.join("state"))
        .unwrap()
        .expect("a checkpoint was committed before the last kill");
    assert!(cp.epoch >= 1);
    let resumed_at: u64 = serde_json::from_value(cp.positions["input"]["offset"].clone()).unwrap();
    let input_len = std::fs::metadata(input.join("events.ndjson"))
        .unwrap()
        .len();
    assert!(
        resumed_at > 0 && resumed_at < input_len,
        "resumed mid-file at byte {resumed_at} of {input_len}"
    );
    run_to_completion(&args);

    let accepted = read_output(&crashed.join("out"), "accepted");
    let dead = read_output(&crashed.join("out"), "dead-letter");
    let mut seen = HashSet::new();
    for o in origins(&accepted).into_iter().chain(origins(&dead)) {
        assert!(
            seen.insert(o.clone()),
            "event {o:?} has more than one outcome"
        );
    }
    assert_eq!(
        seen.len() as u64,
        EVENTS,
        "every generated event has an outcome"
    );
    assert_eq!(
        accepted.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        valid
    );
    let reasons = reason_counts(&dead);
    assert_eq!(reasons.get("duplicate").copied().unwrap_or(0), dups);
    assert_eq!(reasons.values().sum::<u64>() - dups, invalid);
    let ids = string_column(&accepted, "certificate_id");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "certificate ids are unique"
    );

    // The staging sinks: every event once, no epoch left staged, the same ids as the Parquet.
    let accepted_json = ndjson_rows(&crashed.join("out/ndjson"));
    let dead_json = ndjson_rows(&crashed.join("out/ndjson-dead"));
    assert_eq!(accepted_json.len() as u64, valid);
    assert_eq!(dead_json.len() as u64, dups + invalid);
    let mut json_seen = HashSet::new();
    for row in accepted_json.iter().chain(&dead_json) {
        let origin = (
            row["source_id"].as_str().unwrap().to_owned(),
            row["source_offset"].as_u64().unwrap(),
        );
        assert!(
            json_seen.insert(origin.clone()),
            "{origin:?} twice in NDJSON"
        );
    }
    assert_eq!(json_seen, seen, "NDJSON holds exactly the Parquet outcomes");
    let json_ids: HashSet<String> = accepted_json
        .iter()
        .map(|r| r["certificate_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(json_ids, ids.iter().cloned().collect::<HashSet<_>>());
    for dir in ["ndjson", "ndjson-dead"] {
        let staging = crashed.join("out").join(dir).join("_staging");
        let left: Vec<_> = std::fs::read_dir(&staging)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{dir}: staged epochs left behind: {left:?}"
        );
    }

    // A clean run over the same input produces the same rows, ids included.
    let clean = tmp.path().join("clean");
    let mut sets = dir_sets(&clean, &input);
    // Same issuer key as the crashed run, so signatures can be compared byte for byte.
    sets[0] = format!("nodes.sign.key_file={}", issuer_key(&crashed).display());
    sets.extend(tune.iter().cloned());
    run_to_completion(&with_sets(&["run", "--config", &config], &sets));
    assert_same_rows(&accepted, &read_output(&clean.join("out"), "accepted"));
    assert_same_rows(&dead, &read_output(&clean.join("out"), "dead-letter"));
}

/// `--set`s adding an NDJSON sink for accepted events (after qr_payload) and one for dead letters.
fn ndjson_sinks() -> Vec<String> {
    [
        "nodes.debug.kind=ndjson_sink",
        "nodes.debug.prefix=ndjson",
        r#"nodes.debug.columns=["source_id","source_offset","certificate_id"]"#,
        "nodes.rejected.kind=ndjson_sink",
        "nodes.rejected.prefix=ndjson-dead",
        "nodes.rejected.stream=dead_letters",
        r#"nodes.rejected.columns=["source_id","source_offset","reason_code"]"#,
        r#"edges=[{from="input",to="validate"},{from="validate",to="dedupe"},{from="dedupe",to="sign"},{from="sign",to="qr_payload"},{from="qr_payload",to="publish"},{from="qr_payload",to="analytics"},{from="qr_payload",to="debug"}]"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Every row of every committed NDJSON file under `dir` (not its `_staging/`).
fn ndjson_rows(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ndjson") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                rows.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    rows
}

#[test]
fn restart_after_completion_publishes_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    gen(&input.join("a.ndjson"), 5_000, 9, 0.05, 0.05);
    let config = default_config().display().to_string();
    let args = with_sets(&["run", "--config", &config], &dir_sets(tmp.path(), &input));
    run_to_completion(&args);
    let before = read_output(&tmp.path().join("out"), "accepted");
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("accepted (published): 0"), "{text}");
    assert_eq!(
        rows_as_text(&before),
        rows_as_text(&read_output(&tmp.path().join("out"), "accepted"))
    );
}
