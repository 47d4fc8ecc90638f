//! Keeps the certificate store up to date with the published Parquet.
//!
//! Each refresh lists the accepted prefix and indexes the objects not indexed yet, one at a time:
//! its rows are written (idempotent puts: a replayed object writes the same keys), then the object
//! is recorded as indexed, so a crash in between only indexes it again. An object that cannot be
//! read is set aside with its reason and tried again at the next refresh; it never stops the server
//! or the other objects. A row whose credential is not a DIVOC credential is skipped and counted.

use std::collections::HashMap;

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Int64Type, TimestampMillisecondType};
use divoc_connectors::storage::Storage;
use divoc_credential::VaccinationCredential;
use divoc_model::columns::{
    CREDENTIAL, PREVIOUS_CERTIFICATE_ID, QR_PAYLOAD, RECIPIENT_CONTACT, SUSPEND_UNTIL,
};
use divoc_model::event::EventKind;
use divoc_model::schema;
use rayon::prelude::*;

use super::codec::{key, mobile_digits, Record, Suspension};
use super::{contact_key, pre_key, CertificateStore};

/// What one refresh did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshReport {
    /// Objects indexed by this refresh.
    pub objects: usize,
    /// Certificates written.
    pub certificates: usize,
    /// Rows whose credential was unusable.
    pub skipped_rows: usize,
    /// Objects that could not be read (set aside, tried again next time).
    pub failed_objects: usize,
}

/// What indexing one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub certificates: usize,
    pub skipped_rows: usize,
}

pub struct Indexer {
    store: CertificateStore,
    storage: Storage,
    prefix: String,
    /// Object key -> its size when indexed.
    indexed: HashMap<String, u64>,
    failed: HashMap<String, String>,
}

impl Indexer {
    pub fn new(store: CertificateStore, storage: Storage, prefix: &str) -> Result<Self> {
        let mut indexed = HashMap::new();
        for entry in store.objects.iter() {
            let (k, v) = entry.into_inner()?;
            if let (Ok(name), Ok(size)) = (std::str::from_utf8(&k), <[u8; 8]>::try_from(v.as_ref()))
            {
                indexed.insert(name.to_owned(), u64::from_be_bytes(size));
            }
        }
        Ok(Self {
            store,
            storage,
            prefix: prefix.to_owned(),
            indexed,
            failed: HashMap::new(),
        })
    }

    /// Why the index no longer matches the published data, if it does not: an indexed object is
    /// gone or was rewritten with another size (the store was cleared and the pipeline run
    /// again). The index must then be rebuilt; serving it would answer with certificates that no
    /// longer exist.
    pub fn stale(&self) -> Result<Option<String>> {
        if self.indexed.is_empty() {
            return Ok(None);
        }
        let listed: HashMap<String, u64> =
            self.storage.list_sizes(&self.prefix)?.into_iter().collect();
        let mut changed: Vec<&String> = self
            .indexed
            .iter()
            .filter(|(k, size)| listed.get(*k) != Some(size))
            .map(|(k, _)| k)
            .collect();
        changed.sort();
        Ok(changed.first().map(|first| {
            format!(
                "{} indexed object(s) are gone or rewritten since they were indexed (first: {first})",
                changed.len()
            )
        }))
    }

    /// Objects that could not be indexed, with the reason.
    pub fn failed(&self) -> &HashMap<String, String> {
        &self.failed
    }

    /// Indexes the objects published since the last call. Fails only when the store cannot be
    /// listed; unreadable objects are reported in [`Indexer::failed`].
    pub fn refresh(&mut self) -> Result<RefreshReport> {
        let mut report = RefreshReport::default();
        let keys = self
            .storage
            .list_sizes(&self.prefix)
            .with_context(|| format!("cannot list {:?} in the store", self.prefix))?;
        for (object, size) in keys {
            if !object.ends_with(".parquet") || self.indexed.contains_key(&object) {
                continue;
            }
            match self.index_object(&object, size) {
                Ok(outcome) => {
                    self.failed.remove(&object);
                    report.objects += 1;
                    report.certificates += outcome.certificates;
                    report.skipped_rows += outcome.skipped_rows;
                    self.indexed.insert(object, size);
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    if self.failed.get(&object) != Some(&reason) {
                        tracing::warn!(object = %object, error = %reason,
                            "published object not indexed; its certificates are not served until it can be read");
                    }
                    self.failed.insert(object, reason);
                }
            }
        }
        report.failed_objects = self.failed.len();
        Ok(report)
    }

