//! The one Arrow schema every event batch carries through the DAG, and the builder that fills it.
//!
//! Layout (all columns flat so Parquet and SQL read them directly):
//!
//! | column | type | from |
//! |---|---|---|
//! | `tenant` | Utf8 | source config (or the HTTP token's tenant) |
//! | `program_id`, `pre_enrollment_code`, `enrollment_type` | Utf8 | request |
//! | `comorbidities`, `recipient_contact` | List<Utf8> | request |
//! | `recipient_name`, `recipient_gender`, `recipient_nationality`, `recipient_age`, `recipient_identity` | Utf8 | request |
//! | `recipient_dob` | Date32 | `recipient.dob` (YYYY-MM-DD) |
//! | `recipient_address_{line1,line2,district,state,country,pincode}` | Utf8 | request |
//! | `vaccine_name`, `vaccine_batch`, `vaccine_manufacturer` | Utf8 | request |
//! | `vaccination_date` | Timestamp(ms, UTC) | `vaccination.date` (RFC 3339 or YYYY-MM-DD) |
//! | `effective_start`, `effective_until` | Date32 | request |
//! | `dose`, `total_doses` | Int64 | request |
//! | `vaccinator_name`, `facility_name`, `facility_address_{...}` | Utf8 | request |
//! | `meta` | Utf8 (JSON text) | request |
//! | `suspend_until` | Date32 | `suspendUntil` of a `suspend` event |
//! | `event_kind` | Utf8 | `certify_v1`, `certify_v3`, `bulk_csv`; `update`, `revoke`, `suspend`, `lift_suspension` |
//! | `ingest_time` | Timestamp(ms, UTC) | when the event became durable at the source |
//! | `source_id`, `source_offset` | Utf8, UInt64 | replay position: unique per event |
//! | `raw` | Utf8 | the original event text (dead letters keep it; publish drops it) |
//!
//! Operators append columns (e.g. `dedupe` appends `certificate_id`).

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
    UInt64Builder,
};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::columns::{self, EVENT_COLUMNS};
use crate::event::{Address, CertifyRequest, EventKind};

// Names of the columns read by name in code, from their one declaration in [`crate::columns`].
pub const TENANT: &str = columns::TENANT.name;
pub const PROGRAM_ID: &str = columns::PROGRAM_ID.name;
pub const PRE_ENROLLMENT_CODE: &str = columns::PRE_ENROLLMENT_CODE.name;
pub const RECIPIENT_NAME: &str = columns::RECIPIENT_NAME.name;
pub const RECIPIENT_DOB: &str = columns::RECIPIENT_DOB.name;
pub const RECIPIENT_AGE: &str = columns::RECIPIENT_AGE.name;
pub const RECIPIENT_IDENTITY: &str = columns::RECIPIENT_IDENTITY.name;
pub const RECIPIENT_STATE: &str = columns::RECIPIENT_ADDRESS_STATE.name;
pub const VACCINE_NAME: &str = columns::VACCINE_NAME.name;
pub const VACCINATION_DATE: &str = columns::VACCINATION_DATE.name;
pub const EFFECTIVE_START: &str = columns::EFFECTIVE_START.name;
pub const EFFECTIVE_UNTIL: &str = columns::EFFECTIVE_UNTIL.name;
pub const DOSE: &str = columns::DOSE.name;
pub const TOTAL_DOSES: &str = columns::TOTAL_DOSES.name;
pub const EVENT_KIND: &str = columns::EVENT_KIND.name;
pub const INGEST_TIME: &str = columns::INGEST_TIME.name;
pub const SOURCE_ID: &str = columns::SOURCE_ID.name;
pub const SOURCE_OFFSET: &str = columns::SOURCE_OFFSET.name;
pub const RAW: &str = columns::RAW.name;
pub const CERTIFICATE_ID: &str = columns::CERTIFICATE_ID.name;

/// Free-text columns whose length `validate` bounds, in schema order.
pub const TEXT_COLUMNS: &[&str] = &[
    "tenant",
    "program_id",
    "pre_enrollment_code",
    "enrollment_type",
    "recipient_name",
    "recipient_gender",
    "recipient_nationality",
    "recipient_age",
    "recipient_identity",
    "recipient_address_line1",
    "recipient_address_line2",
    "recipient_address_district",
    "recipient_address_state",
    "recipient_address_country",
    "recipient_address_pincode",
    "vaccine_name",
    "vaccine_batch",
    "vaccine_manufacturer",
    "vaccinator_name",
    "facility_name",
    "facility_address_line1",
    "facility_address_line2",
    "facility_address_district",
    "facility_address_state",
    "facility_address_country",
    "facility_address_pincode",
];

