//! [`HttpSource`]: builds the WAL, writer, server and listener, and replays the WAL as event batches.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use divoc_model::event::{
    csv_header_index, parse_request_json, request_from_csv_row, CertifyRequest, EventKind,
};
use divoc_model::lifecycle::SharedCertificateStates;
use divoc_model::schema::{EventBatchBuilder, EventOrigin};
use divoc_pipeline::config::{BuildContext, ConfigIssue};
use divoc_pipeline::dead_letter::{RawDeadLetters, RawOrigin, Reason};
use divoc_pipeline::operator::{Source, SourcePoll};
use divoc_pipeline::EngineError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::config::HttpSourceConfig;
use super::registry::{Registry, UploadErrorListener};
use super::server::{router, ServerState};
use super::wal::{Recovered, WalReader, WalRecord, WalShared, Writer};

/// Uploads queued for the WAL writer before handlers wait (backpressure).
const WRITER_QUEUE: usize = 1024;

/// The source's replay position, stored in checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSourcePosition {
    /// Sequence number of the next WAL record to read.
    pub next_seq: u64,
}

fn issue_to_error(i: ConfigIssue) -> EngineError {
    EngineError::Config(format!("{}: {}; fix: {}", i.key, i.problem, i.fix))
}

/// The running HTTP ingest source: an HTTP server writing a WAL, and a reader replaying it.
pub struct HttpSource {
    node: String,
    shared: Arc<WalShared>,
    reader: WalReader,
    next_seq: u64,
    linger: Duration,
    local_addr: SocketAddr,
    wal_dir: PathBuf,
    stop_server: Option<oneshot::Sender<()>>,
    server_task: Option<tokio::task::JoinHandle<()>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    active: Arc<AtomicBool>,
}

impl HttpSourceConfig {
    /// Opens the WAL (recovering a torn tail), starts the writer and the HTTP server, registers the
    /// dead-letter listener. Returns the concrete source (use [`Component::build`] for the boxed one).
    ///
    /// [`Component::build`]: divoc_pipeline::config::Component::build
    pub fn open(self, ctx: &BuildContext<'_>) -> Result<HttpSource, EngineError> {
        self.validate().map_err(issue_to_error)?;
        let tokens = self.resolved_tokens().map_err(issue_to_error)?;
        if tokens.is_empty() {
            tracing::warn!(
                node = ctx.node,
                "http_source has no tokens configured: every request is answered 401"
            );
        }
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| EngineError::Config(format!("listen: {:?}: {e}", self.listen)))?;
        // Bind first (synchronously) so a busy port fails the build before anything else starts.
        let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
            EngineError::Config(format!("listen: cannot bind {addr}: {e}; pick a free port"))
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| EngineError::Other(format!("listen {addr}: {e}")))?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|e| EngineError::Other(format!("listen {addr}: {e}")))?;

        std::fs::create_dir_all(&ctx.state_dir).map_err(|e| EngineError::io(&ctx.state_dir, e))?;
        let wal_dir = ctx.state_dir.join("wal");
        let mut recovered = Recovered::open(&wal_dir, self.fsync)?;
        let registry = Arc::new(Registry::open(
            &ctx.state_dir,
            self.fsync,
            self.max_uploads_retained,
            &mut recovered,
        )?);
        let shared = WalShared::new(recovered.next_seq, recovered.segments.clone());
        let writer = Writer::new(
            &recovered,
            self.wal_segment_bytes,
            self.fsync,
            shared.clone(),
            registry.clone(),
        )?;
        let (tx, rx) = tokio::sync::mpsc::channel(WRITER_QUEUE);
        let writer_thread = std::thread::Builder::new()
            .name(format!("wal-{}", ctx.node))
            .spawn(move || writer.run(rx))
            .map_err(|e| EngineError::Other(format!("cannot start the WAL writer thread: {e}")))?;

        let state = Arc::new(ServerState {
            tokens: tokens
                .into_iter()
                .map(|(t, tenant, roles)| (t.into_bytes(), Arc::<str>::from(tenant), roles))
                .collect(),
            max_body: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_events: self.max_events_per_request,
            max_csv: usize::try_from(self.max_csv_bytes).unwrap_or(usize::MAX),
            max_csv_rows: self.max_csv_rows,
            tx,
            registry: registry.clone(),
            shared: shared.clone(),
            metrics: super::server::HttpMetrics::register(ctx.metrics)?,
            certificate_states: ctx
                .resources
                .get::<SharedCertificateStates>()
                .cloned()
                .unwrap_or_default(),
        });
        let app = router(state);
        let listener = {
            let _guard = ctx.runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| EngineError::Other(format!("listen {addr}: {e}")))?
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let node_name = ctx.node.to_owned();
        let server_task = ctx.runtime.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(node = %node_name, error = %e, "http_source server stopped");
            }
        });

        let active = Arc::new(AtomicBool::new(true));
        ctx.listeners.register(Arc::new(UploadErrorListener {
            node: ctx.node.to_owned(),
            registry,
            active: active.clone(),
        }));
        tracing::info!(
            node = ctx.node,
            listen = %local_addr,
            wal_next_seq = recovered.next_seq,
            segments = recovered.segments.len(),
            "http_source listening"
        );
        Ok(HttpSource {
            node: ctx.node.to_owned(),
            shared,
            reader: WalReader::default(),
            next_seq: 0,
            linger: Duration::from_millis(ctx.settings.linger_ms.clamp(1, 200)),
            local_addr,
            wal_dir,
            stop_server: Some(stop_tx),
            server_task: Some(server_task),
            writer_thread: Some(writer_thread),
            active,
        })
    }
}

