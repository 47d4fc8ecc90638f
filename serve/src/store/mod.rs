//! The keyed certificate store behind the download API: an embedded LSM store (fjall) on local
//! disk, kept up to date from the published Parquet by [`indexer`].
//!
//! Lookups by certificate id, by preEnrollmentCode (every current dose) and by mobile number and
//! date of birth (the facility's print search) are point reads and prefix scans: nothing is held
//! in memory per certificate, and the server starts without reading the published data again
//! (the store remembers which objects it has indexed). The tenant is the first part of every key,
//! so one tenant's token never reaches another's certificates.
//!
//! Keyspaces (keys are length-prefixed components, see [`codec`]):
//!
//! ```text
//! certs       tenant, certificateId                 -> Record (credential, preEnrollmentCode, dose, state)
//! by_pre      tenant, preEnrollmentCode, dose, id    -> ()
//! by_contact  tenant, mobile (last 10 digits), dob, preEnrollmentCode -> ()
//! withdrawn   tenant, certificateId                 -> ()   revoked, or replaced by an update
//! objects     object key                             -> rows read   (the published objects indexed)
//! ```
//!
//! Revoked certificates and certificates an update replaced are withdrawn: lookups by
//! preEnrollmentCode list only the current certificate of each dose, and a download by id of a
//! withdrawn one is refused (410).

pub mod codec;
pub mod indexer;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use divoc_credential::VaccinationCredential;
use fjall::config::{BlockSizePolicy, CompressionPolicy};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions};

use codec::{key, push_i32, push_i64, KeyReader, Record};

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

/// Sizing of the store's memory.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Block cache, bytes (the operating system's page cache comes on top).
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The store; cheap to clone, safe to share between threads (one indexer, many readers).
#[derive(Clone)]
pub struct CertificateStore {
    db: Database,
    certs: Keyspace,
    by_pre: Keyspace,
    by_contact: Keyspace,
    withdrawn: Keyspace,
    objects: Keyspace,
    /// Transparency log: (certificate id, leaf index) -> () for the entries the server followed.
    pub(crate) log_ids: Keyspace,
    /// Verification status by certificate id alone (ids are unique in a deployment: dedupe's
    /// `id_namespace` + counter), for verifiers that know no tenant: revoked ids (a revocation,
    /// a correction's or a revoking re-issue's replaced id) ...
    pub(crate) revoked: Keyspace,
    /// ... and suspensions: id -> (ingest ms of the event, suspended?, last day or i32::MAX),
    pub(crate) suspensions: Keyspace,
    /// ... and every certificate id stored (-> its tenant).
    pub(crate) known_ids: Keyspace,
}

/// What a verifier is told about a certificate id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not issued here (or not indexed yet).
    Unknown,
    Valid,
    Revoked,
    /// Suspended through this day (days since 1970), or until lifted.
    Suspended {
        until: Option<i32>,
    },
}

const SOURCE_KEY: &[u8] = b"\0source";

/// Memtable size per keyspace: what is not yet flushed sits in memory uncompressed (and is read
/// back from the journal on start), so it bounds both the server's memory and its start time.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

impl CertificateStore {
    /// Opens (or creates) the store at `dir` for the published data at `source` (the storage
    /// URL and prefix): a store built from other data is refused rather than served.
    pub fn open(dir: &Path, source: &str, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create index_dir {}", dir.display()))?;
        let db = Database::builder(dir)
            .cache_size(options.cache_bytes)
            .journal_compression(CompressionType::Lz4)
            .open()
            .with_context(|| {
                format!(
                    "cannot open the certificate index at {} (is another divoc serve using it?)",
                    dir.display()
                )
            })?;
        // Credentials are ~2 KiB of similar JSON: compressed at every level (fjall leaves the
        // first two uncompressed by default), in larger blocks so LZ4 finds the repeats across
        // neighbours (a point read then decompresses 32 KiB, a few microseconds).
        let certs = db.keyspace("certs", || {
            KeyspaceCreateOptions::default()
                .data_block_size_policy(BlockSizePolicy::all(32 * 1024))
                .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                .max_memtable_size(MEMTABLE_BYTES)
        })?;
        let small = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
        let by_pre = db.keyspace("by_pre", small)?;
        let by_contact = db.keyspace("by_contact", small)?;
        let withdrawn = db.keyspace("withdrawn", KeyspaceCreateOptions::default)?;
        let objects = db.keyspace("objects", KeyspaceCreateOptions::default)?;
        let log_ids = db.keyspace("log_ids", KeyspaceCreateOptions::default)?;
        let revoked = db.keyspace("revoked", KeyspaceCreateOptions::default)?;
        let suspensions = db.keyspace("suspensions", KeyspaceCreateOptions::default)?;
        let known_ids = db.keyspace("known_ids", KeyspaceCreateOptions::default)?;
        match objects.get(SOURCE_KEY)? {
            Some(v) if v.as_ref() != source.as_bytes() => anyhow::bail!(
                "index_dir {} indexes {:?}, not {source:?}: point index_dir at another directory (or delete it to rebuild)",
                dir.display(),
                String::from_utf8_lossy(&v)
            ),
            Some(_) => {}
            None => objects.insert(SOURCE_KEY, source.as_bytes())?,
        }
        Ok(Self {
            db,
            certs,
            by_pre,
            by_contact,
            withdrawn,
            objects,
            log_ids,
            revoked,
            suspensions,
            known_ids,
        })
    }

