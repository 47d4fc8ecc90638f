//! `file_source`: bulk NDJSON or DIVOC CSV files (one file or a directory), replayable by byte offset.
//!
//! Files are read in name order. A position is `{"file": <name>, "offset": <byte>}`: every file
//! sorting before `file` is done, and `file` is done up to `offset`. Add new bulk files with names
//! that sort after the ones already ingested (e.g. a date prefix).
//!
//! An event's ingest time is its file's modification time, so a replay stamps it identically.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use divoc_model::event::{
    csv_header_index, parse_request_json_classified, request_from_csv_row, EventKind,
};
use divoc_model::schema::{EventBatchBuilder, EventOrigin};
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::{RawDeadLetters, RawOrigin, Reason};
use divoc_pipeline::operator::{Source, SourcePoll};
use divoc_pipeline::EngineError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// By extension: `.csv` is CSV, anything else NDJSON.
    #[default]
    Auto,
    Ndjson,
    Csv,
}

/// Which certify API an NDJSON file's events follow (decides the credential flavour).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    #[default]
    V1,
    V3,
}

/// What an NDJSON file's lines ask for: certificates (the default), or lifecycle events with the
/// same bodies as DIVOC's endpoints (an update is a certify body; revoke / suspend / lift need
/// `preEnrollmentCode`, `programId` and `vaccination.dose`, a suspension `suspendUntil`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileEvents {
    #[default]
    Certify,
    Update,
    Revoke,
    Suspend,
    LiftSuspension,
}

/// Options of a `file_source` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A file, or a directory whose `.ndjson`, `.jsonl`, `.json` and `.csv` files are read in name order.
    pub path: PathBuf,
    #[serde(default)]
    pub format: FileFormat,
    #[serde(default)]
    pub api_version: ApiVersion,
    /// What the lines are (NDJSON only): `certify`, `update`, `revoke`, `suspend`, `lift_suspension`.
    #[serde(default)]
    pub events: FileEvents,
    /// Tenant stamped on every event.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Longest accepted record; longer ones are dead-lettered as `record_too_long`.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: usize,
}

fn default_tenant() -> String {
    "default".into()
}
fn default_max_record() -> usize {
    1 << 20
}

