//! `validate`: DIVOC's certify rules plus the sanity checks DIVOC lacked.
//!
//! Every rule reads typed Arrow columns, so no input can make it panic: a row either passes or gets
//! exactly one reason (the first rule it breaks, in the order below).
//!
//! | code | rule |
//! |---|---|
//! | `missing_field` | preEnrollmentCode, recipient.name, vaccination.name, .date and .dose are required |
//! | `missing_age_and_dob` | at least one of recipient.age / recipient.dob (DIVOC's MISSING_FIELDS) |
//! | `field_too_long` | every text field at most `max_text_bytes`, meta at most `max_meta_bytes` |
//! | `invalid_characters` | no control characters in text fields (after whitespace normalisation) |
//! | `invalid_age` | age is a whole number 0..=150 |
//! | `dose_out_of_range` | 1 <= dose <= totalDoses <= `max_doses` |
//! | `future_date` | vaccination date, dob and effectiveStart not after the event's ingest time (+ skew) |
//! | `date_out_of_range` | dob and vaccination date not before `earliest_date` |
//! | `dob_after_vaccination` | dob on or before the vaccination date |
//! | `unknown_vaccine` | vaccination.name maps to the catalogue (ICD-11) |
//!
//! `revoke`, `suspend` and `lift_suspension` events carry no certificate: they need only
//! preEnrollmentCode and a dose in range (and the text rules); `update` is checked like certify.
//!
//! Before the rules, whitespace control characters in text fields (TAB, LF, CR, VT, FF, NEL, the
//! Unicode line and paragraph separators), which registries' exports put in names and addresses,
//! are normalised: each run of them with the spaces around it becomes one space, and the
//! `text_fields_normalized_total` metric counts the fields changed. Other control characters still
//! dead-letter as `invalid_characters`.
//!
//! "Now" is the event's own ingest time, never the wall clock, so a replay decides the same way.

use std::path::PathBuf;

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Date32Type, Int64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use divoc_model::columns::{EVENT_COLUMNS, RAW};
use divoc_model::event::EventKind;
use divoc_model::schema::{self, parse_date, TEXT_COLUMNS};
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::{Reason, Rejections};
use divoc_pipeline::operator::{Operator, Processed};
use divoc_pipeline::EngineError;
use rayon::prelude::*;
use serde::Deserialize;

use divoc_model::catalogue::VaccineCatalogue;

const DAY_MS: i64 = 86_400_000;

/// Options of a `validate` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// Vaccine catalogue file, relative to the pipeline file.
    pub catalogue: PathBuf,
    /// Longest allowed text field, in bytes.
    #[serde(default = "default_max_text")]
    pub max_text_bytes: usize,
    /// Longest allowed `meta` JSON, in bytes.
    #[serde(default = "default_max_meta")]
    pub max_meta_bytes: usize,
    /// Highest dose number accepted (boosters included).
    #[serde(default = "default_max_doses")]
    pub max_doses: i64,
    /// Dates before this (YYYY-MM-DD) are rejected.
    #[serde(default = "default_earliest")]
    pub earliest_date: String,
    /// Tolerated clock skew between a registry and us, in hours.
    #[serde(default = "default_skew")]
    pub future_skew_hours: i64,
}

fn default_max_text() -> usize {
    512
}
fn default_max_meta() -> usize {
    16 * 1024
}
fn default_max_doses() -> i64 {
    10
}
fn default_earliest() -> String {
    "1900-01-01".into()
}
fn default_skew() -> i64 {
    24
}