/// The schema sources emit ([`EVENT_COLUMNS`]).
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(
                EVENT_COLUMNS.iter().map(|c| c.field()).collect::<Vec<_>>(),
            ))
        })
        .clone()
}

/// Where an event came from and when it became durable there.
#[derive(Debug, Clone)]
pub struct EventOrigin<'a> {
    pub tenant: &'a str,
    pub kind: EventKind,
    pub ingest_time_ms: i64,
    pub source_id: &'a str,
    pub source_offset: u64,
    pub raw: &'a str,
}

/// A field that could not be typed (e.g. a malformed date); the event is dead-lettered with it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

struct AddressBuilders([StringBuilder; 6]);

impl AddressBuilders {
    fn new(cap: usize) -> Self {
        Self(std::array::from_fn(|_| {
            StringBuilder::with_capacity(cap, cap * 8)
        }))
    }
    fn append(&mut self, a: Option<&Address>) {
        let vals = [
            a.and_then(|a| a.address_line1.as_deref()),
            a.and_then(|a| a.address_line2.as_deref()),
            a.and_then(|a| a.district.as_deref()),
            a.and_then(|a| a.state.as_deref()),
            a.and_then(|a| a.country.as_deref()),
            a.and_then(|a| a.pincode.as_deref()),
        ];
        for (b, v) in self.0.iter_mut().zip(vals) {
            b.append_option(v);
        }
    }
    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        for b in &mut self.0 {
            out.push(Arc::new(b.finish()));
        }
    }
}

/// Typed values of one request, parsed before anything is appended so a bad row leaves no partial state.
struct TypedDates {
    dob: Option<i32>,
    vaccination_date: Option<i64>,
    effective_start: Option<i32>,
    effective_until: Option<i32>,
    suspend_until: Option<i32>,
}

/// Builds event batches row by row. Rows with untypeable fields are refused with a [`FieldError`].
pub struct EventBatchBuilder {
    tenant: StringBuilder,
    program_id: StringBuilder,
    pre_enrollment_code: StringBuilder,
    enrollment_type: StringBuilder,
    comorbidities: ListBuilder<StringBuilder>,
    recipient_name: StringBuilder,
    recipient_gender: StringBuilder,
    recipient_nationality: StringBuilder,
    recipient_dob: Date32Builder,
    recipient_age: StringBuilder,
    recipient_identity: StringBuilder,
    recipient_contact: ListBuilder<StringBuilder>,
    recipient_address: AddressBuilders,
    vaccine_name: StringBuilder,
    vaccine_batch: StringBuilder,
    vaccine_manufacturer: StringBuilder,
    vaccination_date: TimestampMillisecondBuilder,
    effective_start: Date32Builder,
    effective_until: Date32Builder,
    suspend_until: Date32Builder,
    dose: Int64Builder,
    total_doses: Int64Builder,
    vaccinator_name: StringBuilder,
    facility_name: StringBuilder,
    facility_address: AddressBuilders,
    meta: StringBuilder,
    event_kind: StringBuilder,
    ingest_time: TimestampMillisecondBuilder,
    source_id: StringBuilder,
    source_offset: UInt64Builder,
    raw: StringBuilder,
    rows: usize,
}

fn s(cap: usize) -> StringBuilder {
    StringBuilder::with_capacity(cap, cap * 12)
}

