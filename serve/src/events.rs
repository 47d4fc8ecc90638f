//! Events the read side records for analytics: certificate downloads (DIVOC recorded every one)
//! and the outcomes the verify page reports.
//!
//! Each served download becomes one row (time, tenant, certificate id, format, language, HTTP
//! status, bytes); each reported verification one row (time, outcome, format, reason code). Rows
//! are buffered and written as Parquet under
//! `<prefix>/date=<YYYY-MM-DD>/part-<first event ms>-<seq>.parquet` every few seconds and on
//! shutdown, so DataFusion reads them next to the certificates. No names, contacts or identity
//! numbers are recorded.

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

/// Key prefix of the verification outcomes.
pub const VERIFICATIONS_PREFIX: &str = "analytics/verifications";

/// One verification the verify page reported.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationEvent {
    pub time_ms: i64,
    pub outcome: String,
    pub format: String,
    pub reason: Option<String>,
}

/// A kind of event the server logs.
pub trait LoggedEvent: Clone + Send + 'static {
    /// Key prefix of its Parquet files.
    const PREFIX: &'static str;
    fn time_ms(&self) -> i64;
    fn to_batch(events: &[Self]) -> Result<RecordBatch>;
}

impl LoggedEvent for DownloadEvent {
    const PREFIX: &'static str = DOWNLOADS_PREFIX;
    fn time_ms(&self) -> i64 {
        self.time_ms
    }
    fn to_batch(events: &[Self]) -> Result<RecordBatch> {
        to_batch(events)
    }
}

impl LoggedEvent for VerificationEvent {
    const PREFIX: &'static str = VERIFICATIONS_PREFIX;
    fn time_ms(&self) -> i64 {
        self.time_ms
    }
    fn to_batch(events: &[Self]) -> Result<RecordBatch> {
        let mut time = TimestampMillisecondBuilder::new().with_timezone("+00:00");
        let (mut outcome, mut format, mut reason) = (
            StringBuilder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for e in events {
            time.append_value(e.time_ms);
            outcome.append_value(&e.outcome);
            format.append_value(&e.format);
            reason.append_option(e.reason.as_deref());
        }
        Ok(RecordBatch::try_new(
            divoc_model::analytics::verifications_schema(),
            vec![
                Arc::new(time.finish()),
                Arc::new(outcome.finish()),
                Arc::new(format.finish()),
                Arc::new(reason.finish()),
            ],
        )?)
    }
}

/// Certificate downloads.
pub type DownloadLog = EventLog<DownloadEvent>;
/// Verify page outcomes.
pub type VerificationLog = EventLog<VerificationEvent>;

/// Buffers events and writes them to the object store.
#[derive(Clone)]
pub struct EventLog<E> {
    inner: Arc<Mutex<Vec<E>>>,
    storage: Storage,
    seq: Arc<std::sync::atomic::AtomicU64>,
}

impl<E: LoggedEvent> EventLog<E> {
    pub fn new(storage: Storage) -> Self {
        EventLog {
            inner: Arc::default(),
            storage,
            seq: Arc::default(),
        }
    }

    pub fn record(&self, event: E) {
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
        let mut by_date: std::collections::BTreeMap<String, Vec<E>> = Default::default();
        for e in events {
            let days = e.time_ms().div_euclid(86_400_000) as i32;
            by_date.entry(format_date(days)).or_default().push(e);
        }
        let mut keys = Vec::new();
        let mut dates = by_date.into_iter();
        while let Some((date, events)) = dates.next() {
            let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let key = format!(
                "{}/date={date}/part-{:013}-{seq:06}.parquet",
                E::PREFIX,
                events[0].time_ms()
            );
            let batch = E::to_batch(&events)?;
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