    fn index_object(&self, object: &str, size: u64) -> Result<BatchOutcome> {
        let mut total = BatchOutcome::default();
        let mut add = |batch: RecordBatch| -> Result<()> {
            let o = index_batch(&self.store, &batch)?;
            total.certificates += o.certificates;
            total.skipped_rows += o.skipped_rows;
            Ok(())
        };
        // Local files are read a row group at a time; other stores' objects are fetched whole.
        if let Some(root) = self.storage.local_root() {
            let path = root.join(object);
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                // Listed, then gone: nothing to index.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(total),
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            };
            for batch in parquet_reader(file)? {
                add(batch?)?;
            }
        } else {
            let Some(bytes) = self.storage.get(object)? else {
                return Ok(total);
            };
            for batch in parquet_reader(bytes)? {
                add(batch?)?;
            }
        }
        if total.skipped_rows > 0 {
            tracing::warn!(object = %object, rows = total.skipped_rows,
                "rows without a usable DIVOC credential were not indexed");
        }
        self.store
            .objects
            .insert(object.as_bytes(), size.to_be_bytes())?;
        self.store.persist()?;
        Ok(total)
    }
}

fn parquet_reader<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    Ok(
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(input)
            .context("not a Parquet file")?
            .with_batch_size(4096)
            .build()?,
    )
}

/// One published row, checked.
enum RowCheck {
    NotACertificate,
    Unusable,
    Ready(Record),
}

