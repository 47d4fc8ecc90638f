//! Rollup counts: a sum of counts per distinct key, kept in Arrow's row format (one byte string
//! per key, no per-row allocation of the key's parts), and the compaction of rollup partitions.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::Date32Array;
use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use divoc_model::analytics::rollup_files::{self, classify};
use divoc_model::analytics::{self as an, certificate_rollup_schema, facility_rollup_schema};
use divoc_pipeline::columns::Column;
use divoc_pipeline::EngineError;

use crate::parquet::{encode_parquet, read_parquet_object};
use crate::storage::Storage;

/// Sums counts by key for one rollup table. The table's last column is the count, the others the
/// key.
pub struct RollupCounts {
    schema: SchemaRef,
    converter: RowConverter,
    counts: HashMap<Box<[u8]>, i64>,
}

impl RollupCounts {
    pub fn new(schema: SchemaRef) -> Result<Self, EngineError> {
        let keys = schema.fields().len() - 1;
        let fields = schema.fields()[..keys]
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Self {
            schema,
            converter: RowConverter::new(fields)?,
            counts: HashMap::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Adds one count per row of `keys` (`counts = None`) or the given counts.
    pub fn add(
        &mut self,
        keys: &[ArrayRef],
        counts: Option<&Int64Array>,
    ) -> Result<(), EngineError> {
        let rows = self.converter.convert_columns(keys)?;
        for (i, row) in rows.iter().enumerate() {
            let n = counts.map_or(1, |c| c.value(i));
            if let Some(v) = self.counts.get_mut(row.as_ref()) {
                *v += n;
            } else {
                self.counts.insert(row.as_ref().into(), n);
            }
        }
        Ok(())
    }

    /// Adds the rows of a batch in this table's schema (e.g. a rollup file read back).
    pub fn add_counted(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let n = batch.num_columns();
        if n != self.schema.fields().len() {
            return Err(EngineError::Schema(format!(
                "rollup file has {n} columns, the table {}",
                self.schema.fields().len()
            )));
        }
        let counts = batch
            .column(n - 1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| EngineError::Schema("rollup count column is not Int64".into()))?;
        self.add(&batch.columns()[..n - 1], Some(counts))
    }

    /// The sums so far, sorted by key (so equal input gives equal files), and empties the counts.
    pub fn take(&mut self) -> Result<RecordBatch, EngineError> {
        let mut entries: Vec<(Box<[u8]>, i64)> =
            std::mem::take(&mut self.counts).into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let parser = self.converter.parser();
        let mut columns = self
            .converter
            .convert_rows(entries.iter().map(|(k, _)| parser.parse(k)))?;
        columns.push(Arc::new(Int64Array::from_iter_values(
            entries.iter().map(|(_, v)| *v),
        )) as ArrayRef);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The two rollups of the analytics table, counted from analytics rows.
pub struct AnalyticsRollups {
    certificates: RollupCounts,
    facilities: RollupCounts,
}

fn column(batch: &RecordBatch, c: Column) -> Result<&ArrayRef, EngineError> {
    batch
        .column_by_name(c.name)
        .ok_or_else(|| EngineError::Schema(format!("analytics row lacks {}", c.name)))
}

impl AnalyticsRollups {
    pub fn new() -> Result<Self, EngineError> {
        Ok(Self {
            certificates: RollupCounts::new(certificate_rollup_schema())?,
            facilities: RollupCounts::new(facility_rollup_schema())?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    /// Counts a batch of analytics rows ([`divoc_model::analytics::analytics_schema`]).
    pub fn add_rows(&mut self, rows: &RecordBatch) -> Result<(), EngineError> {
        let issued = column(rows, an::ISSUED_AT)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| {
                EngineError::Schema("issued_at is not a millisecond timestamp".into())
            })?;
        let issued_on: ArrayRef = Arc::new(Date32Array::from_iter_values(
            issued
                .values()
                .iter()
                .map(|ms| ms.div_euclid(86_400_000) as i32),
        ));
        let day = column(rows, an::VACCINATION_DATE)?;
        let keys = |cols: &[Column]| -> Result<Vec<ArrayRef>, EngineError> {
            let mut out = vec![issued_on.clone(), day.clone()];
            for c in cols {
                out.push(column(rows, *c)?.clone());
            }
            Ok(out)
        };
        self.certificates.add(
            &keys(&[
                an::TENANT,
                an::PROGRAM_ID,
                an::STATE,
                an::DISTRICT,
                an::VACCINE,
                an::DOSE,
                an::AGE_BAND,
                an::GENDER,
            ])?,
            None,
        )?;
        self.facilities.add(
            &keys(&[
                an::TENANT,
                an::FACILITY_ID,
                an::FACILITY_NAME,
                an::FACILITY_STATE,
                an::FACILITY_DISTRICT,
                an::VACCINE,
            ])?,
            None,
        )
    }

    /// `(certificate counts, facility counts)` so far, and empties both.
    pub fn take(&mut self) -> Result<(RecordBatch, RecordBatch), EngineError> {
        Ok((self.certificates.take()?, self.facilities.take()?))
    }
}

/// The partition directory of a rollup file key.
pub fn partition_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Compacts partition `dir` at `epoch` when it holds at least `after` live files: writes the sum
/// of the live files as `compact-<epoch>.parquet` and returns its key. Superseded files are left
/// for [`delete_superseded`] (after the epoch's checkpoint); readers ignore them already.
///
/// Deterministic: the live files of a partition at `epoch` are the same on a replay of `epoch`,
/// so a replay writes the same compact file (or finds it written and the partition small).
pub fn compact_partition(
    storage: &Storage,
    schema: &SchemaRef,
    dir: &str,
    epoch: u64,
    after: usize,
) -> Result<Option<String>, EngineError> {
    let keys = storage.list(&format!("{dir}/"))?;
    let (live, _) = classify(&keys);
    // Only files directly in this partition (list is recursive on object stores).
    let live: Vec<String> = live
        .into_iter()
        .filter(|k| partition_of(k) == dir)
        .collect();
    if live.len() < after {
        return Ok(None);
    }
    let mut counts = RollupCounts::new(schema.clone())?;
    for key in &live {
        for batch in read_parquet_object(storage, key)? {
            counts.add_counted(&batch)?;
        }
    }
    let key = rollup_files::compact_key(dir, epoch);
    storage.put(&key, encode_parquet(&counts.take()?)?)?;
    Ok(Some(key))
}

/// Deletes the files of partition `dir` that a newer compact file supersedes. Idempotent.
pub fn delete_superseded(storage: &Storage, dir: &str) -> Result<usize, EngineError> {
    let keys = storage.list(&format!("{dir}/"))?;
    let (_, superseded) = classify(&keys);
    let mut deleted = 0;
    for key in superseded.iter().filter(|k| partition_of(k) == dir) {
        storage.delete(key)?;
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("day", DataType::Date32, true),
            Field::new("state", DataType::Utf8, true),
            Field::new("certificates", DataType::Int64, false),
        ]))
    }

    fn keys(days: &[Option<i32>], states: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(Date32Array::from(days.to_vec())),
            Arc::new(StringArray::from(states.to_vec())),
        ]
    }

    fn totals(batch: &RecordBatch) -> Vec<(Option<i32>, Option<String>, i64)> {
        let d = batch
            .column(0)
            .as_primitive::<arrow::datatypes::Date32Type>();
        let s = batch.column(1).as_string::<i32>();
        let c = batch.column(2).as_primitive::<Int64Type>();
        (0..batch.num_rows())
            .map(|i| {
                (
                    arrow::array::Array::is_valid(d, i).then(|| d.value(i)),
                    arrow::array::Array::is_valid(s, i).then(|| s.value(i).to_owned()),
                    c.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn counts_by_key_including_nulls_sorted() {
        let mut c = RollupCounts::new(schema()).unwrap();
        c.add(
            &keys(
                &[Some(2), Some(1), Some(2), None],
                &[Some("Goa"), Some("Goa"), Some("Goa"), None],
            ),
            None,
        )
        .unwrap();
        c.add(&keys(&[None], &[None]), Some(&Int64Array::from(vec![5])))
            .unwrap();
        let got = totals(&c.take().unwrap());
        assert_eq!(
            got,
            vec![
                (None, None, 6),
                (Some(1), Some("Goa".into()), 1),
                (Some(2), Some("Goa".into()), 2)
            ]
        );
        assert!(c.is_empty());
    }

    fn storage(dir: &std::path::Path) -> (tokio::runtime::Runtime, Storage) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s = Storage::open(
            dir.to_str().unwrap(),
            &Default::default(),
            rt.handle().clone(),
        )
        .unwrap();
        (rt, s)
    }

    fn live_total(storage: &Storage, dir: &str) -> i64 {
        let (live, _) = classify(&storage.list(dir).unwrap());
        live.iter()
            .flat_map(|k| read_parquet_object(storage, k).unwrap())
            .map(|b| totals(&b).iter().map(|t| t.2).sum::<i64>())
            .sum()
    }

    #[test]
    fn compaction_keeps_the_totals_and_bounds_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (_rt, storage) = storage(tmp.path());
        let dir = "r/tenant=t/date=2026-12-01";
        let mut expected = 0;
        for epoch in 1..=10u64 {
            let mut c = RollupCounts::new(schema()).unwrap();
            let n = epoch as usize;
            let days: Vec<Option<i32>> = (0..n).map(|i| Some((i % 3) as i32)).collect();
            c.add(&keys(&days, &vec![Some("Goa"); n]), None).unwrap();
            expected += n as i64;
            let key = format!("{dir}/part-{epoch:012}.parquet");
            storage
                .put(&key, encode_parquet(&c.take().unwrap()).unwrap())
                .unwrap();
            let compacted = compact_partition(&storage, &schema(), dir, epoch, 4).unwrap();
            // Live files before this epoch's compaction: 1..=4 parts, or a compact + up to 3.
            assert_eq!(
                compacted.is_some(),
                epoch == 4 || epoch == 7 || epoch == 10,
                "epoch {epoch}"
            );
            assert_eq!(
                live_total(&storage, dir),
                expected,
                "epoch {epoch}: counted once"
            );
            // A replay of the epoch finds it compacted already and writes nothing new.
            assert_eq!(
                compact_partition(&storage, &schema(), dir, epoch, 4).unwrap(),
                None
            );
            delete_superseded(&storage, dir).unwrap();
            assert_eq!(live_total(&storage, dir), expected);
        }
        let files = storage.list(dir).unwrap();
        assert_eq!(files, vec![rollup_files::compact_key(dir, 10)]);
        let all = read_parquet_object(&storage, &files[0]).unwrap();
        assert_eq!(
            totals(&all[0]),
            vec![
                (Some(0), Some("Goa".into()), 22),
                (Some(1), Some("Goa".into()), 18),
                (Some(2), Some("Goa".into()), 15)
            ]
        );
    }
}
