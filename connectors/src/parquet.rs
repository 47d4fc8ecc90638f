//! Epoch-buffered, partitioned Parquet output: the publish sink and the dead-letter sink share it.
//!
//! Layout: `<prefix>/tenant=<tenant>/date=<YYYY-MM-DD of ingest_time, UTC>/part-<epoch:012>.parquet`.
//! One file per partition per epoch. Rows within a file are in arrival order, which replay reproduces,
//! and epoch boundaries are replayed from the source intent logs, so a replay rewrites the same keys
//! with the same bytes.

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{Date32Type, SchemaRef, TimestampMillisecondType};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use std::collections::BTreeMap;

use divoc_model::schema::format_date;
pub use divoc_model::schema::sanitize_partition_value;
use divoc_pipeline::columns::envelope;
use divoc_pipeline::EngineError;

use crate::storage::Storage;

/// Buffers one epoch of rows per (tenant, date) partition and writes them at the barrier.
pub struct PartitionedParquet {
    prefix: String,
    storage: Storage,
    /// Columns dropped before writing (e.g. `raw` for accepted events).
    drop_columns: Vec<String>,
    /// The column whose UTC date names the `date=` partition (a millisecond timestamp or a Date32).
    date_column: String,
    buffers: BTreeMap<(String, String), Vec<RecordBatch>>,
    rows: u64,
}

/// Keys and row count of one flushed epoch.
pub struct Flushed {
    pub objects: Vec<String>,
    pub rows: u64,
}

impl PartitionedParquet {
    pub fn new(storage: Storage, prefix: impl Into<String>, drop_columns: Vec<String>) -> Self {
        Self {
            prefix: prefix.into(),
            storage,
            drop_columns,
            date_column: envelope::INGEST_TIME.name.to_owned(),
            buffers: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Partitions by the date of `column` instead of the ingest time.
    pub fn with_date_column(mut self, column: &str) -> Self {
        self.date_column = column.to_owned();
        self
    }

    pub fn buffered_rows(&self) -> u64 {
        self.rows
    }

    /// Splits `batch` by tenant and ingest date and buffers the parts.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.project(batch)?;
        let tenant = batch
            .column_by_name(envelope::TENANT.name)
            .ok_or_else(|| EngineError::Schema("output batch lacks tenant".into()))?
            .as_string::<i32>()
            .clone();
        let date_col = batch.column_by_name(&self.date_column).ok_or_else(|| {
            EngineError::Schema(format!("output batch lacks {}", self.date_column))
        })?;
        let days: Vec<Option<i32>> =
            if let Some(ts) = date_col.as_primitive_opt::<TimestampMillisecondType>() {
                ts.iter()
                    .map(|v| v.map(|ms| ms.div_euclid(86_400_000) as i32))
                    .collect()
            } else if let Some(d) = date_col.as_primitive_opt::<Date32Type>() {
                d.iter().collect()
            } else {
                return Err(EngineError::Schema(format!(
                    "{} must be a millisecond timestamp or a date",
                    self.date_column
                )));
            };
        let key_of = |i: usize| -> (String, String) {
            let date = days[i].map_or_else(|| "unknown".to_owned(), format_date);
            (tenant.value(i).to_owned(), date)
        };
        self.rows += batch.num_rows() as u64;
        let first = key_of(0);
        // Common case: the whole batch is one partition; avoid per-row work.
        let single =
            (1..batch.num_rows()).all(|i| tenant.value(i) == first.0 && key_of(i).1 == first.1);
        if single {
            self.buffers.entry(first).or_default().push(batch);
            return Ok(());
        }
        let mut keys: BTreeMap<(String, String), Vec<bool>> = BTreeMap::new();
        for i in 0..batch.num_rows() {
            let k = key_of(i);
            let mask = keys
                .entry(k)
                .or_insert_with(|| vec![false; batch.num_rows()]);
            mask[i] = true;
        }
        for (k, mask) in keys {
            let part = filter_record_batch(&batch, &arrow::array::BooleanArray::from(mask))?;
            self.buffers.entry(k).or_default().push(part);
        }
        Ok(())
    }

    fn project(&self, batch: RecordBatch) -> Result<RecordBatch, EngineError> {
        if self.drop_columns.is_empty() {
            return Ok(batch);
        }
        let schema = batch.schema();
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|i| {
                !self
                    .drop_columns
                    .iter()
                    .any(|d| d == schema.field(*i).name())
            })
            .collect();
        Ok(batch.project(&keep)?)
    }

    /// Writes every buffered partition as `part-<epoch>.parquet`, durably, and clears the buffers.
    pub fn flush(&mut self, epoch: u64) -> Result<Flushed, EngineError> {
        let buffers = std::mem::take(&mut self.buffers);
        let rows = std::mem::replace(&mut self.rows, 0);
        let encoded: Vec<Result<(String, Bytes), EngineError>> = buffers
            .into_par_iter()
            .map(|((tenant, date), batches)| {
                let key = format!(
                    "{}/tenant={}/date={}/part-{epoch:012}.parquet",
                    self.prefix,
                    sanitize_partition_value(&tenant),
                    date
                );
                let schema: SchemaRef = batches[0].schema();
                let batch = concat_batches(&schema, &batches)?;
                Ok((key, encode_parquet(&batch)?))
            })
            .collect();
        let mut objects = Vec::with_capacity(encoded.len());
        for item in encoded {
            let (key, bytes) = item?;
            self.storage.put(&key, bytes)?;
            objects.push(key);
        }
        Ok(Flushed { objects, rows })
    }
}

/// Parquet bytes for one batch: zstd, one row group per 128k rows, statistics on.
pub fn encode_parquet(batch: &RecordBatch) -> Result<Bytes, EngineError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).map_err(parquet_err)?,
        ))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 4 + 1024);
    let mut writer =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    writer.close().map_err(parquet_err)?;
    Ok(Bytes::from(buf))
}

/// Reads every Parquet object under `prefix` into batches (tests, demo summaries, tools).
pub fn read_parquet_objects(
    storage: &Storage,
    prefix: &str,
) -> Result<Vec<RecordBatch>, EngineError> {
    let mut out = Vec::new();
    for key in storage.list(prefix)? {
        if key.ends_with(".parquet") {
            out.extend(read_parquet_object(storage, &key)?);
        }
    }
    Ok(out)
}

/// Reads one Parquet object into batches; a missing object reads as no batches.
pub fn read_parquet_object(storage: &Storage, key: &str) -> Result<Vec<RecordBatch>, EngineError> {
    let Some(bytes) = storage.get(key)? else {
        return Ok(Vec::new());
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(parquet_err)?;
    reader.map(|b| Ok(b?)).collect()
}

fn parquet_err(e: parquet::errors::ParquetError) -> EngineError {
    EngineError::external("parquet", e)
}
