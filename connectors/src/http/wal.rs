//! The write-ahead log behind the HTTP source.
//!
//! Layout: `<state_dir>/wal/<first_seq:020>.log`, append-only segment files. Sequence numbers are
//! dense and start at 0; an upload's records never straddle two segments (a segment is rolled only
//! between uploads, so it may exceed the size limit by one upload).
//!
//! # Segment format (version 2)
//!
//! A segment starts with the 8-byte header [`SEGMENT_MAGIC`] (`DIVOCWL` and the format version
//! byte `0x02`), followed by records. Each record is one frame, all integers little-endian:
//!
//! ```text
//! frame   = u32 payload_len | u32 crc32(payload) | payload
//! payload = u64 seq
//!           i64 ingest_time_ms
//!           u8  kind            1 certify_v1, 2 certify_v3, 3 bulk_csv, 4 update, 5 revoke,
//!                               6 suspend, 7 lift_suspension (bodies: JSON objects)
//!           u32 row             JSON: index in the array (0-based); CSV: data row (1-based)
//!           u16 len | tenant    UTF-8
//!           u8  has_issue       0 or 1; when 1: u32 len | issue (UTF-8)
//!           u32 len | header    UTF-8; CSV: the upload's header line, JSON: empty
//!           u32 len | body      UTF-8; JSON: the element's exact text, CSV: the row's exact text
//! ```
//!
//! The payload ends exactly after the body. The upload id is not stored: it is `u<first seq of the
//! upload>`, and that first sequence number is `seq - row` (JSON) or `seq - (row - 1)` (CSV).
//! Bodies are stored as they arrived, without escaping, so the source parses each of them once.
//!
//! Version 1 segments (JSON records, no segment header) are refused when the log is opened, with
//! an error naming the file: drain them with the binary that wrote them, or delete them.
//!
//! A single writer thread does group commit: handlers queue whole uploads, the writer appends
//! everything queued, fsyncs once, publishes the new durable end and acks every handler. Readers
//! only read records below the published durable end. On open the last segment is scanned and a
//! torn or corrupt tail (short record, CRC mismatch, undecodable payload, wrong sequence number)
//! is cut off; a record that does not decode below the durable end is an error naming the segment
//! and the byte offset.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use divoc_model::event::EventKind;
use divoc_pipeline::EngineError;
use tokio::sync::{mpsc, oneshot};

use super::crc::crc32;
use super::registry::{Registry, UploadEntry};

/// First bytes of every segment: `DIVOCWL` and the format version.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DIVOCWL\x02";
const MAGIC_LEN: u64 = SEGMENT_MAGIC.len() as u64;
/// Frame header: payload length and CRC.
const HEADER_LEN: u64 = 8;

/// One durable input record: one element of a certify array or one bulk CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    pub seq: u64,
    pub ingest_time_ms: i64,
    pub kind: EventKind,
    /// JSON: index in the posted array (0-based). CSV: data row number (1-based, header excluded).
    pub row: u32,
    pub tenant: Arc<str>,
    /// CSV: the upload's header line, exactly as sent. JSON: empty.
    pub header: Arc<str>,
    /// JSON: the element's exact text. CSV: the row's exact text (without its line terminator).
    pub body: String,
    /// A problem found at ingest that makes the record a dead letter (`malformed_csv`).
    pub issue: Option<String>,
}

impl WalRecord {
    /// A borrowed view, e.g. to encode the record.
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            seq: self.seq,
            ingest_time_ms: self.ingest_time_ms,
            kind: self.kind,
            row: self.row,
            tenant: &self.tenant,
            issue: self.issue.as_deref(),
            header: &self.header,
            body: &self.body,
        }
    }

    /// Id of the upload the record belongs to (`u<first seq>`).
    pub fn upload_id(&self) -> String {
        upload_id(self.view().upload_first_seq().unwrap_or(self.seq))
    }
}

/// A record borrowed from a frame payload or from an upload being written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordView<'a> {
    pub seq: u64,
    pub ingest_time_ms: i64,
    pub kind: EventKind,
    pub row: u32,
    pub tenant: &'a str,
    pub issue: Option<&'a str>,
    pub header: &'a str,
    pub body: &'a str,
}

impl RecordView<'_> {
    /// Sequence number of the first record of the upload (`None` if `row` does not fit `seq`).
    pub fn upload_first_seq(&self) -> Option<u64> {
        let index = match self.kind {
            EventKind::BulkCsv => u64::from(self.row.checked_sub(1)?),
            _ => u64::from(self.row),
        };
        self.seq.checked_sub(index)
    }
}

fn kind_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::CertifyV1 => 1,
        EventKind::CertifyV3 => 2,
        EventKind::BulkCsv => 3,
        EventKind::Update => 4,
        EventKind::Revoke => 5,
        EventKind::Suspend => 6,
        EventKind::LiftSuspension => 7,
        EventKind::Reissue => 8,
        EventKind::ReissueRevoking => 9,
    }
}

fn kind_from_code(code: u8) -> Option<EventKind> {
    match code {
        1 => Some(EventKind::CertifyV1),
        2 => Some(EventKind::CertifyV3),
        3 => Some(EventKind::BulkCsv),
        4 => Some(EventKind::Update),
        5 => Some(EventKind::Revoke),
        6 => Some(EventKind::Suspend),
        7 => Some(EventKind::LiftSuspension),
        8 => Some(EventKind::Reissue),
        9 => Some(EventKind::ReissueRevoking),
        _ => None,
    }
}

fn put_len<T: TryFrom<usize>>(len: usize, what: &str) -> Result<T, EngineError> {
    T::try_from(len)
        .map_err(|_| EngineError::Other(format!("WAL record {what} is too long ({len} bytes)")))
}

