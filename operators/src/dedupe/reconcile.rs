//! Reconciliation inside `dedupe`: a certify request may carry the registry's view of the
//! person's earlier doses (`meta.vaccinations[]`: `{name, dose, manufacturer, date, batch}`). Each
//! is compared with the stored certificate of that dose (calendar date, batch, vaccine name,
//! manufacturer); a dose that differs gets an `update` event, built from the stored event with the
//! registry's fields, and issued in the same batch right after the request that carried it.
//!
//! The stored event of each dose's current certificate is kept in Arrow's row format (every event
//! column but `raw`) in the `details` keyspace, written with the certificate state.

use std::sync::Arc;

use arrow::array::{
    new_null_array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, Rows, SortField};
use divoc_model::columns::{self, EVENT_COLUMNS};
use divoc_model::schema::parse_datetime;
use divoc_pipeline::EngineError;
use serde::Deserialize;

/// One earlier dose as the registry sees it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EarlierDose {
    pub dose: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub batch: Option<String>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    vaccinations: Vec<serde_json::Value>,
}

/// The earlier doses a request's `meta` lists (entries that do not parse are skipped: the
/// reconciliation is the registry's hint, not part of the request's validity).
pub fn earlier_doses(meta: &str) -> Vec<(EarlierDose, String)> {
    let Ok(m) = serde_json::from_str::<Meta>(meta) else {
        return Vec::new();
    };
    m.vaccinations
        .into_iter()
        .filter_map(|v| {
            let text = v.to_string();
            serde_json::from_value::<EarlierDose>(v)
                .ok()
                .map(|d| (d, text))
        })
        .collect()
}

fn event_fields() -> Vec<arrow::datatypes::Field> {
    EVENT_COLUMNS
        .iter()
        .filter(|c| c.name != columns::RAW.name)
        .map(|c| c.field())
        .collect()
}

/// Encodes and decodes stored events.
pub struct Details {
    converter: RowConverter,
}

impl Details {
    pub fn new() -> Result<Self, EngineError> {
        let fields = event_fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Self {
            converter: RowConverter::new(fields)?,
        })
    }

    /// Every row of `batch` in row format (event columns without `raw`).
    pub fn rows(&self, batch: &RecordBatch) -> Result<Rows, EngineError> {
        let cols = event_fields()
            .iter()
            .map(|f| {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    EngineError::Schema(format!("dedupe reconcile needs column {}", f.name()))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.converter.convert_columns(&cols)?)
    }

    /// The stored event's columns (event columns without `raw`), one row.
    fn decode(&self, bytes: &[u8]) -> Result<Vec<ArrayRef>, EngineError> {
        let parser = self.converter.parser();
        Ok(self.converter.convert_rows([parser.parse(bytes)])?)
    }

    /// Whether the stored event disagrees with the registry's view of that dose.
    pub fn differs(&self, stored: &[u8], dose: &EarlierDose) -> Result<bool, EngineError> {
        let cols = self.decode(stored)?;
        let by = |name: &str| -> Option<&ArrayRef> {
            event_fields()
                .iter()
                .position(|f| f.name() == name)
                .map(|i| &cols[i])
        };
        let text = |name: &str| -> Option<String> {
            let a = by(name)?.as_string_opt::<i32>()?;
            arrow::array::Array::is_valid(a, 0).then(|| a.value(0).trim().to_owned())
        };
        let day = by(columns::VACCINATION_DATE.name)
            .and_then(|a| a.as_primitive_opt::<TimestampMillisecondType>())
            .filter(|a| arrow::array::Array::is_valid(*a, 0))
            .map(|a| a.value(0).div_euclid(86_400_000));
        let wanted_day = dose
            .date
            .as_deref()
            .and_then(parse_datetime)
            .map(|ms| ms.div_euclid(86_400_000));
        let same = |stored: Option<String>, wanted: &Option<String>| {
            stored.unwrap_or_default() == wanted.as_deref().unwrap_or("").trim()
        };
        Ok(day != wanted_day
            || !same(text(columns::VACCINE_BATCH.name), &dose.batch)
            || !same(text(columns::VACCINE_NAME.name), &dose.name)
            || !same(text(columns::VACCINE_MANUFACTURER.name), &dose.manufacturer))
    }

    /// The `update` event correcting a stored dose: the stored event with the registry's name,
    /// batch, manufacturer and date, in `schema`'s column order, tagged with the triggering row's
    /// ingest time and a source id of its own (`<source id>#reconcile-dose-<n>`).
    pub fn corrected(
        &self,
        stored: &[u8],
        dose: &EarlierDose,
        entry_text: &str,
        schema: &SchemaRef,
        trigger: (&str, u64, i64),
    ) -> Result<Option<RecordBatch>, EngineError> {
        let Some(date) = dose.date.as_deref().and_then(parse_datetime) else {
            return Ok(None);
        };
        let cols = self.decode(stored)?;
        let fields = event_fields();
        let (source_id, offset, ingest_ms) = trigger;
        let text =
            |v: &Option<String>| -> ArrayRef { Arc::new(StringArray::from(vec![v.clone()])) };
        let mut out = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let name = f.name().as_str();
            let col: ArrayRef = match name {
                n if n == columns::VACCINE_NAME.name => text(&dose.name),
                n if n == columns::VACCINE_BATCH.name => text(&dose.batch),
                n if n == columns::VACCINE_MANUFACTURER.name => text(&dose.manufacturer),
                n if n == columns::VACCINATION_DATE.name => {
                    Arc::new(TimestampMillisecondArray::from(vec![date]).with_timezone("+00:00"))
                }
                n if n == columns::EVENT_KIND.name => Arc::new(StringArray::from(vec!["update"])),
                n if n == columns::SOURCE_ID.name => Arc::new(StringArray::from(vec![format!(
                    "{source_id}#reconcile-dose-{}",
                    dose.dose
                )])),
                n if n == columns::SOURCE_OFFSET.name => Arc::new(UInt64Array::from(vec![offset])),
                n if n == columns::INGEST_TIME.name => Arc::new(
                    TimestampMillisecondArray::from(vec![ingest_ms]).with_timezone("+00:00"),
                ),
                n if n == columns::RAW.name => Arc::new(StringArray::from(vec![entry_text])),
                n if n == columns::SUSPEND_UNTIL.name => new_null_array(f.data_type(), 1),
                n => match fields.iter().position(|g| g.name() == n) {
                    Some(i) => cols[i].clone(),
                    None => new_null_array(f.data_type(), 1),
                },
            };
            out.push(col);
        }
        Ok(Some(RecordBatch::try_new(schema.clone(), out)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_doses_come_from_meta_and_bad_entries_are_skipped() {
        let meta = r#"{"vaccinations":[{"dose":1,"name":"Covishield","batch":"B1","date":"2021-05-01"},{"dose":"x"}],"other":1}"#;
        let d = earlier_doses(meta);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0.dose, 1);
        assert_eq!(d[0].0.batch.as_deref(), Some("B1"));
        assert!(earlier_doses("not json").is_empty());
        assert!(earlier_doses("{}").is_empty());
    }
}
