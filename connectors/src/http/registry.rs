//! The upload registry: which uploads exist, their sequence ranges, and per-row errors.
//!
//! Two append-only JSON-lines files in the node's state directory:
//! - `uploads.jsonl`: one [`UploadEntry`] per accepted upload, written (and fsynced) by the WAL
//!   writer *before* the upload's WAL records, so on recovery any WAL record without a complete
//!   entry was never acknowledged and is cut off;
//! - `row_errors.jsonl`: one line per dead-lettered row, appended by the dead-letter listener once
//!   the pipeline has published the dead letter. Lines are keyed by sequence number, so hearing the
//!   same dead letter twice (replay after a crash) counts it once.
//!
//! Only the newest `max_uploads_retained` uploads are kept; older ones are forgotten in memory and
//! compacted out of both files on the next start.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{Array, StringArray, UInt64Array};
use arrow::record_batch::RecordBatch;
use divoc_model::event::{truncate, EventKind};
use divoc_pipeline::dead_letter::DeadLetterListener;
use divoc_pipeline::EngineError;
use serde::{Deserialize, Serialize};

use super::wal::{sync_dir, Recovered};

pub(crate) const UPLOADS_FILE: &str = "uploads.jsonl";
pub(crate) const ERRORS_FILE: &str = "row_errors.jsonl";

/// Longest reason detail kept per row error.
const MAX_DETAIL_CHARS: usize = 500;

/// One accepted upload (a certify request or a bulk CSV file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UploadEntry {
    pub id: String,
    pub tenant: String,
    pub kind: EventKind,
    pub first_seq: u64,
    pub rows: u64,
    pub created_ms: i64,
}

impl UploadEntry {
    fn end(&self) -> u64 {
        self.first_seq + self.rows
    }
}

/// One row of an upload that did not become a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RowErrorLine {
    seq: u64,
    upload_id: String,
    row: u64,
    stage: String,
    code: String,
    detail: String,
}

struct UploadInfo {
    entry: UploadEntry,
    errors: BTreeMap<u64, RowErrorLine>,
}

/// Status of one upload as served by `GET /divoc/api/v1/certify/uploads[/{id}]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    pub id: String,
    /// `certify_v1`, `certify_v3` or `bulk_csv`.
    pub kind: &'static str,
    /// When the upload became durable (RFC 3339, UTC).
    pub created_at: String,
    /// Rows (array elements or CSV data rows) in the upload.
    pub rows: u64,
    /// Rows written to the write-ahead log (all of them: uploads are all-or-nothing).
    pub accepted: u64,
    /// Rows refused at ingest without reaching the log. Always 0: a refused request is answered 400
    /// as a whole, and single malformed CSV rows travel through the log to become dead letters.
    pub rejected_at_ingest: u64,
    /// Rows the pipeline has dead-lettered so far (see `/errors`).
    pub dead_lettered: u64,
}

/// One row error as served by `GET /divoc/api/v1/certify/uploads/{id}/errors`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowErrorView {
    /// JSON uploads: index in the posted array (0-based). CSV: data row number (1-based).
    pub row: u64,
    /// Reason code, e.g. `invalid_date`, `malformed_csv`, `missing_field`, `duplicate`.
    pub code: String,
    pub detail: String,
    /// Pipeline node that refused the row.
    pub stage: String,
}

/// Rows of an upload that became dead letters.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadErrors {
    pub upload_id: String,
    pub errors: Vec<RowErrorView>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses an upload id (`u<first seq>`).
pub(crate) fn parse_upload_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('u')?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Lines of a JSON-lines file with their byte offsets; a final line without '\n' is torn.
struct Lines {
    lines: Vec<(u64, String)>,
    /// Length of the file up to the last complete line.
    complete_len: u64,
    file_len: u64,
}

fn read_lines(path: &Path) -> Result<Lines, EngineError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let mut lines = Vec::new();
    let mut start = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            let text = String::from_utf8_lossy(&bytes[start..i]).into_owned();
            lines.push((start as u64, text));
            start = i + 1;
        }
    }
    Ok(Lines {
        lines,
        complete_len: start as u64,
        file_len: bytes.len() as u64,
    })
}

fn truncate_file(path: &Path, len: u64) -> Result<(), EngineError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(|e| EngineError::io(path, e))
}

