//! The certificates the download API serves, read from the published Parquet.
//!
//! Lookups by certificate id and by (tenant, preEnrollmentCode). The index is rebuilt from the
//! object store on start and refreshed by `refresh` (new `part-*.parquet` objects only), so it sees
//! what the pipeline has durably published. Each entry keeps the signed credential and the DIVOC
//! QR payload bytes; everything else (PDF, DCC, SHC, FHIR) is derived from them on request.
//!
//! Revoked certificates and certificates an update replaced are withdrawn: lookups by
//! preEnrollmentCode list only the current certificate of each dose, and a download by id of a
//! withdrawn one is refused (410).
//!
//! It holds every certificate in memory (about 2 KiB each): right for a tenant's few million
//! certificates on one machine, not for a national backlog; a keyed store replaces it when the
//! lookup issue (certificate id, preEnrollmentCode, mobile) is taken up.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use divoc_connectors::storage::Storage;
use divoc_credential::VaccinationCredential;
use divoc_model::columns::{CREDENTIAL, QR_PAYLOAD};
use divoc_model::event::EventKind;
use divoc_model::schema;

/// One published certificate.
#[derive(Debug, Clone)]
pub struct StoredCertificate {
    pub tenant: String,
    pub certificate_id: String,
    pub pre_enrollment_code: String,
    pub dose: i64,
    /// Recipient's state (chooses the PDF language when the request names none).
    pub state: Option<String>,
    /// The signed credential, as published (the bytes the QR carries).
    pub credential_json: String,
    pub credential: VaccinationCredential,
    /// DIVOC QR payload (ZIP of certificate.json).
    pub qr_payload: Vec<u8>,
}

/// In-memory index over the published certificates.
#[derive(Default)]
pub struct CertificateIndex {
    by_id: HashMap<String, Arc<StoredCertificate>>,
    /// (tenant, preEnrollmentCode) -> certificate ids, all doses.
    by_beneficiary: HashMap<(String, String), Vec<String>>,
    /// Ids revoked, or replaced by an update.
    withdrawn: HashSet<String>,
    /// (tenant, mobile digits, date of birth as days) -> preEnrollmentCodes: the facility's
    /// print search.
    by_contact: HashMap<(String, String, i32), BTreeSet<String>>,
    seen_objects: BTreeSet<String>,
}

impl CertificateIndex {
    /// Reads every accepted Parquet object under `prefix`.
    pub fn load(storage: &Storage, prefix: &str) -> Result<Self> {
        let mut index = CertificateIndex::default();
        index.refresh(storage, prefix)?;
        Ok(index)
    }

    /// Reads the objects published since the last call; returns how many certificates were added.
    pub fn refresh(&mut self, storage: &Storage, prefix: &str) -> Result<usize> {
        let mut added = 0;
        for key in storage.list(prefix)? {
            if !key.ends_with(".parquet") || self.seen_objects.contains(&key) {
                continue;
            }
            let Some(bytes) = storage.get(&key)? else {
                continue;
            };
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .with_context(|| format!("{key}: not a Parquet file"))?
                    .build()?;
            for batch in reader {
                added += self
                    .add_batch(&batch?)
                    .with_context(|| format!("reading {key}"))?;
            }
            self.seen_objects.insert(key);
        }
        Ok(added)
    }

