//! The dashboard page in a real browser: Debian's Chromium, driven by playwright-core
//! (`tests/browser/dashboard.mjs`), against `divoc serve` over a store the pipeline published.
//!
//! - `divoc gen` events go through `config/pipeline.toml` (with its `analytics` sink) into a
//!   private store; the expected numbers come from the published certificates themselves (the
//!   `accepted` Parquet: one row per certificate, its state and vaccination day), and the total
//!   must equal the generator's valid count; `divoc sql` must agree with them, so a wrong figure
//!   on the page is told apart from a wrong rollup;
//! - the page must show that total and exactly those per-state bars; then, while it is open, a
//!   second run publishes more events and the page must show the new numbers by auto-refresh
//!   alone; then a state filter and a date range must change the total to the expected counts;
//! - the screenshot of the unfiltered dashboard goes to `dashboards/screenshot.png` when every
//!   check passed.
//!
//! Needs node, /usr/bin/chromium and tests/browser/node_modules (tests/run-all.sh installs them);
//! without them the test fails, it never skips.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use common::*;

const TOOLS: &str =
    "the dashboard test needs node, /usr/bin/chromium and tests/browser/node_modules \
     (playwright-core); tests/run-all.sh installs them";
const TOKEN: &str = "dashboard-analytics-token-0001";
const FIRST_EVENTS: u64 = 3000;
const MORE_EVENTS: u64 = 1500;

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn require_tools() -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "cannot run node ({:?}); {TOOLS}",
        node.err()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing; {TOOLS}"
    );
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "{} is missing; {TOOLS}",
        p(&browser.join("node_modules/playwright-core"))
    );
    browser
}

/// Runs the default pipeline (analytics sink included) over `input` into `dir` until done.
fn publish(dir: &Path, input: &Path) {
    let config = default_config().display().to_string();
    let args = with_sets(&["run", "--config", &config], &dir_sets(dir, input));
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "divoc run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the page must show, from the published certificates (not from the analytics tables).
struct Published {
    total: u64,
    by_state: BTreeMap<String, u64>,
    by_day: BTreeMap<String, u64>,
}

fn published(out: &Path) -> Published {
    let accepted = read_output(out, "accepted");
    let states = string_column(&accepted, "recipient_address_state");
    let mut days = Vec::new();
    for b in &accepted {
        let c = b
            .column_by_name("vaccination_date")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        for i in 0..b.num_rows() {
            days.push(if c.is_null(i) {
                None
            } else {
                let d = c.value(i).div_euclid(86_400_000);
                Some(
                    chrono::DateTime::from_timestamp(d * 86_400, 0)
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string(),
                )
            });
        }
    }
    let mut r = Published {
        total: states.len() as u64,
        by_state: BTreeMap::new(),
        by_day: BTreeMap::new(),
    };
    for (s, d) in states.into_iter().zip(days) {
        let s = if s.is_empty() { "(none)".to_owned() } else { s };
        *r.by_state.entry(s).or_default() += 1;
        if let Some(d) = d {
            *r.by_day.entry(d).or_default() += 1;
        }
    }
    r
}

/// `divoc sql` over the store, as JSON rows.
fn sql(out: &Path, query: &str) -> Vec<serde_json::Value> {
    let o = divoc(&["sql", "--storage", &p(out), "--format", "json", query]);
    assert!(
        o.status.success(),
        "divoc sql {query:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("divoc sql printed no JSON ({e}): {text}"))
            })
            .collect(),
    }
}

fn as_u64(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The analytics rollups the dashboard reads must agree with the published certificates.
fn check_rollups(out: &Path, want: &Published) {
    let total = sql(
        out,
        "SELECT COALESCE(SUM(certificates), 0) AS n FROM certificate_counts",
    );
    assert_eq!(
        as_u64(&total[0]["n"]),
        want.total,
        "divoc sql: SUM(certificates) of certificate_counts differs from the published certificates"
    );
    let rows = sql(
        out,
        "SELECT COALESCE(state, '(none)') AS state, SUM(certificates) AS n \
         FROM certificate_counts GROUP BY 1 ORDER BY 1",
    );
    let by_state: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| (r["state"].as_str().unwrap().to_owned(), as_u64(&r["n"])))
        .collect();
    assert_eq!(
        by_state, want.by_state,
        "divoc sql: certificates by state differ from the published certificates"
    );
}