/// Replaces `path` atomically with `lines`.
fn rewrite(path: &Path, lines: &[String]) -> Result<(), EngineError> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn open_append(path: &Path) -> Result<File, EngineError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| EngineError::io(path, e))
}

fn to_line<T: Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v).map_err(|e| EngineError::Other(format!("encoding registry line: {e}")))
}

pub(crate) struct Registry {
    uploads: Mutex<BTreeMap<u64, UploadInfo>>,
    uploads_file: Mutex<File>,
    /// Held for the whole of recording a dead-letter batch, which serializes listeners.
    errors_file: Mutex<File>,
    fsync: bool,
    retain: usize,
}

impl Registry {
    /// Loads both files, reconciles them with the recovered WAL (cutting unacknowledged WAL records
    /// and upload entries), applies retention and opens the files for appending.
    pub fn open(
        state_dir: &Path,
        fsync: bool,
        retain: usize,
        wal: &mut Recovered,
    ) -> Result<Self, EngineError> {
        let uploads_path = state_dir.join(UPLOADS_FILE);
        let errors_path = state_dir.join(ERRORS_FILE);

        let lines = read_lines(&uploads_path)?;
        let mut entries: Vec<(u64, UploadEntry, String)> = Vec::with_capacity(lines.lines.len());
        let mut skipped = 0usize;
        for (off, text) in lines.lines {
            match serde_json::from_str::<UploadEntry>(&text) {
                Ok(e) if parse_upload_id(&e.id) == Some(e.first_seq) && e.rows > 0 => {
                    entries.push((off, e, text))
                }
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(file = %uploads_path.display(), skipped, "skipping unreadable upload registry lines");
        }
        // Segments deleted by the operator (e.g. after draining a log of an older format): the
        // uploads were acknowledged, so the log goes on after them instead of reusing their seqs.
        if let Some((_, last, _)) = entries.last().filter(|_| wal.fresh) {
            let end = last.end();
            tracing::warn!(
                wal = %wal.dir.display(),
                next_seq = end,
                "the write-ahead log has no segments but the upload registry records uploads; \
                 the log goes on after them"
            );
            wal.restart_at(end, fsync)?;
        }
        // Entries are appended in sequence order; the acknowledged ones are a prefix.
        let committed = entries
            .iter()
            .position(|(_, e, _)| e.end() > wal.next_seq)
            .unwrap_or(entries.len());
        let wal_cut = if committed > 0 {
            entries[committed - 1].1.end()
        } else if let Some((_, first, _)) = entries.first() {
            first.first_seq.min(wal.next_seq)
        } else {
            wal.next_seq
        };
        wal.truncate_to(wal_cut)?;
        let keep_len = entries
            .get(committed)
            .map_or(lines.complete_len, |(off, _, _)| *off);
        if keep_len < lines.file_len {
            tracing::warn!(
                dropped_entries = entries.len() - committed,
                "dropping upload registry entries that were never acknowledged"
            );
            truncate_file(&uploads_path, keep_len)?;
        }
        entries.truncate(committed);

        let mut uploads_rewritten = false;
        if entries.len() > retain || skipped > 0 {
            let drop_n = entries.len().saturating_sub(retain);
            entries.drain(..drop_n);
            let keep: Vec<String> = entries.iter().map(|(_, _, t)| t.clone()).collect();
            rewrite(&uploads_path, &keep)?;
            uploads_rewritten = true;
        }
        let mut uploads: BTreeMap<u64, UploadInfo> = entries
            .into_iter()
            .map(|(_, e, _)| {
                (
                    e.first_seq,
                    UploadInfo {
                        entry: e,
                        errors: BTreeMap::new(),
                    },
                )
            })
            .collect();

        let elines = read_lines(&errors_path)?;
        let mut dropped_errors = 0usize;
        for (_, text) in &elines.lines {
            let Ok(line) = serde_json::from_str::<RowErrorLine>(text) else {
                dropped_errors += 1;
                continue;
            };
            match find_upload_mut(&mut uploads, line.seq) {
                Some(info) if info.entry.id == line.upload_id => {
                    info.errors.entry(line.seq).or_insert(line);
                }
                _ => dropped_errors += 1,
            }
        }
        if dropped_errors > 0 || uploads_rewritten {
            let keep: Vec<String> = uploads
                .values()
                .flat_map(|u| u.errors.values())
                .map(to_line)
                .collect::<Result<_, _>>()?;
            rewrite(&errors_path, &keep)?;
        } else if elines.complete_len < elines.file_len {
            truncate_file(&errors_path, elines.complete_len)?;
        }

        let uploads_file = open_append(&uploads_path)?;
        let errors_file = open_append(&errors_path)?;
        if fsync {
            sync_dir(state_dir)?;
        }
        Ok(Self {
            uploads: Mutex::new(uploads),
            uploads_file: Mutex::new(uploads_file),
            errors_file: Mutex::new(errors_file),
            fsync,
            retain,
        })
    }

    /// Durably records upload entries (called by the WAL writer before it writes their records).
    pub fn append_uploads(&self, entries: &[UploadEntry]) -> Result<(), EngineError> {
        let mut text = String::new();
        for e in entries {
            text.push_str(&to_line(e)?);
            text.push('\n');
        }
        let mut f = lock(&self.uploads_file);
        f.write_all(text.as_bytes())
            .and_then(|()| if self.fsync { f.sync_data() } else { Ok(()) })
            .map_err(|e| EngineError::io(UPLOADS_FILE, e))
    }

    /// Makes uploads visible once their WAL records are durable.
    pub fn commit_uploads(&self, entries: Vec<UploadEntry>) {
        let mut u = lock(&self.uploads);
        for e in entries {
            u.insert(
                e.first_seq,
                UploadInfo {
                    entry: e,
                    errors: BTreeMap::new(),
                },
            );
        }
        while u.len() > self.retain {
            u.pop_first();
        }
    }

    /// Records the dead letters in `batch` that came from node `node` as row errors of their upload.
    pub fn record_dead_letters(
        &self,
        node: &str,
        batch: &RecordBatch,
    ) -> Result<usize, EngineError> {
        let col = |name: &str| batch.column_by_name(name);
        let (Some(src), Some(off), Some(stage), Some(code), Some(detail)) = (
            col("source_id").and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            col("source_offset").and_then(|c| c.as_any().downcast_ref::<UInt64Array>()),
            col("stage").and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            col("reason_code").and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            col("reason_detail").and_then(|c| c.as_any().downcast_ref::<StringArray>()),
        ) else {
            return Err(EngineError::Schema(
                "dead-letter batch lacks source_id/source_offset/stage/reason_code/reason_detail"
                    .into(),
            ));
        };
        fn text(a: &StringArray, i: usize) -> &str {
            if a.is_null(i) {
                ""
            } else {
                a.value(i)
            }
        }

        let mut file = lock(&self.errors_file);
        let mut fresh = Vec::new();
        {
            let mut uploads = lock(&self.uploads);
            let mut seen = HashSet::new();
            for i in 0..batch.num_rows() {
                if src.is_null(i) || off.is_null(i) || src.value(i) != node {
                    continue;
                }
                let seq = off.value(i);
                let Some(info) = find_upload_mut(&mut uploads, seq) else {
                    continue;
                };
                if info.errors.contains_key(&seq) || !seen.insert(seq) {
                    continue;
                }
                let index = seq - info.entry.first_seq;
                fresh.push(RowErrorLine {
                    seq,
                    upload_id: info.entry.id.clone(),
                    row: if info.entry.kind == EventKind::BulkCsv {
                        index + 1
                    } else {
                        index
                    },
                    stage: truncate(text(stage, i), 100),
                    code: truncate(text(code, i), 100),
                    detail: truncate(text(detail, i), MAX_DETAIL_CHARS),
                });
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        let mut out = String::new();
        for l in &fresh {
            out.push_str(&to_line(l)?);
            out.push('\n');
        }
        file.write_all(out.as_bytes())
            .and_then(|()| if self.fsync { file.sync_data() } else { Ok(()) })
            .map_err(|e| EngineError::io(ERRORS_FILE, e))?;
        let n = fresh.len();
        let mut uploads = lock(&self.uploads);
        for l in fresh {
            if let Some(info) = find_upload_mut(&mut uploads, l.seq) {
                info.errors.entry(l.seq).or_insert(l);
            }
        }
        Ok(n)
    }

    fn status_of(info: &UploadInfo) -> UploadStatus {
        let e = &info.entry;
        UploadStatus {
            id: e.id.clone(),
            kind: e.kind.as_str(),
            created_at: chrono::DateTime::from_timestamp_millis(e.created_ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            rows: e.rows,
            accepted: e.rows,
            rejected_at_ingest: 0,
            dead_lettered: info.errors.len() as u64,
        }
    }

    /// The tenant's uploads, newest first.
    pub fn list(&self, tenant: &str, limit: usize) -> Vec<UploadStatus> {
        lock(&self.uploads)
            .values()
            .rev()
            .filter(|u| u.entry.tenant == tenant)
            .take(limit)
            .map(Self::status_of)
            .collect()
    }

    fn with_upload<T>(
        &self,
        tenant: &str,
        id: &str,
        f: impl FnOnce(&UploadInfo) -> T,
    ) -> Option<T> {
        let seq = parse_upload_id(id)?;
        let uploads = lock(&self.uploads);
        let info = uploads.get(&seq)?;
        (info.entry.tenant == tenant && info.entry.id == id).then(|| f(info))
    }

    pub fn status(&self, tenant: &str, id: &str) -> Option<UploadStatus> {
        self.with_upload(tenant, id, Self::status_of)
    }

    pub fn errors(&self, tenant: &str, id: &str) -> Option<UploadErrors> {
        self.with_upload(tenant, id, |info| UploadErrors {
            upload_id: info.entry.id.clone(),
            errors: info
                .errors
                .values()
                .map(|l| RowErrorView {
                    row: l.row,
                    code: l.code.clone(),
                    detail: l.detail.clone(),
                    stage: l.stage.clone(),
                })
                .collect(),
        })
    }
}

fn find_upload_mut(uploads: &mut BTreeMap<u64, UploadInfo>, seq: u64) -> Option<&mut UploadInfo> {
    let (_, info) = uploads.range_mut(..=seq).next_back()?;
    (seq < info.entry.end()).then_some(info)
}

/// Turns published dead letters of this source into per-upload row errors.
pub(crate) struct UploadErrorListener {
    pub node: String,
    pub registry: Arc<Registry>,
    /// Cleared when the source is dropped (a rebuilt source registers a new listener).
    pub active: Arc<AtomicBool>,
}

impl DeadLetterListener for UploadErrorListener {
    fn on_dead_letters(&self, batch: &RecordBatch) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        match self.registry.record_dead_letters(&self.node, batch) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(node = %self.node, rows = n, "recorded upload row errors"),
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "could not record upload row errors")
            }
        }
    }
}

