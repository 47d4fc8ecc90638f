//! Hostile bulk input through the file source: every bad record gets its reason, nothing panics,
//! and every valid record is published.

mod common;

use common::*;

#[test]
fn hostile_ndjson_lines_each_get_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    let good = |pre: &str, name: &str| {
        serde_json::json!({"preEnrollmentCode": pre, "recipient": {"name": name, "age": "30"},
            "vaccination": {"name": "Covishield", "date": "2021-05-01T00:00:00Z", "dose": 1, "totalDoses": 2}})
        .to_string()
    };
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&good("z", "Z")).unwrap();
        f(&mut v);
        v.to_string()
    };
    let mut lines: Vec<(Vec<u8>, Option<&str>)> = vec![
        (good("g1", "O'Brien \"Bob\" \\ back").into_bytes(), None),
        (good("g2", "முருகன் ਗੁਰਪ੍ਰੀਤ اردو").into_bytes(), None),
        (
            b"{\"preEnrollmentCode\": \"trunc".to_vec(),
            Some("malformed_json"),
        ),
        (b"null".to_vec(), Some("malformed_json")),
        (b"\"just a string\"".to_vec(), Some("malformed_json")),
        (vec![b'{', 0xff, 0xfe, b'}'], Some("malformed_json")),
        (
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            Some("malformed_json"),
        ),
        (
            format!("{{\"a\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes(),
            Some("missing_field"),
        ),
        (
            with(&|v| v["vaccination"]["dose"] = serde_json::json!([1])).into_bytes(),
            Some("invalid_field_type"),
        ),
        (
            with(&|v| v["recipient"]["name"] = serde_json::json!("bell\u{0007}")).into_bytes(),
            Some("invalid_characters"),
        ),
        (
            with(&|v| v["recipient"]["name"] = serde_json::json!("n".repeat(600_000))).into_bytes(),
            Some("field_too_long"),
        ),
        (
            format!("{{\"preEnrollmentCode\":\"{}\"}}", "p".repeat(2 << 20)).into_bytes(),
            Some("record_too_long"),
        ),
        (
            with(&|v| v["vaccination"]["date"] = serde_json::json!("2999-01-01")).into_bytes(),
            Some("future_date"),
        ),
        (
            with(&|v| v["vaccination"]["date"] = serde_json::json!("01/05/2021")).into_bytes(),
            Some("invalid_date"),
        ),
        (
            with(&|v| v["vaccination"]["name"] = serde_json::json!("Snake Oil")).into_bytes(),
            Some("unknown_vaccine"),
        ),
        (
            with(&|v| v["vaccination"]["dose"] = serde_json::json!(-1)).into_bytes(),
            Some("dose_out_of_range"),
        ),
        (
            with(&|v| v["vaccination"]["dose"] = serde_json::json!(i64::MAX)).into_bytes(),
            Some("dose_out_of_range"),
        ),
        (
            with(&|v| v["vaccination"]["dose"] = serde_json::json!(1e300)).into_bytes(),
            Some("invalid_field_type"),
        ),
        (
            with(&|v| v["recipient"]["age"] = serde_json::json!(-5)).into_bytes(),
            Some("invalid_age"),
        ),
        (good("g3", "Last Valid").into_bytes(), None),
    ];
    // A valid line that repeats g1's key is a duplicate.
    lines.push((good("g1", "Someone Else").into_bytes(), Some("duplicate")));
    let mut file = Vec::new();
    for (l, _) in &lines {
        file.extend_from_slice(l);
        file.extend_from_slice(b"\r\n\n");
    }
    std::fs::write(input.join("hostile.ndjson"), &file).unwrap();

    let config = default_config().display().to_string();
    let out = divoc(
        &with_sets(&["run", "--config", &config], &dir_sets(tmp.path(), &input))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = read_output(&tmp.path().join("out"), "accepted");
    let dead = read_output(&tmp.path().join("out"), "dead-letter");
    let mut pres = string_column(&accepted, "pre_enrollment_code");
    pres.sort();
    assert_eq!(pres, vec!["g1", "g2", "g3"]);
    let names = string_column(&accepted, "recipient_name");
    assert!(names.contains(&"O'Brien \"Bob\" \\ back".to_string()));
    let mut by_offset: Vec<(u64, String)> = origins(&dead)
        .into_iter()
        .map(|(_, o)| o)
        .zip(string_column(&dead, "reason_code"))
        .collect();
    by_offset.sort();
    let got: Vec<String> = by_offset.into_iter().map(|(_, c)| c).collect();
    let want: Vec<&str> = lines.iter().filter_map(|(_, r)| *r).collect();
    assert_eq!(got, want, "one reason per bad line, in input order");
    for d in string_column(&dead, "reason_detail") {
        assert!(
            !d.is_empty() && d.len() < 400,
            "details are short and present: {d}"
        );
    }
}
