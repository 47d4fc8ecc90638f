//! The dashboard at national scale: generates N analytics rows (100 million by default) in the
//! pipeline's own layout (the `analytics` sink's Parquet writer and rollup counts, one file per
//! epoch and partition), then times every dashboard query of `dashboards/queries.toml` three ways:
//! over the raw rows, over the rollups as the epochs left them, and over the rollups after
//! compaction. Each answer is checked against the raw one.
//!
//! ```text
//! cargo bench --workspace --bench analytics_scale -- [--rows 100000000] [--epoch-rows 100000]
//!     [--days 100] [--dir target/analytics-scale] [--reuse] [--runs 3]
//! ```
//!
//! `--reuse` keeps a data set of the same size from an earlier run (generation takes minutes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use divoc_analytics::{
    Access, DashboardQueries, Filters, Limits, NamedQuery, QueryResult, SqlEngine,
};
use divoc_bench::{AnalyticsRows, AnalyticsRowsConfig};
use divoc_connectors::parquet::PartitionedParquet;
use divoc_connectors::sinks::analytics::rollup::{
    compact_partition, delete_superseded, partition_of,
};
use divoc_connectors::sinks::analytics::AnalyticsRollups;
use divoc_connectors::storage::Storage;
use divoc_model::analytics::{certificate_rollup_schema, facility_rollup_schema};
use rayon::prelude::*;

struct Args {
    rows: u64,
    epoch_rows: u64,
    days: u32,
    dir: PathBuf,
    reuse: bool,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        rows: 100_000_000,
        epoch_rows: 100_000,
        days: 100,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/analytics-scale"),
        reuse: false,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value().parse().expect("--rows: a number"),
            "--epoch-rows" => a.epoch_rows = value().parse().expect("--epoch-rows: a number"),
            "--days" => a.days = value().parse().expect("--days: a number"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--runs" => a.runs = value().parse().expect("--runs: a number"),
            "--reuse" => a.reuse = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    a
}

fn storage(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> Storage {
    Storage::open(
        dir.to_str().expect("utf-8 dir"),
        &Default::default(),
        rt.handle().clone(),
    )
    .expect("open the bench store")
}

/// Writes the data set as the `analytics` sink would, one epoch per `epoch_rows` rows.
fn generate(a: &Args, store: &Storage) -> Duration {
    let gen = AnalyticsRows::new(AnalyticsRowsConfig {
        rows: a.rows,
        days: a.days,
        ..Default::default()
    });
    println!(
        "generating {} rows over {} days: {} districts, {} facilities, epochs of {} rows",
        a.rows,
        a.days,
        gen.district_count(),
        gen.facility_count(),
        a.epoch_rows
    );
    let started = Instant::now();
    let epochs = a.rows.div_ceil(a.epoch_rows);
    let done = std::sync::atomic::AtomicU64::new(0);
    (0..epochs).into_par_iter().for_each(|epoch| {
        let first = epoch * a.epoch_rows;
        let n = a.epoch_rows.min(a.rows - first) as usize;
        let mut rows = PartitionedParquet::new(store.clone(), "analytics/certificates", vec![])
            .with_date_column("issued_at");
        let mut certs =
            PartitionedParquet::new(store.clone(), "analytics/rollups/certificates", vec![])
                .with_date_column("issued_on");
        let mut facilities =
            PartitionedParquet::new(store.clone(), "analytics/rollups/facilities", vec![])
                .with_date_column("issued_on");
        let mut rollups = AnalyticsRollups::new().expect("rollup schemas");
        let mut at = 0;
        while at < n {
            let k = (n - at).min(16_384);
            let batch = gen.batch(first + at as u64, k);
            rollups.add_rows(&batch).expect("count rows");
            rows.push(batch).expect("buffer rows");
            at += k;
        }
        let (c, f) = rollups.take().expect("rollups");
        certs.push(c).expect("buffer rollup");
        facilities.push(f).expect("buffer rollup");
        for table in [&mut rows, &mut certs, &mut facilities] {
            table.flush(epoch + 1).expect("write epoch");
        }
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if d.is_multiple_of(50) || d == epochs {
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "  {d}/{epochs} epochs, {:.0} rows/s",
                (d * a.epoch_rows) as f64 / s
            );
        }
    });
    started.elapsed()
}

/// Compacts every rollup partition to one file, as the sink does once a partition has
/// `compact_after_parts` files.
fn compact(store: &Storage, epoch: u64) -> (Duration, usize) {
    let started = Instant::now();
    let mut written = 0;
    for (prefix, schema) in [
        (
            "analytics/rollups/certificates/",
            certificate_rollup_schema(),
        ),
        ("analytics/rollups/facilities/", facility_rollup_schema()),
    ] {
        let keys = store.list(prefix).expect("list rollups");
        let dirs: std::collections::BTreeSet<&str> = keys.iter().map(|k| partition_of(k)).collect();
        for dir in dirs {
            if compact_partition(store, &schema, dir, epoch, 2)
                .expect("compact")
                .is_some()
            {
                written += 1;
            }
            delete_superseded(store, dir).expect("delete superseded");
        }
    }
    (started.elapsed(), written)
}

/// The same query over the raw rows: each rollup table becomes a projection of `certificates`
/// with a count of 1 per row.
fn over_raw(q: &NamedQuery) -> NamedQuery {
    let certificate_counts =
        "(SELECT vaccination_date AS day, tenant, program_id, state, district, \
        vaccine, dose, age_band, gender, 1 AS certificates FROM certificates)";
    let facility_counts = "(SELECT vaccination_date AS day, tenant, facility_id, facility_name, \
        facility_state, facility_district, vaccine, 1 AS certificates FROM certificates)";
    let mut raw = q.clone();
    raw.sql = raw
        .sql
        .replace(
            "FROM certificate_counts",
            &format!("FROM {certificate_counts} AS c"),
        )
        .replace(
            "FROM facility_counts",
            &format!("FROM {facility_counts} AS f"),
        );
    raw
}

fn reads_rollups(q: &NamedQuery) -> bool {
    q.sql.contains("certificate_counts") || q.sql.contains("facility_counts")
}

/// The answer as text rows, to compare runs.
fn rows(r: &QueryResult) -> Vec<String> {
    let mut out = Vec::new();
    for b in &r.batches {
        for i in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, i).unwrap_or_default())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out
}

