//! Every column of the DIVOC pipeline, declared once with its type: the event schema sources emit
//! and the columns operators add. Components declare what they need and add from these, and
//! `divoc validate-config` follows them through the DAG.

use divoc_pipeline::columns::{Column, ColumnType};

pub use divoc_pipeline::columns::envelope::{
    EVENT_KIND, INGEST_TIME, RAW, SOURCE_ID, SOURCE_OFFSET, TENANT,
};

const fn text(name: &'static str) -> Column {
    Column::new(name, ColumnType::Utf8)
}

pub const PROGRAM_ID: Column = text("program_id");
pub const PRE_ENROLLMENT_CODE: Column = text("pre_enrollment_code");
pub const ENROLLMENT_TYPE: Column = text("enrollment_type");
pub const COMORBIDITIES: Column = Column::new("comorbidities", ColumnType::ListUtf8);
pub const RECIPIENT_NAME: Column = text("recipient_name");
pub const RECIPIENT_GENDER: Column = text("recipient_gender");
pub const RECIPIENT_NATIONALITY: Column = text("recipient_nationality");
pub const RECIPIENT_DOB: Column = Column::new("recipient_dob", ColumnType::Date32);
pub const RECIPIENT_AGE: Column = text("recipient_age");
pub const RECIPIENT_IDENTITY: Column = text("recipient_identity");
pub const RECIPIENT_CONTACT: Column = Column::new("recipient_contact", ColumnType::ListUtf8);
pub const RECIPIENT_ADDRESS_LINE1: Column = text("recipient_address_line1");
pub const RECIPIENT_ADDRESS_LINE2: Column = text("recipient_address_line2");
pub const RECIPIENT_ADDRESS_DISTRICT: Column = text("recipient_address_district");
pub const RECIPIENT_ADDRESS_STATE: Column = text("recipient_address_state");
pub const RECIPIENT_ADDRESS_COUNTRY: Column = text("recipient_address_country");
pub const RECIPIENT_ADDRESS_PINCODE: Column = text("recipient_address_pincode");
pub const VACCINE_NAME: Column = text("vaccine_name");
pub const VACCINE_BATCH: Column = text("vaccine_batch");
pub const VACCINE_MANUFACTURER: Column = text("vaccine_manufacturer");
pub const VACCINATION_DATE: Column = Column::new("vaccination_date", ColumnType::TimestampMsUtc);
pub const EFFECTIVE_START: Column = Column::new("effective_start", ColumnType::Date32);
pub const EFFECTIVE_UNTIL: Column = Column::new("effective_until", ColumnType::Date32);
pub const DOSE: Column = Column::new("dose", ColumnType::Int64);
pub const TOTAL_DOSES: Column = Column::new("total_doses", ColumnType::Int64);
pub const VACCINATOR_NAME: Column = text("vaccinator_name");
pub const FACILITY_NAME: Column = text("facility_name");
pub const FACILITY_ADDRESS_LINE1: Column = text("facility_address_line1");
pub const FACILITY_ADDRESS_LINE2: Column = text("facility_address_line2");
pub const FACILITY_ADDRESS_DISTRICT: Column = text("facility_address_district");
pub const FACILITY_ADDRESS_STATE: Column = text("facility_address_state");
pub const FACILITY_ADDRESS_COUNTRY: Column = text("facility_address_country");
pub const FACILITY_ADDRESS_PINCODE: Column = text("facility_address_pincode");
/// The request's `meta` object as JSON text.
pub const META: Column = text("meta");

/// The schema every source emits, in order.
pub const EVENT_COLUMNS: [Column; 41] = [
    TENANT,
    PROGRAM_ID,
    PRE_ENROLLMENT_CODE,
    ENROLLMENT_TYPE,
    COMORBIDITIES,
    RECIPIENT_NAME,
    RECIPIENT_GENDER,
    RECIPIENT_NATIONALITY,
    RECIPIENT_DOB,
    RECIPIENT_AGE,
    RECIPIENT_IDENTITY,
    RECIPIENT_CONTACT,
    RECIPIENT_ADDRESS_LINE1,
    RECIPIENT_ADDRESS_LINE2,
    RECIPIENT_ADDRESS_DISTRICT,
    RECIPIENT_ADDRESS_STATE,
    RECIPIENT_ADDRESS_COUNTRY,
    RECIPIENT_ADDRESS_PINCODE,
    VACCINE_NAME,
    VACCINE_BATCH,
    VACCINE_MANUFACTURER,
    VACCINATION_DATE,
    EFFECTIVE_START,
    EFFECTIVE_UNTIL,
    DOSE,
    TOTAL_DOSES,
    VACCINATOR_NAME,
    FACILITY_NAME,
    FACILITY_ADDRESS_LINE1,
    FACILITY_ADDRESS_LINE2,
    FACILITY_ADDRESS_DISTRICT,
    FACILITY_ADDRESS_STATE,
    FACILITY_ADDRESS_COUNTRY,
    FACILITY_ADDRESS_PINCODE,
    META,
    SUSPEND_UNTIL,
    EVENT_KIND,
    INGEST_TIME,
    SOURCE_ID,
    SOURCE_OFFSET,
    RAW,
];

/// Added by `dedupe`: the certificate id (`<namespace>` + counter), stable across replays.
pub const CERTIFICATE_ID: Column = Column::required("certificate_id", ColumnType::Utf8);
/// Added by `dedupe`: for an `update`, the id of the certificate it replaces (now revoked).
pub const PREVIOUS_CERTIFICATE_ID: Column = text("previous_certificate_id");
/// Set by the `reissue_source`: the certificate a `reissue` row signs again; dedupe refuses the
/// row (`superseded`) unless it is still the dose's current certificate.
pub const REISSUE_OF: Column = text("reissue_of");
/// The last day of a suspension (`suspend` events); none means until lifted.
pub const SUSPEND_UNTIL: Column = Column::new("suspend_until", ColumnType::Date32);
/// Added by `sign`: the signed W3C verifiable credential, JSON text (null for events that issue
/// no certificate: revoke, suspend, lift_suspension).
pub const CREDENTIAL: Column = Column::new("credential", ColumnType::Utf8);
/// Added by `qr_payload`: DIVOC's QR payload (a ZIP holding `certificate.json`; null with
/// `credential`).
pub const QR_PAYLOAD: Column = Column::new("qr_payload", ColumnType::Binary);
/// Added by `render`: the PDF certificate (null when it could not be rendered).
pub const PDF: Column = Column::new("pdf", ColumnType::Binary);
/// Added by `render`: the object key the PDF is stored under (null with `pdf`).
pub const PDF_KEY: Column = Column::new("pdf_key", ColumnType::Utf8);

/// Columns holding personal data (names, contacts, identity numbers, addresses, dates of birth,
/// the signed credential and anything carrying them): never in logs, metrics or analytics.
pub const PII: [Column; 14] = [
    RECIPIENT_NAME,
    RECIPIENT_DOB,
    RECIPIENT_AGE,
    RECIPIENT_IDENTITY,
    RECIPIENT_CONTACT,
    RECIPIENT_ADDRESS_LINE1,
    RECIPIENT_ADDRESS_LINE2,
    META,
    RAW,
    CREDENTIAL,
    QR_PAYLOAD,
    PDF,
    VACCINATOR_NAME,
    PRE_ENROLLMENT_CODE,
];
