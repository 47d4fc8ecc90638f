//! The write-ahead log behind the HTTP source.
//!
//! Layout: `<state_dir>/wal/<first_seq:020>.log`, append-only segment files. Each record is framed as
//! `[u32 LE payload length][u32 LE CRC-32 of payload][payload]`, the payload being a JSON-serialized
//! [`WalRecord`]. Sequence numbers are dense and start at 0; an upload's records never straddle two
//! segments (a segment is rolled only between uploads, so it may exceed the size limit by one upload).
//!
//! A single writer thread does group commit: handlers queue whole uploads, the writer appends
//! everything queued, fsyncs once, publishes the new durable end and acks every handler. Readers
//! only read records below the published durable end. On open the last segment is scanned and a
//! torn or corrupt tail (short record, CRC mismatch, bad payload, wrong sequence number) is cut off.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use divoc_model::event::EventKind;
use divoc_pipeline::EngineError;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::crc::crc32;
use super::registry::{Registry, UploadEntry};

/// One durable input record: one element of a certify array or one bulk CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalRecord {
    pub seq: u64,
    pub ingest_time_ms: i64,
    pub kind: EventKind,
    pub upload_id: String,
    /// JSON: index in the posted array (0-based). CSV: data row number (1-based, header excluded).
    pub row: u32,
    pub tenant: String,
    /// JSON: the element's exact text. CSV: a JSON object column -> cell (or, for a row whose cell
    /// count differs from the header, a JSON array of its cells).
    pub body: String,
    /// A problem found at ingest that makes the record a dead letter (`malformed_csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
}

const HEADER_LEN: u64 = 8;