impl EventBatchBuilder {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            tenant: s(cap),
            program_id: s(cap),
            pre_enrollment_code: s(cap),
            enrollment_type: s(cap),
            comorbidities: ListBuilder::new(StringBuilder::new()),
            recipient_name: s(cap),
            recipient_gender: s(cap),
            recipient_nationality: s(cap),
            recipient_dob: Date32Builder::with_capacity(cap),
            recipient_age: s(cap),
            recipient_identity: s(cap),
            recipient_contact: ListBuilder::new(StringBuilder::new()),
            recipient_address: AddressBuilders::new(cap),
            vaccine_name: s(cap),
            vaccine_batch: s(cap),
            vaccine_manufacturer: s(cap),
            vaccination_date: TimestampMillisecondBuilder::with_capacity(cap)
                .with_timezone("+00:00"),
            effective_start: Date32Builder::with_capacity(cap),
            effective_until: Date32Builder::with_capacity(cap),
            suspend_until: Date32Builder::with_capacity(cap),
            dose: Int64Builder::with_capacity(cap),
            total_doses: Int64Builder::with_capacity(cap),
            vaccinator_name: s(cap),
            facility_name: s(cap),
            facility_address: AddressBuilders::new(cap),
            meta: s(cap),
            event_kind: s(cap),
            ingest_time: TimestampMillisecondBuilder::with_capacity(cap).with_timezone("+00:00"),
            source_id: s(cap),
            source_offset: UInt64Builder::with_capacity(cap),
            raw: StringBuilder::with_capacity(cap, cap * 600),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one request, or refuses it (nothing appended) when a date field cannot be parsed.
    pub fn append(
        &mut self,
        req: &CertifyRequest,
        origin: &EventOrigin<'_>,
    ) -> Result<(), FieldError> {
        let rec = req.recipient.as_ref();
        let vac = req.vaccination.as_ref();
        let dates = TypedDates {
            dob: parse_date_field("recipient.dob", rec.and_then(|r| r.dob.as_deref()))?,
            vaccination_date: parse_datetime_field(
                "vaccination.date",
                vac.and_then(|v| v.date.as_deref()),
            )?,
            effective_start: parse_date_field(
                "vaccination.effectiveStart",
                vac.and_then(|v| v.effective_start.as_deref()),
            )?,
            effective_until: parse_date_field(
                "vaccination.effectiveUntil",
                vac.and_then(|v| v.effective_until.as_deref()),
            )?,
            suspend_until: parse_date_field("suspendUntil", req.suspend_until.as_deref())?,
        };
        let meta = match &req.meta {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| FieldError {
                field: "meta",
                message: e.to_string(),
            })?),
            None => None,
        };

        self.tenant.append_value(origin.tenant);
        self.program_id.append_option(req.program_id.as_deref());
        self.pre_enrollment_code
            .append_option(req.pre_enrollment_code.as_deref());
        self.enrollment_type
            .append_option(req.enrollment_type.as_deref());
        append_list(&mut self.comorbidities, req.comorbidities.as_deref());
        self.recipient_name
            .append_option(rec.and_then(|r| r.name.as_deref()));
        self.recipient_gender
            .append_option(rec.and_then(|r| r.gender.as_deref()));
        self.recipient_nationality
            .append_option(rec.and_then(|r| r.nationality.as_deref()));
        self.recipient_dob.append_option(dates.dob);
        self.recipient_age
            .append_option(rec.and_then(|r| r.age.as_deref()));
        self.recipient_identity
            .append_option(rec.and_then(|r| r.identity.as_deref()));
        append_list(
            &mut self.recipient_contact,
            rec.and_then(|r| r.contact.as_deref()),
        );
        self.recipient_address
            .append(rec.and_then(|r| r.address.as_ref()));
        self.vaccine_name
            .append_option(vac.and_then(|v| v.name.as_deref()));
        self.vaccine_batch
            .append_option(vac.and_then(|v| v.batch.as_deref()));
        self.vaccine_manufacturer
            .append_option(vac.and_then(|v| v.manufacturer.as_deref()));
        self.vaccination_date.append_option(dates.vaccination_date);
        self.effective_start.append_option(dates.effective_start);
        self.effective_until.append_option(dates.effective_until);
        self.dose.append_option(vac.and_then(|v| v.dose));
        self.total_doses
            .append_option(vac.and_then(|v| v.total_doses));
        self.vaccinator_name
            .append_option(req.vaccinator.as_ref().and_then(|v| v.name.as_deref()));
        self.facility_name
            .append_option(req.facility.as_ref().and_then(|f| f.name.as_deref()));
        self.facility_address
            .append(req.facility.as_ref().and_then(|f| f.address.as_ref()));
        self.meta.append_option(meta);
        self.suspend_until.append_option(dates.suspend_until);
        self.event_kind.append_value(origin.kind.as_str());
        self.ingest_time.append_value(origin.ingest_time_ms);
        self.source_id.append_value(origin.source_id);
        self.source_offset.append_value(origin.source_offset);
        self.raw.append_value(origin.raw);
        self.rows += 1;
        Ok(())
    }

    /// Finishes the batch and resets the builder.
    pub fn finish(&mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.tenant.finish()),
            Arc::new(self.program_id.finish()),
            Arc::new(self.pre_enrollment_code.finish()),
            Arc::new(self.enrollment_type.finish()),
            Arc::new(self.comorbidities.finish()),
            Arc::new(self.recipient_name.finish()),
            Arc::new(self.recipient_gender.finish()),
            Arc::new(self.recipient_nationality.finish()),
            Arc::new(self.recipient_dob.finish()),
            Arc::new(self.recipient_age.finish()),
            Arc::new(self.recipient_identity.finish()),
            Arc::new(self.recipient_contact.finish()),
        ];
        self.recipient_address.finish(&mut cols);
        cols.extend([
            Arc::new(self.vaccine_name.finish()) as ArrayRef,
            Arc::new(self.vaccine_batch.finish()),
            Arc::new(self.vaccine_manufacturer.finish()),
            Arc::new(self.vaccination_date.finish()),
            Arc::new(self.effective_start.finish()),
            Arc::new(self.effective_until.finish()),
            Arc::new(self.dose.finish()),
            Arc::new(self.total_doses.finish()),
            Arc::new(self.vaccinator_name.finish()),
            Arc::new(self.facility_name.finish()),
        ]);
        self.facility_address.finish(&mut cols);
        cols.extend([
            Arc::new(self.meta.finish()) as ArrayRef,
            Arc::new(self.suspend_until.finish()),
            Arc::new(self.event_kind.finish()),
            Arc::new(self.ingest_time.finish()),
            Arc::new(self.source_id.finish()),
            Arc::new(self.source_offset.finish()),
            Arc::new(self.raw.finish()),
        ]);
        self.rows = 0;
        // The column list mirrors event_schema() one to one; a mismatch is a programming error caught by tests.
        RecordBatch::try_new(event_schema(), cols)
            .expect("event builder columns match event_schema")
    }
}