/// Indexes the certificates and withdrawals of one batch of published rows.
pub fn index_batch(store: &CertificateStore, batch: &RecordBatch) -> Result<BatchOutcome> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .with_context(|| {
                format!("published data lacks column {name}: was the pipeline run with sign and qr_payload?")
            })
    };
    let tenant = text(schema::TENANT)?;
    let ids = text(schema::CERTIFICATE_ID)?;
    let pre = text(schema::PRE_ENROLLMENT_CODE)?;
    let credential = text(CREDENTIAL.name)?;
    let state = text(schema::RECIPIENT_STATE).ok();
    let dose = batch
        .column_by_name(schema::DOSE)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .context("published data lacks column dose")?;
    let qr = batch
        .column_by_name(QR_PAYLOAD.name)
        .and_then(|c| c.as_binary_opt::<i32>())
        .context("published data lacks column qr_payload: add a qr_payload node")?;
    let kinds = text(schema::EVENT_KIND).ok();
    let contacts = batch
        .column_by_name(RECIPIENT_CONTACT.name)
        .and_then(|c| c.as_list_opt::<i32>());
    let dobs = batch
        .column_by_name(schema::RECIPIENT_DOB)
        .and_then(|c| c.as_primitive_opt::<Date32Type>());
    let previous = batch
        .column_by_name(PREVIOUS_CERTIFICATE_ID.name)
        .and_then(|c| c.as_string_opt::<i32>());
    let ingest = batch
        .column_by_name(schema::INGEST_TIME)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>());
    let until = batch
        .column_by_name(SUSPEND_UNTIL.name)
        .and_then(|c| c.as_primitive_opt::<Date32Type>());

    // Parsing the credential and re-deriving its QR payload is the CPU work: spread it.
    let checked: Vec<RowCheck> = (0..batch.num_rows())
        .into_par_iter()
        .map(|i| {
            if ids.is_null(i) || credential.is_null(i) || qr.is_null(i) || tenant.is_null(i) {
                // Revocations and suspensions carry no credential.
                return RowCheck::NotACertificate;
            }
            let json = credential.value(i);
            let usable = serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .is_some_and(|v| VaccinationCredential::from_json(&v).is_ok());
            if !usable {
                return RowCheck::Unusable;
            }
            let published = qr.value(i);
            let derived = divoc_qr::zip_certificate(json.as_bytes());
            RowCheck::Ready(Record {
                pre_enrollment_code: if pre.is_null(i) { "" } else { pre.value(i) }.to_owned(),
                dose: if dose.is_null(i) { 0 } else { dose.value(i) },
                state: state
                    .filter(|s| s.is_valid(i))
                    .map(|s| s.value(i).to_owned()),
                credential_json: json.to_owned(),
                qr_payload: (derived != published).then(|| published.to_vec()),
            })
        })
        .collect();

    let mut outcome = BatchOutcome::default();
    let mut wb = store.db.batch();
    // Suspension events of this batch (later rows win over the stored state).
    let mut suspensions: std::collections::HashMap<String, Suspension> =
        std::collections::HashMap::new();
    for i in 0..batch.num_rows() {
        if tenant.is_null(i) {
            continue;
        }
        let t = tenant.value(i);
        let kind = kinds
            .filter(|k| k.is_valid(i))
            .and_then(|k| EventKind::parse(k.value(i)));
        if let Some(p) = previous.filter(|p| p.is_valid(i)) {
            wb.insert(&store.withdrawn, key(&[t, p.value(i)]), []);
            // A correction or a revoking re-issue revokes what it replaces; a plain re-issue
            // leaves the old certificate valid for verifiers (downloads move on either way).
            if kind != Some(EventKind::Reissue) {
                wb.insert(&store.revoked, key(&[p.value(i)]), []);
            }
        }
        if !ids.is_valid(i) {
            continue;
        }
        let id = ids.value(i);
        match kind {
            Some(EventKind::Revoke) => {
                wb.insert(&store.withdrawn, key(&[t, id]), []);
                wb.insert(&store.revoked, key(&[id]), []);
            }
            Some(k @ (EventKind::Suspend | EventKind::LiftSuspension)) => {
                let event = Suspension {
                    at_ms: ingest.filter(|c| c.is_valid(i)).map_or(0, |c| c.value(i)),
                    suspended: k == EventKind::Suspend,
                    until: until
                        .filter(|u| u.is_valid(i))
                        .map_or(i32::MAX, |u| u.value(i)),
                };
                let stored = match suspensions.get(id) {
                    Some(s) => Some(*s),
                    None => store
                        .suspensions
                        .get(key(&[id]))?
                        .and_then(|v| Suspension::decode(&v)),
                };
                if stored.is_none_or(|s| s.at_ms <= event.at_ms) {
                    suspensions.insert(id.to_owned(), event);
                    wb.insert(&store.suspensions, key(&[id]), event.encode());
                }
            }
            _ => {}
        }
    }
    for (i, check) in checked.into_iter().enumerate() {
        let record = match check {
            RowCheck::NotACertificate => continue,
            RowCheck::Unusable => {
                outcome.skipped_rows += 1;
                continue;
            }
            RowCheck::Ready(record) => record,
        };
        let (t, id) = (tenant.value(i), ids.value(i));
        if let (Some(contacts), Some(dobs)) = (contacts, dobs) {
            if contacts.is_valid(i) && dobs.is_valid(i) {
                let values = contacts.value(i);
                if let Some(numbers) = values.as_string_opt::<i32>() {
                    for m in numbers.iter().flatten().filter_map(mobile_digits) {
                        wb.insert(
                            &store.by_contact,
                            contact_key(t, &m, dobs.value(i), &record.pre_enrollment_code),
                            [],
                        );
                    }
                }
            }
        }
        wb.insert(
            &store.by_pre,
            pre_key(t, &record.pre_enrollment_code, record.dose, id),
            [],
        );
        wb.insert(&store.certs, key(&[t, id]), record.encode());
        wb.insert(&store.known_ids, key(&[id]), t.as_bytes());
        outcome.certificates += 1;
    }
    wb.commit()?;
    Ok(outcome)
}