/// Appends one framed record to `out`.
pub fn encode_record(rec: &RecordView<'_>, out: &mut Vec<u8>) -> Result<(), EngineError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN as usize]);
    out.extend_from_slice(&rec.seq.to_le_bytes());
    out.extend_from_slice(&rec.ingest_time_ms.to_le_bytes());
    out.push(kind_code(rec.kind));
    out.extend_from_slice(&rec.row.to_le_bytes());
    out.extend_from_slice(&put_len::<u16>(rec.tenant.len(), "tenant")?.to_le_bytes());
    out.extend_from_slice(rec.tenant.as_bytes());
    match rec.issue {
        None => out.push(0),
        Some(issue) => {
            out.push(1);
            out.extend_from_slice(&put_len::<u32>(issue.len(), "issue")?.to_le_bytes());
            out.extend_from_slice(issue.as_bytes());
        }
    }
    out.extend_from_slice(&put_len::<u32>(rec.header.len(), "header")?.to_le_bytes());
    out.extend_from_slice(rec.header.as_bytes());
    out.extend_from_slice(&put_len::<u32>(rec.body.len(), "body")?.to_le_bytes());
    out.extend_from_slice(rec.body.as_bytes());
    let payload_len = out.len() - start - HEADER_LEN as usize;
    let len = match u32::try_from(payload_len) {
        Ok(l) => l,
        Err(_) => {
            out.truncate(start);
            return Err(EngineError::Other("WAL record larger than 4 GiB".into()));
        }
    };
    let crc = crc32(&out[start + HEADER_LEN as usize..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads the fields of a payload in order.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.buf.len() {
            return Err("a field runs past the end of the payload");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.array().map(u32::from_le_bytes)
    }

    fn text(&mut self, len: usize, what: &'static str) -> Result<&'a str, &'static str> {
        std::str::from_utf8(self.take(len)?).map_err(|_| what)
    }
}

/// Decodes and validates a frame payload (lengths within the payload, UTF-8, known kind, row
/// consistent with seq, nothing after the body).
pub fn decode_payload(payload: &[u8]) -> Result<RecordView<'_>, &'static str> {
    let mut f = Fields { buf: payload };
    let seq = f.array().map(u64::from_le_bytes)?;
    let ingest_time_ms = f.array().map(i64::from_le_bytes)?;
    let kind = kind_from_code(f.u8()?).ok_or("unknown record kind")?;
    let row = f.u32()?;
    let tenant_len = usize::from(f.array().map(u16::from_le_bytes)?);
    let tenant = f.text(tenant_len, "tenant is not UTF-8")?;
    let issue = match f.u8()? {
        0 => None,
        1 => {
            let len = f.u32()? as usize;
            Some(f.text(len, "issue is not UTF-8")?)
        }
        _ => return Err("bad issue flag"),
    };
    let header_len = f.u32()? as usize;
    let header = f.text(header_len, "header is not UTF-8")?;
    let body_len = f.u32()? as usize;
    let body = f.text(body_len, "body is not UTF-8")?;
    if !f.buf.is_empty() {
        return Err("bytes after the body");
    }
    let view = RecordView {
        seq,
        ingest_time_ms,
        kind,
        row,
        tenant,
        issue,
        header,
        body,
    };
    match (kind, header.is_empty()) {
        (EventKind::BulkCsv, true) => return Err("CSV record without a header"),
        (EventKind::CertifyV1 | EventKind::CertifyV3, false) => {
            return Err("JSON record with a CSV header")
        }
        _ => {}
    }
    if view.upload_first_seq().is_none() {
        return Err("row number does not fit the sequence number");
    }
    Ok(view)
}

pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

/// Lists segment files by first sequence number.
pub(crate) fn list_segments(dir: &Path) -> Result<BTreeMap<u64, PathBuf>, EngineError> {
    let mut out = BTreeMap::new();
    let rd = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.insert(first, entry.path());
        }
    }
    Ok(out)
}

/// Creates a segment holding only the segment header. `create_new`: refuse an existing file and
/// return the new one opened for appending; otherwise truncate an existing file.
fn create_segment(path: &Path, create_new: bool, fsync: bool) -> Result<File, EngineError> {
    let mut opts = OpenOptions::new();
    if create_new {
        opts.append(true).create_new(true);
    } else {
        opts.write(true).create(true).truncate(true);
    }
    opts.open(path)
        .and_then(|mut f| {
            f.write_all(&SEGMENT_MAGIC)?;
            if fsync {
                f.sync_all()?;
            }
            Ok(f)
        })
        .map_err(|e| EngineError::io(path, e))
}

/// What the first bytes of a segment say.
#[derive(Debug, PartialEq)]
enum SegmentStart {
    /// The version 2 header.
    Valid,
    /// Shorter than the header and a prefix of it (a crash while the segment was created).
    Torn,
}

/// Checks the segment header at the start of `r` (a file of `file_len` bytes).
fn read_segment_start<R: Read>(
    r: &mut R,
    file_len: u64,
    path: &Path,
) -> Result<SegmentStart, EngineError> {
    let n = file_len.min(MAGIC_LEN) as usize;
    let mut head = [0u8; MAGIC_LEN as usize];
    r.read_exact(&mut head[..n])
        .map_err(|e| EngineError::io(path, e))?;
    if head[..n] == SEGMENT_MAGIC[..n] {
        return Ok(if n == MAGIC_LEN as usize {
            SegmentStart::Valid
        } else {
            SegmentStart::Torn
        });
    }
    let dir = path.parent().unwrap_or(path).display();
    let found = if n == MAGIC_LEN as usize && head[..7] == SEGMENT_MAGIC[..7] {
        format!("segment format version {}", head[7])
    } else {
        "no segment header: probably a version 1 segment (JSON records) from an older divoc".into()
    };
    Err(EngineError::State(format!(
        "write-ahead-log segment {} is not in the format this build reads (version {}; found {found}); \
         fix: drain it with the binary that wrote it (run the pipeline until its checkpoint covers every \
         record, then stop it), then delete the segment files (*.log) in {dir} and start again: the log \
         goes on after the last upload in the registry. Deleting segments that were not drained loses \
         their records",
        path.display(),
        SEGMENT_MAGIC[7],
    )))
}

