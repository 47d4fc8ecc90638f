use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{TimestampMillisecondType, UInt64Type};
use divoc_model::schema;
use divoc_pipeline::operator::{Source, SourcePoll};

use super::*;

fn selection(dir: &std::path::Path, rows: usize) -> PathBuf {
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new((0..rows).map(|i| Some(f(i))).collect::<StringArray>())
    };
    let batch = RecordBatch::try_from_iter(vec![
        (schema::TENANT, text(&|_| "t".into())),
        (schema::PRE_ENROLLMENT_CODE, text(&|i| format!("P{i}"))),
        (schema::RECIPIENT_NAME, text(&|i| format!("Name {i}"))),
        (
            schema::DOSE,
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| i as i64 % 2 + 1),
            )) as ArrayRef,
        ),
        (CERTIFICATE_ID.name, text(&|i| format!("C-{i}"))),
        // Published with the original event's kind and origin, which the re-issue replaces.
        (schema::EVENT_KIND, text(&|_| "certify_v1".into())),
        (schema::SOURCE_ID, text(&|_| "input.ndjson".into())),
    ])
    .unwrap();
    let path = dir.join("selection.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path
}

fn source(path: PathBuf, revoke: bool, progress: Option<ReissueProgress>) -> ReissueSource {
    ReissueSource::open(
        path,
        ReissueSourceConfig {
            path: PathBuf::new(),
            job: "j1".into(),
            issued_at_ms: 1_700_000_000_000,
            revoke_superseded: revoke,
        },
        progress,
    )
    .unwrap()
}

fn events(poll: SourcePoll) -> RecordBatch {
    match poll {
        SourcePoll::Batch {
            events: Some(e), ..
        } => e,
        _ => panic!("expected events"),
    }
}

#[test]
fn selected_rows_become_reissue_events_with_their_own_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = selection(dir.path(), 5);
    let progress = ReissueProgress::default();
    let mut s = source(path, false, Some(progress.clone()));
    assert_eq!(progress.total.load(Ordering::Relaxed), 5);
    s.resume(None).unwrap();
    let first = events(s.poll(3).unwrap());
    assert_eq!(first.num_rows(), 3);
    let col = |b: &RecordBatch, n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
    assert_eq!(col(&first, schema::EVENT_KIND).value(0), "reissue");
    assert_eq!(col(&first, schema::SOURCE_ID).value(2), "reissue/j1");
    assert_eq!(col(&first, REISSUE_OF.name).value(1), "C-1");
    assert_eq!(col(&first, schema::RECIPIENT_NAME).value(2), "Name 2");
    assert!(
        first
            .column_by_name(schema::VACCINE_NAME)
            .unwrap()
            .is_null(0),
        "absent: null"
    );
    let offsets = first.column_by_name(schema::SOURCE_OFFSET).unwrap();
    assert_eq!(offsets.as_primitive::<UInt64Type>().values(), &[0, 1, 2]);
    let times = first.column_by_name(schema::INGEST_TIME).unwrap();
    assert_eq!(
        times.as_primitive::<TimestampMillisecondType>().value(0),
        1_700_000_000_000
    );
    let raw: serde_json::Value = serde_json::from_str(col(&first, schema::RAW).value(0)).unwrap();
    assert_eq!(raw, serde_json::json!({"reissueOf": "C-0", "job": "j1"}));
    assert_eq!(s.position(), serde_json::json!({"row": 3}));
    assert_eq!(progress.done.load(Ordering::Relaxed), 3);
    let rest = events(s.poll(100).unwrap());
    assert_eq!(col(&rest, REISSUE_OF.name).value(1), "C-4");
    assert!(matches!(s.poll(100).unwrap(), SourcePoll::Finished));
}

#[test]
fn a_resumed_job_starts_after_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = selection(dir.path(), 5);
    let progress = ReissueProgress::default();
    let mut s = source(path, true, Some(progress.clone()));
    s.resume(Some(&serde_json::json!({"row": 4}))).unwrap();
    assert_eq!(
        progress.done.load(Ordering::Relaxed),
        4,
        "done before this run"
    );
    let b = events(s.poll(10).unwrap());
    assert_eq!(b.num_rows(), 1);
    let kinds = b
        .column_by_name(schema::EVENT_KIND)
        .unwrap()
        .as_string::<i32>()
        .clone();
    assert_eq!(kinds.value(0), "reissue_revoking");
    let offsets = b.column_by_name(schema::SOURCE_OFFSET).unwrap();
    assert_eq!(offsets.as_primitive::<UInt64Type>().value(0), 4);
    assert!(matches!(s.poll(10).unwrap(), SourcePoll::Finished));
    assert!(s.resume(Some(&serde_json::json!({"file": "x"}))).is_err());
}