impl Component for ValidateConfig {
    const KIND: &'static str = "validate";
    const ROLE: Role = Role::Operator;
    fn needs() -> Vec<Column> {
        EVENT_COLUMNS.into_iter().filter(|c| *c != RAW).collect()
    }
    const ABOUT: &'static str =
        "DIVOC certify rules: required fields, doses, dates, catalogue, lengths";

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(|e| {
            ConfigIssue::new(
                "catalogue",
                e,
                "point `catalogue` at a vaccines.toml such as config/vaccines.toml",
            )
        })?;
        if self.max_text_bytes == 0 || self.max_meta_bytes == 0 {
            return Err(ConfigIssue::new(
                "max_text_bytes",
                "limits must be positive",
                "use e.g. max_text_bytes = 512",
            ));
        }
        if !(1..=100).contains(&self.max_doses) {
            return Err(ConfigIssue::new(
                "max_doses",
                format!("{} is out of range", self.max_doses),
                "use 1..=100",
            ));
        }
        if parse_date(&self.earliest_date).is_none() {
            return Err(ConfigIssue::new(
                "earliest_date",
                format!("{:?} is not a date", self.earliest_date),
                "use YYYY-MM-DD",
            ));
        }
        if !(0..=240).contains(&self.future_skew_hours) {
            return Err(ConfigIssue::new(
                "future_skew_hours",
                "out of range",
                "use 0..=240",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let catalogue =
            VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(EngineError::Config)?;
        let normalized = ctx.metrics.counter_vec(
            "text_fields_normalized_total",
            "Text fields whose whitespace control characters (TAB, CR, LF, ...) became one space",
            &["node"],
        )?;
        Ok(BuiltNode::Operator(Box::new(
            Validate::new(self, catalogue)?
                .with_normalized_counter(normalized.with_label_values(&[ctx.node])),
        )))
    }
}

/// The validate operator.
pub struct Validate {
    cfg: ValidateConfig,
    catalogue: VaccineCatalogue,
    earliest_day: i32,
    normalized: Option<prometheus::IntCounter>,
}

impl Validate {
    pub fn new(cfg: ValidateConfig, catalogue: VaccineCatalogue) -> Result<Self, EngineError> {
        let earliest_day = parse_date(&cfg.earliest_date)
            .ok_or_else(|| EngineError::Config("earliest_date is not a date".into()))?;
        Ok(Self {
            cfg,
            catalogue,
            earliest_day,
            normalized: None,
        })
    }

    /// Counts normalised text fields in `counter`.
    pub fn with_normalized_counter(mut self, counter: prometheus::IntCounter) -> Self {
        self.normalized = Some(counter);
        self
    }
}

/// Whitespace that is also a control (or separator) character.
fn is_whitespace_control(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `v` with each run of whitespace controls (and the spaces around them) as one space; `None`
/// when it has none.
pub fn normalize_whitespace(v: &str) -> Option<String> {
    if !v.chars().any(is_whitespace_control) {
        return None;
    }
    let mut out = String::with_capacity(v.len());
    let mut run = String::new();
    let mut run_has_control = false;
    for c in v.chars() {
        if c == ' ' || is_whitespace_control(c) {
            run.push(c);
            run_has_control |= c != ' ';
            continue;
        }
        if run_has_control {
            out.push(' ');
        } else {
            out.push_str(&run);
        }
        run.clear();
        run_has_control = false;
        out.push(c);
    }
    if run_has_control {
        out.push(' ');
    } else {
        out.push_str(&run);
    }
    Some(out)
}

/// The batch with its text columns normalised, and how many fields changed.
fn normalize_texts(batch: RecordBatch) -> Result<(RecordBatch, u64), EngineError> {
    let mut columns = batch.columns().to_vec();
    let mut changed = 0u64;
    for name in TEXT_COLUMNS {
        let Ok(idx) = batch.schema().index_of(name) else {
            continue;
        };
        let Some(arr) = columns[idx].as_string_opt::<i32>() else {
            continue;
        };
        if !arr
            .iter()
            .flatten()
            .any(|v| v.chars().any(is_whitespace_control))
        {
            continue;
        }
        let rebuilt: StringArray = arr
            .iter()
            .map(|v| {
                v.map(|v| match normalize_whitespace(v) {
                    Some(n) => {
                        changed += 1;
                        n
                    }
                    None => v.to_owned(),
                })
            })
            .collect();
        columns[idx] = std::sync::Arc::new(rebuilt);
    }
    if changed == 0 {
        return Ok((batch, 0));
    }
    Ok((RecordBatch::try_new(batch.schema(), columns)?, changed))
}

/// Typed views of the columns the rules read.
struct Cols<'a> {
    pre_enrollment_code: &'a StringArray,
    recipient_name: &'a StringArray,
    vaccine_name: &'a StringArray,
    vaccination_date: &'a TimestampMillisecondArray,
    dose: &'a Int64Array,
    total_doses: &'a Int64Array,
    dob: &'a Date32Array,
    age: &'a StringArray,
    effective_start: &'a Date32Array,
    ingest: &'a TimestampMillisecondArray,
    meta: &'a StringArray,
    kind: &'a StringArray,
    texts: Vec<(&'static str, &'a StringArray)>,
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, EngineError> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| EngineError::Schema(format!("validate needs column {name}")))
}

impl<'a> Cols<'a> {
    fn new(b: &'a RecordBatch) -> Result<Self, EngineError> {
        let s = |n: &str| -> Result<&'a StringArray, EngineError> {
            col(b, n)?
                .as_string_opt::<i32>()
                .ok_or_else(|| EngineError::Schema(format!("{n} must be Utf8")))
        };
        let texts = TEXT_COLUMNS
            .iter()
            .map(|n| Ok((*n, s(n)?)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(Self {
            pre_enrollment_code: s(schema::PRE_ENROLLMENT_CODE)?,
            recipient_name: s(schema::RECIPIENT_NAME)?,
            vaccine_name: s(schema::VACCINE_NAME)?,
            vaccination_date: col(b, schema::VACCINATION_DATE)?
                .as_primitive::<TimestampMillisecondType>(),
            dose: col(b, schema::DOSE)?.as_primitive::<Int64Type>(),
            total_doses: col(b, schema::TOTAL_DOSES)?.as_primitive::<Int64Type>(),
            dob: col(b, schema::RECIPIENT_DOB)?.as_primitive::<Date32Type>(),
            age: s(schema::RECIPIENT_AGE)?,
            effective_start: col(b, schema::EFFECTIVE_START)?.as_primitive::<Date32Type>(),
            ingest: col(b, schema::INGEST_TIME)?.as_primitive::<TimestampMillisecondType>(),
            meta: s("meta")?,
            kind: s(schema::EVENT_KIND)?,
            texts,
        })
    }
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i))
        .then(|| a.value(i))
        .filter(|s| !s.trim().is_empty())
}