/// Outcome of reading one framed record.
enum Frame {
    Record(Vec<u8>),
    /// End of data, or a torn / corrupt record (the reason is kept for the log).
    End(&'static str),
}

fn read_frame<R: Read>(r: &mut R, remaining: u64) -> std::io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End("end of segment"));
    }
    if remaining < HEADER_LEN {
        return Ok(Frame::End("short record header"));
    }
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    let len = u64::from(u32::from_le_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 {
        return Ok(Frame::End("zero-length record"));
    }
    if len > remaining - HEADER_LEN {
        return Ok(Frame::End("record runs past the end of the segment"));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if crc32(&payload) != crc {
        return Ok(Frame::End("CRC mismatch"));
    }
    Ok(Frame::Record(payload))
}

/// Result of scanning one segment: byte offset of every valid record and where valid data ends.
pub(crate) struct SegmentScan {
    pub offsets: Vec<u64>,
    pub valid_len: u64,
    pub file_len: u64,
    pub stop_reason: &'static str,
}

/// Reads a segment from the start, stopping at the first torn or corrupt record. The segment must
/// start with a complete segment header.
pub(crate) fn scan_segment(path: &Path, first_seq: u64) -> Result<SegmentScan, EngineError> {
    let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    if read_segment_start(&mut r, file_len, path)? != SegmentStart::Valid {
        return Err(EngineError::State(format!(
            "write-ahead-log segment {} is shorter than its header",
            path.display()
        )));
    }
    let mut pos = MAGIC_LEN;
    let mut offsets = Vec::new();
    let stop_reason = loop {
        match read_frame(&mut r, file_len - pos).map_err(|e| EngineError::io(path, e))? {
            Frame::End(reason) => break reason,
            Frame::Record(payload) => {
                let expected = first_seq + offsets.len() as u64;
                match decode_payload(&payload) {
                    Ok(v) if v.seq == expected => {}
                    Ok(_) => break "unexpected sequence number",
                    Err(reason) => break reason,
                }
                offsets.push(pos);
                pos += HEADER_LEN + payload.len() as u64;
            }
        }
    };
    Ok(SegmentScan {
        offsets,
        valid_len: pos,
        file_len,
        stop_reason,
    })
}

/// Checks the header of a segment that is not the last one (it must be complete).
fn check_sealed_segment(path: &Path) -> Result<(), EngineError> {
    let mut file = File::open(path).map_err(|e| EngineError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
    match read_segment_start(&mut file, file_len, path)? {
        SegmentStart::Valid => Ok(()),
        SegmentStart::Torn => Err(EngineError::State(format!(
            "write-ahead-log segment {} is shorter than its header but is not the last segment; \
             move the wal directory aside to inspect it",
            path.display()
        ))),
    }
}

/// The WAL as found on disk after crash recovery.
pub(crate) struct Recovered {
    pub dir: PathBuf,
    pub segments: BTreeMap<u64, PathBuf>,
    pub last_first: u64,
    /// Offsets of the records of the last segment.
    pub offsets: Vec<u64>,
    pub last_len: u64,
    pub next_seq: u64,
    /// The directory held no segment at all (a new log, or one whose segments were deleted).
    pub fresh: bool,
}

impl Recovered {
    /// Checks every segment header, scans the last segment and truncates a torn tail; creates
    /// segment 0 in an empty log.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        let mut segments = list_segments(dir)?;
        let fresh = segments.is_empty();
        let (last_first, last_path) = match segments.last_key_value() {
            Some((f, p)) => (*f, p.clone()),
            None => {
                let path = dir.join(segment_name(0));
                create_segment(&path, true, fsync)?;
                if fsync {
                    sync_dir(dir)?;
                }
                segments.insert(0, path.clone());
                (0, path)
            }
        };
        for path in segments.range(..last_first).map(|(_, p)| p) {
            check_sealed_segment(path)?;
        }
        {
            let mut file = File::open(&last_path).map_err(|e| EngineError::io(&last_path, e))?;
            let file_len = file
                .metadata()
                .map_err(|e| EngineError::io(&last_path, e))?
                .len();
            if read_segment_start(&mut file, file_len, &last_path)? == SegmentStart::Torn {
                tracing::warn!(
                    segment = %last_path.display(),
                    bytes = file_len,
                    "rewriting the torn header of the last write-ahead-log segment"
                );
                create_segment(&last_path, false, true)?;
            }
        }
        let scan = scan_segment(&last_path, last_first)?;
        if scan.valid_len < scan.file_len {
            tracing::warn!(
                segment = %last_path.display(),
                valid_records = scan.offsets.len(),
                cut_bytes = scan.file_len - scan.valid_len,
                reason = scan.stop_reason,
                "truncating torn write-ahead-log tail"
            );
            truncate_file(&last_path, scan.valid_len)?;
        }
        let next_seq = last_first + scan.offsets.len() as u64;
        Ok(Self {
            dir: dir.to_path_buf(),
            segments,
            last_first,
            last_len: scan.valid_len,
            next_seq,
            offsets: scan.offsets,
            fresh,
        })
    }

    /// Makes a fresh, empty log start at `seq` instead of 0 (its only segment is renamed), so that
    /// sequence numbers go on after records whose segments were deleted.
    pub fn restart_at(&mut self, seq: u64, fsync: bool) -> Result<(), EngineError> {
        if !self.fresh || self.next_seq != 0 || self.segments.len() != 1 {
            return Err(EngineError::State(format!(
                "write-ahead log in {} is not empty; it cannot restart at seq {seq}",
                self.dir.display()
            )));
        }
        if seq == 0 {
            return Ok(());
        }
        let from = self.dir.join(segment_name(0));
        let to = self.dir.join(segment_name(seq));
        std::fs::rename(&from, &to).map_err(|e| EngineError::io(&from, e))?;
        if fsync {
            sync_dir(&self.dir)?;
        }
        self.segments = BTreeMap::from([(seq, to)]);
        self.last_first = seq;
        self.next_seq = seq;
        Ok(())
    }

    /// Cuts the log back so that `seq` is the next sequence number (only within the last segment).
    pub fn truncate_to(&mut self, seq: u64) -> Result<(), EngineError> {
        if seq >= self.next_seq {
            return Ok(());
        }
        if seq < self.last_first {
            return Err(EngineError::State(format!(
                "write-ahead log in {} holds records from seq {seq} on that were never acknowledged, \
                 but they start before the last segment ({}); move the wal directory aside to inspect it",
                self.dir.display(),
                self.last_first
            )));
        }
        let idx = (seq - self.last_first) as usize;
        let len = self.offsets.get(idx).copied().unwrap_or(self.last_len);
        let path = self.dir.join(segment_name(self.last_first));
        tracing::warn!(
            from_seq = seq,
            to_seq = self.next_seq,
            "dropping unacknowledged write-ahead-log records"
        );
        truncate_file(&path, len)?;
        self.offsets.truncate(idx);
        self.last_len = len;
        self.next_seq = seq;
        Ok(())
    }
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

/// State shared by the writer, the HTTP handlers and the reader.
pub(crate) struct WalState {
    /// Every record below this is durable (fsynced unless `fsync = false`).
    pub durable_next: u64,
    pub segments: BTreeMap<u64, PathBuf>,
    /// Set when the writer hit an I/O error and stopped accepting data.
    pub failed: Option<String>,
}

pub(crate) struct WalShared {
    state: Mutex<WalState>,
    cond: Condvar,
}

impl WalShared {
    pub fn new(durable_next: u64, segments: BTreeMap<u64, PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(WalState {
                durable_next,
                segments,
                failed: None,
            }),
            cond: Condvar::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, WalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` until a record at or after `next` is durable; returns the durable end.
    pub fn wait_beyond(&self, next: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while st.durable_next <= next {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = match self.cond.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        st.durable_next
    }

    fn publish(&self, durable_next: u64, new_segments: Vec<(u64, PathBuf)>) {
        {
            let mut st = self.lock();
            st.segments.extend(new_segments);
            st.durable_next = durable_next;
        }
        self.cond.notify_all();
    }

    fn fail(&self, msg: String) {
        self.lock().failed = Some(msg);
        self.cond.notify_all();
    }

    /// Deletes segments whose records are all below `committed` (never the last, active one).
    pub fn delete_segments_below(&self, committed: u64) -> Result<usize, EngineError> {
        let doomed: Vec<PathBuf> = {
            let mut st = self.lock();
            let firsts: Vec<u64> = st.segments.keys().copied().collect();
            let mut doomed = Vec::new();
            for pair in firsts.windows(2) {
                if pair[1] <= committed {
                    if let Some(p) = st.segments.remove(&pair[0]) {
                        doomed.push(p);
                    }
                }
            }
            doomed
        };
        for p in &doomed {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(p, e)),
            }
        }
        Ok(doomed.len())
    }
}

/// One upload's rows, queued for the writer. Rows and the header are byte spans of `text`.
pub(crate) struct PendingUpload {
    pub tenant: String,
    pub kind: EventKind,
    pub body: PendingBody,
}

/// A validated request body and the spans of its records.
#[derive(Debug)]
pub(crate) struct PendingBody {
    /// The request body as received (UTF-8).
    pub text: String,
    /// CSV: span of the header line (without its terminator). JSON: empty.
    pub header: Range<usize>,
    pub rows: Vec<PendingRow>,
}

#[derive(Debug)]
pub(crate) struct PendingRow {
    /// Span of the record's exact text in [`PendingBody::text`].
    pub body: Range<usize>,
    pub issue: Option<String>,
}

impl PendingBody {
    /// The text of a span (an error if it is not a span of `text`, which the parsers never make).
    pub fn span(&self, r: &Range<usize>) -> Result<&str, EngineError> {
        self.text.get(r.clone()).ok_or_else(|| {
            EngineError::Other(format!(
                "internal error: span {r:?} is not within the {}-byte request body",
                self.text.len()
            ))
        })
    }
}

/// What the writer answers once an upload is durable.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub upload_id: String,
    pub rows: usize,
}

pub(crate) struct WriterMsg {
    pub upload: PendingUpload,
    pub reply: oneshot::Sender<Result<Committed, String>>,
}

/// Most uploads and bytes folded into one group commit.
const GROUP_MAX_UPLOADS: usize = 4096;
const GROUP_MAX_BYTES: usize = 64 << 20;

pub(crate) fn upload_id(first_seq: u64) -> String {
    format!("u{first_seq}")
}

/// The single WAL writer (runs on its own OS thread: it blocks on fsync).
pub(crate) struct Writer {
    dir: PathBuf,
    seg: File,
    seg_len: u64,
    next_seq: u64,
    segment_bytes: u64,
    fsync: bool,
    shared: Arc<WalShared>,
    registry: Arc<Registry>,
    poisoned: Option<String>,
}

impl Writer {
    pub fn new(
        rec: &Recovered,
        segment_bytes: u64,
        fsync: bool,
        shared: Arc<WalShared>,
        registry: Arc<Registry>,
    ) -> Result<Self, EngineError> {
        let path = rec.dir.join(segment_name(rec.last_first));
        let seg = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        Ok(Self {
            dir: rec.dir.clone(),
            seg,
            seg_len: rec.last_len,
            next_seq: rec.next_seq,
            segment_bytes,
            fsync,
            shared,
            registry,
            poisoned: None,
        })
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(first) = rx.blocking_recv() {
            let mut bytes = first.upload.body.text.len();
            let mut group = vec![first];
            while group.len() < GROUP_MAX_UPLOADS && bytes < GROUP_MAX_BYTES {
                match rx.try_recv() {
                    Ok(m) => {
                        bytes += m.upload.body.text.len();
                        group.push(m);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
        if self.fsync {
            let _ = self.seg.sync_data();
        }
    }

    fn commit(&mut self, group: Vec<WriterMsg>) {
        if let Some(p) = &self.poisoned {
            for m in group {
                let _ = m.reply.send(Err(p.clone()));
            }
            return;
        }
        match self.try_commit(&group) {
            Ok(done) => {
                for (m, c) in group.into_iter().zip(done) {
                    let _ = m.reply.send(Ok(c));
                }
            }
            Err(e) => {
                let msg = format!("write-ahead log failed, restart the node to recover: {e}");
                tracing::error!(error = %e, "write-ahead log write failed; rejecting further uploads");
                self.shared.fail(msg.clone());
                self.poisoned = Some(msg.clone());
                for m in group {
                    let _ = m.reply.send(Err(msg.clone()));
                }
            }
        }
    }

    fn try_commit(&mut self, group: &[WriterMsg]) -> Result<Vec<Committed>, EngineError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut seq = self.next_seq;
        let mut entries = Vec::with_capacity(group.len());
        for m in group {
            let rows = m.upload.body.rows.len() as u64;
            entries.push(UploadEntry {
                id: upload_id(seq),
                tenant: m.upload.tenant.clone(),
                kind: m.upload.kind,
                first_seq: seq,
                rows,
                created_ms: now,
            });
            seq += rows;
        }
        // The registry line goes first: on recovery, WAL records without a complete upload entry were
        // never acknowledged and are cut off.
        self.registry.append_uploads(&entries)?;

        let mut new_segments = Vec::new();
        let mut buf = Vec::new();
        for (m, e) in group.iter().zip(&entries) {
            buf.clear();
            let body = &m.upload.body;
            let header = body.span(&body.header)?;
            for (i, row) in body.rows.iter().enumerate() {
                let row_no = match m.upload.kind {
                    EventKind::BulkCsv => i + 1,
                    _ => i,
                };
                let rec = RecordView {
                    seq: e.first_seq + i as u64,
                    ingest_time_ms: now,
                    kind: m.upload.kind,
                    row: u32::try_from(row_no).map_err(|_| {
                        EngineError::Other(format!("upload has more than {} rows", u32::MAX))
                    })?,
                    tenant: &m.upload.tenant,
                    issue: row.issue.as_deref(),
                    header,
                    body: body.span(&row.body)?,
                };
                encode_record(&rec, &mut buf)?;
            }
            if self.seg_len > MAGIC_LEN && self.seg_len + buf.len() as u64 > self.segment_bytes {
                let path = self.roll(e.first_seq)?;
                new_segments.push((e.first_seq, path));
            }
            self.seg
                .write_all(&buf)
                .map_err(|err| EngineError::io(self.dir.join("(active segment)"), err))?;
            self.seg_len += buf.len() as u64;
        }
        if self.fsync {
            self.seg
                .sync_data()
                .map_err(|err| EngineError::io(self.dir.join("(active segment)"), err))?;
        }
        self.next_seq = seq;
        self.shared.publish(seq, new_segments);
        self.registry.commit_uploads(entries.clone());
        Ok(entries
            .into_iter()
            .map(|e| Committed {
                upload_id: e.id,
                rows: e.rows as usize,
            })
            .collect())
    }

    fn roll(&mut self, first_seq: u64) -> Result<PathBuf, EngineError> {
        if self.fsync {
            self.seg
                .sync_data()
                .map_err(|e| EngineError::io(self.dir.join("(active segment)"), e))?;
        }
        let path = self.dir.join(segment_name(first_seq));
        let seg = create_segment(&path, true, false)?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        self.seg = seg;
        self.seg_len = MAGIC_LEN;
        Ok(path)
    }
}

/// Sequential reader over the segments (each `HttpSource` owns one).
#[derive(Default)]
pub(crate) struct WalReader {
    cur: Option<Cursor>,
}

struct Cursor {
    path: PathBuf,
    /// First sequence number of the segment.
    first: u64,
    file: BufReader<File>,
    /// Sequence number of the next record in `file`.
    next: u64,
    /// Byte position of the next record, and the file length when last looked at.
    pos: u64,
    file_len: u64,
    /// Payload buffer, reused from record to record.
    payload: Vec<u8>,
    /// The tenant and header of the previous record, shared with the records that repeat them.
    last_tenant: Arc<str>,
    last_header: Arc<str>,
}

/// `last` if it holds `text`, otherwise a new shared string (which becomes `last`).
fn shared_str(last: &mut Arc<str>, text: &str) -> Arc<str> {
    if **last != *text {
        *last = Arc::from(text);
    }
    last.clone()
}

impl Cursor {
    fn open(path: &Path, first: u64, skip_to: u64) -> Result<Self, EngineError> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::State(format!(
                    "write-ahead-log segment {} was deleted (records from seq {first} were committed); \
                     the checkpoint is older than the log",
                    path.display()
                ))
            } else {
                EngineError::io(path, e)
            }
        })?;
        let file_len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
        let mut file = BufReader::with_capacity(1 << 20, file);
        if read_segment_start(&mut file, file_len, path)? != SegmentStart::Valid {
            return Err(EngineError::State(format!(
                "write-ahead-log segment {} is shorter than its header",
                path.display()
            )));
        }
        let mut c = Self {
            path: path.to_path_buf(),
            first,
            file,
            next: first,
            pos: MAGIC_LEN,
            file_len,
            payload: Vec::new(),
            last_tenant: Arc::from(""),
            last_header: Arc::from(""),
        };
        while c.next < skip_to {
            let plen = c.read_header()?.0;
            c.file
                .seek_relative(plen as i64)
                .map_err(|e| EngineError::io(path, e))?;
            c.pos += plen;
            c.next += 1;
        }
        Ok(c)
    }

    fn corrupt(&self, at: u64, what: &str) -> EngineError {
        EngineError::State(format!(
            "write-ahead-log segment {} is corrupt at byte offset {at} (seq {}): {what}",
            self.path.display(),
            self.next
        ))
    }

    /// Makes sure `n` more bytes exist (the active segment grows while we read it).
    fn ensure(&mut self, n: u64) -> Result<(), EngineError> {
        if self.file_len - self.pos >= n {
            return Ok(());
        }
        self.file_len = self
            .file
            .get_ref()
            .metadata()
            .map_err(|e| EngineError::io(&self.path, e))?
            .len()
            .max(self.pos);
        if self.file_len - self.pos >= n {
            Ok(())
        } else {
            Err(self.corrupt(
                self.pos,
                "segment ends inside a record that was published as durable",
            ))
        }
    }

    /// Reads a record header: (payload length, CRC).
    fn read_header(&mut self) -> Result<(u64, u32), EngineError> {
        self.ensure(HEADER_LEN)?;
        let mut header = [0u8; 8];
        self.file
            .read_exact(&mut header)
            .map_err(|e| EngineError::io(&self.path, e))?;
        self.pos += HEADER_LEN;
        let len = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        self.ensure(len)?;
        Ok((len, crc))
    }

    fn read(&mut self) -> Result<WalRecord, EngineError> {
        let at = self.pos;
        let (len, crc) = self.read_header()?;
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        payload.resize(len as usize, 0);
        let rec = self.decode(at, crc, &mut payload);
        self.payload = payload;
        let rec = rec?;
        self.next += 1;
        Ok(rec)
    }

    /// Reads the payload of the record at `at` into `payload` and decodes it.
    fn decode(&mut self, at: u64, crc: u32, payload: &mut [u8]) -> Result<WalRecord, EngineError> {
        self.file
            .read_exact(payload)
            .map_err(|e| EngineError::io(&self.path, e))?;
        self.pos += payload.len() as u64;
        if crc32(payload) != crc {
            return Err(self.corrupt(at, "CRC mismatch"));
        }
        let v = decode_payload(payload).map_err(|reason| self.corrupt(at, reason))?;
        if v.seq != self.next {
            return Err(self.corrupt(at, &format!("record holds seq {}", v.seq)));
        }
        Ok(WalRecord {
            seq: v.seq,
            ingest_time_ms: v.ingest_time_ms,
            kind: v.kind,
            row: v.row,
            tenant: shared_str(&mut self.last_tenant, v.tenant),
            header: shared_str(&mut self.last_header, v.header),
            body: v.body.to_owned(),
            issue: v.issue.map(str::to_owned),
        })
    }
}

impl WalReader {
    /// Reads records `from..to` (all must be durable), in order.
    pub fn read_range(
        &mut self,
        shared: &WalShared,
        from: u64,
        to: u64,
    ) -> Result<Vec<WalRecord>, EngineError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (start_seg, later): (Option<(u64, PathBuf)>, BTreeMap<u64, PathBuf>) = {
            let st = shared.lock();
            let start = st
                .segments
                .range(..=from)
                .next_back()
                .map(|(k, v)| (*k, v.clone()));
            let later = st
                .segments
                .range(from..to)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            (start, later)
        };
        let reposition = match &self.cur {
            Some(c) => c.next != from,
            None => true,
        };
        if reposition {
            self.cur = None;
            let (first, path) = start_seg.ok_or_else(|| {
                EngineError::State(format!(
                    "seq {from} is no longer in the write-ahead log (its segment was deleted after a checkpoint)"
                ))
            })?;
            self.cur = Some(Cursor::open(&path, first, from)?);
        }
        let mut out = Vec::with_capacity((to - from).min(1 << 16) as usize);
        for seq in from..to {
            if let Some(path) = later.get(&seq) {
                if self.cur.as_ref().is_none_or(|c| c.first != seq) {
                    self.cur = Some(Cursor::open(path, seq, seq)?);
                }
            }
            let Some(cur) = self.cur.as_mut() else {
                return Err(EngineError::State(
                    "write-ahead-log reader lost its position".into(),
                ));
            };
            match cur.read() {
                Ok(r) => out.push(r),
                Err(e) => {
                    self.cur = None;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Forgets the open segment (the next read repositions).
    pub fn reset(&mut self) {
        self.cur = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, body: &str) -> WalRecord {
        WalRecord {
            seq,
            ingest_time_ms: 1,
            kind: EventKind::CertifyV1,
            row: 0,
            tenant: "t".into(),
            header: "".into(),
            body: body.into(),
            issue: None,
        }
    }

    fn encode(r: &WalRecord) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_record(&r.view(), &mut buf).unwrap();
        buf
    }

    /// A frame around an arbitrary payload (valid length and CRC).
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn write_segment(dir: &Path, first: u64, recs: &[WalRecord]) -> PathBuf {
        let mut buf = SEGMENT_MAGIC.to_vec();
        for r in recs {
            buf.extend(encode(r));
        }
        let p = dir.join(segment_name(first));
        std::fs::write(&p, &buf).unwrap();
        p
    }

    fn append(p: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn frames_round_trip_including_non_ascii_text() {
        let json = WalRecord {
            seq: 1 << 40,
            ingest_time_ms: -5,
            kind: EventKind::CertifyV3,
            row: 7,
            tenant: "तमिल-😀".into(),
            header: "".into(),
            body: r#"{"preEnrollmentCode":"अआइ","recipient":{"name":"\"q\"\n😀"}}"#.into(),
            issue: None,
        };
        let csv = WalRecord {
            seq: 12,
            ingest_time_ms: 1_620_000_000_000,
            kind: EventKind::BulkCsv,
            row: 3,
            tenant: "in".into(),
            header: "preEnrollmentCode,recipientName".into(),
            body: "p1,\"Ñandú, \"\"x\"\"\n२\"".into(),
            issue: Some("row has 3 cells but the header has 2 columns — ✗".into()),
        };
        let empty = WalRecord {
            kind: EventKind::CertifyV1,
            row: 0,
            tenant: "".into(),
            body: String::new(),
            ..rec(0, "")
        };
        for r in [&json, &csv, &empty] {
            let buf = encode(r);
            let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
            assert_eq!(len, buf.len() - 8);
            assert_eq!(
                u32::from_le_bytes(buf[4..8].try_into().unwrap()),
                crc32(&buf[8..])
            );
            let v = decode_payload(&buf[8..]).unwrap();
            assert_eq!(v, r.view());
            // The body ends the payload as raw UTF-8, not escaped.
            assert!(buf.ends_with(r.body.as_bytes()));
            let tail = &buf[buf.len() - r.body.len() - 4..buf.len() - r.body.len()];
            assert_eq!(tail, (r.body.len() as u32).to_le_bytes());
        }
        assert_eq!(json.upload_id(), format!("u{}", (1u64 << 40) - 7));
        assert_eq!(csv.upload_id(), "u10");
        assert_eq!(empty.upload_id(), "u0");
    }

    /// Payload of a valid record, to corrupt field by field.
    fn payload_of(r: &WalRecord) -> Vec<u8> {
        encode(r)[8..].to_vec()
    }

    #[test]
    fn every_kind_of_bad_payload_is_refused() {
        let good = WalRecord {
            tenant: "ab".into(),
            ..rec(3, "{}")
        };
        let p = payload_of(&good);
        // Offsets: seq 0..8, time 8..16, kind 16, row 17..21, tenant len 21..23, tenant 23..25,
        // issue flag 25, header len 26..30, body len 30..34, body 34..36.
        assert_eq!(p.len(), 36);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut q = p.clone();
            f(&mut q);
            decode_payload(&q).map(|_| ())
        };
        assert_eq!(with(&|_| {}), Ok(()));
        assert_eq!(with(&|q| q[16] = 99), Err("unknown record kind"));
        assert_eq!(with(&|q| q[16] = 0), Err("unknown record kind"));
        assert_eq!(with(&|q| q[23] = 0xff), Err("tenant is not UTF-8"));
        assert_eq!(with(&|q| q[34] = 0xc3), Err("body is not UTF-8"));
        assert_eq!(with(&|q| q[25] = 2), Err("bad issue flag"));
        assert_eq!(
            with(&|q| q[21] = 200),
            Err("a field runs past the end of the payload")
        );
        assert_eq!(
            with(&|q| q[30] = 3),
            Err("a field runs past the end of the payload")
        );
        assert_eq!(with(&|q| q[30] = 1), Err("bytes after the body"));
        assert_eq!(
            with(&|q| q.truncate(20)),
            Err("a field runs past the end of the payload")
        );
        assert_eq!(with(&|q| q.push(b' ')), Err("bytes after the body"));
        // Row 4 of seq 3 would put the upload before seq 0.
        assert_eq!(
            with(&|q| q[17] = 4),
            Err("row number does not fit the sequence number")
        );
        // Kind and header must agree.
        assert_eq!(with(&|q| q[16] = 3), Err("CSV record without a header"));
        let csv = WalRecord {
            kind: EventKind::BulkCsv,
            row: 1,
            header: "preEnrollmentCode".into(),
            ..good.clone()
        };
        let mut q = payload_of(&csv);
        q[16] = 1;
        assert_eq!(
            decode_payload(&q).map(|_| ()),
            Err("JSON record with a CSV header")
        );
        let mut q = payload_of(&csv);
        q[17] = 0;
        assert_eq!(
            decode_payload(&q).map(|_| ()),
            Err("row number does not fit the sequence number")
        );
        assert!(decode_payload(&[]).is_err());
    }

    #[test]
    fn every_kind_of_corrupt_frame_is_cut_at_the_tail_on_open() {
        let good = rec(5, "{\"a\":1}");
        let next = WalRecord {
            tenant: "ab".into(),
            ..rec(6, "{}")
        };
        let next_frame = encode(&next);
        let corrupt_payload = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut q = payload_of(&next);
            f(&mut q);
            frame(&q)
        };
        let mut bad_crc = next_frame.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0x01;
        let mut bad_len = next_frame.clone();
        bad_len[..4].copy_from_slice(&1000u32.to_le_bytes());
        let mut short_len = next_frame.clone();
        short_len[..4].copy_from_slice(&((next_frame.len() - 9) as u32).to_le_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "truncated record",
                next_frame[..next_frame.len() - 3].to_vec(),
            ),
            ("short header", next_frame[..5].to_vec()),
            ("length past the end", bad_len),
            ("length shorter than the payload", short_len),
            ("zero length", vec![0u8; 8]),
            ("bad CRC", bad_crc),
            ("bad UTF-8", corrupt_payload(&|q| q[23] = 0xff)),
            ("unknown kind", corrupt_payload(&|q| q[16] = 99)),
            ("field past the payload", corrupt_payload(&|q| q[21] = 99)),
            ("wrong seq", encode(&rec(9, "{}"))),
        ];
        for (what, tail) in cases {
            let dir = tempfile::tempdir().unwrap();
            let p = write_segment(dir.path(), 5, std::slice::from_ref(&good));
            let good_len = std::fs::metadata(&p).unwrap().len();
            append(&p, &tail);
            let r = Recovered::open(dir.path(), true).unwrap();
            assert_eq!(r.next_seq, 6, "{what}");
            assert_eq!(r.offsets, [MAGIC_LEN], "{what}");
            assert_eq!(std::fs::metadata(&p).unwrap().len(), good_len, "{what}");
            // The log goes on after the cut.
            append(&p, &next_frame);
            assert_eq!(
                Recovered::open(dir.path(), true).unwrap().next_seq,
                7,
                "{what}"
            );
        }
    }

    #[test]
    fn recovery_cuts_torn_tails_and_truncates_to_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 5, &[rec(5, "{}"), rec(6, "{\"a\":1}")]);
        let mut extra = encode(&rec(7, "{\"b\":2}"));
        extra.truncate(extra.len() - 3);
        append(&p, &extra);
        let mut r = Recovered::open(dir.path(), true).unwrap();
        assert_eq!(r.next_seq, 7);
        r.truncate_to(6).unwrap();
        assert_eq!(r.next_seq, 6);
        assert_eq!(scan_segment(&p, 5).unwrap().offsets.len(), 1);
        assert!(r.truncate_to(2).is_err());
    }

    #[test]
    fn old_json_segments_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A version 1 segment: frames of JSON records, no segment header.
        let old = frame(
            br#"{"seq":0,"ingest_time_ms":1,"kind":"certify_v1","upload_id":"u0","row":0,"tenant":"t","body":"{}"}"#,
        );
        let p = dir.path().join(segment_name(0));
        std::fs::write(&p, &old).unwrap();
        let err = Recovered::open(dir.path(), true).err().unwrap().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains("version 1"), "{err}");
        assert!(
            err.contains("drain it with the binary that wrote it"),
            "{err}"
        );
        assert!(err.contains("delete the segment files"), "{err}");
        // Nothing was changed.
        assert_eq!(std::fs::read(&p).unwrap(), old);

        // Also when it is an older, sealed segment.
        write_segment(dir.path(), 1, &[rec(1, "{}")]);
        let err = Recovered::open(dir.path(), true).err().unwrap().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");

        // A future version is named as such.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(segment_name(0));
        std::fs::write(&p, b"DIVOCWL\x03").unwrap();
        let err = Recovered::open(dir.path(), true).err().unwrap().to_string();
        assert!(err.contains("segment format version 3"), "{err}");
    }

    #[test]
    fn a_torn_segment_header_is_rewritten() {
        for len in [0, 3] {
            let dir = tempfile::tempdir().unwrap();
            write_segment(dir.path(), 0, &[rec(0, "{}")]);
            let p = dir.path().join(segment_name(1));
            std::fs::write(&p, &SEGMENT_MAGIC[..len]).unwrap();
            let r = Recovered::open(dir.path(), true).unwrap();
            assert_eq!(r.next_seq, 1);
            assert_eq!(r.last_first, 1);
            assert_eq!(r.last_len, MAGIC_LEN);
            assert_eq!(std::fs::read(&p).unwrap(), SEGMENT_MAGIC);
        }
    }

    #[test]
    fn only_a_fresh_empty_log_restarts_at_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recovered::open(dir.path(), true).unwrap();
        assert!(r.fresh);
        r.restart_at(7, true).unwrap();
        assert_eq!((r.next_seq, r.last_first), (7, 7));
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
        let p = dir.path().join(segment_name(7));
        assert_eq!(std::fs::read(&p).unwrap(), SEGMENT_MAGIC);
        let mut r = Recovered::open(dir.path(), true).unwrap();
        assert!(!r.fresh);
        assert_eq!(r.next_seq, 7);
        assert!(r.restart_at(9, true).is_err());
    }

    #[test]
    fn empty_log_starts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recovered::open(&dir.path().join("wal"), true).unwrap();
        assert_eq!(r.next_seq, 0);
        assert_eq!(r.last_len, MAGIC_LEN);
        let p = dir.path().join("wal").join(segment_name(0));
        assert_eq!(std::fs::read(p).unwrap(), SEGMENT_MAGIC);
    }

    #[test]
    fn reader_crosses_segments_and_repositions() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 0, &[rec(0, "a"), rec(1, "b")]);
        write_segment(dir.path(), 2, &[rec(2, "c")]);
        let segs = list_segments(dir.path()).unwrap();
        let shared = WalShared::new(3, segs);
        let mut r = WalReader::default();
        let all = r.read_range(&shared, 0, 3).unwrap();
        let bodies: Vec<_> = all.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["a", "b", "c"]);
        assert_eq!(all[0], rec(0, "a"));
        // Repeated tenants are shared, not copied.
        assert!(Arc::ptr_eq(&all[0].tenant, &all[1].tenant));
        let tail: Vec<_> = r
            .read_range(&shared, 1, 3)
            .unwrap()
            .into_iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(tail, [1, 2]);
        // A read that stops exactly at a segment boundary continues in the next segment.
        let mut r2 = WalReader::default();
        assert_eq!(r2.read_range(&shared, 0, 2).unwrap().len(), 2);
        assert_eq!(r2.read_range(&shared, 2, 3).unwrap()[0].body, "c");
        assert_eq!(shared.delete_segments_below(2).unwrap(), 1);
        assert!(r.read_range(&shared, 0, 1).is_err());
        assert_eq!(r.read_range(&shared, 2, 3).unwrap()[0].body, "c");
        // Never deletes the last segment.
        assert_eq!(shared.delete_segments_below(100).unwrap(), 0);
    }

    #[test]
    fn a_corrupt_durable_record_is_an_error_naming_segment_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 0, &[rec(0, "a"), rec(1, "b"), rec(2, "c")]);
        let first_len = encode(&rec(0, "a")).len() as u64;
        let mut bytes = std::fs::read(&p).unwrap();
        // Unknown kind in the second record, CRC fixed up: only the decoder notices.
        let at = (MAGIC_LEN + first_len) as usize;
        bytes[at + 8 + 16] = 0x7f;
        let crc = crc32(&bytes[at + 8..at + 8 + first_len as usize - 8]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let shared = WalShared::new(3, list_segments(dir.path()).unwrap());
        let mut r = WalReader::default();
        let err = r.read_range(&shared, 0, 3).unwrap_err().to_string();
        assert!(err.contains(&p.display().to_string()), "{err}");
        assert!(err.contains(&format!("byte offset {at} (seq 1)")), "{err}");
        assert!(err.contains("unknown record kind"), "{err}");
        // A flipped byte: CRC mismatch.
        bytes[at + 8 + 16] = 1;
        bytes[at + 8 + 1] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        let err = r.read_range(&shared, 0, 3).unwrap_err().to_string();
        assert!(err.contains("CRC mismatch"), "{err}");
        assert_eq!(r.read_range(&shared, 0, 1).unwrap()[0].body, "a");
    }
}