/// Appends one framed record to `out`.
pub(crate) fn encode_record(rec: &WalRecord, out: &mut Vec<u8>) -> Result<(), EngineError> {
    let payload = serde_json::to_vec(rec)
        .map_err(|e| EngineError::Other(format!("encoding WAL record: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| EngineError::Other("WAL record larger than 4 GiB".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
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

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// Result of scanning one segment: byte offset of every valid record and where valid data ends.
pub(crate) struct SegmentScan {
    pub offsets: Vec<u64>,
    pub valid_len: u64,
    pub file_len: u64,
    pub stop_reason: &'static str,
}

/// Reads a segment from the start, stopping at the first torn or corrupt record.
pub(crate) fn scan_segment(path: &Path, first_seq: u64) -> Result<SegmentScan, EngineError> {
    let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut pos = 0u64;
    let mut offsets = Vec::new();
    let stop_reason = loop {
        match read_frame(&mut r, file_len - pos).map_err(|e| EngineError::io(path, e))? {
            Frame::End(reason) => break reason,
            Frame::Record(payload) => {
                let expected = first_seq + offsets.len() as u64;
                match serde_json::from_slice::<SeqOnly>(&payload) {
                    Ok(s) if s.seq == expected => {}
                    Ok(_) => break "unexpected sequence number",
                    Err(_) => break "undecodable payload",
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

/// The WAL as found on disk after crash recovery.
pub(crate) struct Recovered {
    pub dir: PathBuf,
    pub segments: BTreeMap<u64, PathBuf>,
    pub last_first: u64,
    /// Offsets of the records of the last segment.
    pub offsets: Vec<u64>,
    pub last_len: u64,
    pub next_seq: u64,
}

impl Recovered {
    /// Scans the last segment and truncates a torn tail; creates segment 0 in an empty log.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, EngineError> {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        let mut segments = list_segments(dir)?;
        let (last_first, last_path) = match segments.last_key_value() {
            Some((f, p)) => (*f, p.clone()),
            None => {
                let path = dir.join(segment_name(0));
                File::create(&path)
                    .and_then(|f| if fsync { f.sync_all() } else { Ok(()) })
                    .map_err(|e| EngineError::io(&path, e))?;
                if fsync {
                    sync_dir(dir)?;
                }
                segments.insert(0, path.clone());
                (0, path)
            }
        };
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
        })
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

/// One upload's rows, queued for the writer.
pub(crate) struct PendingUpload {
    pub tenant: String,
    pub kind: EventKind,
    pub rows: Vec<PendingRow>,
}

#[derive(Debug)]
pub(crate) struct PendingRow {
    pub body: String,
    pub issue: Option<String>,
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
            let mut bytes = first
                .upload
                .rows
                .iter()
                .map(|r| r.body.len())
                .sum::<usize>();
            let mut group = vec![first];
            while group.len() < GROUP_MAX_UPLOADS && bytes < GROUP_MAX_BYTES {
                match rx.try_recv() {
                    Ok(m) => {
                        bytes += m.upload.rows.iter().map(|r| r.body.len()).sum::<usize>();
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
            let rows = m.upload.rows.len() as u64;
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
            for (i, row) in m.upload.rows.iter().enumerate() {
                let row_no = match m.upload.kind {
                    EventKind::BulkCsv => i + 1,
                    _ => i,
                };
                let rec = WalRecord {
                    seq: e.first_seq + i as u64,
                    ingest_time_ms: now,
                    kind: m.upload.kind,
                    upload_id: e.id.clone(),
                    row: u32::try_from(row_no).unwrap_or(u32::MAX),
                    tenant: m.upload.tenant.clone(),
                    body: row.body.clone(),
                    issue: row.issue.clone(),
                };
                encode_record(&rec, &mut buf)?;
            }
            if self.seg_len > 0 && self.seg_len + buf.len() as u64 > self.segment_bytes {
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
        let seg = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        self.seg = seg;
        self.seg_len = 0;
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
        let mut c = Self {
            path: path.to_path_buf(),
            first,
            file: BufReader::with_capacity(1 << 20, file),
            next: first,
            pos: 0,
            file_len,
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

    fn corrupt(&self, what: &str) -> EngineError {
        EngineError::State(format!(
            "write-ahead log {} is corrupt at seq {}: {what}",
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
            Err(self.corrupt("segment ends inside a record that was published as durable"))
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
        let (len, crc) = self.read_header()?;
        let mut payload = vec![0u8; len as usize];
        self.file
            .read_exact(&mut payload)
            .map_err(|e| EngineError::io(&self.path, e))?;
        self.pos += len;
        if crc32(&payload) != crc {
            return Err(self.corrupt("CRC mismatch"));
        }
        let rec: WalRecord =
            serde_json::from_slice(&payload).map_err(|e| self.corrupt(&format!("payload: {e}")))?;
        if rec.seq != self.next {
            return Err(self.corrupt(&format!("record holds seq {}", rec.seq)));
        }
        self.next += 1;
        Ok(rec)
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
            upload_id: "u0".into(),
            row: seq as u32,
            tenant: "t".into(),
            body: body.into(),
            issue: None,
        }
    }

    fn write_segment(dir: &Path, first: u64, recs: &[WalRecord]) -> PathBuf {
        let mut buf = Vec::new();
        for r in recs {
            encode_record(r, &mut buf).unwrap();
        }
        let p = dir.join(segment_name(first));
        std::fs::write(&p, &buf).unwrap();
        p
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn recovery_cuts_torn_and_corrupt_tails() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 5, &[rec(5, "{}"), rec(6, "{\"a\":1}")]);
        let good_len = std::fs::metadata(&p).unwrap().len();
        // A torn third record.
        let mut extra = Vec::new();
        encode_record(&rec(7, "{\"b\":2}"), &mut extra).unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&extra[..extra.len() - 3]).unwrap();
        drop(f);
        let r = Recovered::open(dir.path(), true).unwrap();
        assert_eq!(r.next_seq, 7);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good_len);

        // A complete record with a flipped payload byte (CRC mismatch).
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        let mut bad = extra.clone();
        let last = bad.len() - 2;
        bad[last] ^= 0x01;
        f.write_all(&bad).unwrap();
        drop(f);
        let r = Recovered::open(dir.path(), true).unwrap();
        assert_eq!(r.next_seq, 7);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good_len);

        // A record with the wrong sequence number.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        let mut wrong = Vec::new();
        encode_record(&rec(9, "{}"), &mut wrong).unwrap();
        f.write_all(&wrong).unwrap();
        drop(f);
        let mut r = Recovered::open(dir.path(), true).unwrap();
        assert_eq!(r.next_seq, 7);
        r.truncate_to(6).unwrap();
        assert_eq!(r.next_seq, 6);
        assert_eq!(scan_segment(&p, 5).unwrap().offsets.len(), 1);
        assert!(r.truncate_to(2).is_err());
    }

    #[test]
    fn empty_log_starts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recovered::open(&dir.path().join("wal"), true).unwrap();
        assert_eq!(r.next_seq, 0);
        assert!(dir.path().join("wal").join(segment_name(0)).exists());
    }

    #[test]
    fn reader_crosses_segments_and_repositions() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 0, &[rec(0, "a"), rec(1, "b")]);
        write_segment(dir.path(), 2, &[rec(2, "c")]);
        let segs = list_segments(dir.path()).unwrap();
        let shared = WalShared::new(3, segs);
        let mut r = WalReader::default();
        let all: Vec<_> = r
            .read_range(&shared, 0, 3)
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(all, ["a", "b", "c"]);
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
}