impl HttpSource {
    /// The address the server is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Directory holding the WAL segments.
    pub fn wal_dir(&self) -> &std::path::Path {
        &self.wal_dir
    }

    /// Sequence number the next accepted event will get (= events durable so far, counting from 0).
    pub fn durable_seq(&self) -> u64 {
        self.shared.lock().durable_next
    }

    fn decode(rec: &WalRecord, headers: &mut CsvHeaders) -> Result<CertifyRequest, Reason> {
        if let Some(issue) = &rec.issue {
            return Err(Reason::new("malformed_csv", issue.clone()));
        }
        match rec.kind {
            EventKind::BulkCsv => {
                let (index, columns) = headers
                    .get(&rec.header)
                    .map_err(|m| Reason::new("malformed_csv", m.to_owned()))?;
                let row = csv_record(&rec.body).map_err(|m| Reason::new("malformed_csv", m))?;
                if row.len() != columns {
                    return Err(Reason::new(
                        "malformed_csv",
                        format!(
                            "row has {} cells but the header has {columns} columns",
                            row.len()
                        ),
                    ));
                }
                request_from_csv_row(index, &row).map_err(|e| {
                    Reason::new("invalid_field_type", format!("{}: {}", e.column, e.message))
                })
            }
            // Certify, update and the lifecycle bodies are JSON objects.
            _ => parse_request_json(&rec.body).map_err(|m| Reason::new("invalid_field_type", m)),
        }
    }

    fn convert(&self, records: &[WalRecord]) -> Result<SourcePoll, EngineError> {
        let mut events = EventBatchBuilder::with_capacity(records.len());
        let mut dead = RawDeadLetters::default();
        let mut headers = CsvHeaders::default();
        for rec in records {
            let raw_origin = RawOrigin {
                tenant: &rec.tenant,
                source_id: &self.node,
                offset: rec.seq,
                ingest_time_ms: rec.ingest_time_ms,
                kind: rec.kind.as_str(),
            };
            let req = match Self::decode(rec, &mut headers) {
                Ok(r) => r,
                Err(reason) => {
                    dead.push(&raw_origin, &rec.body, reason);
                    continue;
                }
            };
            let origin = EventOrigin {
                tenant: &rec.tenant,
                kind: rec.kind,
                ingest_time_ms: rec.ingest_time_ms,
                source_id: &self.node,
                source_offset: rec.seq,
                raw: &rec.body,
            };
            if let Err(fe) = events.append(&req, &origin) {
                let code = if fe.field == "meta" {
                    "invalid_field_type"
                } else {
                    "invalid_date"
                };
                dead.push(
                    &raw_origin,
                    &rec.body,
                    Reason::new(code, format!("{}: {}", fe.field, fe.message)),
                );
            }
        }
        Ok(SourcePoll::Batch {
            events: (!events.is_empty()).then(|| events.finish()),
            dead_letters: if dead.is_empty() {
                None
            } else {
                Some(dead.finish(&self.node)?)
            },
            records: records.len() as u64,
        })
    }
}

/// Parsed CSV headers of the records of one batch (uploads repeat theirs on every row).
#[derive(Default)]
struct CsvHeaders {
    last: Option<(Arc<str>, ParsedHeader)>,
}

