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

mod lifecycle {
    use super::*;
    use crate::testutil::batch_of_kinds;
    use divoc_model::event::EventKind::{self, *};

    /// (certificate id, previous id) of kept rows and reason codes of refused ones, in row order.
    fn run(
        d: &mut Dedupe,
        events: &[(EventKind, String)],
        offset: u64,
    ) -> (Vec<(String, Option<String>)>, Vec<String>) {
        let refs: Vec<(EventKind, &str)> = events.iter().map(|(k, l)| (*k, l.as_str())).collect();
        let out = d.process(batch_of_kinds(&refs, offset), "dedupe").unwrap();
        let ids = out
            .output
            .column_by_name(schema::CERTIFICATE_ID)
            .unwrap()
            .as_string::<i32>();
        let prev = out
            .output
            .column_by_name("previous_certificate_id")
            .unwrap()
            .as_string::<i32>();
        let kept = (0..ids.len())
            .map(|i| {
                (
                    ids.value(i).to_owned(),
                    (!prev.is_null(i)).then(|| prev.value(i).to_owned()),
                )
            })
            .collect();
        (
            kept,
            ids_and_reasons(&out).1.into_iter().map(|r| r.0).collect(),
        )
    }

    fn ev(kind: EventKind, pre: &str, dose: i64) -> (EventKind, String) {
        (kind, event(pre, dose, |_| {}))
    }

    fn id(n: u64) -> String {
        format!("1{n:012}")
    }

