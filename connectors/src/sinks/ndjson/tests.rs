use std::sync::Arc;

use arrow::array::{
    Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use divoc_pipeline::checkpoint::Checkpoint;

use super::*;

fn batch(names: &[&str]) -> RecordBatch {
    let mut contacts = ListBuilder::new(StringBuilder::new());
    for _ in names {
        contacts.values().append_value("tel:1");
        contacts.append(true);
    }
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("tenant", DataType::Utf8, false),
            Field::new("dose", DataType::Int64, true),
            Field::new(
                "ingest_time",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                false,
            ),
            Field::new(
                "contact",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new("raw", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(Int64Array::from(vec![Some(2); names.len()])),
            Arc::new(
                TimestampMillisecondArray::from(vec![1_700_000_000_123; names.len()])
                    .with_timezone("+00:00"),
            ),
            Arc::new(contacts.finish()),
            Arc::new(StringArray::from(vec!["{}"; names.len()])),
        ],
    )
    .unwrap()
}

struct Fixture {
    storage: Storage,
    root: std::path::PathBuf,
    /// Last: dropped after the handles above.
    _store: crate::storage::TestStore,
}

fn fixture() -> Fixture {
    let store = crate::storage::TestStore::new();
    Fixture {
        storage: store.storage.clone(),
        root: store.root.clone(),
        _store: store,
    }
}

fn sink(f: &Fixture) -> NdjsonSink {
    NdjsonSink {
        storage: f.storage.clone(),
        prefix: "debug".into(),
        columns: vec![],
        buffer: vec![],
        rows: 0,
    }
}

fn commit(s: &mut NdjsonSink, epoch: u64, written: &EpochOutput) {
    let cp = Checkpoint {
        epoch,
        ..Default::default()
    };
    s.commit(&CommitInfo {
        epoch,
        written,
        checkpoint: &cp,
    })
    .unwrap();
}

#[test]
fn staged_until_commit_then_visible_once() {
    let f = fixture();
    let mut s = sink(&f);
    s.write(batch(&["a", "b"])).unwrap();
    let out = s.pre_commit(1).unwrap();
    assert_eq!(out.rows, 2);
    assert_eq!(out.objects, ["debug/part-000000000001.ndjson"]);
    let staged = f.root.join("debug/_staging/part-000000000001.ndjson");
    let published = f.root.join("debug/part-000000000001.ndjson");
    assert!(
        staged.exists() && !published.exists(),
        "invisible before commit"
    );

    commit(&mut s, 1, &out);
    assert!(!staged.exists() && published.exists());
    // Committing again (the engine does after a crash) changes nothing.
    commit(&mut s, 1, &out);
    let text = std::fs::read_to_string(&published).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["tenant"], "a");
    assert_eq!(rows[0]["dose"], 2, "numbers stay numbers");
    assert_eq!(rows[0]["ingest_time"], "2023-11-14T22:13:20.123Z");
    assert_eq!(rows[0]["contact"], serde_json::json!(["tel:1"]));
    assert!(rows[0].get("raw").is_none(), "raw is left out by default");
}

#[test]
fn abort_discards_epochs_after_the_committed_one() {
    let f = fixture();
    let mut s = sink(&f);
    s.write(batch(&["a"])).unwrap();
    let one = s.pre_commit(1).unwrap();
    commit(&mut s, 1, &one);
    s.write(batch(&["b"])).unwrap();
    s.pre_commit(2).unwrap();
    s.write(batch(&["c"])).unwrap(); // buffered, never pre-committed
                                     // Crash: epoch 2 was staged but its checkpoint never stored.
    let mut restarted = sink(&f);
    restarted.abort(1).unwrap();
    assert!(!f
        .root
        .join("debug/_staging/part-000000000002.ndjson")
        .exists());
    assert!(f.root.join("debug/part-000000000001.ndjson").exists());
    assert!(!f.root.join("debug/part-000000000002.ndjson").exists());
}

#[test]
fn abort_removes_what_a_kill_in_the_middle_of_a_write_left() {
    let f = fixture();
    let mut s = sink(&f);
    s.write(batch(&["a"])).unwrap();
    let one = s.pre_commit(1).unwrap();
    // Epoch 1 is checkpointed but not yet moved; a kill during epoch 2's put left the store's
    // temporary (`<key>#<n>`, renamed into place only when the write completes).
    let staging = f.root.join("debug/_staging");
    let interrupted = staging.join("part-000000000002.ndjson#1");
    std::fs::write(&interrupted, b"{\"half\":").unwrap();
    // Names that merely contain '#' are objects, not temporaries.
    let odd = staging.join("notes#draft");
    std::fs::write(&odd, b"x").unwrap();

    let mut restarted = sink(&f);
    restarted.abort(1).unwrap();
    assert!(!interrupted.exists(), "the interrupted write is gone");
    assert!(odd.exists(), "only `#<digits>` temporaries are removed");
    assert!(staging.join("part-000000000001.ndjson").exists());
    commit(&mut restarted, 1, &one);
    assert!(f.root.join("debug/part-000000000001.ndjson").exists());
}

#[test]
fn chosen_columns_and_missing_ones() {
    let f = fixture();
    let mut s = sink(&f);
    s.columns = vec!["dose".into(), "tenant".into()];
    s.write(batch(&["a"])).unwrap();
    let out = s.pre_commit(3).unwrap();
    commit(&mut s, 3, &out);
    let text = std::fs::read_to_string(f.root.join("debug/part-000000000003.ndjson")).unwrap();
    assert_eq!(text, "{\"dose\":2,\"tenant\":\"a\"}\n");
    s.columns = vec!["nope".into()];
    let err = s.write(batch(&["a"])).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn any_column_type_becomes_json_without_panicking() {
    use arrow::array::{Float32Array, TimestampNanosecondArray, UInt16Array};
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
                false,
            ),
            Field::new("f", DataType::Float32, false),
            Field::new("s", DataType::UInt16, false),
        ])),
        vec![
            Arc::new(
                TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789])
                    .with_timezone("+00:00"),
            ),
            Arc::new(Float32Array::from(vec![1.5])),
            Arc::new(UInt16Array::from(vec![200])),
        ],
    )
    .unwrap();
    let rows = json_rows(&batch, &[]).unwrap();
    assert_eq!(rows[0]["f"], 1.5);
    assert_eq!(rows[0]["s"], 200);
    assert!(
        rows[0]["t"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20.123456789"),
        "{}",
        rows[0]["t"]
    );
}