fn opt<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    i: usize,
) -> Option<T::Native> {
    (!a.is_null(i)).then(|| a.value(i))
}

impl Validate {
    fn check_row(&self, c: &Cols<'_>, i: usize) -> Option<Reason> {
        let kind = EventKind::parse(c.kind.value(i));
        if kind.is_some_and(|k| !k.issues_certificate()) {
            return self.check_status_change(c, i);
        }
        for (field, present) in [
            (
                "preEnrollmentCode",
                opt_str(c.pre_enrollment_code, i).is_some(),
            ),
            ("recipient.name", opt_str(c.recipient_name, i).is_some()),
            ("vaccination.name", opt_str(c.vaccine_name, i).is_some()),
            ("vaccination.date", !c.vaccination_date.is_null(i)),
            ("vaccination.dose", !c.dose.is_null(i)),
        ] {
            if !present {
                return Some(Reason::new("missing_field", format!("{field} is required")));
            }
        }
        let age = opt_str(c.age, i);
        let dob = opt(c.dob, i);
        if age.is_none() && dob.is_none() {
            return Some(Reason::new(
                "missing_age_and_dob",
                "recipient.age or recipient.dob is required",
            ));
        }
        if let Some(r) = self.check_texts(c, i) {
            return Some(r);
        }
        if let Some(a) = age {
            match a.trim().parse::<u32>() {
                Ok(n) if n <= 150 => {}
                _ => {
                    return Some(Reason::new(
                        "invalid_age",
                        format!(
                            "recipient.age {:?} is not a whole number 0..150",
                            divoc_model::event::truncate(a, 20)
                        ),
                    ))
                }
            }
        }
        let dose = c.dose.value(i);
        let total = opt(c.total_doses, i);
        if dose < 1 || dose > self.cfg.max_doses {
            return Some(Reason::new(
                "dose_out_of_range",
                format!("vaccination.dose {dose} must be 1..={}", self.cfg.max_doses),
            ));
        }
        if let Some(t) = total {
            if t < 1 || t > self.cfg.max_doses || dose > t {
                return Some(Reason::new(
                    "dose_out_of_range",
                    format!("vaccination.dose {dose} must be 1..=totalDoses ({t})"),
                ));
            }
        }
        let now = c.ingest.value(i) + self.cfg.future_skew_hours * 3_600_000;
        let vdate = c.vaccination_date.value(i);
        let vday = vdate.div_euclid(DAY_MS) as i32;
        if vdate > now {
            return Some(Reason::new(
                "future_date",
                "vaccination.date is in the future",
            ));
        }
        if let Some(d) = dob {
            if i64::from(d) * DAY_MS > now {
                return Some(Reason::new("future_date", "recipient.dob is in the future"));
            }
        }
        if let Some(d) = opt(c.effective_start, i) {
            if i64::from(d) * DAY_MS > now {
                return Some(Reason::new(
                    "future_date",
                    "vaccination.effectiveStart is in the future",
                ));
            }
        }
        if vday < self.earliest_day || dob.is_some_and(|d| d < self.earliest_day) {
            return Some(Reason::new(
                "date_out_of_range",
                format!("dates before {} are not accepted", self.cfg.earliest_date),
            ));
        }
        if dob.is_some_and(|d| d > vday) {
            return Some(Reason::new(
                "dob_after_vaccination",
                "recipient.dob is after vaccination.date",
            ));
        }
        let name = c.vaccine_name.value(i);
        if self.catalogue.lookup(name).is_none() {
            return Some(Reason::new(
                "unknown_vaccine",
                format!("vaccination.name {:?} is not in the vaccine catalogue; add it to vaccines.toml", divoc_model::event::truncate(name, 40)),
            ));
        }
        None
    }
}

