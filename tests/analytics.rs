//! The analytics half end to end: a run killed with SIGKILL and resumed publishes the PII-free
//! table and its rollups exactly once; every dashboard query (`dashboards/queries.toml`) answers
//! what an independent tally of the published events and the generator's own counts say; the
//! rollups agree with the raw table; `divoc sql` answers the same through the CLI.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, TimestampMillisecondType};
use common::*;
use divoc_analytics::{Access, DashboardQueries, Filters, Limits, QueryResult, SqlEngine};

const EVENTS: u64 = 40_000;

fn text(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let a = b.column_by_name(name).unwrap().as_string::<i32>();
    (!a.is_null(i))
        .then(|| a.value(i).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Decade band computed here, independently of the pipeline's code.
fn band(b: &RecordBatch, i: usize) -> String {
    let age = text(b, "recipient_age", i).and_then(|a| a.parse::<i64>().ok());
    let age = age.or_else(|| {
        let dob = b
            .column_by_name("recipient_dob")
            .unwrap()
            .as_primitive::<Date32Type>();
        let vd = b
            .column_by_name("vaccination_date")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        if dob.is_null(i) {
            return None;
        }
        let at = if vd.is_null(i) {
            let ingest = b
                .column_by_name("ingest_time")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            ingest.value(i).div_euclid(86_400_000)
        } else {
            vd.value(i).div_euclid(86_400_000)
        };
        Some(((at - i64::from(dob.value(i))) as f64 / 365.25).floor() as i64)
    });
    match age {
        Some(a) if a >= 80 => "80+".to_owned(),
        Some(a) if a >= 0 => format!("{}-{}", a / 10 * 10, a / 10 * 10 + 9),
        _ => "unknown".to_owned(),
    }
}

/// The answer as `first column -> second column` (categories to counts).
fn pairs(r: &QueryResult) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for b in &r.batches {
        let fmt = |c: usize, i: usize| -> String {
            arrow::util::display::array_value_to_string(b.column(c), i).unwrap()
        };
        for i in 0..b.num_rows() {
            out.insert(fmt(0, i), fmt(1, i).parse::<i64>().unwrap());
        }
    }
    out
}

/// The one value of a single-value answer.
fn number(r: &QueryResult) -> i64 {
    let b = r
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .expect("one row");
    arrow::util::display::array_value_to_string(b.column(0), 0)
        .unwrap()
        .parse()
        .unwrap()
}

fn tally(
    batches: &[RecordBatch],
    key: impl Fn(&RecordBatch, usize) -> String,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for b in batches {
        for i in 0..b.num_rows() {
            *out.entry(key(b, i)).or_default() += 1;
        }
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn none(v: Option<String>) -> String {
    v.unwrap_or_else(|| "(none)".to_owned())
}

#[test]
fn dashboard_queries_agree_with_independent_tallies_after_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let summary = gen(&input.join("events.ndjson"), EVENTS, 77, 0.04, 0.03);
    let (total, valid, dups, _invalid) = gen_counts(&summary);
    assert_eq!(total, EVENTS);
    let invalid_by_reason: BTreeMap<String, i64> = summary
        .find('{')
        .map(|i| serde_json::from_str(summary[i..].trim()).unwrap())
        .unwrap_or_default();

    let mut sets = dir_sets(tmp.path(), &input);
    sets.extend([
        "pipeline.checkpoint_max_records=4000".to_owned(),
        "pipeline.batch_size=1024".to_owned(),
        // Compact rollup partitions often, so compactions happen before, between and after crashes.
        "nodes.analytics.compact_after_parts=3".to_owned(),
    ]);
    let config = default_config().display().to_string();
    let args = with_sets(&["run", "--config", &config], &sets);
    let mut kills = 0;
    for delay in [900u64, 1400, 2100, 700] {
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 2, "the run was killed mid-way ({kills} kills)");
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = tmp.path().join("out");
    let accepted = read_output(&store, "accepted");
    assert_eq!(
        accepted.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
        valid
    );

    // Rollup partitions were compacted (with compact_after_parts = 3) and what the compactions
    // superseded is gone once their epochs committed.
    let rollup_files: Vec<String> = walk(&store.join("analytics/rollups"))
        .into_iter()
        .map(|p| p.strip_prefix(&store).unwrap().display().to_string())
        .collect();
    let (live, superseded) = divoc_model::analytics::rollup_files::classify(&rollup_files);
    assert!(
        live.iter().any(|k| k.contains("/compact-")),
        "no rollup partition was compacted: {live:?}"
    );
    assert_eq!(
        superseded,
        Vec::<String>::new(),
        "superseded rollup files left behind"
    );

    // No PII column in what the analytics sink wrote.
    for b in read_output(&store, "analytics/certificates") {
        for f in b.schema().fields() {
            assert!(
                !divoc_model::columns::PII.iter().any(|p| p.name == f.name()),
                "{} is personal data",
                f.name()
            );
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = rt
        .block_on(SqlEngine::open(
            store.to_str().unwrap(),
            &Default::default(),
            Access::Analytics,
        ))
        .unwrap();
    let queries = DashboardQueries::load(&repo().join("dashboards/queries.toml")).unwrap();
    let limits = Limits::default();
    let run = |name: &str, f: &Filters| -> QueryResult {
        let q = queries.get(name).unwrap_or_else(|| panic!("query {name}"));
        rt.block_on(engine.run_named(q, f, &limits))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let all = Filters::default();

    assert_eq!(
        number(&run("total", &all)),
        valid as i64,
        "total = the generator's valid events"
    );
    let state = |b: &RecordBatch, i: usize| none(text(b, "recipient_address_state", i));
    assert_eq!(pairs(&run("by_state", &all)), tally(&accepted, state));
    assert_eq!(
        pairs(&run("by_vaccine_dose", &all)),
        tally(&accepted, |b, i| {
            let dose = b
                .column_by_name("dose")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>();
            format!(
                "{} dose {}",
                none(text(b, "vaccine_name", i)),
                if dose.is_null(i) {
                    "?".to_owned()
                } else {
                    dose.value(i).to_string()
                }
            )
        })
    );
    assert_eq!(pairs(&run("by_age_band", &all)), tally(&accepted, band));
    assert_eq!(
        pairs(&run("by_gender", &all)),
        tally(&accepted, |b, i| none(text(b, "recipient_gender", i)))
    );
    let by_day = tally(&accepted, |b, i| {
        let vd = b
            .column_by_name("vaccination_date")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        divoc_model::schema::format_date(vd.value(i).div_euclid(86_400_000) as i32)
    });
    assert_eq!(pairs(&run("by_day", &all)), by_day);
    let facilities = tally(&accepted, |b, i| {
        format!(
            "{}|{}|{}",
            none(text(b, "facility_name", i)),
            none(text(b, "facility_address_district", i)),
            none(text(b, "facility_address_state", i))
        )
    });
    let vaccinators = tally(&accepted, |b, i| none(text(b, "vaccinator_name", i)));
    let fv = pairs(&run("facilities_and_vaccinators", &all));
    assert_eq!(fv["facilities"], facilities.len() as i64);
    assert_eq!(fv["vaccinators"], vaccinators.len() as i64);
    let top = pairs(&run("top_facilities", &all));
    let mut by_name: Vec<i64> = facilities.values().copied().collect();
    by_name.sort_unstable_by(|a, b| b.cmp(a));
    let mut shown: Vec<i64> = top.values().copied().collect();
    shown.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(shown, by_name[..shown.len()], "the top facilities' counts");

    let mut expected_dead: BTreeMap<String, i64> = invalid_by_reason;
    expected_dead.insert("duplicate".into(), dups as i64);
    assert_eq!(pairs(&run("dead_letters_by_reason", &all)), expected_dead);

    // Filters change the answer the way an independent tally says.
    let (first_state, first_count) = tally(&accepted, state)
        .into_iter()
        .find(|(s, _)| s != "(none)")
        .unwrap();
    let one = Filters {
        state: Some(first_state.clone()),
        ..Filters::default()
    };
    assert_eq!(
        number(&run("total", &one)),
        first_count,
        "total for {first_state}"
    );
    let (day, day_count) = by_day.iter().next().unwrap();
    let that_day = Filters {
        from: Some(day.clone()),
        to: Some(day.clone()),
        ..Filters::default()
    };
    assert_eq!(number(&run("total", &that_day)), *day_count);

    // Rollups and raw rows agree on every dimension at once.
    let everything = Limits {
        max_rows: 10_000_000,
        ..Limits::default()
    };
    let grouped = |sql: &str| {
        let r = rt.block_on(engine.query(sql, &everything)).unwrap();
        assert!(!r.truncated);
        pairs(&r)
    };
    let dims = "concat_ws('|', tenant, COALESCE(state,''), COALESCE(district,''), COALESCE(vaccine,''), \
                COALESCE(CAST(dose AS VARCHAR),''), age_band, COALESCE(gender,''), COALESCE(CAST(day AS VARCHAR),''))";
    let rollup = grouped(&format!(
        "SELECT {dims} AS k, SUM(certificates) AS n FROM certificate_counts GROUP BY 1"
    ));
    let raw = grouped(&format!(
        "SELECT {} AS k, COUNT(*) AS n FROM certificates GROUP BY 1",
        dims.replace("CAST(day AS VARCHAR)", "CAST(vaccination_date AS VARCHAR)")
    ));
    let differ: Vec<_> = rollup
        .iter()
        .filter(|(k, v)| raw.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: rollup {v}, raw {:?}", raw.get(k)))
        .chain(
            raw.iter()
                .filter(|(k, _)| !rollup.contains_key(*k))
                .map(|(k, v)| format!("{k}: raw {v}, not in the rollup")),
        )
        .take(5)
        .collect();
    assert!(differ.is_empty(), "rollup vs raw rows: {differ:#?}");
    assert_eq!(rollup.len(), raw.len());

    // The CLI gives the same total.
    let cli = divoc(&[
        "sql",
        "--storage",
        store.to_str().unwrap(),
        "--format",
        "json",
        "SELECT COUNT(*) AS n FROM certificates",
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(rows[0]["n"].as_u64(), Some(valid));
    let refused = divoc(&[
        "sql",
        "--storage",
        store.to_str().unwrap(),
        "DROP TABLE certificates",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only queries are allowed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
