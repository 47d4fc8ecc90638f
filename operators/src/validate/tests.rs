use super::*;
use crate::testutil::{batch_from_json, event};
use arrow::array::AsArray;
use std::path::Path;

fn op() -> Validate {
    let cat = VaccineCatalogue::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml"),
    )
    .unwrap();
    let cfg: ValidateConfig = toml::from_str("catalogue = 'x'").unwrap();
    Validate::new(cfg, cat).unwrap()
}

fn reasons(lines: &[String]) -> (usize, Vec<(String, String)>) {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = op().process(batch_from_json(&refs), "validate").unwrap();
    let mut rs = Vec::new();
    if let Some(d) = out.dead_letters {
        let codes = d.column_by_name("reason_code").unwrap().as_string::<i32>();
        let details = d
            .column_by_name("reason_detail")
            .unwrap()
            .as_string::<i32>();
        for i in 0..d.num_rows() {
            rs.push((codes.value(i).to_owned(), details.value(i).to_owned()));
        }
    }
    (out.output.num_rows(), rs)
}

fn one_reason(e: String) -> String {
    let (ok, rs) = reasons(&[e]);
    assert_eq!(ok, 0, "row must be rejected");
    assert_eq!(rs.len(), 1);
    rs[0].0.clone()
}

#[test]
fn valid_events_pass_untouched() {
    let (ok, rs) = reasons(&[event("1", 1, |_| {}), event("2", 2, |_| {})]);
    assert_eq!((ok, rs.len()), (2, 0));
}

#[test]
fn each_rule_yields_its_reason() {
    use serde_json::json;
    type Patch = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Patch)> = vec![
        (
            "missing_field",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("preEnrollmentCode");
            }),
        ),
        (
            "missing_field",
            Box::new(|v| {
                v["vaccination"].as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "missing_field",
            Box::new(|v| {
                v["vaccination"].as_object_mut().unwrap().remove("dose");
            }),
        ),
        (
            "missing_age_and_dob",
            Box::new(|v| {
                let r = v["recipient"].as_object_mut().unwrap();
                r.remove("age");
                r.remove("dob");
            }),
        ),
        (
            "field_too_long",
            Box::new(|v| v["recipient"]["name"] = json!("x".repeat(2000))),
        ),
        (
            "invalid_characters",
            Box::new(|v| v["recipient"]["name"] = json!("Asha\u{0000}Devi")),
        ),
        (
            "invalid_age",
            Box::new(|v| v["recipient"]["age"] = json!("forty")),
        ),
        (
            "dose_out_of_range",
            Box::new(|v| v["vaccination"]["dose"] = json!(0)),
        ),
        (
            "dose_out_of_range",
            Box::new(|v| v["vaccination"]["dose"] = json!(3)),
        ),
        (
            "future_date",
            Box::new(|v| v["vaccination"]["date"] = json!("2030-01-01T00:00:00Z")),
        ),
        (
            "future_date",
            Box::new(|v| v["recipient"]["dob"] = json!("2029-01-01")),
        ),
        (
            "dob_after_vaccination",
            Box::new(|v| v["recipient"]["dob"] = json!("2022-05-02")),
        ),
        (
            "date_out_of_range",
            Box::new(|v| v["recipient"]["dob"] = json!("1850-01-01")),
        ),
        (
            "unknown_vaccine",
            Box::new(|v| v["vaccination"]["name"] = json!("Snake Oil")),
        ),
    ];
    for (want, patch) in cases {
        assert_eq!(one_reason(event("9", 1, patch)), want);
    }
}

#[test]
fn quotes_and_scripts_are_fine_and_mixed_batches_split() {
    let lines = vec![
        event("1", 1, |v| {
            v["recipient"]["name"] = serde_json::json!("O'Brien \"Bob\" अनिल")
        }),
        event("2", 1, |v| {
            v["vaccination"]["name"] = serde_json::json!("Snake Oil")
        }),
        event("3", 1, |v| {
            v["recipient"]["name"] = serde_json::json!("முருகன்")
        }),
    ];
    let (ok, rs) = reasons(&lines);
    assert_eq!(ok, 2);
    assert_eq!(rs.len(), 1);
    assert!(
        rs[0].1.contains("Snake Oil"),
        "detail names the value: {}",
        rs[0].1
    );
}

#[test]
fn config_check_names_bad_keys() {
    let ctx = CheckContext {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
    };
    let bad: ValidateConfig = toml::from_str("catalogue = 'nope.toml'").unwrap();
    assert_eq!(bad.check(&ctx).unwrap_err().key, "catalogue");
    let good: ValidateConfig = toml::from_str("catalogue = '../config/vaccines.toml'").unwrap();
    good.check(&ctx).unwrap();
    let bad: ValidateConfig =
        toml::from_str("catalogue = '../config/vaccines.toml'\nmax_doses = 0").unwrap();
    assert_eq!(bad.check(&ctx).unwrap_err().key, "max_doses");
}

#[test]
fn whitespace_controls_become_one_space_and_other_controls_still_dead_letter() {
    assert_eq!(
        normalize_whitespace("Asha\tDevi").as_deref(),
        Some("Asha Devi")
    );
    assert_eq!(
        normalize_whitespace("Asha \r\n  Devi\n").as_deref(),
        Some("Asha Devi ")
    );
    assert_eq!(
        normalize_whitespace("Asha  Devi"),
        None,
        "plain spaces are left alone"
    );
    assert_eq!(normalize_whitespace("A\u{2028}B").as_deref(), Some("A B"));

    let tabbed = event("1", 1, |v| {
        v["recipient"]["name"] = serde_json::json!("Ravi\tKumar");
        v["facility"]["address"]["addressLine1"] = serde_json::json!("12 Main Rd\r\nWard 3");
    });
    let belled = event("2", 1, |v| {
        v["recipient"]["name"] = serde_json::json!("Ravi\u{7}Kumar")
    });
    let counter = prometheus::IntCounter::new("n", "n").unwrap();
    let mut v = op().with_normalized_counter(counter.clone());
    let out = v
        .process(
            batch_from_json(&[tabbed.as_str(), belled.as_str()]),
            "validate",
        )
        .unwrap();
    assert_eq!(out.output.num_rows(), 1);
    let names = out
        .output
        .column_by_name(schema::RECIPIENT_NAME)
        .unwrap()
        .as_string::<i32>();
    assert_eq!(names.value(0), "Ravi Kumar");
    let line = out
        .output
        .column_by_name("facility_address_line1")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(line.value(0), "12 Main Rd Ward 3");
    assert_eq!(counter.get(), 2, "two fields normalised");
    let dead = out.dead_letters.expect("the bell is refused");
    assert_eq!(
        dead.column_by_name("reason_code")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "invalid_characters"
    );
}
