use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array, Int64Array, StringArray};
use arrow::datatypes::Int64Type;
use divoc_model::analytics::certificate_rollup_schema;

use super::*;

/// A store with two epochs of rollups for two tenants: (day, tenant, state, vaccine, count).
fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rows: [(i32, &str, &str, &str, i64); 5] = [
        (18887, "in", "Kerala", "Covishield", 3),
        (18887, "in", "Goa", "Covaxin", 2),
        (18888, "in", "Kerala", "Covishield", 4),
        (18887, "lk", "Western", "Covishield", 7),
        (18888, "in", "Kerala", "Covishield", 1), // a later epoch's partial count
    ];
    for (i, chunk) in [&rows[..4], &rows[4..]].iter().enumerate() {
        let n = chunk.len();
        let batch = RecordBatch::try_new(
            certificate_rollup_schema(),
            vec![
                Arc::new(Date32Array::from_iter_values(chunk.iter().map(|_| 18890))),
                Arc::new(Date32Array::from_iter_values(chunk.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.1))),
                Arc::new(StringArray::from(vec![Some("p"); n])),
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.2))),
                Arc::new(StringArray::from(vec![Some("D"); n])),
                Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.3))),
                Arc::new(Int64Array::from(vec![Some(1); n])),
                Arc::new(StringArray::from(vec!["30-39"; n])),
                Arc::new(StringArray::from(vec![Some("F"); n])),
                Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.4))),
            ],
        )
        .unwrap();
        let dir = dir
            .path()
            .join("analytics/rollups/certificates/tenant=x/date=y");
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::fs::File::create(dir.join(format!("part-{i:012}.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    dir
}

async fn engine(dir: &tempfile::TempDir, access: Access) -> SqlEngine {
    SqlEngine::open(dir.path().to_str().unwrap(), &Default::default(), access)
        .await
        .unwrap()
}

fn ints(r: &QueryResult, col: usize) -> Vec<i64> {
    r.batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_primitive::<Int64Type>();
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn sums_rollups_across_epochs() {
    let dir = store();
    let e = engine(&dir, Access::Analytics).await;
    let r = e
        .query(
            "SELECT tenant, SUM(certificates) AS n FROM certificate_counts GROUP BY tenant ORDER BY tenant",
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(ints(&r, 1), [10, 7]);
    // Empty tables (nothing published yet) answer with no rows, not an error.
    let r = e
        .query("SELECT COUNT(*) FROM certificates", &Limits::default())
        .await
        .unwrap();
    assert_eq!(ints(&r, 0), [0]);
}

#[tokio::test]
async fn read_only_and_pii_tables_need_full_access() {
    let dir = store();
    let e = engine(&dir, Access::Analytics).await;
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "CREATE EXTERNAL TABLE y STORED AS PARQUET LOCATION '/etc'",
        "INSERT INTO certificate_counts SELECT * FROM certificate_counts",
        "COPY certificate_counts TO '/tmp/out.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE certificates",
    ] {
        let err = e.query(sql, &Limits::default()).await.err();
        assert!(
            matches!(err, Some(AnalyticsError::Refused(_))),
            "{sql}: {err:?}"
        );
    }
    let err = e
        .query("SELECT * FROM accepted", &Limits::default())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("accepted"), "{err}");
    let full = engine(&dir, Access::Full).await;
    assert!(full.tables().iter().any(|t| t == "accepted"));
    assert!(!e.tables().iter().any(|t| t == "accepted"));
    // Tables are listed and described.
    let r = e.query("SHOW TABLES", &Limits::default()).await.unwrap();
    assert!(r.rows() >= 5);
    let r = e
        .query("DESCRIBE dead_letters", &Limits::default())
        .await
        .unwrap();
    let names: Vec<String> = r
        .batches
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_string::<i32>();
            (0..a.len())
                .map(|i| a.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(names.contains(&"reason_code".to_owned()));
    assert!(
        !names.contains(&"raw".to_owned()),
        "no original text: {names:?}"
    );
}

#[tokio::test]
async fn row_limit_cuts_and_says_so() {
    let dir = store();
    let e = engine(&dir, Access::Analytics).await;
    let limits = Limits {
        max_rows: 2,
        ..Limits::default()
    };
    let r = e
        .query("SELECT * FROM certificate_counts", &limits)
        .await
        .unwrap();
    assert_eq!(r.rows(), 2);
    assert!(r.truncated);
}

#[tokio::test]
async fn named_queries_bind_filters_as_parameters() {
    let dir = store();
    let e = engine(&dir, Access::Analytics).await;
    let q = NamedQuery {
        name: "by_state".into(),
        title: "t".into(),
        chart: "bar".into(),
        sql: "SELECT state, SUM(certificates) AS n FROM certificate_counts \
              WHERE day BETWEEN $from AND $to AND ($tenant = '' OR tenant = $tenant) \
              AND ($vaccine = '' OR vaccine = $vaccine) GROUP BY state ORDER BY state"
            .into(),
    };
    let all = e
        .run_named(&q, &Filters::default(), &Limits::default())
        .await
        .unwrap();
    assert_eq!(ints(&all, 1), [2, 8, 7]); // Goa, Kerala, Western
    let f = Filters {
        from: Some("2021-09-18".into()),
        tenant: Some("in".into()),
        ..Filters::default()
    };
    let one_day = e.run_named(&q, &f, &Limits::default()).await.unwrap();
    assert_eq!(ints(&one_day, 1), [5]);
    // A hostile filter value is data, not SQL.
    let f = Filters {
        tenant: Some("in' OR '1'='1".into()),
        ..Filters::default()
    };
    let none = e.run_named(&q, &f, &Limits::default()).await.unwrap();
    assert_eq!(none.rows(), 0);
    let bad = Filters {
        from: Some("yesterday".into()),
        ..Filters::default()
    };
    assert!(e.run_named(&q, &bad, &Limits::default()).await.is_err());
}

/// Copies the partition's files into one compact file the way the pipeline does: the reader must
/// count the compact file and later parts, and ignore the parts (and older compacts) it covers.
#[tokio::test]
async fn a_compact_file_replaces_the_parts_it_covers() {
    let dir = store();
    let e = engine(&dir, Access::Analytics).await;
    let total = "SELECT SUM(certificates) FROM certificate_counts";
    let before = ints(&e.query(total, &Limits::default()).await.unwrap(), 0);
    assert_eq!(before, [17]);
    let part = dir
        .path()
        .join("analytics/rollups/certificates/tenant=x/date=y");
    // Epoch 0's counts (3 + 2 + 4 + 7 = 16) compacted at epoch 0: part 0 superseded, part 1 live.
    std::fs::copy(
        part.join("part-000000000000.parquet"),
        part.join("compact-000000000000.parquet"),
    )
    .unwrap();
    assert_eq!(
        ints(&e.query(total, &Limits::default()).await.unwrap(), 0),
        [17],
        "the same running engine sees the compaction without counting twice"
    );
    // A compact file at epoch 1 that (wrongly, for this test) holds only epoch 0's counts: both
    // parts and the older compact file are superseded, so the answer drops to 16.
    std::fs::copy(
        part.join("part-000000000000.parquet"),
        part.join("compact-000000000001.parquet"),
    )
    .unwrap();
    assert_eq!(
        ints(&e.query(total, &Limits::default()).await.unwrap(), 0),
        [16]
    );
}
