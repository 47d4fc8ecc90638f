use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate};
use divoc_model::event::{
    csv_header_index, parse_request_json, request_from_csv_row, CertifyRequest, BULK_CSV_COLUMNS,
};

use super::vaccines::icd11_for;
use super::*;

/// 2024-06-01T00:00:00Z: well after the vaccination window.
const NOW_MS: i64 = 1_717_200_000_000;

fn cfg(count: u64, seed: u64, format: GenFormat) -> GenConfig {
    GenConfig {
        count,
        seed,
        invalid_share: 0.2,
        duplicate_share: 0.1,
        format,
        now_ms: NOW_MS,
    }
}

fn generate(cfg: &GenConfig) -> (Vec<u8>, GenSummary) {
    let mut out = Vec::new();
    let summary = write_events(cfg, &mut out).unwrap();
    (out, summary)
}

fn events(cfg: &GenConfig) -> Vec<GeneratedEvent> {
    let mut gen = EventGenerator::new(cfg);
    (0..cfg.count).map(|_| gen.next_event()).collect()
}

/// Every defect an independent, simple reading of the validation rules finds in a request.
fn defects(req: &CertifyRequest) -> Vec<&'static str> {
    let mut found = Vec::new();
    let rec = req.recipient.clone().unwrap_or_default();
    let vac = req.vaccination.clone().unwrap_or_default();
    if req.pre_enrollment_code.is_none() || vac.name.is_none() {
        found.push("missing_field");
    }
    if rec.dob.is_none() && rec.age.is_none() {
        found.push("missing_age_and_dob");
    }
    let too_long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.chars().count() > 500);
    if too_long(&rec.name) || too_long(&vac.name) || too_long(&req.pre_enrollment_code) {
        found.push("field_too_long");
    }
    if vac.name.as_deref().is_some_and(|n| icd11_for(n).is_none()) {
        found.push("unknown_vaccine");
    }
    let dob = rec
        .dob
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"));
    let date = vac.date.as_deref().map(DateTime::parse_from_rfc3339);
    if matches!(dob, Some(Err(_))) || matches!(date, Some(Err(_))) {
        found.push("invalid_date");
    }
    let (dose, total) = (vac.dose.unwrap_or(0), vac.total_doses.unwrap_or(3));
    if dose < 1 || dose > total {
        found.push("dose_out_of_range");
    }
    if let Some(Ok(d)) = &date {
        if d.timestamp_millis() > NOW_MS {
            found.push("future_date");
        }
        if let Some(Ok(b)) = &dob {
            if *b > d.date_naive() {
                found.push("dob_after_vaccination");
            }
        }
    }
    found
}

/// Parses an NDJSON line, or reports the parse-level reason.
fn parse_json(line: &str) -> Result<CertifyRequest, &'static str> {
    parse_request_json(line).map_err(|_| {
        if serde_json::from_str::<serde_json::Value>(line).is_ok() {
            "invalid_field_type"
        } else {
            "malformed_json"
        }
    })
}

fn key(req: &CertifyRequest) -> (String, i64) {
    (
        req.pre_enrollment_code.clone().unwrap(),
        req.vaccination.as_ref().unwrap().dose.unwrap(),
    )
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for format in [GenFormat::Ndjson, GenFormat::Csv] {
        let (a, sa) = generate(&cfg(3000, 7, format));
        let (b, sb) = generate(&cfg(3000, 7, format));
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        let (c, _) = generate(&cfg(3000, 8, format));
        assert_ne!(a, c);
    }
    // The line API and write_events agree.
    let c = cfg(500, 7, GenFormat::Ndjson);
    let joined: String = events(&c).into_iter().map(|e| e.line + "\n").collect();
    assert_eq!(joined.into_bytes(), generate(&c).0);
}

