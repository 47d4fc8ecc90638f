//! The analytics table: one PII-free row per issued certificate, derived from the event and its
//! certificate id. No name, contact, identity number, address line or exact date of birth: the
//! recipient is described only by an age band, gender, state, district and a pincode prefix, and
//! facility and vaccinator by pseudonymous ids.
//!
//! The pipeline's `analytics` sink writes these rows (and per-epoch rollups of them); DataFusion
//! serves them to `divoc sql`, `POST /api/sql` and the dashboard.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{
    DataType, Date32Type, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use arrow::error::ArrowError;
use divoc_pipeline::columns::{Column, ColumnType};

use crate::catalogue::VaccineCatalogue;
use crate::columns as ev;

const fn text(name: &'static str) -> Column {
    Column::new(name, ColumnType::Utf8)
}

pub const CERTIFICATE_ID: Column = ev::CERTIFICATE_ID;
pub const TENANT: Column = ev::TENANT;
pub const PROGRAM_ID: Column = ev::PROGRAM_ID;
pub const EVENT_KIND: Column = ev::EVENT_KIND;
/// When the certificate was issued (its `issuanceDate`: the event's durable ingest time).
pub const ISSUED_AT: Column = Column::required("issued_at", ColumnType::TimestampMsUtc);
pub const VACCINATION_DATE: Column = Column::new("vaccination_date", ColumnType::Date32);
pub const VACCINE: Column = text("vaccine");
pub const ICD11_CODE: Column = text("icd11_code");
pub const MANUFACTURER: Column = text("manufacturer");
pub const DOSE: Column = ev::DOSE;
pub const TOTAL_DOSES: Column = ev::TOTAL_DOSES;
/// `0-9`, `10-19`, ... `80+`, or `unknown`.
pub const AGE_BAND: Column = Column::required("age_band", ColumnType::Utf8);
pub const GENDER: Column = text("gender");
pub const STATE: Column = text("state");
pub const DISTRICT: Column = text("district");
/// The first three characters of the recipient's pincode (the sorting district).
pub const PINCODE_PREFIX: Column = text("pincode_prefix");
/// Stable pseudonymous id of the facility: a hash of tenant, name, district and state.
pub const FACILITY_ID: Column = Column::required("facility_id", ColumnType::Utf8);
pub const FACILITY_NAME: Column = text("facility_name");
pub const FACILITY_STATE: Column = text("facility_state");
pub const FACILITY_DISTRICT: Column = text("facility_district");
/// Stable pseudonymous id of the vaccinator: a hash of tenant and name.
pub const VACCINATOR_ID: Column = Column::required("vaccinator_id", ColumnType::Utf8);

/// The analytics table's columns, in order.
pub const ANALYTICS_COLUMNS: [Column; 21] = [
    CERTIFICATE_ID,
    TENANT,
    PROGRAM_ID,
    EVENT_KIND,
    ISSUED_AT,
    VACCINATION_DATE,
    VACCINE,
    ICD11_CODE,
    MANUFACTURER,
    DOSE,
    TOTAL_DOSES,
    AGE_BAND,
    GENDER,
    STATE,
    DISTRICT,
    PINCODE_PREFIX,
    FACILITY_ID,
    FACILITY_NAME,
    FACILITY_STATE,
    FACILITY_DISTRICT,
    VACCINATOR_ID,
];

/// Event columns the projection reads.
pub fn needs() -> Vec<Column> {
    vec![
        ev::CERTIFICATE_ID,
        ev::TENANT,
        ev::PROGRAM_ID,
        ev::EVENT_KIND,
        ev::INGEST_TIME,
        ev::VACCINATION_DATE,
        ev::VACCINE_NAME,
        ev::VACCINE_MANUFACTURER,
        ev::DOSE,
        ev::TOTAL_DOSES,
        ev::RECIPIENT_AGE,
        ev::RECIPIENT_DOB,
        ev::RECIPIENT_GENDER,
        ev::RECIPIENT_ADDRESS_STATE,
        ev::RECIPIENT_ADDRESS_DISTRICT,
        ev::RECIPIENT_ADDRESS_PINCODE,
        ev::FACILITY_NAME,
        ev::FACILITY_ADDRESS_STATE,
        ev::FACILITY_ADDRESS_DISTRICT,
        ev::VACCINATOR_NAME,
    ]
}