type ColumnIndex = [Option<usize>; 28];
/// A header's column index and column count, or why it is unusable.
type ParsedHeader = Result<(ColumnIndex, usize), String>;

impl CsvHeaders {
    /// The column index and column count of `header`.
    fn get(&mut self, header: &Arc<str>) -> Result<(&ColumnIndex, usize), &str> {
        let hit = matches!(&self.last, Some((h, _)) if Arc::ptr_eq(h, header) || **h == **header);
        if !hit {
            let parsed =
                csv_record(header).and_then(|h| csv_header_index(&h).map(|index| (index, h.len())));
            self.last = Some((header.clone(), parsed));
        }
        match &self.last {
            Some((_, Ok((index, columns)))) => Ok((index, *columns)),
            Some((_, Err(m))) => Err(m),
            None => Err("no CSV header"),
        }
    }
}

/// Parses one CSV record (the exact text of a row or a header line, as the server kept it).
fn csv_record(text: &str) -> Result<csv::StringRecord, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(text.len().clamp(64, 8192))
        .from_reader(text.as_bytes());
    let mut rec = csv::StringRecord::new();
    match rdr.read_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Err("empty CSV row".into()),
        Err(e) => return Err(format!("unreadable CSV row: {e}")),
    }
    let mut extra = csv::StringRecord::new();
    match rdr.read_record(&mut extra) {
        Ok(false) => Ok(rec),
        _ => Err("the row holds more than one CSV record".into()),
    }
}

fn parse_position(v: &serde_json::Value) -> Result<HttpSourcePosition, EngineError> {
    HttpSourcePosition::deserialize(v).map_err(|e| {
        EngineError::State(format!(
            "http_source position {v} is not {{\"next_seq\": N}}: {e}"
        ))
    })
}

impl Source for HttpSource {
    fn resume(&mut self, position: Option<&serde_json::Value>) -> Result<(), EngineError> {
        let next = match position {
            None => 0,
            Some(v) => parse_position(v)?.next_seq,
        };
        let durable = self.durable_seq();
        if next > durable {
            return Err(EngineError::State(format!(
                "checkpoint position next_seq={next} is beyond the end of the write-ahead log ({durable}); \
                 the log lost acknowledged data (was fsync disabled?)"
            )));
        }
        self.reader.reset();
        self.next_seq = next;
        Ok(())
    }

    fn poll(&mut self, max_records: usize) -> Result<SourcePoll, EngineError> {
        let durable = self.shared.wait_beyond(self.next_seq, self.linger);
        if durable <= self.next_seq {
            return Ok(SourcePoll::Idle);
        }
        let to = durable.min(self.next_seq.saturating_add(max_records.max(1) as u64));
        let records = self.reader.read_range(&self.shared, self.next_seq, to)?;
        let out = self.convert(&records)?;
        self.next_seq = to;
        Ok(out)
    }

    fn position(&self) -> serde_json::Value {
        serde_json::to_value(HttpSourcePosition {
            next_seq: self.next_seq,
        })
        .unwrap_or_default()
    }

    fn begin_stop(&mut self) -> bool {
        // Stop accepting requests; what was already acknowledged is drained before the final barrier.
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        // Wait (bounded) for in-flight requests to be answered, so their events are in the WAL
        // before the drain starts and a clean stop leaves nothing for the next run.
        if let Some(task) = &self.server_task {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !task.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        true
    }

    fn on_committed(&mut self, position: &serde_json::Value) -> Result<(), EngineError> {
        let committed = parse_position(position)?.next_seq;
        let n = self.shared.delete_segments_below(committed)?;
        if n > 0 {
            tracing::debug!(node = %self.node, deleted_segments = n, committed, "write-ahead log segments deleted");
        }
        Ok(())
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Release);
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        // The writer exits once the server (and every handler holding a sender) is gone.
        let Some(writer) = self.writer_thread.take() else {
            return;
        };
        let wait = |deadline: Instant| {
            while !writer.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait(Instant::now() + Duration::from_secs(5));
        if !writer.is_finished() {
            if let Some(task) = self.server_task.take() {
                task.abort();
            }
            wait(Instant::now() + Duration::from_secs(2));
        }
        if writer.is_finished() {
            let _ = writer.join();
        } else {
            tracing::warn!(node = %self.node, "WAL writer still busy at shutdown; detaching it");
        }
    }
}