#[test]
fn summary_adds_up_and_every_reason_occurs() {
    for format in [GenFormat::Ndjson, GenFormat::Csv] {
        let c = cfg(20_000, 11, format);
        let (out, s) = generate(&c);
        assert_eq!(s.total, 20_000);
        assert_eq!(s.valid_unique + s.invalid + s.duplicates, s.total);
        assert_eq!(s.invalid_by_reason.values().sum::<u64>(), s.invalid);
        let expected_reasons = REASON_CODES
            .iter()
            .filter(|r| format == GenFormat::Ndjson || **r != "malformed_json");
        for r in expected_reasons {
            assert!(
                s.invalid_by_reason.get(*r).copied().unwrap_or(0) > 50,
                "{format:?} {r}: {s:?}"
            );
        }
        assert!(s.invalid > 3000 && s.invalid < 5000, "{s:?}");
        assert!(s.duplicates > 1500 && s.duplicates < 2500, "{s:?}");
        let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(lines, s.total + u64::from(format == GenFormat::Csv));
    }
}

#[test]
fn ndjson_events_match_their_expected_outcome() {
    let c = cfg(30_000, 5, GenFormat::Ndjson);
    let mut valid_keys = HashSet::new();
    let mut invalid_codes = HashSet::new();
    let mut by_code: HashMap<String, (CertifyRequest, String)> = HashMap::new();
    for e in events(&c) {
        assert!(!e.line.contains('\n'));
        match e.expected {
            Expected::Invalid(reason) => {
                let found = match parse_json(&e.line) {
                    Err(r) => vec![r],
                    Ok(req) => {
                        if let Some(code) = &req.pre_enrollment_code {
                            invalid_codes.insert(code.clone());
                        }
                        defects(&req)
                    }
                };
                assert_eq!(found, vec![reason], "{}", e.line);
            }
            Expected::Valid | Expected::Duplicate => {
                let req = parse_request_json(&e.line).unwrap();
                assert_eq!(defects(&req), Vec::<&str>::new(), "{}", e.line);
                let vac = req.vaccination.as_ref().unwrap();
                assert!(vac.dose.unwrap() >= 1 && vac.dose <= vac.total_doses);
                let t = DateTime::parse_from_rfc3339(vac.date.as_deref().unwrap())
                    .unwrap()
                    .timestamp_millis();
                assert!((WINDOW_START_MS..WINDOW_END_MS).contains(&t));
                let code = req.pre_enrollment_code.clone().unwrap();
                assert_eq!(code.len(), 12);
                assert!(code.bytes().all(|b| b.is_ascii_digit()));
                let contact = &req.recipient.as_ref().unwrap().contact.as_ref().unwrap()[0];
                assert!(
                    contact.starts_with("tel:+91") && contact.len() == 17,
                    "{contact}"
                );
                let first_time = valid_keys.insert(key(&req));
                assert_eq!(first_time, e.expected == Expected::Valid, "{}", e.line);
                // One coherent recipient and vaccine per pre-enrollment code.
                let product = vac.name.clone().unwrap();
                if let Some((earlier, earlier_product)) = by_code.get(&code) {
                    let (a, b) = (
                        earlier.recipient.as_ref().unwrap(),
                        req.recipient.as_ref().unwrap(),
                    );
                    assert_eq!(
                        (&a.name, &a.dob, &a.identity, &a.address),
                        (&b.name, &b.dob, &b.identity, &b.address)
                    );
                    assert_eq!(earlier_product, &product);
                } else {
                    by_code.insert(code, (req, product));
                }
            }
        }
    }
    assert!(invalid_codes.iter().all(|c| !by_code.contains_key(c)));
    let multi_dose = valid_keys.iter().filter(|(_, d)| *d > 1).count();
    assert!(multi_dose > 2000, "{multi_dose}");
}