pub fn analytics_schema() -> SchemaRef {
    static S: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(
            ANALYTICS_COLUMNS
                .iter()
                .map(Column::field)
                .collect::<Vec<_>>(),
        ))
    })
    .clone()
}

fn table(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// `analytics/rollups/certificates`: per-epoch counts by issue date x (vaccination) day x tenant x program x state x
/// district x vaccine x dose x age band x gender (sum `certificates` over epochs).
pub fn certificate_rollup_schema() -> SchemaRef {
    let t = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
    table(vec![
        Field::new("issued_on", DataType::Date32, false),
        Field::new("day", DataType::Date32, true),
        t("tenant", false),
        t("program_id", true),
        t("state", true),
        t("district", true),
        t("vaccine", true),
        Field::new("dose", DataType::Int64, true),
        t("age_band", false),
        t("gender", true),
        Field::new("certificates", DataType::Int64, false),
    ])
}

/// `analytics/rollups/facilities`: per-epoch counts by day x tenant x facility x vaccine.
pub fn facility_rollup_schema() -> SchemaRef {
    let t = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
    table(vec![
        Field::new("issued_on", DataType::Date32, false),
        Field::new("day", DataType::Date32, true),
        t("tenant", false),
        t("facility_id", false),
        t("facility_name", true),
        t("facility_state", true),
        t("facility_district", true),
        t("vaccine", true),
        Field::new("certificates", DataType::Int64, false),
    ])
}

/// `analytics/downloads`: one row per certificate download served by `divoc serve`.
pub fn downloads_schema() -> SchemaRef {
    table(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("certificate_id", DataType::Utf8, true),
        Field::new("format", DataType::Utf8, false),
        Field::new("language", DataType::Utf8, true),
        Field::new("status", DataType::UInt16, false),
        Field::new("bytes", DataType::UInt64, false),
    ])
}

/// `analytics/verifications`: one row per verification the verify page reported (outcome,
/// format, a reason code; nothing about the certificate or its holder).
pub fn verifications_schema() -> SchemaRef {
    table(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
    ])
}

/// How rollup partitions are compacted, shared by the writer (the `analytics` sink) and the readers.
///
/// A rollup partition directory holds `part-<epoch>.parquet` files (one epoch's partial counts) and
/// `compact-<epoch>.parquet` files (the sum of everything in the partition up to that epoch). The
/// partition's live files are the newest compact file and the parts after it; older files are
/// superseded and ignored even before they are deleted, so a compaction never counts twice.
pub mod rollup_files {
    const PART: &str = "part-";
    const COMPACT: &str = "compact-";
    const EXT: &str = ".parquet";

    /// What a rollup file name says about its content.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RollupFile {
        /// One epoch's counts.
        Part(u64),
        /// Every count up to and including this epoch.
        Compact(u64),
    }

    /// The key of the compacted file written at `epoch` in partition `dir`.
    pub fn compact_key(dir: &str, epoch: u64) -> String {
        format!("{dir}/{COMPACT}{epoch:012}{EXT}")
    }

    /// Reads a rollup file name (the last path segment); `None` for anything else.
    pub fn parse(name: &str) -> Option<RollupFile> {
        let stem = name.strip_suffix(EXT)?;
        if let Some(e) = stem.strip_prefix(PART) {
            e.parse().ok().map(RollupFile::Part)
        } else if let Some(e) = stem.strip_prefix(COMPACT) {
            e.parse().ok().map(RollupFile::Compact)
        } else {
            None
        }
    }

    fn split(key: &str) -> (&str, &str) {
        key.rsplit_once('/').unwrap_or(("", key))
    }

    /// Splits `keys` (any order, any partitions) into `(live, superseded)`. Parquet files with
    /// other names are live (never dropped by a rule they do not follow); non-Parquet keys are left out.
    pub fn classify<S: AsRef<str>>(keys: &[S]) -> (Vec<String>, Vec<String>) {
        use std::collections::BTreeMap;
        let mut newest_compact: BTreeMap<&str, u64> = BTreeMap::new();
        for k in keys {
            let (dir, name) = split(k.as_ref());
            if let Some(RollupFile::Compact(e)) = parse(name) {
                let m = newest_compact.entry(dir).or_insert(e);
                *m = (*m).max(e);
            }
        }
        let (mut live, mut superseded) = (Vec::new(), Vec::new());
        for k in keys {
            let k = k.as_ref();
            if !k.ends_with(EXT) {
                continue;
            }
            let (dir, name) = split(k);
            let keep = match (parse(name), newest_compact.get(dir)) {
                (Some(RollupFile::Part(e)), Some(&m)) => e > m,
                (Some(RollupFile::Compact(e)), Some(&m)) => e == m,
                _ => true,
            };
            if keep {
                live.push(k.to_owned());
            } else {
                superseded.push(k.to_owned());
            }
        }
        live.sort();
        superseded.sort();
        (live, superseded)
    }
}

