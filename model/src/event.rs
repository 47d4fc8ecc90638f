//! DIVOC certify request bodies (v1 and v3 share one shape) and the bulk CSV row.
//!
//! These types only carry what the registry sent; semantic rules live in the `validate` operator.
//! Unknown JSON fields are ignored (registries send extras), wrong types are errors that name the path.

use serde::{Deserialize, Deserializer, Serialize};

/// One element of the JSON array posted to `/divoc/api/v1/certify` or `/v3/certify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertifyRequest {
    pub pre_enrollment_code: Option<String>,
    pub program_id: Option<String>,
    pub enrollment_type: Option<String>,
    pub comorbidities: Option<Vec<String>>,
    pub recipient: Option<Recipient>,
    pub vaccination: Option<Vaccination>,
    pub vaccinator: Option<Vaccinator>,
    pub facility: Option<Facility>,
    /// Kept verbatim (as JSON text) so updates and reconciliation can read it later.
    pub meta: Option<serde_json::Value>,
    /// `suspend` events only: the last day of the suspension (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_until: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub name: Option<String>,
    pub gender: Option<String>,
    pub nationality: Option<String>,
    pub dob: Option<String>,
    /// DIVOC declares a string; registries also send numbers, which we keep as their decimal text.
    #[serde(default, deserialize_with = "string_or_number")]
    pub age: Option<String>,
    pub identity: Option<String>,
    pub contact: Option<Vec<String>>,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub district: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    /// Pincodes arrive as strings or numbers.
    #[serde(default, deserialize_with = "string_or_number")]
    pub pincode: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Vaccination {
    pub name: Option<String>,
    pub batch: Option<String>,
    pub manufacturer: Option<String>,
    pub date: Option<String>,
    pub effective_start: Option<String>,
    pub effective_until: Option<String>,
    pub dose: Option<i64>,
    pub total_doses: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Vaccinator {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Facility {
    pub name: Option<String>,
    pub address: Option<Address>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::S(s)) => Some(s),
        Some(Either::I(i)) => Some(i.to_string()),
        Some(Either::F(f)) => Some(f.to_string()),
    })
}

/// Which API shape an event came from; decides the credential flavour downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CertifyV1,
    CertifyV3,
    BulkCsv,
    /// A correction: a certify body that replaces the dose's certificate (`PUT .../certificate`).
    Update,
    Revoke,
    /// A revocation until a day (`suspend_until`), or until lifted.
    Suspend,
    LiftSuspension,
    /// A stored certificate signed again (new key, template or format) by `divoc reissue`; the
    /// one it replaces stays valid for verifiers, only downloads move to the new one.
    Reissue,
    /// As `Reissue`, and the replaced certificate is revoked (`--revoke-superseded`).
    ReissueRevoking,
}

/// What an event does to a dose's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Certify,
    Update,
    Revoke,
    Suspend,
    LiftSuspension,
    Reissue,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::CertifyV1,
        EventKind::CertifyV3,
        EventKind::BulkCsv,
        EventKind::Update,
        EventKind::Revoke,
        EventKind::Suspend,
        EventKind::LiftSuspension,
        EventKind::Reissue,
        EventKind::ReissueRevoking,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CertifyV1 => "certify_v1",
            EventKind::CertifyV3 => "certify_v3",
            EventKind::BulkCsv => "bulk_csv",
            EventKind::Update => "update",
            EventKind::Revoke => "revoke",
            EventKind::Suspend => "suspend",
            EventKind::LiftSuspension => "lift_suspension",
            EventKind::Reissue => "reissue",
            EventKind::ReissueRevoking => "reissue_revoking",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn action(self) -> Action {
        match self {
            EventKind::CertifyV1 | EventKind::CertifyV3 | EventKind::BulkCsv => Action::Certify,
            EventKind::Update => Action::Update,
            EventKind::Revoke => Action::Revoke,
            EventKind::Suspend => Action::Suspend,
            EventKind::LiftSuspension => Action::LiftSuspension,
            EventKind::Reissue | EventKind::ReissueRevoking => Action::Reissue,
        }
    }

    /// True when the event issues a (new) certificate to sign, render and count.
    pub fn issues_certificate(self) -> bool {
        matches!(
            self.action(),
            Action::Certify | Action::Update | Action::Reissue
        )
    }

    /// True when the event records a vaccination (or corrects one) rather than signing a stored
    /// one again: what the analytics count.
    pub fn records_vaccination(self) -> bool {
        matches!(self.action(), Action::Certify | Action::Update)
    }
}

