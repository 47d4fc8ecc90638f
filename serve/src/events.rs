//! Download events for analytics (DIVOC recorded every certificate download).
//!
//! Each served request becomes one row (time, tenant, certificate id, format, language, HTTP
//! status, bytes). Rows are buffered and written as Parquet under
//! `analytics/downloads/date=<YYYY-MM-DD>/part-<first event ms>-<seq>.parquet` every few seconds
//! and on shutdown, so DataFusion reads them next to the certificates. No names, contacts or
//! identity numbers are recorded.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use arrow::array::{StringBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt64Builder};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use divoc_connectors::parquet::encode_parquet;
use divoc_connectors::storage::Storage;
use divoc_model::schema::format_date;

/// Key prefix of the download events.
pub const DOWNLOADS_PREFIX: &str = "analytics/downloads";

/// One served download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadEvent {
    pub time_ms: i64,
    pub tenant: String,
    pub certificate_id: Option<String>,
    pub format: String,
    pub language: Option<String>,
    pub status: u16,
    pub bytes: u64,
}

/// Buffers download events and writes them to the object store.
#[derive(Clone)]
pub struct DownloadLog {
    inner: Arc<Mutex<Vec<DownloadEvent>>>,
    storage: Storage,
    seq: Arc<std::sync::atomic::AtomicU64>,
}

impl DownloadLog {
    pub fn new(storage: Storage) -> Self {
        DownloadLog {
            inner: Arc::default(),
            storage,
            seq: Arc::default(),
        }
    }

    pub fn record(&self, event: DownloadEvent) {
        if let Ok(mut buf) = self.inner.lock() {
            buf.push(event);
        }
    }

    /// Writes what is buffered (one object per event date); returns the keys written.
    pub fn flush(&self) -> Result<Vec<String>> {
        let events = match self.inner.lock() {
            Ok(mut buf) => std::mem::take(&mut *buf),
            Err(_) => return Ok(Vec::new()),
        };
        let mut by_date: std::collections::BTreeMap<String, Vec<DownloadEvent>> =
            Default::default();
        for e in events {
            let days = e.time_ms.div_euclid(86_400_000) as i32;
            by_date.entry(format_date(days)).or_default().push(e);
        }
        let mut keys = Vec::new();
        let mut dates = by_date.into_iter();
        while let Some((date, events)) = dates.next() {
            let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let key = format!(
                "{DOWNLOADS_PREFIX}/date={date}/part-{:013}-{seq:06}.parquet",
                events[0].time_ms
            );
            let batch = to_batch(&events)?;
            if let Err(e) = self.storage.put(&key, encode_parquet(&batch)?) {
                // Keep this date's events and every date not yet written for the next attempt.
                if let Ok(mut buf) = self.inner.lock() {
                    buf.extend(events);
                    buf.extend(dates.flat_map(|(_, rest)| rest));
                }
                return Err(anyhow::anyhow!("writing {key}: {e}"));
            }
            keys.push(key);
        }
        Ok(keys)
    }
}

/// The download events' schema (declared with the other analytics tables in `divoc-model`).
pub fn schema() -> Arc<Schema> {
    divoc_model::analytics::downloads_schema()
}

fn to_batch(events: &[DownloadEvent]) -> Result<RecordBatch> {
    let mut time = TimestampMillisecondBuilder::new().with_timezone("+00:00");
    let mut tenant = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut format = StringBuilder::new();
    let mut language = StringBuilder::new();
    let mut status = UInt16Builder::new();
    let mut bytes = UInt64Builder::new();
    for e in events {
        time.append_value(e.time_ms);
        tenant.append_value(&e.tenant);
        id.append_option(e.certificate_id.as_deref());
        format.append_value(&e.format);
        language.append_option(e.language.as_deref());
        status.append_value(e.status);
        bytes.append_value(e.bytes);
    }
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(time.finish()),
            Arc::new(tenant.finish()),
            Arc::new(id.finish()),
            Arc::new(format.finish()),
            Arc::new(language.finish()),
            Arc::new(status.finish()),
            Arc::new(bytes.finish()),
        ],
    )?)
}
