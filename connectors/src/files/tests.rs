use super::*;
use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;

fn cfg(path: &Path) -> FileSourceConfig {
    toml::from_str::<FileSourceConfig>(&format!("path = {:?}", path.display().to_string())).unwrap()
}

const GOOD: &str = r#"{"preEnrollmentCode":"1","recipient":{"name":"A","age":"30"},"vaccination":{"name":"Covishield","date":"2021-05-01","dose":1,"totalDoses":2}}"#;

/// Drains a source into (events, dead letters) with batches of `step` records.
fn drain(src: &mut FileSource, step: usize) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
    let (mut ev, mut dl) = (vec![], vec![]);
    loop {
        match src.poll(step).unwrap() {
            SourcePoll::Batch {
                events,
                dead_letters,
                records,
            } => {
                assert!(records as usize <= step);
                ev.extend(events);
                dl.extend(dead_letters);
            }
            SourcePoll::Finished => return (ev, dl),
            SourcePoll::Idle => panic!("files never idle"),
        }
    }
}

fn codes(dl: &[RecordBatch]) -> Vec<String> {
    dl.iter()
        .flat_map(|b| {
            let c = b
                .column_by_name("reason_code")
                .unwrap()
                .as_string::<i32>()
                .clone();
            (0..c.len()).map(move |i| c.value(i).to_owned())
        })
        .collect()
}

fn offsets(ev: &[RecordBatch]) -> Vec<u64> {
    ev.iter()
        .flat_map(|b| {
            b.column_by_name("source_offset")
                .unwrap()
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn ndjson_good_bad_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(r#"{{"preEnrollmentCode":"{}"}}"#, "x".repeat(5000));
    let text = [
        GOOD,
        "{not json",
        r#"{"vaccination":{"dose":"one"}}"#,
        "",
        r#"{"recipient":{"dob":"31-02-1990"}}"#,
        &long,
        "[1,2]",
        GOOD,
    ]
    .join("\n");
    std::fs::write(dir.path().join("a.ndjson"), &text).unwrap();
    std::fs::write(dir.path().join("b.ndjson"), format!("{GOOD}\n")).unwrap();
    let mut c = cfg(dir.path());
    c.max_record_bytes = 2048;
    let mut src = FileSource::new("in", dir.path().to_path_buf(), c.clone()).unwrap();
    src.resume(None).unwrap();
    let (ev, dl) = drain(&mut src, 3);
    assert_eq!(ev.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    assert_eq!(
        codes(&dl),
        vec![
            "malformed_json",
            "invalid_field_type",
            "invalid_date",
            "record_too_long",
            "malformed_json"
        ]
    );

    // Resume from a mid-file position replays exactly the rest.
    let mut src = FileSource::new("in", dir.path().to_path_buf(), c.clone()).unwrap();
    src.resume(None).unwrap();
    let _ = src.poll(2).unwrap();
    let pos = src.position();
    let (rest_ev, rest_dl) = drain(&mut src, 100);
    let mut again = FileSource::new("in", dir.path().to_path_buf(), c).unwrap();
    again.resume(Some(&pos)).unwrap();
    let (ev2, dl2) = drain(&mut again, 1);
    assert_eq!(offsets(&rest_ev), offsets(&ev2));
    assert_eq!(codes(&rest_dl), codes(&dl2));
    assert_eq!(codes(&dl2).len(), 4);
}

#[test]
fn csv_rows_map_and_bad_rows_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bulk.csv");
    std::fs::write(
        &p,
        "preEnrollmentCode,recipientName,recipientAge,vaccinationName,vaccinationDate,vaccinationDose,vaccinationTotalDoses\n\
         1,\"Devi, \"\"Asha\"\"\",30,Covishield,2021-05-01,1,2\n\
         2,Ravi,40,Covishield,2021-05-01,x,2\n\
         3,Short\n\
         4,\"multi\nline\",50,Covaxin,2021-05-02,2,2\n",
    )
    .unwrap();
    let mut src = FileSource::new("in", p.clone(), cfg(&p)).unwrap();
    src.resume(None).unwrap();
    let (ev, dl) = drain(&mut src, 10);
    assert_eq!(codes(&dl), vec!["invalid_field_type", "malformed_csv"]);
    let names: Vec<String> = ev
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name("recipient_name")
                .unwrap()
                .as_string::<i32>()
                .clone();
            (0..c.len()).map(move |i| c.value(i).to_owned())
        })
        .collect();
    assert_eq!(names, vec!["Devi, \"Asha\"", "multi\nline"]);
    let kinds = ev[0]
        .column_by_name("event_kind")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_owned();
    assert_eq!(kinds, "bulk_csv");

    // Resume in the middle of the CSV (after the first record).
    let mut src = FileSource::new("in", p.clone(), cfg(&p)).unwrap();
    src.resume(None).unwrap();
    let _ = src.poll(1).unwrap();
    let pos = src.position();
    let mut again = FileSource::new("in", p.clone(), cfg(&p)).unwrap();
    again.resume(Some(&pos)).unwrap();
    let (ev2, dl2) = drain(&mut again, 10);
    assert_eq!(ev2.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(dl2.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
}

#[test]
fn bad_csv_header_dead_letters_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "preEnrollmentCode,whoKnows\n1,2\n3,4\n").unwrap();
    let mut src = FileSource::new("in", p.clone(), cfg(&p)).unwrap();
    src.resume(None).unwrap();
    let (ev, dl) = drain(&mut src, 10);
    assert!(ev.is_empty());
    assert_eq!(codes(&dl), vec!["malformed_csv", "malformed_csv"]);
}

#[test]
fn check_names_missing_path() {
    let c = cfg(Path::new("/definitely/not/here"));
    let issue = c
        .check(&CheckContext {
            config_dir: Path::new("/"),
        })
        .unwrap_err();
    assert_eq!(issue.key, "path");
}

#[test]
fn lifecycle_files_carry_their_event_kind_and_suspension_end() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("suspend.ndjson");
    std::fs::write(
        &p,
        concat!(
            r#"{"preEnrollmentCode":"1","programId":"C19","vaccination":{"dose":1},"suspendUntil":"2030-01-31"}"#,
            "\n",
            r#"{"preEnrollmentCode":"2","vaccination":{"dose":2},"suspendUntil":"soon"}"#,
            "\n"
        ),
    )
    .unwrap();
    let mut c = cfg(&p);
    c.events = FileEvents::Suspend;
    let mut src = FileSource::new("in", p.clone(), c).unwrap();
    src.resume(None).unwrap();
    let (ev, dl) = drain(&mut src, 10);
    assert_eq!(
        codes(&dl),
        vec!["invalid_date"],
        "a bad suspendUntil is refused"
    );
    let b = &ev[0];
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column_by_name("event_kind")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "suspend"
    );
    let until = b
        .column_by_name("suspend_until")
        .unwrap()
        .as_primitive::<arrow::datatypes::Date32Type>()
        .value(0);
    assert_eq!(until, 21_945, "2030-01-31");

    let csv: Result<FileSourceConfig, _> = toml::from_str(&format!(
        "path = {:?}\nformat = \"csv\"\nevents = \"revoke\"",
        p.display().to_string()
    ));
    let issue = csv
        .unwrap()
        .check(&CheckContext {
            config_dir: Path::new("."),
        })
        .unwrap_err();
    assert_eq!(issue.key, "events");
}