/// Columns of DIVOC's bulk certify CSV, in its documented order.
pub const BULK_CSV_COLUMNS: [&str; 28] = [
    "preEnrollmentCode",
    "recipientName",
    "recipientMobileNumber",
    "recipientDOB",
    "recipientAge",
    "recipientGender",
    "recipientNationality",
    "recipientIdentity",
    "recipientAddressLine1",
    "recipientAddressLine2",
    "recipientDistrict",
    "recipientState",
    "recipientPincode",
    "vaccinationBatch",
    "vaccinationDate",
    "vaccinationDose",
    "vaccinationTotalDoses",
    "vaccinationEffectiveStart",
    "vaccinationEffectiveEnd",
    "vaccinationManufacturer",
    "vaccinationName",
    "vaccinatorName",
    "facilityName",
    "facilityAddressLine1",
    "facilityAddressLine2",
    "facilityDistrict",
    "facilityState",
    "facilityPincode",
];

/// Why a CSV row could not become a request.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRowError {
    pub column: &'static str,
    pub message: String,
}

/// Maps one bulk CSV row (already split, in `header` order) to a certify request.
///
/// Empty cells are absent values. Integer columns must hold integers.
pub fn request_from_csv_row(
    header_index: &[Option<usize>; 28],
    row: &csv::StringRecord,
) -> Result<CertifyRequest, CsvRowError> {
    let cell = |col: usize| -> Option<String> {
        header_index[col]
            .and_then(|i| row.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let int = |col: usize| -> Result<Option<i64>, CsvRowError> {
        match cell(col) {
            None => Ok(None),
            Some(s) => s.parse::<i64>().map(Some).map_err(|_| CsvRowError {
                column: BULK_CSV_COLUMNS[col],
                message: format!("expected an integer, got {:?}", truncate(&s, 40)),
            }),
        }
    };
    let contact = cell(2).map(|m| {
        if m.starts_with("tel:") {
            vec![m]
        } else {
            vec![format!("tel:{m}")]
        }
    });
    Ok(CertifyRequest {
        pre_enrollment_code: cell(0),
        program_id: None,
        enrollment_type: None,
        comorbidities: None,
        recipient: Some(Recipient {
            name: cell(1),
            contact,
            dob: cell(3),
            age: cell(4),
            gender: cell(5),
            nationality: cell(6),
            identity: cell(7),
            address: Some(Address {
                address_line1: cell(8),
                address_line2: cell(9),
                district: cell(10),
                state: cell(11),
                country: None,
                pincode: cell(12),
            }),
        }),
        vaccination: Some(Vaccination {
            batch: cell(13),
            date: cell(14),
            dose: int(15)?,
            total_doses: int(16)?,
            effective_start: cell(17),
            effective_until: cell(18),
            manufacturer: cell(19),
            name: cell(20),
        }),
        vaccinator: Some(Vaccinator { name: cell(21) }),
        facility: Some(Facility {
            name: cell(22),
            address: Some(Address {
                address_line1: cell(23),
                address_line2: cell(24),
                district: cell(25),
                state: cell(26),
                country: None,
                pincode: cell(27),
            }),
        }),
        meta: None,
        suspend_until: None,
    })
}

/// Resolves a CSV header to column positions. Unknown header names are an error naming them.
pub fn csv_header_index(header: &csv::StringRecord) -> Result<[Option<usize>; 28], String> {
    let mut index = [None; 28];
    let mut unknown = Vec::new();
    for (pos, name) in header.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        match BULK_CSV_COLUMNS.iter().position(|c| *c == name) {
            Some(col) => index[col] = Some(pos),
            None => unknown.push(truncate(name, 40)),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown CSV column(s) {unknown:?}; the header must use DIVOC's bulk columns, e.g. preEnrollmentCode,recipientName,..."
        ));
    }
    if index[0].is_none() {
        return Err("CSV header lacks the required column preEnrollmentCode".into());
    }
    Ok(index)
}