fn append_list(b: &mut ListBuilder<StringBuilder>, vals: Option<&[String]>) {
    match vals {
        None => b.append_null(),
        Some(vs) => {
            for v in vs {
                b.values().append_value(v);
            }
            b.append(true);
        }
    }
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Days since 1970-01-01 for a `YYYY-MM-DD` date (a date-time's date part is accepted too).
pub fn parse_date(text: &str) -> Option<i32> {
    let t = text.trim().as_bytes();
    if t.len() < 10
        || (t.len() > 10 && t[10] != b'T' && t[10] != b' ')
        || t[4] != b'-'
        || t[7] != b'-'
    {
        return None;
    }
    // Hand-rolled: chrono's format-string parser dominated ingest profiles.
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        t[r].iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let d = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    Some(chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE)
}

/// Milliseconds since the Unix epoch for an RFC 3339 date-time or a bare `YYYY-MM-DD` (midnight UTC).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(dt.and_utc().timestamp_millis());
    }
    if t.len() == 10 {
        return parse_date(t).map(|d| i64::from(d) * 86_400_000);
    }
    None
}

fn parse_date_field(field: &'static str, v: Option<&str>) -> Result<Option<i32>, FieldError> {
    match v {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => parse_date(t).map(Some).ok_or_else(|| FieldError {
            field,
            message: format!(
                "expected a date YYYY-MM-DD, got {:?}",
                crate::event::truncate(t, 40)
            ),
        }),
    }
}

fn parse_datetime_field(field: &'static str, v: Option<&str>) -> Result<Option<i64>, FieldError> {
    match v {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => parse_datetime(t).map(Some).ok_or_else(|| FieldError {
            field,
            message: format!(
                "expected an RFC 3339 date-time or YYYY-MM-DD, got {:?}",
                crate::event::truncate(t, 40)
            ),
        }),
    }
}

/// Formats days since the epoch as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    match NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS_FROM_CE) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "invalid-date".to_owned(),
    }
}

/// Partition values become path segments; keep them to a safe alphabet so no tenant name can
/// escape its prefix or collide with the `key=value` syntax.
pub fn sanitize_partition_value(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "_".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_request_json;

    fn origin(raw: &str) -> EventOrigin<'_> {
        EventOrigin {
            tenant: "t1",
            kind: EventKind::CertifyV1,
            ingest_time_ms: 1_700_000_000_000,
            source_id: "files:a.ndjson",
            source_offset: 0,
            raw,
        }
    }

    #[test]
    fn builder_matches_schema_and_types_dates() {
        let raw = r#"{"preEnrollmentCode":"p","recipient":{"dob":"1990-01-31"},"vaccination":{"date":"2021-05-01T05:30:00.000Z","dose":1}}"#;
        let req = parse_request_json(raw).unwrap();
        let mut b = EventBatchBuilder::with_capacity(4);
        b.append(&req, &origin(raw)).unwrap();
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), event_schema());
        let dob = batch
            .column_by_name(RECIPIENT_DOB)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .unwrap();
        assert_eq!(format_date(dob.value(0)), "1990-01-31");
    }

    #[test]
    fn bad_date_is_refused_without_partial_row() {
        let raw = r#"{"recipient":{"dob":"31-01-1990"}}"#;
        let req = parse_request_json(raw).unwrap();
        let mut b = EventBatchBuilder::with_capacity(4);
        let err = b.append(&req, &origin(raw)).unwrap_err();
        assert_eq!(err.field, "recipient.dob");
        assert!(b.is_empty());
        assert_eq!(b.finish().num_rows(), 0);
    }

    #[test]
    fn datetime_forms() {
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5"), Some(1500));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_date("2021-02-30"), None);
        assert_eq!(parse_date("2021-02-03xyz"), None);
    }
}