    /// About how many certificates are stored (exact unless objects were indexed twice after a
    /// crash).
    pub fn approximate_len(&self) -> usize {
        self.certs.approximate_len()
    }

    /// The certificate `id` of `tenant`, withdrawn or not.
    pub fn by_id(&self, tenant: &str, id: &str) -> Result<Option<Arc<StoredCertificate>>> {
        let Some(bytes) = self.certs.get(key(&[tenant, id]))? else {
            return Ok(None);
        };
        let record =
            Record::decode(&bytes).with_context(|| format!("certificate {id}: stored record"))?;
        Ok(Some(Arc::new(stored(tenant, id, record)?)))
    }

    /// Revoked, or replaced by an update.
    pub fn is_withdrawn(&self, tenant: &str, id: &str) -> Result<bool> {
        Ok(self.withdrawn.contains_key(key(&[tenant, id]))?)
    }

    /// The current certificates of a beneficiary, ordered by dose (then id, so the latest
    /// correction wins ties).
    pub fn doses(
        &self,
        tenant: &str,
        pre_enrollment_code: &str,
    ) -> Result<Vec<Arc<StoredCertificate>>> {
        let prefix = key(&[tenant, pre_enrollment_code]);
        let mut out = Vec::new();
        for entry in self.by_pre.prefix(&prefix) {
            let k = entry.key()?;
            let mut r = KeyReader::new(&k[prefix.len()..]);
            let _dose = r.i64()?;
            let id = r.text()?;
            if self.is_withdrawn(tenant, id)? {
                continue;
            }
            if let Some(c) = self.by_id(tenant, id)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The current certificates of everyone registered with this mobile number and date of birth
    /// (days since 1970-01-01), by preEnrollmentCode then dose.
    pub fn by_contact(
        &self,
        tenant: &str,
        mobile: &str,
        dob: i32,
    ) -> Result<Vec<Arc<StoredCertificate>>> {
        let Some(m) = codec::mobile_digits(mobile) else {
            return Ok(Vec::new());
        };
        let mut prefix = key(&[tenant, &m]);
        push_i32(&mut prefix, dob);
        let mut out = Vec::new();
        for entry in self.by_contact.prefix(&prefix) {
            let k = entry.key()?;
            let pre = KeyReader::new(&k[prefix.len()..]).text()?.to_owned();
            out.extend(self.doses(tenant, &pre)?);
        }
        Ok(out)
    }

    /// A current certificate of the beneficiary with the most doses (ties: the first in key
    /// order), for samples. Scans the whole preEnrollmentCode index: for demos and tests.
    pub fn most_doses(&self) -> Result<Option<Arc<StoredCertificate>>> {
        let mut best: Option<(usize, String, String)> = None;
        let mut current: Option<(String, String, usize)> = None;
        let mut consider = |c: Option<(String, String, usize)>| {
            if let Some((t, p, n)) = c {
                if best.as_ref().is_none_or(|b| n > b.0) {
                    best = Some((n, t, p));
                }
            }
        };
        for entry in self.by_pre.iter() {
            let k = entry.key()?;
            let mut r = KeyReader::new(&k);
            let (tenant, pre) = (r.text()?, r.text()?);
            match &mut current {
                Some((t, p, n)) if t == tenant && p == pre => *n += 1,
                _ => {
                    consider(current.take());
                    current = Some((tenant.to_owned(), pre.to_owned(), 1));
                }
            }
        }
        consider(current);
        match best {
            Some((_, tenant, pre)) => Ok(self.doses(&tenant, &pre)?.pop()),
            None => Ok(None),
        }
    }

    /// Compacts every keyspace into its last level, blocking until done: after a bulk build
    /// (benchmarks, a rebuild) the store then reads like a long-running one instead of paying
    /// for the compactions while it serves.
    pub fn compact_fully(&self) -> Result<()> {
        for ks in [
            &self.certs,
            &self.by_pre,
            &self.by_contact,
            &self.withdrawn,
            &self.objects,
        ] {
            ks.major_compact()?;
        }
        Ok(())
    }

    /// The verification status of a certificate id on `today` (days since 1970).
    pub fn status(&self, id: &str, today: i32) -> Result<CertStatus> {
        let id_key = key(&[id]);
        if self.revoked.contains_key(&id_key)? {
            return Ok(CertStatus::Revoked);
        }
        if let Some(s) = self
            .suspensions
            .get(&id_key)?
            .and_then(|v| codec::Suspension::decode(&v))
        {
            if s.suspended && s.until >= today {
                return Ok(CertStatus::Suspended {
                    until: (s.until != i32::MAX).then_some(s.until),
                });
            }
        }
        Ok(if self.known_ids.contains_key(&id_key)? {
            CertStatus::Valid
        } else {
            CertStatus::Unknown
        })
    }

    /// Records that leaf `index` of the transparency log is about `certificate_id`.
    pub(crate) fn note_log_entry(&self, certificate_id: &str, index: u64) -> Result<()> {
        let mut k = key(&[certificate_id]);
        k.extend_from_slice(&index.to_be_bytes());
        self.log_ids.insert(k, [])?;
        Ok(())
    }

    /// The transparency log leaves about `certificate_id`, in log order.
    pub fn log_entries_of(&self, certificate_id: &str) -> Result<Vec<u64>> {
        let prefix = key(&[certificate_id]);
        let mut out = Vec::new();
        for entry in self.log_ids.prefix(&prefix) {
            let k = entry.key()?;
            let tail: [u8; 8] = k[prefix.len()..]
                .try_into()
                .context("log index key is malformed")?;
            out.push(u64::from_be_bytes(tail));
        }
        Ok(out)
    }

    /// Writes everything buffered to disk (the indexer calls it after each object).
    pub(crate) fn persist(&self) -> Result<()> {
        self.db.persist(fjall::PersistMode::SyncData)?;
        Ok(())
    }
}

fn stored(tenant: &str, id: &str, record: Record) -> Result<StoredCertificate> {
    let parsed: serde_json::Value = serde_json::from_str(&record.credential_json)
        .with_context(|| format!("certificate {id}: stored credential is not JSON"))?;
    let credential = VaccinationCredential::from_json(&parsed).with_context(|| {
        format!("certificate {id}: stored credential is not a DIVOC credential")
    })?;
    let qr_payload = match record.qr_payload {
        Some(qr) => qr,
        None => divoc_qr::zip_certificate(record.credential_json.as_bytes()),
    };
    Ok(StoredCertificate {
        tenant: tenant.to_owned(),
        certificate_id: id.to_owned(),
        pre_enrollment_code: record.pre_enrollment_code,
        dose: record.dose,
        state: record.state,
        credential_json: record.credential_json,
        credential,
        qr_payload,
    })
}

/// The `by_pre` key of one certificate.
fn pre_key(tenant: &str, pre: &str, dose: i64, id: &str) -> Vec<u8> {
    let mut k = key(&[tenant, pre]);
    push_i64(&mut k, dose);
    codec::push_text(&mut k, id);
    k
}

/// The `by_contact` key of one registration.
fn contact_key(tenant: &str, mobile: &str, dob: i32, pre: &str) -> Vec<u8> {
    let mut k = key(&[tenant, mobile]);
    push_i32(&mut k, dob);
    codec::push_text(&mut k, pre);
    k
}

#[cfg(test)]
mod tests;