impl Validate {
    /// Length and control-character rules of every text field and `meta`.
    fn check_texts(&self, c: &Cols<'_>, i: usize) -> Option<Reason> {
        for (name, arr) in &c.texts {
            if arr.is_null(i) {
                continue;
            }
            let v = arr.value(i);
            if v.len() > self.cfg.max_text_bytes {
                return Some(Reason::new(
                    "field_too_long",
                    format!(
                        "{name} is {} bytes; the limit is {}",
                        v.len(),
                        self.cfg.max_text_bytes
                    ),
                ));
            }
            if v.chars().any(char::is_control) {
                return Some(Reason::new(
                    "invalid_characters",
                    format!("{name} contains control characters; remove them"),
                ));
            }
        }
        if !c.meta.is_null(i) && c.meta.value(i).len() > self.cfg.max_meta_bytes {
            return Some(Reason::new(
                "field_too_long",
                format!("meta exceeds {} bytes", self.cfg.max_meta_bytes),
            ));
        }
        None
    }

    /// `revoke`, `suspend`, `lift_suspension`: the key of the dose and nothing else is required.
    fn check_status_change(&self, c: &Cols<'_>, i: usize) -> Option<Reason> {
        if opt_str(c.pre_enrollment_code, i).is_none() {
            return Some(Reason::new(
                "missing_field",
                "preEnrollmentCode is required",
            ));
        }
        if c.dose.is_null(i) {
            return Some(Reason::new("missing_field", "vaccination.dose is required"));
        }
        if let Some(r) = self.check_texts(c, i) {
            return Some(r);
        }
        let dose = c.dose.value(i);
        if dose < 1 || dose > self.cfg.max_doses {
            return Some(Reason::new(
                "dose_out_of_range",
                format!("vaccination.dose {dose} must be 1..={}", self.cfg.max_doses),
            ));
        }
        None
    }
}

impl Operator for Validate {
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError> {
        let (batch, normalized) = normalize_texts(batch)?;
        if let Some(counter) = &self.normalized {
            counter.inc_by(normalized);
        }
        let cols = Cols::new(&batch)?;
        let n = batch.num_rows();
        let verdicts: Vec<Option<Reason>> = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| self.check_row(&cols, i))
            .collect();
        let mut rejections = Rejections::default();
        let mut keep = Vec::with_capacity(n);
        for (i, v) in verdicts.into_iter().enumerate() {
            keep.push(v.is_none());
            if let Some(r) = v {
                rejections.push(i, r);
            }
        }
        if rejections.is_empty() {
            return Ok(Processed {
                output: batch,
                dead_letters: None,
            });
        }
        let output = filter_record_batch(&batch, &BooleanArray::from(keep))?;
        let dead = rejections.into_dead_letters(&batch, stage)?;
        Ok(Processed {
            output,
            dead_letters: Some(dead),
        })
    }
}

#[cfg(test)]
mod tests;