/// The decade band of an age in whole years.
pub fn age_band(age: Option<i64>) -> &'static str {
    const BANDS: [&str; 9] = [
        "0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+",
    ];
    match age {
        Some(a) if a >= 0 => BANDS[(a / 10).min(8) as usize],
        _ => "unknown",
    }
}

/// A short stable id for pseudonymous keys (16 hex digits of xxh3-64).
pub fn pseudonym(parts: &[&str]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0x1f]);
    }
    format!("{:016x}", h.digest())
}

fn text_col(batch: &RecordBatch, c: Column) -> Result<&StringArray, ArrowError> {
    batch
        .column_by_name(c.name)
        .and_then(|a| a.as_string_opt::<i32>())
        .ok_or_else(|| ArrowError::SchemaError(format!("analytics needs Utf8 column {}", c.name)))
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i))
        .then(|| a.value(i).trim())
        .filter(|s| !s.is_empty())
}

/// Projects accepted events (with their certificate ids) to analytics rows.
pub fn analytics_batch(
    batch: &RecordBatch,
    catalogue: &VaccineCatalogue,
) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows();
    let col = |c: Column| {
        batch
            .column_by_name(c.name)
            .ok_or_else(|| ArrowError::SchemaError(format!("analytics needs column {}", c.name)))
    };
    let tenant = text_col(batch, ev::TENANT)?;
    let vaccine = text_col(batch, ev::VACCINE_NAME)?;
    let age = text_col(batch, ev::RECIPIENT_AGE)?;
    let gender = text_col(batch, ev::RECIPIENT_GENDER)?;
    let pincode = text_col(batch, ev::RECIPIENT_ADDRESS_PINCODE)?;
    let facility = text_col(batch, ev::FACILITY_NAME)?;
    let facility_state = text_col(batch, ev::FACILITY_ADDRESS_STATE)?;
    let facility_district = text_col(batch, ev::FACILITY_ADDRESS_DISTRICT)?;
    let vaccinator = text_col(batch, ev::VACCINATOR_NAME)?;
    let ingest = col(ev::INGEST_TIME)?.as_primitive::<TimestampMillisecondType>();
    let vaccinated = col(ev::VACCINATION_DATE)?.as_primitive::<TimestampMillisecondType>();
    let dob = col(ev::RECIPIENT_DOB)?.as_primitive::<Date32Type>();

    let mut vaccination_date = Date32Builder::with_capacity(n);
    let mut icd11 = StringBuilder::with_capacity(n, n * 6);
    let mut band = StringBuilder::with_capacity(n, n * 5);
    let mut gender_out = StringBuilder::with_capacity(n, n * 6);
    let mut prefix = StringBuilder::with_capacity(n, n * 3);
    let mut facility_id = StringBuilder::with_capacity(n, n * 16);
    let mut vaccinator_id = StringBuilder::with_capacity(n, n * 16);
    for i in 0..n {
        let day =
            (!vaccinated.is_null(i)).then(|| vaccinated.value(i).div_euclid(86_400_000) as i32);
        vaccination_date.append_option(day);
        icd11.append_option(
            opt(vaccine, i)
                .and_then(|v| catalogue.lookup(v))
                .map(|e| e.icd11.as_str()),
        );
        // Age at vaccination: the registry's age, else from the date of birth (as DIVOC derives it).
        let years = opt(age, i).and_then(|a| a.parse::<i64>().ok()).or_else(|| {
            let born = (!dob.is_null(i)).then(|| i64::from(dob.value(i)))?;
            let at = day
                .map(i64::from)
                .unwrap_or_else(|| ingest.value(i).div_euclid(86_400_000));
            Some(((at - born) as f64 / 365.25).floor() as i64)
        });
        band.append_value(age_band(years));
        gender_out.append_option(opt(gender, i));
        prefix.append_option(opt(pincode, i).map(|p| p.get(..3).unwrap_or(p)));
        let t = tenant.value(i);
        facility_id.append_value(pseudonym(&[
            t,
            opt(facility, i).unwrap_or(""),
            opt(facility_district, i).unwrap_or(""),
            opt(facility_state, i).unwrap_or(""),
        ]));
        vaccinator_id.append_value(pseudonym(&[t, opt(vaccinator, i).unwrap_or("")]));
    }
    let ingest_col: ArrayRef = Arc::new(ingest.clone());
    let int = |c: Column| -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(col(c)?.as_primitive::<Int64Type>().clone()) as ArrayRef)
    };
    RecordBatch::try_new(
        analytics_schema(),
        vec![
            col(ev::CERTIFICATE_ID)?.clone(),
            col(ev::TENANT)?.clone(),
            col(ev::PROGRAM_ID)?.clone(),
            col(ev::EVENT_KIND)?.clone(),
            ingest_col,
            Arc::new(vaccination_date.finish()),
            col(ev::VACCINE_NAME)?.clone(),
            Arc::new(icd11.finish()),
            col(ev::VACCINE_MANUFACTURER)?.clone(),
            int(ev::DOSE)?,
            int(ev::TOTAL_DOSES)?,
            Arc::new(band.finish()),
            Arc::new(gender_out.finish()),
            col(ev::RECIPIENT_ADDRESS_STATE)?.clone(),
            col(ev::RECIPIENT_ADDRESS_DISTRICT)?.clone(),
            Arc::new(prefix.finish()),
            Arc::new(facility_id.finish()),
            col(ev::FACILITY_NAME)?.clone(),
            col(ev::FACILITY_ADDRESS_STATE)?.clone(),
            col(ev::FACILITY_ADDRESS_DISTRICT)?.clone(),
            Arc::new(vaccinator_id.finish()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::PII;

    #[test]
    fn no_pii_column_in_the_analytics_table() {
        for c in ANALYTICS_COLUMNS {
            assert!(
                !PII.iter().any(|p| p.name == c.name),
                "{} is personal data",
                c.name
            );
        }
    }

    #[test]
    fn the_newest_compact_file_supersedes_older_files_of_its_partition_only() {
        use rollup_files::{classify, compact_key, parse, RollupFile};
        let a = "r/tenant=t/date=2026-12-01";
        let b = "r/tenant=t/date=2026-12-02";
        let keys = vec![
            format!("{a}/part-000000000001.parquet"),
            format!("{a}/part-000000000002.parquet"),
            compact_key(a, 2),
            format!("{a}/part-000000000003.parquet"),
            compact_key(a, 1),
            format!("{b}/part-000000000001.parquet"),
            format!("{b}/other.parquet"),
            format!("{b}/notes.txt"),
        ];
        let (live, superseded) = classify(&keys);
        assert_eq!(
            live,
            vec![
                compact_key(a, 2),
                format!("{a}/part-000000000003.parquet"),
                format!("{b}/other.parquet"),
                format!("{b}/part-000000000001.parquet"),
            ]
        );
        assert_eq!(
            superseded,
            vec![
                compact_key(a, 1),
                format!("{a}/part-000000000001.parquet"),
                format!("{a}/part-000000000002.parquet"),
            ]
        );
        assert_eq!(
            parse("part-000000000007.parquet"),
            Some(RollupFile::Part(7))
        );
        assert_eq!(parse("compact-12.parquet"), Some(RollupFile::Compact(12)));
        assert_eq!(parse("part-x.parquet"), None);
    }

    #[test]
    fn age_bands_by_decade() {
        assert_eq!(age_band(Some(0)), "0-9");
        assert_eq!(age_band(Some(19)), "10-19");
        assert_eq!(age_band(Some(45)), "40-49");
        assert_eq!(age_band(Some(80)), "80+");
        assert_eq!(age_band(Some(104)), "80+");
        assert_eq!(age_band(Some(-1)), "unknown");
        assert_eq!(age_band(None), "unknown");
    }

    #[test]
    fn pseudonyms_are_stable_and_separate_fields() {
        assert_eq!(pseudonym(&["a", "b"]), pseudonym(&["a", "b"]));
        assert_ne!(pseudonym(&["ab", ""]), pseudonym(&["a", "b"]));
        assert_eq!(pseudonym(&["x"]).len(), 16);
    }
}