    #[test]
    fn every_transition_and_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let mut d =
            Dedupe::open(dir.path(), &toml::from_str("correction_limit = 2").unwrap()).unwrap();
        let (kept, refused) = run(
            &mut d,
            &[
                ev(CertifyV1, "A", 1),      // id 1
                ev(Update, "A", 1),         // id 2 replaces 1
                ev(Update, "A", 1),         // id 3 replaces 2 (2nd correction)
                ev(Update, "A", 1),         // refused: limit 2
                ev(Update, "B", 1),         // refused: unknown
                ev(Revoke, "A", 1),         // revokes 3
                ev(Revoke, "A", 1),         // refused: already revoked
                ev(CertifyV1, "A", 1),      // id 4: a revoked dose can be certified again
                ev(CertifyV1, "A", 1),      // duplicate of 4
                ev(Suspend, "A", 1),        // suspends 4
                ev(Update, "A", 1),         // refused: suspended
                ev(LiftSuspension, "A", 1), // lifts 4
                ev(LiftSuspension, "A", 1), // refused: not suspended
                ev(Suspend, "C", 1),        // refused: unknown
            ],
            0,
        );
        assert_eq!(
            kept,
            vec![
                (id(1), None),
                (id(2), Some(id(1))),
                (id(3), Some(id(2))),
                (id(3), None),
                (id(4), None),
                (id(4), None),
                (id(4), None),
            ]
        );
        assert_eq!(
            refused,
            vec![
                "correction_limit",
                "unknown_certificate",
                "unknown_certificate",
                "duplicate",
                "suspended",
                "not_suspended",
                "unknown_certificate"
            ]
        );
    }

    /// A re-issue replaces the dose's current certificate without using up a correction, and
    /// only if the certificate it was selected as is still the current one.
    #[test]
    fn reissues_replace_only_the_current_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut d =
            Dedupe::open(dir.path(), &toml::from_str("correction_limit = 1").unwrap()).unwrap();
        let (kept, refused) = run(
            &mut d,
            &[
                ev(CertifyV1, "A", 1),       // id 1
                ev(Reissue, "A", 1),         // id 2 replaces 1
                ev(ReissueRevoking, "A", 1), // id 3 replaces 2
                ev(Update, "A", 1),          // id 4: re-issues used no correction
                ev(Reissue, "B", 1),         // refused: unknown
                ev(Suspend, "A", 1),         // suspends 4
                ev(Reissue, "A", 1),         // refused: suspended
            ],
            0,
        );
        assert_eq!(
            kept,
            vec![
                (id(1), None),
                (id(2), Some(id(1))),
                (id(3), Some(id(2))),
                (id(4), Some(id(3))),
                (id(4), None),
            ]
        );
        assert_eq!(refused, vec!["unknown_certificate", "suspended"]);

        // Selected as id 4 (current once lifted) and as id 1 (replaced long ago).
        run(&mut d, &[ev(LiftSuspension, "A", 1)], 10);
        let refs = [
            (Reissue, event("A", 1, |_| {})),
            (Reissue, event("A", 1, |_| {})),
        ];
        let refs: Vec<(EventKind, &str)> = refs.iter().map(|(k, l)| (*k, l.as_str())).collect();
        let batch = batch_of_kinds(&refs, 20);
        let mut fields = batch.schema().fields().to_vec();
        fields.push(std::sync::Arc::new(
            divoc_model::columns::REISSUE_OF.field(),
        ));
        let mut cols = batch.columns().to_vec();
        cols.push(std::sync::Arc::new(arrow::array::StringArray::from(vec![
            id(1),
            id(4),
        ])));
        let batch = arrow::record_batch::RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
            cols,
        )
        .unwrap();
        let out = d.process(batch, "dedupe").unwrap();
        let (ids, reasons) = ids_and_reasons(&out);
        assert_eq!(
            ids,
            vec![id(5)],
            "the one selected as the current certificate"
        );
        assert_eq!(reasons, vec![("superseded".to_owned(), Some(id(4)))]);
    }

    /// A program's own correction limit applies to its certificates only.
    #[test]
    fn programs_have_their_own_correction_limit() {
        let dir = tempfile::tempdir().unwrap();
        let c: DedupeConfig = toml::from_str(
            "correction_limit = 5\nprograms = [{ id = \"C19\", correction_limit = 1 }]",
        )
        .unwrap();
        let mut d = Dedupe::open(dir.path(), &c).unwrap();
        let other = |k| (k, event("B", 1, |v| v["programId"] = "MMR".into()));
        let (_, refused) = run(
            &mut d,
            &[
                ev(CertifyV1, "A", 1),
                ev(Update, "A", 1),
                ev(Update, "A", 1), // C19: the second correction is one too many
                other(CertifyV1),
                other(Update),
                other(Update), // MMR: the node's limit (5)
            ],
            0,
        );
        assert_eq!(refused, vec!["correction_limit"]);
        let twice: Result<DedupeConfig, _> =
            toml::from_str("programs = [{ id = \"X\", correction_limit = 1 }, { id = \"X\", correction_limit = 2 }]");
        let issue = twice
            .unwrap()
            .check(&CheckContext {
                config_dir: std::path::Path::new("."),
            })
            .unwrap_err();
        assert_eq!(issue.key, "programs[1].id");
    }

    /// A suspension ends by itself after its last day: then the certificate takes an update.
    #[test]
    fn a_suspension_lifts_itself_after_its_last_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
        let suspend = |until: &str| {
            let until = until.to_owned();
            (
                Suspend,
                event("A", 1, move |v| v["suspendUntil"] = until.into()),
            )
        };
        // Test events are ingested on 2022-06-01.
        let (kept, refused) = run(
            &mut d,
            &[
                ev(CertifyV1, "A", 1),
                suspend("2022-06-01"),
                ev(Update, "A", 1),
                suspend("2022-05-31"),
                ev(Update, "A", 1),
            ],
            0,
        );
        assert_eq!(
            refused,
            vec!["suspended"],
            "still suspended on its last day"
        );
        assert_eq!(
            kept.last().unwrap().1,
            Some(id(1)),
            "lifted after its last day"
        );
    }

    /// A crash after the state was written but before the epoch's checkpoint: `restore` rolls the
    /// state back, and the replayed epoch (the same batches) gets exactly the same outcome.
    #[test]
    fn an_uncommitted_epoch_is_rolled_back_and_replays_identically() {
        let dir = tempfile::tempdir().unwrap();
        let epoch1 = vec![ev(CertifyV1, "A", 1), ev(CertifyV1, "B", 1)];
        let epoch2a = vec![ev(Update, "A", 1), ev(Revoke, "B", 1)];
        let epoch2b = vec![
            ev(Revoke, "A", 1),
            ev(CertifyV1, "B", 1),
            ev(CertifyV1, "C", 1),
        ];
        let first;
        {
            let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
            d.restore(0).unwrap();
            run(&mut d, &epoch1, 0);
            d.on_barrier(1).unwrap();
            first = (run(&mut d, &epoch2a, 10), run(&mut d, &epoch2b, 20));
            d.on_barrier(2).unwrap();
            // Checkpoint 2 never stored: the process dies here.
        }
        let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
        d.restore(1).unwrap();
        let again = (run(&mut d, &epoch2a, 10), run(&mut d, &epoch2b, 20));
        assert_eq!(again, first);
        assert_eq!(
            first.1 .0,
            vec![(id(3), None), (id(4), None), (id(5), None)],
            "A's update (id 3) revoked, B re-certified (4), C new (5)"
        );
        d.on_barrier(2).unwrap();
        // Committed epochs are never rolled back.
        drop(d);
        let mut d = Dedupe::open(dir.path(), &cfg()).unwrap();
        d.restore(2).unwrap();
        assert_eq!(
            run(&mut d, &[ev(CertifyV1, "C", 1)], 30).1,
            vec!["duplicate"]
        );
    }
}

