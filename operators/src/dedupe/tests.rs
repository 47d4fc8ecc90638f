use super::*;
use crate::testutil::{batch_from_json, event};
use arrow::array::ArrayRef;
use std::sync::Arc;

fn cfg() -> DedupeConfig {
    toml::from_str("").unwrap()
}

fn ids_and_reasons(out: &Processed) -> (Vec<String>, Vec<(String, Option<String>)>) {
    let ids = out
        .output
        .column_by_name(schema::CERTIFICATE_ID)
        .unwrap()
        .as_string::<i32>();
    let ids = (0..ids.len()).map(|i| ids.value(i).to_owned()).collect();
    let mut rs = Vec::new();
    if let Some(d) = &out.dead_letters {
        let c = d.column_by_name("reason_code").unwrap().as_string::<i32>();
        let e = d
            .column_by_name("existing_certificate_id")
            .unwrap()
            .as_string::<i32>();
        for i in 0..d.num_rows() {
            rs.push((
                c.value(i).to_owned(),
                (!e.is_null(i)).then(|| e.value(i).to_owned()),
            ));
        }
    }
    (ids, rs)
}

#[test]
fn duplicates_within_and_across_batches_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        event("100", 1, |_| {}),
        event("100", 2, |_| {}),
        event("100", 1, |_| {}),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let first_ids;
    {
        let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
        let out = d.process(batch_from_json(&refs), "dedupe").unwrap();
        let (ids, rs) = ids_and_reasons(&out);
        assert_eq!(ids, vec!["1000000000001", "1000000000002"]);
        assert_eq!(rs, vec![("duplicate".into(), Some("1000000000001".into()))]);
        d.on_barrier(1).unwrap();
        first_ids = ids;
    }
    // Restart: keys and the id counter survive; a new event for dose 1 from elsewhere is a duplicate.
    let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
    let other = [event("100", 1, |_| {}), event("101", 1, |_| {})];
    let mut batch = batch_from_json(&[other[0].as_str(), other[1].as_str()]);
    // Different source offsets than the originals: shift them past the first batch.
    let cols: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if f.name() == schema::SOURCE_OFFSET {
                Arc::new(arrow::array::UInt64Array::from(vec![10u64, 11])) as ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    batch = RecordBatch::try_new(batch.schema(), cols).unwrap();
    let out = d.process(batch, "dedupe").unwrap();
    let (ids, rs) = ids_and_reasons(&out);
    assert_eq!(
        ids,
        vec!["1000000000003"],
        "the counter continued after restart"
    );
    assert_eq!(rs, vec![("duplicate".into(), Some(first_ids[0].clone()))]);
}

#[test]
fn replayed_event_gets_its_own_id_back() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [event("7", 1, |_| {}), event("8", 1, |_| {})];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
    let (a, _) = ids_and_reasons(&d.process(batch_from_json(&refs), "dedupe").unwrap());
    d.on_barrier(1).unwrap();
    drop(d);
    let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
    let (b, rs) = ids_and_reasons(&d.process(batch_from_json(&refs), "dedupe").unwrap());
    assert_eq!(a, b);
    assert!(rs.is_empty());
}

#[test]
fn missing_key_fields_are_rejected_not_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let line = event("7", 1, |v| {
        v.as_object_mut().unwrap().remove("preEnrollmentCode");
    });
    let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
    let out = d
        .process(batch_from_json(&[line.as_str()]), "dedupe")
        .unwrap();
    assert_eq!(out.output.num_rows(), 0);
    assert_eq!(ids_and_reasons(&out).1[0].0, "missing_field");
}

#[test]
fn namespaces_keep_ids_apart() {
    let dir = tempfile::tempdir().unwrap();
    let c: DedupeConfig = toml::from_str("id_namespace = 42").unwrap();
    let mut d = Dedupe::open(dir.path(), &c).unwrap();
    let l = event("1", 1, |_| {});
    let (ids, _) = ids_and_reasons(&d.process(batch_from_json(&[l.as_str()]), "dedupe").unwrap());
    assert_eq!(ids, vec!["42000000000001"]);
    let bad: DedupeConfig = toml::from_str("id_namespace = 0").unwrap();
    assert_eq!(
        bad.check(&CheckContext {
            config_dir: std::path::Path::new(".")
        })
        .unwrap_err()
        .key,
        "id_namespace"
    );
}