    fn add_batch(&mut self, batch: &arrow::record_batch::RecordBatch) -> Result<usize> {
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
            .column_by_name(divoc_model::columns::RECIPIENT_CONTACT.name)
            .and_then(|c| c.as_list_opt::<i32>());
        let dobs = batch
            .column_by_name(schema::RECIPIENT_DOB)
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Date32Type>());
        let previous = batch
            .column_by_name(divoc_model::columns::PREVIOUS_CERTIFICATE_ID.name)
            .and_then(|c| c.as_string_opt::<i32>());
        let mut added = 0;
        for i in 0..batch.num_rows() {
            if let Some(p) = previous.filter(|p| p.is_valid(i)) {
                self.withdrawn.insert(p.value(i).to_owned());
            }
            if kinds.is_some_and(|k| k.value(i) == EventKind::Revoke.as_str()) && ids.is_valid(i) {
                self.withdrawn.insert(ids.value(i).to_owned());
            }
            if ids.is_null(i) || credential.is_null(i) || qr.is_null(i) {
                continue;
            }
            let json = credential.value(i);
            let parsed: serde_json::Value = serde_json::from_str(json)
                .with_context(|| format!("certificate {}: credential is not JSON", ids.value(i)))?;
            let cred = VaccinationCredential::from_json(&parsed)
                .with_context(|| format!("certificate {}: not a DIVOC credential", ids.value(i)))?;
            let entry = StoredCertificate {
                tenant: tenant.value(i).to_owned(),
                certificate_id: ids.value(i).to_owned(),
                pre_enrollment_code: pre.value(i).to_owned(),
                dose: dose.value(i),
                state: state
                    .filter(|s| !s.is_null(i))
                    .map(|s| s.value(i).to_owned()),
                credential_json: json.to_owned(),
                credential: cred,
                qr_payload: qr.value(i).to_vec(),
            };
            if let (Some(contacts), Some(dobs)) = (contacts, dobs) {
                if contacts.is_valid(i) && dobs.is_valid(i) {
                    let values = contacts.value(i);
                    if let Some(numbers) = values.as_string_opt::<i32>() {
                        for n in numbers.iter().flatten() {
                            if let Some(m) = mobile_digits(n) {
                                self.by_contact
                                    .entry((entry.tenant.clone(), m, dobs.value(i)))
                                    .or_default()
                                    .insert(entry.pre_enrollment_code.clone());
                            }
                        }
                    }
                }
            }
            let key = (entry.tenant.clone(), entry.pre_enrollment_code.clone());
            let list = self.by_beneficiary.entry(key).or_default();
            // A replayed epoch rewrites the same object; never count a certificate twice.
            if !list.contains(&entry.certificate_id) {
                list.push(entry.certificate_id.clone());
                added += 1;
            }
            self.by_id
                .insert(entry.certificate_id.clone(), Arc::new(entry));
        }
        Ok(added)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn by_id(&self, certificate_id: &str) -> Option<Arc<StoredCertificate>> {
        self.by_id.get(certificate_id).cloned()
    }

    /// The current certificates of everyone registered with this mobile number and date of birth
    /// (days since 1970-01-01), by preEnrollmentCode then dose.
    pub fn by_contact(&self, tenant: &str, mobile: &str, dob: i32) -> Vec<Arc<StoredCertificate>> {
        let Some(m) = mobile_digits(mobile) else {
            return Vec::new();
        };
        self.by_contact
            .get(&(tenant.to_owned(), m, dob))
            .into_iter()
            .flatten()
            .flat_map(|pre| self.doses(tenant, pre))
            .collect()
    }

    /// Revoked, or replaced by an update.
    pub fn is_withdrawn(&self, certificate_id: &str) -> bool {
        self.withdrawn.contains(certificate_id)
    }

    /// All doses of a beneficiary, ordered by dose (then id, so the latest correction wins ties).
    pub fn doses(&self, tenant: &str, pre_enrollment_code: &str) -> Vec<Arc<StoredCertificate>> {
        let mut out: Vec<Arc<StoredCertificate>> = self
            .by_beneficiary
            .get(&(tenant.to_owned(), pre_enrollment_code.to_owned()))
            .into_iter()
            .flatten()
            .filter(|id| !self.withdrawn.contains(*id))
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect();
        out.sort_by(|a, b| {
            a.dose
                .cmp(&b.dose)
                .then_with(|| a.certificate_id.cmp(&b.certificate_id))
        });
        out
    }
}

impl CertificateIndex {
    /// Copies which objects `other` has read, so a refresh into `self` reads only newer ones.
    pub fn seen_from(&mut self, other: &CertificateIndex) {
        self.seen_objects = other.seen_objects.clone();
    }

    /// Adds everything `newer` read.
    pub fn merge(&mut self, newer: CertificateIndex) {
        self.seen_objects.extend(newer.seen_objects);
        self.withdrawn.extend(newer.withdrawn);
        for (k, pres) in newer.by_contact {
            self.by_contact.entry(k).or_default().extend(pres);
        }
        for (key, ids) in newer.by_beneficiary {
            let list = self.by_beneficiary.entry(key).or_default();
            for id in ids {
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        self.by_id.extend(newer.by_id);
    }
}

impl CertificateIndex {
    /// A certificate of the beneficiary with the most doses (ties: smallest id), for samples.
    pub fn most_doses(&self) -> Option<Arc<StoredCertificate>> {
        let (key, _) = self
            .by_beneficiary
            .iter()
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| b.0.cmp(a.0)))?;
        self.doses(&key.0, &key.1).last().cloned()
    }
}

/// The last 10 digits of a phone number (`tel:+91 98765-43210` and `9876543210` match), or
/// none for fewer than 6 digits.
fn mobile_digits(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 6).then(|| digits[digits.len().saturating_sub(10)..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::mobile_digits;

    #[test]
    fn mobile_numbers_match_with_or_without_prefixes() {
        assert_eq!(
            mobile_digits("tel:+91 98765-43210").as_deref(),
            Some("9876543210")
        );
        assert_eq!(mobile_digits("9876543210").as_deref(), Some("9876543210"));
        assert_eq!(mobile_digits("tel:12"), None);
    }
}