mod reconciliation {
    use super::*;
    use crate::testutil::batch_of_kinds;
    use divoc_model::event::EventKind::CertifyV1;

    fn with_view(pre: &str, dose: i64, earlier: serde_json::Value) -> String {
        event(pre, dose, move |v| {
            v["meta"] = serde_json::json!({ "vaccinations": earlier })
        })
    }

    fn outcome(out: &Processed) -> Vec<(String, String, String, String)> {
        let b = &out.output;
        let s = |n: &str, i: usize| {
            let c = b.column_by_name(n).unwrap().as_string::<i32>();
            if c.is_null(i) {
                String::new()
            } else {
                c.value(i).to_owned()
            }
        };
        (0..b.num_rows())
            .map(|i| {
                (
                    s("event_kind", i),
                    s("certificate_id", i),
                    s("previous_certificate_id", i),
                    s("vaccine_batch", i),
                )
            })
            .collect()
    }

    #[test]
    fn exactly_the_doses_that_differ_get_an_update() {
        let dir = tempfile::tempdir().unwrap();
        let c: DedupeConfig = toml::from_str("reconcile = true").unwrap();
        let mut d = Dedupe::open(dir.path(), &c).unwrap();
        let first = [
            event("A", 1, |_| {}),
            event("A", 2, |_| {}),
            event("B", 1, |_| {}),
        ];
        let refs: Vec<_> = first.iter().map(|l| (CertifyV1, l.as_str())).collect();
        d.process(batch_of_kinds(&refs, 0), "dedupe").unwrap();
        d.on_barrier(1).unwrap();

        let same = serde_json::json!({"dose": 1, "name": "Covishield", "batch": "B1",
            "manufacturer": "Serum Institute of India", "date": "2022-05-01"});
        let other_batch = serde_json::json!({"dose": 1, "name": "Covishield", "batch": "B1-FIXED",
            "manufacturer": "Serum Institute of India", "date": "2022-05-01"});
        let other_date = serde_json::json!({"dose": 2, "name": "Covishield", "batch": "B1",
            "manufacturer": "Serum Institute of India", "date": "2022-05-02"});
        let second = [
            // A's dose 3 says dose 1 had another batch and dose 2 another date: two updates.
            with_view("A", 3, serde_json::json!([other_batch, other_date])),
            // B's dose 2 agrees with the stored dose 1 (same calendar day, other time): none.
            with_view("B", 2, serde_json::json!([same])),
            // C has no stored doses: nothing to reconcile.
            with_view("C", 2, serde_json::json!([other_batch])),
        ];
        let refs: Vec<_> = second.iter().map(|l| (CertifyV1, l.as_str())).collect();
        let out = d.process(batch_of_kinds(&refs, 10), "dedupe").unwrap();
        let rows = outcome(&out);
        let id = |n: u64| format!("1{n:012}");
        // Ids follow processing order (A's updates right after A's request); the update rows
        // follow the batch's own rows.
        assert_eq!(
            rows,
            vec![
                ("certify_v1".into(), id(4), String::new(), "B1".into()),
                ("certify_v1".into(), id(7), String::new(), "B1".into()),
                ("certify_v1".into(), id(8), String::new(), "B1".into()),
                ("update".into(), id(5), id(1), "B1-FIXED".into()),
                ("update".into(), id(6), id(2), "B1".into()),
            ]
        );
        let date = out
            .output
            .column_by_name("vaccination_date")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .value(4);
        assert_eq!(
            date.div_euclid(86_400_000),
            19_114,
            "dose 2 moved to 2022-05-02"
        );
        // The corrected doses are stored: the same view again changes nothing.
        let again = [with_view(
            "A",
            4,
            serde_json::json!([other_batch, other_date]),
        )];
        let refs: Vec<_> = again.iter().map(|l| (CertifyV1, l.as_str())).collect();
        let out = d.process(batch_of_kinds(&refs, 20), "dedupe").unwrap();
        assert_eq!(outcome(&out).len(), 1);
    }
}