struct Timed {
    cold: Duration,
    warm: Duration,
    answer: Vec<String>,
}

fn time(
    rt: &tokio::runtime::Runtime,
    engine: &SqlEngine,
    q: &NamedQuery,
    f: &Filters,
    runs: usize,
) -> Timed {
    let limits = Limits {
        max_rows: 100_000,
        timeout: Duration::from_secs(600),
    };
    let mut times = Vec::new();
    let mut answer = Vec::new();
    for _ in 0..runs.max(1) + 1 {
        let t = Instant::now();
        let r = rt
            .block_on(engine.run_named(q, f, &limits))
            .unwrap_or_else(|e| panic!("{}: {e}", q.name));
        times.push(t.elapsed());
        answer = rows(&r);
    }
    let cold = times[0];
    let mut warm = times[1..].to_vec();
    warm.sort();
    Timed {
        cold,
        warm: warm[warm.len() / 2],
        answer,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let marker = a.dir.join("bench-rows.txt");
    let fresh = !(a.reuse
        && std::fs::read_to_string(&marker).ok().as_deref()
            == Some(format!("{} {} {}", a.rows, a.epoch_rows, a.days).as_str()));
    if fresh {
        let _ = std::fs::remove_dir_all(&a.dir);
        std::fs::create_dir_all(&a.dir).expect("bench dir");
        let store = storage(&a.dir, &rt);
        let took = generate(&a, &store);
        std::fs::write(&marker, format!("{} {} {}", a.rows, a.epoch_rows, a.days)).expect("marker");
        println!(
            "generated in {:.1} s ({:.0} rows/s)",
            took.as_secs_f64(),
            a.rows as f64 / took.as_secs_f64()
        );
    }
    let du = |p: &str| -> (u64, usize) {
        let mut bytes = 0;
        let mut files = 0;
        let mut stack = vec![a.dir.join(p)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let m = e.metadata().expect("metadata");
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    bytes += m.len();
                    files += 1;
                }
            }
        }
        (bytes, files)
    };
    let describe = |p: &str| {
        let (bytes, files) = du(p);
        format!("{p}: {files} files, {:.1} MiB", bytes as f64 / 1048576.0)
    };
    println!("{}", describe("analytics/certificates"));
    println!("{}", describe("analytics/rollups"));

    let queries = DashboardQueries::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards/queries.toml"),
    )
    .expect("dashboards/queries.toml");
    let engine = rt
        .block_on(SqlEngine::open(
            a.dir.to_str().expect("utf-8"),
            &Default::default(),
            Access::Analytics,
        ))
        .expect("open the SQL engine");
    let count = |sql: &str| -> String {
        let r = rt
            .block_on(engine.query(sql, &Limits::default()))
            .expect("count");
        rows(&r).join(",")
    };
    println!(
        "rows: certificates {}, certificate_counts {}, facility_counts {}",
        count("SELECT COUNT(*) FROM certificates"),
        count("SELECT COUNT(*) FROM certificate_counts"),
        count("SELECT COUNT(*) FROM facility_counts")
    );

    let filters = [
        ("all", Filters::default()),
        (
            "Jul 2021, Maharashtra",
            Filters {
                from: Some("2021-07-01".into()),
                to: Some("2021-07-31".into()),
                state: Some("Maharashtra".into()),
                ..Default::default()
            },
        ),
    ];
    let mut table: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (fi, (label, f)) in filters.iter().enumerate() {
        for (qi, q) in queries.queries.iter().enumerate() {
            let raw = time(&rt, &engine, &over_raw(q), f, a.runs);
            let mut cells = vec![
                q.name.clone(),
                (*label).to_owned(),
                ms(raw.cold),
                ms(raw.warm),
            ];
            if reads_rollups(q) {
                let rolled = time(&rt, &engine, q, f, a.runs);
                if rolled.answer != raw.answer {
                    mismatches.push(format!("{} ({label}) over rollups", q.name));
                }
                cells.extend([ms(rolled.cold), ms(rolled.warm)]);
            } else {
                cells.extend(["-".into(), "-".into()]);
            }
            table.insert(fi * 100 + qi, cells);
        }
    }
    // Compact (as the sink does every `compact_after_parts` epochs) and time the rollups again.
    let (took, written) = compact(&storage(&a.dir, &rt), a.rows.div_ceil(a.epoch_rows) + 1);
    println!(
        "compacted {written} rollup partitions in {:.1} s; {}",
        took.as_secs_f64(),
        describe("analytics/rollups")
    );
    println!(
        "rows after compaction: certificate_counts {}, facility_counts {}",
        count("SELECT COUNT(*) FROM certificate_counts"),
        count("SELECT COUNT(*) FROM facility_counts")
    );
    for (fi, (label, f)) in filters.iter().enumerate() {
        for (qi, q) in queries.queries.iter().enumerate() {
            let cells = table.get_mut(&(fi * 100 + qi)).expect("row");
            if reads_rollups(q) {
                let compacted = time(&rt, &engine, q, f, a.runs);
                let raw = time(&rt, &engine, &over_raw(q), f, 0);
                if compacted.answer != raw.answer {
                    mismatches.push(format!("{} ({label}) over compacted rollups", q.name));
                }
                cells.extend([ms(compacted.cold), ms(compacted.warm)]);
            } else {
                cells.extend(["-".into(), "-".into()]);
            }
        }
    }
    println!();
    println!(
        "| query | filter | raw cold ms | raw warm ms | rollup (per-epoch files) cold | warm | rollup compacted cold | warm |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for cells in table.values() {
        println!("| {} |", cells.join(" | "));
    }
    if mismatches.is_empty() {
        println!("\nevery rollup answer equals the raw-row answer");
    } else {
        println!("\nANSWERS DIFFER: {mismatches:?}");
        std::process::exit(1);
    }
}