#[test]
fn csv_parses_with_bulk_header_and_rows_match_expectations() {
    let c = cfg(20_000, 3, GenFormat::Csv);
    let (out, summary) = generate(&c);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), BULK_CSV_COLUMNS);
    let index = csv_header_index(&header).unwrap();
    let mut gen = EventGenerator::new(&c);
    let (mut valid, mut keys) = (0, HashSet::new());
    for row in reader.records() {
        let row = row.unwrap();
        assert_eq!(row.len(), 28);
        let expected = gen.next_event().expected;
        let found = match request_from_csv_row(&index, &row) {
            Err(e) => {
                assert!(e.column == "vaccinationDose" || e.column == "vaccinationTotalDoses");
                vec!["invalid_field_type"]
            }
            Ok(req) => {
                if expected != Expected::Invalid("missing_field") {
                    let k = key(&req);
                    if expected == Expected::Valid {
                        assert!(keys.insert(k));
                    } else if expected == Expected::Duplicate {
                        assert!(keys.contains(&k));
                    }
                }
                defects(&req)
            }
        };
        match expected {
            Expected::Invalid(reason) => assert_eq!(found, vec![reason], "{row:?}"),
            _ => {
                assert!(found.is_empty(), "{found:?} {row:?}");
                valid += 1;
            }
        }
    }
    assert_eq!(valid, summary.valid_unique + summary.duplicates);
}

#[test]
fn names_cover_scripts_and_awkward_characters() {
    let mut c = cfg(20_000, 1, GenFormat::Ndjson);
    c.invalid_share = 0.0;
    let names: Vec<String> = events(&c)
        .iter()
        .map(|e| {
            parse_request_json(&e.line)
                .unwrap()
                .recipient
                .unwrap()
                .name
                .unwrap()
        })
        .collect();
    let has = |f: &dyn Fn(char) -> bool| names.iter().filter(|n| n.chars().any(f)).count();
    assert!(
        has(&|ch| ('\u{0900}'..='\u{097F}').contains(&ch)) > 100,
        "Devanagari"
    );
    assert!(
        has(&|ch| ('\u{0B80}'..='\u{0BFF}').contains(&ch)) > 50,
        "Tamil"
    );
    assert!(
        has(&|ch| ('\u{0980}'..='\u{09FF}').contains(&ch)) > 50,
        "Bengali"
    );
    assert!(
        has(&|ch| ('\u{0600}'..='\u{06FF}').contains(&ch)) > 20,
        "Arabic script"
    );
    assert!(has(&|ch| ch == '\'') > 20, "apostrophes");
    assert!(has(&|ch| ch == '"') > 20, "quotes");
    assert!(has(&|ch| ch == '-') > 20, "hyphens");
    let ascii = names.iter().filter(|n| n.is_ascii()).count();
    assert!(
        ascii > names.len() / 2 && ascii < names.len() * 95 / 100,
        "{ascii}"
    );
}

#[test]
fn every_catalogue_vaccine_and_dose_appears() {
    let mut c = cfg(50_000, 2, GenFormat::Ndjson);
    c.invalid_share = 0.0;
    let mut seen = HashSet::new();
    for e in events(&c) {
        let vac = parse_request_json(&e.line).unwrap().vaccination.unwrap();
        seen.insert((vac.name.unwrap(), vac.dose.unwrap()));
    }
    for p in vaccines::PRODUCTS.iter() {
        for d in 1..=i64::from(p.total_doses) {
            assert!(seen.contains(&(p.name.clone(), d)), "{} dose {d}", p.name);
        }
    }
}

#[test]
fn early_now_keeps_dates_in_the_past() {
    // "now" inside the window: valid dates stop at it, future_date lies beyond it.
    let now = 1_640_995_200_000; // 2022-01-01
    let c = GenConfig {
        now_ms: now,
        ..cfg(5000, 4, GenFormat::Ndjson)
    };
    for e in events(&c) {
        let Ok(req) = parse_request_json(&e.line) else {
            continue;
        };
        let Some(Ok(t)) = req
            .vaccination
            .and_then(|v| v.date)
            .map(|d| DateTime::parse_from_rfc3339(&d))
        else {
            continue;
        };
        assert_eq!(
            t.timestamp_millis() > now,
            e.expected == Expected::Invalid("future_date"),
            "{}",
            e.line
        );
    }
}

#[test]
fn shares_outside_range_are_clamped() {
    let c = GenConfig {
        invalid_share: f64::NAN,
        duplicate_share: 7.0,
        ..cfg(1000, 1, GenFormat::Ndjson)
    };
    let (_, s) = generate(&c);
    assert_eq!(s.invalid, 0);
    assert_eq!(s.valid_unique, 1, "only the first event can be new: {s:?}");
    assert_eq!(s.duplicates, 999);
}