impl Component for FileSourceConfig {
    const KIND: &'static str = "file_source";
    const ROLE: Role = Role::Source;
    /// The certify event schema.
    fn adds() -> Vec<divoc_pipeline::columns::Column> {
        divoc_model::columns::EVENT_COLUMNS.to_vec()
    }
    const ABOUT: &'static str = "bulk NDJSON / DIVOC CSV files, replayable by byte offset";

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        if self.format == FileFormat::Csv && self.events != FileEvents::Certify {
            return Err(ConfigIssue::new(
                "events",
                "DIVOC's bulk CSV only certifies",
                "send lifecycle events as NDJSON (format = \"ndjson\")",
            ));
        }
        let p = ctx.resolve(&self.path);
        if !p.exists() {
            return Err(ConfigIssue::new(
                "path",
                format!("{} does not exist", p.display()),
                "point `path` at an NDJSON/CSV file or a directory of them (divoc gen writes one)",
            ));
        }
        if self.tenant.is_empty() || self.tenant.len() > 64 {
            return Err(ConfigIssue::new(
                "tenant",
                "tenant must be 1..=64 bytes",
                "set tenant = \"default\" or your tenant's name",
            ));
        }
        if !(1024..=(64 << 20)).contains(&self.max_record_bytes) {
            return Err(ConfigIssue::new(
                "max_record_bytes",
                "out of range",
                "use 1024..=67108864",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let root = ctx.resolve(&self.path);
        Ok(BuiltNode::Source(Box::new(FileSource::new(
            ctx.node, root, self,
        )?)))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Position {
    file: String,
    offset: u64,
}

struct CsvState {
    reader: csv::Reader<File>,
    header_index: [Option<usize>; 28],
    header_len: usize,
    header_error: Option<String>,
}

struct OpenFile {
    name: String,
    source_id: String,
    ingest_ms: i64,
    kind: EventKind,
    offset: u64,
    lines: Option<BufReader<File>>,
    csv: Option<CsvState>,
}

pub struct FileSource {
    node: String,
    cfg: FileSourceConfig,
    /// (name, full path), sorted by name.
    files: Vec<(String, PathBuf)>,
    next_file: usize,
    open: Option<OpenFile>,
    position: Position,
    line: Vec<u8>,
}

fn list_files(root: &Path) -> Result<Vec<(String, PathBuf)>, EngineError> {
    if root.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, root.to_path_buf())]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| EngineError::io(root, e))? {
        let entry = entry.map_err(|e| EngineError::io(root, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if path.is_file() && ["ndjson", "jsonl", "json", "csv"].contains(&ext.as_str()) {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

impl FileSource {
    pub fn new(node: &str, root: PathBuf, cfg: FileSourceConfig) -> Result<Self, EngineError> {
        let files = list_files(&root)?;
        Ok(Self {
            node: node.to_owned(),
            cfg,
            files,
            next_file: 0,
            open: None,
            position: Position::default(),
            line: Vec::with_capacity(4096),
        })
    }

    fn open_file(&self, idx: usize, offset: u64) -> Result<OpenFile, EngineError> {
        let (name, path) = &self.files[idx];
        let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        let meta = file.metadata().map_err(|e| EngineError::io(path, e))?;
        let ingest_ms = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let is_csv = match self.cfg.format {
            FileFormat::Csv => true,
            FileFormat::Ndjson => false,
            FileFormat::Auto => name.to_ascii_lowercase().ends_with(".csv"),
        };
        let kind = match (is_csv, self.cfg.events, self.cfg.api_version) {
            (true, _, _) => EventKind::BulkCsv,
            (false, FileEvents::Certify, ApiVersion::V1) => EventKind::CertifyV1,
            (false, FileEvents::Certify, ApiVersion::V3) => EventKind::CertifyV3,
            (false, FileEvents::Update, _) => EventKind::Update,
            (false, FileEvents::Revoke, _) => EventKind::Revoke,
            (false, FileEvents::Suspend, _) => EventKind::Suspend,
            (false, FileEvents::LiftSuspension, _) => EventKind::LiftSuspension,
        };
        let mut of = OpenFile {
            name: name.clone(),
            source_id: format!("{}:{}", self.node, name),
            ingest_ms,
            kind,
            offset,
            lines: None,
            csv: None,
        };
        if is_csv {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(file);
            let mut header = csv::StringRecord::new();
            let has = reader
                .read_record(&mut header)
                .map_err(|e| EngineError::Other(format!("{name}: cannot read CSV header: {e}")))?;
            let (header_index, header_error) = match (has, csv_header_index(&header)) {
                (false, _) => ([None; 28], None),
                (true, Ok(i)) => (i, None),
                (true, Err(e)) => ([None; 28], Some(e)),
            };
            let start = reader.position().byte();
            if offset > start {
                let mut pos = csv::Position::new();
                pos.set_byte(offset);
                reader.seek(pos).map_err(|e| {
                    EngineError::Other(format!("{name}: cannot seek to {offset}: {e}"))
                })?;
            } else {
                of.offset = start;
            }
            of.csv = Some(CsvState {
                reader,
                header_index,
                header_len: header.len(),
                header_error,
            });
        } else {
            let mut f = file;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| EngineError::io(path, e))?;
            of.lines = Some(BufReader::with_capacity(1 << 20, f));
        }
        Ok(of)
    }
}

impl Source for FileSource {
    fn resume(&mut self, position: Option<&serde_json::Value>) -> Result<(), EngineError> {
        let pos: Position = match position {
            None => Position::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                EngineError::State(format!(
                    "file_source {}: bad checkpoint position: {e}",
                    self.node
                ))
            })?,
        };
        self.open = None;
        self.next_file = self
            .files
            .iter()
            .position(|(n, _)| *n >= pos.file)
            .unwrap_or(self.files.len());
        if let Some((name, _)) = self.files.get(self.next_file) {
            if *name == pos.file {
                let of = self.open_file(self.next_file, pos.offset)?;
                self.next_file += 1;
                self.open = Some(of);
            }
        }
        self.position = pos;
        Ok(())
    }

    fn poll(&mut self, max_records: usize) -> Result<SourcePoll, EngineError> {
        let mut events = EventBatchBuilder::with_capacity(max_records.min(8192));
        let mut dead = RawDeadLetters::default();
        let mut records = 0u64;
        while records < max_records as u64 {
            if self.open.is_none() {
                if self.next_file >= self.files.len() {
                    break;
                }
                let of = self.open_file(self.next_file, 0)?;
                self.next_file += 1;
                self.position = Position {
                    file: of.name.clone(),
                    offset: of.offset,
                };
                self.open = Some(of);
            }
            let Some(of) = self.open.as_mut() else { break };
            let more = if of.csv.is_some() {
                read_csv(
                    of,
                    &self.cfg,
                    max_records as u64 - records,
                    &mut events,
                    &mut dead,
                )?
            } else {
                read_lines(
                    of,
                    &self.cfg,
                    &mut self.line,
                    max_records as u64 - records,
                    &mut events,
                    &mut dead,
                )?
            };
            records += more.records;
            self.position = Position {
                file: of.name.clone(),
                offset: of.offset,
            };
            if more.eof {
                self.open = None;
            }
        }
        if records == 0 && self.open.is_none() && self.next_file >= self.files.len() {
            return Ok(SourcePoll::Finished);
        }
        Ok(SourcePoll::Batch {
            events: (!events.is_empty()).then(|| events.finish()),
            dead_letters: if dead.is_empty() {
                None
            } else {
                Some(dead.finish(&self.node)?)
            },
            records,
        })
    }

    fn position(&self) -> serde_json::Value {
        serde_json::to_value(&self.position).unwrap_or_default()
    }
}

struct ReadResult {
    records: u64,
    eof: bool,
}

fn origin<'a>(of: &'a OpenFile, cfg: &'a FileSourceConfig, offset: u64) -> RawOrigin<'a> {
    RawOrigin {
        tenant: &cfg.tenant,
        source_id: &of.source_id,
        offset,
        ingest_time_ms: of.ingest_ms,
        kind: of.kind.as_str(),
    }
}

fn read_lines(
    of: &mut OpenFile,
    cfg: &FileSourceConfig,
    line: &mut Vec<u8>,
    max: u64,
    events: &mut EventBatchBuilder,
    dead: &mut RawDeadLetters,
) -> Result<ReadResult, EngineError> {
    let Some(mut reader) = of.lines.take() else {
        return Ok(ReadResult {
            records: 0,
            eof: true,
        });
    };
    let r = read_lines_from(&mut reader, of, cfg, line, max, events, dead);
    of.lines = Some(reader);
    r
}

fn read_lines_from(
    reader: &mut BufReader<File>,
    of: &mut OpenFile,
    cfg: &FileSourceConfig,
    line: &mut Vec<u8>,
    max: u64,
    events: &mut EventBatchBuilder,
    dead: &mut RawDeadLetters,
) -> Result<ReadResult, EngineError> {
    let mut records = 0;
    while records < max {
        let start = of.offset;
        line.clear();
        let limit = cfg.max_record_bytes as u64 + 1;
        let n = reader
            .by_ref()
            .take(limit)
            .read_until(b'\n', line)
            .map_err(|e| EngineError::io(&of.name, e))?;
        if n == 0 {
            return Ok(ReadResult { records, eof: true });
        }
        of.offset += n as u64;
        let too_long = line.len() as u64 >= limit && line.last() != Some(&b'\n');
        if too_long {
            // Skip the rest of the oversized line without buffering it.
            let mut skipped = Vec::new();
            loop {
                skipped.clear();
                let m = reader
                    .by_ref()
                    .take(1 << 20)
                    .read_until(b'\n', &mut skipped)
                    .map_err(|e| EngineError::io(&of.name, e))?;
                of.offset += m as u64;
                if m == 0 || skipped.last() == Some(&b'\n') {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&line[..line.len().min(1024)]).into_owned();
            dead.push(
                &origin(of, cfg, start),
                &head,
                Reason::new(
                    "record_too_long",
                    format!(
                        "record exceeds max_record_bytes ({}); only its first 1 KiB is kept",
                        cfg.max_record_bytes
                    ),
                ),
            );
            records += 1;
            continue;
        }
        let text = match std::str::from_utf8(line) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(_) => {
                let lossy = String::from_utf8_lossy(line).into_owned();
                dead.push(
                    &origin(of, cfg, start),
                    lossy.trim_end(),
                    Reason::new("malformed_json", "record is not valid UTF-8"),
                );
                records += 1;
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        records += 1;
        match parse_request_json_classified(text) {
            Err((code, msg)) => dead.push(&origin(of, cfg, start), text, Reason::new(code, msg)),
            Ok(req) => {
                let o = EventOrigin {
                    tenant: &cfg.tenant,
                    kind: of.kind,
                    ingest_time_ms: of.ingest_ms,
                    source_id: &of.source_id,
                    source_offset: start,
                    raw: text,
                };
                if let Err(fe) = events.append(&req, &o) {
                    dead.push(
                        &origin(of, cfg, start),
                        text,
                        Reason::new("invalid_date", format!("{}: {}", fe.field, fe.message)),
                    );
                }
            }
        }
    }
    Ok(ReadResult {
        records,
        eof: false,
    })
}

fn read_csv(
    of: &mut OpenFile,
    cfg: &FileSourceConfig,
    max: u64,
    events: &mut EventBatchBuilder,
    dead: &mut RawDeadLetters,
) -> Result<ReadResult, EngineError> {
    let Some(mut st) = of.csv.take() else {
        return Ok(ReadResult {
            records: 0,
            eof: true,
        });
    };
    let r = read_csv_from(&mut st, of, cfg, max, events, dead);
    of.csv = Some(st);
    r
}

fn read_csv_from(
    st: &mut CsvState,
    of: &mut OpenFile,
    cfg: &FileSourceConfig,
    max: u64,
    events: &mut EventBatchBuilder,
    dead: &mut RawDeadLetters,
) -> Result<ReadResult, EngineError> {
    let mut rec = csv::StringRecord::new();
    let mut records = 0;
    while records < max {
        let start = st.reader.position().byte();
        let got = match st.reader.read_record(&mut rec) {
            Ok(g) => g,
            Err(e) => {
                // Invalid UTF-8 or similar: the csv reader has moved past the bad record.
                let end = st.reader.position().byte();
                of.offset = end;
                records += 1;
                let o = origin(of, cfg, start);
                dead.push(
                    &o,
                    "",
                    Reason::new("malformed_csv", format!("unreadable CSV record: {e}")),
                );
                if end == start {
                    return Ok(ReadResult { records, eof: true });
                }
                continue;
            }
        };
        if !got {
            of.offset = st.reader.position().byte();
            return Ok(ReadResult { records, eof: true });
        }
        of.offset = st.reader.position().byte();
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        records += 1;
        let raw = csv_line(&rec);
        let o = origin(of, cfg, start);
        if let Some(e) = &st.header_error {
            dead.push(&o, &raw, Reason::new("malformed_csv", e.clone()));
            continue;
        }
        if raw.len() > cfg.max_record_bytes {
            dead.push(
                &o,
                &raw[..floor_char_boundary(&raw, 1024)],
                Reason::new("record_too_long", "CSV record exceeds max_record_bytes"),
            );
            continue;
        }
        if rec.len() != st.header_len {
            dead.push(
                &o,
                &raw,
                Reason::new(
                    "malformed_csv",
                    format!(
                        "row has {} cells, the header has {}",
                        rec.len(),
                        st.header_len
                    ),
                ),
            );
            continue;
        }
        match request_from_csv_row(&st.header_index, &rec) {
            Err(e) => dead.push(
                &o,
                &raw,
                Reason::new("invalid_field_type", format!("{}: {}", e.column, e.message)),
            ),
            Ok(req) => {
                let eo = EventOrigin {
                    tenant: &cfg.tenant,
                    kind: of.kind,
                    ingest_time_ms: of.ingest_ms,
                    source_id: &of.source_id,
                    source_offset: start,
                    raw: &raw,
                };
                if let Err(fe) = events.append(&req, &eo) {
                    dead.push(
                        &o,
                        &raw,
                        Reason::new("invalid_date", format!("{}: {}", fe.field, fe.message)),
                    );
                }
            }
        }
    }
    Ok(ReadResult {
        records,
        eof: false,
    })
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The record as one CSV line (dead letters keep the original cells).
fn csv_line(rec: &csv::StringRecord) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    if w.write_record(rec).is_err() {
        return String::new();
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes)
        .map(|s| s.trim_end_matches('\n').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