#[cfg(test)]
fn registry_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    (state_dir.join(UPLOADS_FILE), state_dir.join(ERRORS_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first: u64, rows: u64) -> UploadEntry {
        UploadEntry {
            id: format!("u{first}"),
            tenant: "t".into(),
            kind: EventKind::CertifyV1,
            first_seq: first,
            rows,
            created_ms: 0,
        }
    }

    #[test]
    fn upload_ids_parse_strictly() {
        assert_eq!(parse_upload_id("u0"), Some(0));
        assert_eq!(parse_upload_id("u42"), Some(42));
        assert_eq!(parse_upload_id("u"), None);
        assert_eq!(parse_upload_id("x1"), None);
        assert_eq!(parse_upload_id("u-1"), None);
        assert_eq!(parse_upload_id("u99999999999999999999999"), None);
    }

    #[test]
    fn unacknowledged_entries_and_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (up, _) = registry_paths(dir.path());
        let mut text = String::new();
        for e in [entry(0, 2), entry(2, 3), entry(5, 4)] {
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        text.push_str("{\"id\":\"u9\",\"ten");
        std::fs::write(&up, &text).unwrap();
        // The WAL holds 2 + 3 records plus 1 of the third upload (torn group commit).
        let mut wal = Recovered {
            dir: dir.path().join("wal"),
            segments: BTreeMap::new(),
            last_first: 0,
            offsets: (0..6).map(|i| i * 10).collect(),
            last_len: 60,
            next_seq: 6,
            fresh: false,
        };
        std::fs::create_dir_all(&wal.dir).unwrap();
        std::fs::write(
            wal.dir.join(super::super::wal::segment_name(0)),
            vec![0u8; 60],
        )
        .unwrap();
        let reg = Registry::open(dir.path(), true, 10, &mut wal).unwrap();
        assert_eq!(wal.next_seq, 5);
        assert_eq!(reg.list("t", 10).len(), 2);
        let kept = std::fs::read_to_string(&up).unwrap();
        assert_eq!(kept.lines().count(), 2);
        assert!(kept.ends_with('\n'));
    }
}