/// Shortens untrusted text for error messages (char-boundary safe).
pub fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}...", &s[..i]),
    }
}

/// Parses one JSON object text into a request; the error names the JSON path that is wrong.
pub fn parse_request_json(text: &str) -> Result<CertifyRequest, String> {
    parse_request_json_classified(text).map_err(|(_, m)| m)
}

/// Like [`parse_request_json`], with a dead-letter reason code: `malformed_json` for text that is
/// not a JSON object, `invalid_field_type` for a well-formed object with a wrongly typed field.
pub fn parse_request_json_classified(text: &str) -> Result<CertifyRequest, (&'static str, String)> {
    let code = |e: &serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => "invalid_field_type",
        _ => "malformed_json",
    };
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(("malformed_json", "expected a JSON object".into()));
    }
    // Fast path without path tracking; only a failure pays for the second, path-tracking parse.
    if let Ok(parsed) = serde_json::from_str::<CertifyRequest>(text) {
        return Ok(parsed);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: CertifyRequest = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let c = code(&inner);
            return Err((
                c,
                if path == "." || path.is_empty() {
                    format!("{inner}")
                } else {
                    format!("{path}: {inner}")
                },
            ));
        }
    };
    de.end().map_err(|e| {
        (
            "malformed_json",
            format!("trailing characters after the JSON object: {e}"),
        )
    })?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_divoc_v1_body_element() {
        let r = parse_request_json(
            r#"{"preEnrollmentCode":"123","recipient":{"name":"A \"quoted\" name","age":34,"address":{"pincode":560001}},
               "vaccination":{"name":"Covishield","dose":1,"totalDoses":2},"extra":true}"#,
        )
        .unwrap();
        assert_eq!(r.pre_enrollment_code.as_deref(), Some("123"));
        let rec = r.recipient.unwrap();
        assert_eq!(rec.name.as_deref(), Some("A \"quoted\" name"));
        assert_eq!(rec.age.as_deref(), Some("34"));
        assert_eq!(rec.address.unwrap().pincode.as_deref(), Some("560001"));
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = parse_request_json(r#"{"vaccination":{"dose":"one"}}"#).unwrap_err();
        assert!(err.starts_with("vaccination.dose:"), "{err}");
        let err = parse_request_json(r#"{"recipient":[1]}"#).unwrap_err();
        assert!(err.starts_with("recipient"), "{err}");
        assert!(parse_request_json("{").is_err());
        assert!(parse_request_json(r#"{} {}"#).is_err());
    }

    #[test]
    fn csv_row_maps_columns_and_rejects_bad_integers() {
        let header = csv::StringRecord::from(vec![
            "preEnrollmentCode",
            "recipientName",
            "vaccinationDose",
            "recipientMobileNumber",
        ]);
        let idx = csv_header_index(&header).unwrap();
        let r = request_from_csv_row(
            &idx,
            &csv::StringRecord::from(vec!["p1", "Asha", "2", "9999"]),
        )
        .unwrap();
        assert_eq!(r.vaccination.unwrap().dose, Some(2));
        assert_eq!(
            r.recipient.unwrap().contact,
            Some(vec!["tel:9999".to_string()])
        );
        let e = request_from_csv_row(&idx, &csv::StringRecord::from(vec!["p1", "Asha", "x", ""]))
            .unwrap_err();
        assert_eq!(e.column, "vaccinationDose");
        assert!(
            csv_header_index(&csv::StringRecord::from(vec!["preEnrollmentCode", "bogus"])).is_err()
        );
    }

    #[test]
    fn truncate_is_char_safe() {
        assert_eq!(truncate("अआइईउ", 2), "अआ...");
        assert_eq!(truncate("ab", 5), "ab");
    }
}