fn write_serve(dir: &Path) -> PathBuf {
    let config = repo().join("config");
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let text = format!(
        r#"listen = "127.0.0.1:0"
storage_url = {store}
refresh_interval_ms = 500
events_flush_interval_ms = 600000
templates = {templates}
fhir_codes = {codes}

[analytics]
tokens = [{{ token = "{TOKEN}", access = "analytics" }}]
max_rows = 10000
timeout_ms = 20000
queries = {queries}
page = {page}
"#,
        store = q(&dir.join("out")),
        templates = q(&config),
        codes = q(&config.join("shc-codes.toml")),
        queries = q(&repo().join("dashboards/queries.toml")),
        page = q(&repo().join("dashboards/page")),
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The state with the median count (a real choice, neither the largest nor a singleton).
fn middle_state(by_state: &BTreeMap<String, u64>) -> (String, u64) {
    let mut v: Vec<(&String, &u64)> = by_state.iter().filter(|(s, _)| *s != "(none)").collect();
    v.sort_by_key(|(s, n)| (**n, (*s).clone()));
    let (s, n) = v[v.len() / 2];
    (s.clone(), *n)
}

/// A date range over the middle third of the vaccination days, and its count.
fn middle_days(by_day: &BTreeMap<String, u64>) -> (String, String, u64) {
    let days: Vec<(&String, &u64)> = by_day.iter().collect();
    let (a, b) = (days.len() / 3, (2 * days.len() / 3).max(days.len() / 3));
    let n = days[a..=b].iter().map(|(_, n)| **n).sum();
    (days[a].0.clone(), days[b].0.clone(), n)
}

#[test]
fn dashboard_shows_the_published_numbers_and_follows_new_events() {
    let browser = require_tools();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let out = tmp.path().join("out");

    // First publication.
    let (_, valid, _, _) = gen_counts(&gen(&input.join("a.ndjson"), FIRST_EVENTS, 91, 0.05, 0.03));
    publish(tmp.path(), &input);
    let first = published(&out);
    assert_eq!(
        first.total, valid,
        "published certificates vs the generator's valid count"
    );
    check_rollups(&out, &first);
    let expected = tmp.path().join("expected.json");
    std::fs::write(
        &expected,
        serde_json::json!({ "total": first.total, "by_state": first.by_state, "more": true })
            .to_string(),
    )
    .unwrap();

    let server = start_serve(&write_serve(tmp.path()));
    let url = format!("http://{}", server.addr);
    let screenshot = tmp.path().join("screenshot.png");
    let mut node = Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .args([&url, TOKEN, &p(&expected), &p(&screenshot)])
        .current_dir(&browser)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); {TOOLS}"));
    let mut stderr = node.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdin = node.stdin.take();
    let mut log = Vec::new();
    let mut more = None;
    for line in BufReader::new(node.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        eprintln!("dashboard.mjs: {line}");
        if line == "waiting for more events" {
            // More events while the page is open: a second file, a second run from the checkpoint.
            let (_, valid_more, _, _) =
                gen_counts(&gen(&input.join("b.ndjson"), MORE_EVENTS, 92, 0.0, 0.0));
            publish(tmp.path(), &input);
            let all = published(&out);
            assert!(
                all.total > first.total && all.total <= first.total + valid_more,
                "second run published {} certificates after {}; the generator made {valid_more} valid",
                all.total,
                first.total
            );
            check_rollups(&out, &all);
            let (state, state_total) = middle_state(&all.by_state);
            let (from, to, range_total) = middle_days(&all.by_day);
            assert!(range_total < all.total);
            let line = serde_json::json!({
                "total": all.total, "by_state": all.by_state,
                "state": state, "state_total": state_total,
                "from": from, "to": to, "range_total": range_total,
            });
            let w = stdin.as_mut().expect("node's stdin");
            writeln!(w, "{line}").unwrap();
            w.flush().unwrap();
            more = Some(all);
        }
        log.push(line);
    }
    drop(stdin);
    let status = node.wait().unwrap();
    let errors = errors.join().unwrap();
    stop_serve(server);
    assert!(
        status.success(),
        "tests/browser/dashboard.mjs failed ({status}):\n{errors}\nstdout:\n{}",
        log.join("\n")
    );
    assert!(
        more.is_some(),
        "dashboard.mjs never asked for more events:\n{}",
        log.join("\n")
    );
    assert_eq!(log.last().map(String::as_str), Some("dashboard ok"));

    // Passed: the picture for the README.
    let png = std::fs::read(&screenshot).expect("dashboard.mjs wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    std::fs::write(repo().join("dashboards/screenshot.png"), png).unwrap();
    eprintln!(
        "dashboard test passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
