//! `dedupe`: the certificate state of each (tenant, programId, preEnrollmentCode, dose): one
//! active certificate per dose, and the lifecycle transitions on it.
//!
//! | event | state before | outcome |
//! |---|---|---|
//! | certify | none, or revoked | a new certificate id, active |
//! | certify | active or suspended | dead letter `duplicate` (with the existing id) |
//! | update | active, fewer than `correction_limit` corrections | a new id, `previous_certificate_id` = the old one (now revoked) |
//! | update | none or revoked / suspended / at the limit | dead letter `unknown_certificate` / `suspended` / `correction_limit` |
//! | revoke | active or suspended | revoked; the row carries the revoked id |
//! | suspend | active or suspended | suspended until `suspend_until` (none: until lifted) |
//! | lift_suspension | suspended | active |
//! | revoke, suspend, lift | anything else | dead letter `unknown_certificate` / `not_suspended` |
//!
//! Keys live in an embedded LSM store (fjall) under the node's state directory: atomic (one writer,
//! each batch committed as one write batch), permanent (no expiry), durable at every epoch barrier,
//! with memory bounded by the block cache and bloom filters rather than the key count.
//!
//! Certificate ids come from a counter stored in the same write batch as the keys, so they are
//! unique by construction. Each key also records which event claimed it (a hash of source id and
//! offset): when a replay after a crash presents that same event again, it gets its own id back
//! instead of being called a duplicate, which keeps replays byte-identical.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray, StringBuilder};
use arrow::datatypes::{Date32Type, Int64Type, TimestampMillisecondType, UInt64Type};
use arrow::record_batch::RecordBatch;
use divoc_model::columns;
use divoc_model::event::{Action, EventKind};
use divoc_model::lifecycle::SharedCertificateStates;
use divoc_model::schema;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::{Reason, Rejections};
use divoc_pipeline::operator::{EpochOutput, Operator, Processed};
use divoc_pipeline::EngineError;
use fjall::config::PinningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use rayon::prelude::*;
use serde::Deserialize;

/// Options of a `dedupe` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// Store directory; default `<state_dir>/nodes/<node>/keys`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Leading digits of every certificate id this node issues (1..=9999); give each independent
    /// dedupe node its own namespace and ids never collide.
    #[serde(default = "default_namespace")]
    pub id_namespace: u32,
    /// Block cache for the key store, in MiB.
    #[serde(default = "default_cache")]
    pub cache_mib: u64,
    /// Size ratio between the key store's LSM levels. Keys are random hashes, so each merge into
    /// a level rewrites about `ratio` times the bytes merged: a smaller ratio trades more levels
    /// (more bloom checks per lookup) for less rewriting.
    #[serde(default = "default_level_ratio")]
    pub level_ratio: f32,
    /// Updates (corrections) allowed per dose; DIVOC's limit is 100.
    #[serde(default = "default_correction_limit")]
    pub correction_limit: u16,
    /// Per-program settings that differ from the node's: `[{ id = "C19", correction_limit = 3 }]`.
    #[serde(default)]
    pub programs: Vec<ProgramSettings>,
    /// Keep each dose's event and reconcile it with a request's `meta.vaccinations[]`: doses that
    /// differ get an `update` (costs the stored event, ~1 KiB per certificate).
    #[serde(default)]
    pub reconcile: bool,
}

/// A program's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSettings {
    /// The `programId` of the requests.
    pub id: String,
    pub correction_limit: u16,
}

/// Correction limits by programId, and the node's default.
#[derive(Debug, Clone)]
struct Limits {
    default: u16,
    by_program: Arc<HashMap<String, u16>>,
}

impl Limits {
    fn of(&self, program: &str) -> u16 {
        self.by_program
            .get(program)
            .copied()
            .unwrap_or(self.default)
    }
}

fn default_correction_limit() -> u16 {
    100
}

/// 4 rather than fjall's 10: measured over 10M events on a 50M-key store, 83,471 vs 75,392
/// events/s (22.6 vs 25.1 us CPU per event), for 5% less on an empty store (README).
fn default_level_ratio() -> f32 {
    4.0
}

fn default_namespace() -> u32 {
    1
}
fn default_cache() -> u64 {
    64
}

impl Component for DedupeConfig {
    const KIND: &'static str = "dedupe";
    const ROLE: Role = Role::Operator;
    fn needs() -> Vec<Column> {
        vec![
            columns::TENANT,
            columns::PROGRAM_ID,
            columns::PRE_ENROLLMENT_CODE,
            columns::DOSE,
            columns::SOURCE_ID,
            columns::SOURCE_OFFSET,
            columns::INGEST_TIME,
        ]
    }
    fn adds() -> Vec<Column> {
        vec![columns::CERTIFICATE_ID, columns::PREVIOUS_CERTIFICATE_ID]
    }
    const ABOUT: &'static str =
        "certificate state per (tenant, programId, preEnrollmentCode, dose): dedupe, ids, update/revoke/suspend";

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        if !(1..=9999).contains(&self.id_namespace) {
            return Err(ConfigIssue::new(
                "id_namespace",
                format!("{} is out of range", self.id_namespace),
                "use 1..=9999",
            ));
        }
        if !(2.0..=32.0).contains(&self.level_ratio) {
            return Err(ConfigIssue::new(
                "level_ratio",
                format!("{} is out of range", self.level_ratio),
                "use 2..=32 (default 4)",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.programs.iter().enumerate() {
            if !seen.insert(p.id.as_str()) {
                return Err(ConfigIssue::new(
                    format!("programs[{i}].id"),
                    format!("program {:?} is listed twice", p.id),
                    "keep one entry per programId",
                ));
            }
        }
        if !(8..=65536).contains(&self.cache_mib) {
            return Err(ConfigIssue::new(
                "cache_mib",
                format!("{} is out of range", self.cache_mib),
                "use 8..=65536",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let path = match &self.path {
            Some(p) => ctx.resolve(p),
            None => ctx.state_dir.join("keys"),
        };
        let dedupe = Dedupe::open(&path, &self)?;
        if let Ok(shared) = ctx.resources.get::<SharedCertificateStates>() {
            shared.set(Arc::new(dedupe.reader()));
        }
        Ok(BuiltNode::Operator(Box::new(dedupe)))
    }
}

/// Ids are `<namespace><12-digit counter>`: 13+ digits, numeric like DIVOC's, never reused.
const COUNTER_SPAN: u64 = 1_000_000_000_000;
const NEXT_ID_KEY: &[u8] = b"next_id";
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

pub struct Dedupe {
    db: Database,
    keys: Keyspace,
    meta: Keyspace,
    /// Reconciliation: the stored events and their codec.
    details: Option<(Keyspace, Details)>,
    undo: UndoLog,
    namespace: u64,
    next_counter: u64,
    limits: Limits,
}

fn state_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("dedupe store: {e}"))
}

impl Dedupe {
    pub fn open(path: &std::path::Path, cfg: &DedupeConfig) -> Result<Self, EngineError> {
        std::fs::create_dir_all(path).map_err(|e| EngineError::io(path, e))?;
        let db = Database::builder(path)
            .cache_size(cfg.cache_mib * 1024 * 1024)
            .open()
            .map_err(state_err)?;
        // Small memtables: lookups in a smaller skiplist are faster and memory stays bounded;
        // everything older is found through the SSTs' bloom filters.
        let keys = db
            // Filter and index blocks stay pinned in memory at every level (about 1.3 bytes per
            // key for the filters), so looking up a new key touches no disk however large the
            // store grows; by default only L0/L1 are pinned.
            .keyspace("keys", || {
                KeyspaceCreateOptions::default()
                    .compaction_strategy(Arc::new(
                        fjall::compaction::Leveled::default()
                            .with_level_ratio_policy(vec![cfg.level_ratio]),
                    ))
                    .max_memtable_size(MEMTABLE_BYTES)
                    .filter_block_pinning_policy(PinningPolicy::all(true))
                    .index_block_pinning_policy(PinningPolicy::all(true))
            })
            .map_err(state_err)?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(state_err)?;
        let undo = db
            .keyspace("undo", KeyspaceCreateOptions::default)
            .map_err(state_err)?;
        let details = if cfg.reconcile {
            let ks = db
                .keyspace("details", KeyspaceCreateOptions::default)
                .map_err(state_err)?;
            Some((ks, Details::new()?))
        } else {
            None
        };
        let next_counter = match meta.get(NEXT_ID_KEY).map_err(state_err)? {
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| state_err("next_id is corrupt"))?,
            ),
            None => 1,
        };
        Ok(Self {
            db,
            keys,
            meta,
            undo: UndoLog::new(undo),
            details,
            namespace: u64::from(cfg.id_namespace),
            next_counter,
            limits: Limits {
                default: cfg.correction_limit,
                by_program: Arc::new(
                    cfg.programs
                        .iter()
                        .map(|p| (p.id.clone(), p.correction_limit))
                        .collect(),
                ),
            },
        })
    }

    fn format_id(&self, counter: u64) -> String {
        format_id(self.namespace, counter)
    }

    /// A read handle on the state for the ingest side (lookups only; thread-safe).
    pub fn reader(&self) -> StateReader {
        StateReader {
            keys: self.keys.clone(),
            namespace: self.namespace,
            limits: self.limits.clone(),
        }
    }

    /// Bulk-loads `count` synthetic keys (benchmarks preload tens of millions this way).
    ///
    /// Real keys are 128-bit hashes, so uniformly spread over the key space: the synthetic ones are
    /// evenly spaced over that space with a hashed jitter, generated in ascending order so they go
    /// through fjall's sorted ingestion (tables written directly, no journal, no memtable), then
    /// compacted: the store ends up as a long-running one would be, and reopening replays nothing.
    pub fn preload_synthetic(&mut self, tenant: &str, count: u64) -> Result<(), EngineError> {
        if count == 0 {
            return Ok(());
        }
        let step = u128::MAX / u128::from(count);
        let salt = xxhash_rust::xxh3::xxh3_64(tenant.as_bytes());
        let mut ingestion = self.keys.start_ingestion().map_err(state_err)?;
        for i in 0..count {
            let jitter = u128::from(xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), salt))
                % step.max(1);
            let key = (u128::from(i) * step + jitter).to_be_bytes();
            let id = self.next_counter;
            self.next_counter += 1;
            let state = CertState {
                counter: id,
                origin: 0,
                status: Status::Active,
                corrections: 0,
            };
            ingestion
                .write(key.to_vec(), state.encode().to_vec())
                .map_err(state_err)?;
        }
        ingestion.finish().map_err(state_err)?;
        self.meta
            .insert(NEXT_ID_KEY, self.next_counter.to_be_bytes())
            .map_err(state_err)?;
        self.db.persist(PersistMode::SyncAll).map_err(state_err)?;
        // Ingested tables land in L0 as one run; settle them into the leveled layout now so the
        // measured run does not pay for the bulk load's compaction.
        self.keys.major_compact().map_err(state_err)
    }
}

/// Key bytes: the 128-bit XXH3 of the length-prefixed fields. Fixed 16-byte keys keep the LSM's
/// comparisons and index small whatever the identifiers look like (long shared prefixes such as
/// tenant and programId made full-text keys measurably slower); at 10^10 keys the chance of any
/// collision is about 10^-19.
pub fn dedupe_key(tenant: &str, program: &str, pre: &str, dose: i64) -> [u8; 16] {
    let mut buf = Vec::with_capacity(tenant.len() + program.len() + pre.len() + 32);
    for f in [tenant, program, pre] {
        buf.extend_from_slice(&(f.len() as u32).to_le_bytes());
        buf.extend_from_slice(f.as_bytes());
    }
    buf.extend_from_slice(&dose.to_le_bytes());
    xxhash_rust::xxh3::xxh3_128(&buf).to_be_bytes()
}

/// FNV-1a over source id and offset: stable across versions and platforms.
fn origin_hash(source_id: &str, offset: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source_id
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(offset.to_le_bytes().iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Operator for Dedupe {
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError> {
        let n = batch.num_rows();
        let s = |name: &str| -> Result<&StringArray, EngineError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| EngineError::Schema(format!("dedupe needs Utf8 column {name}")))
        };
        let tenant = s(schema::TENANT)?;
        let program = s(schema::PROGRAM_ID)?;
        let pre = s(schema::PRE_ENROLLMENT_CODE)?;
        let source_id = s(schema::SOURCE_ID)?;
        let kind = s(schema::EVENT_KIND)?;
        let dose = batch
            .column_by_name(schema::DOSE)
            .ok_or_else(|| EngineError::Schema("dedupe needs column dose".into()))?
            .as_primitive::<Int64Type>();
        let offset = batch
            .column_by_name(schema::SOURCE_OFFSET)
            .ok_or_else(|| EngineError::Schema("dedupe needs column source_offset".into()))?
            .as_primitive::<UInt64Type>();
        let ingest = batch
            .column_by_name(schema::INGEST_TIME)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| EngineError::Schema("dedupe needs column ingest_time".into()))?;
        let until = batch
            .column_by_name(columns::SUSPEND_UNTIL.name)
            .and_then(|c| c.as_primitive_opt::<Date32Type>());
        // Only the `reissue_source` sends it.
        let reissue_of = batch
            .column_by_name(columns::REISSUE_OF.name)
            .and_then(|c| c.as_string_opt::<i32>());

        let mut rejections = Rejections::default();
        let requests: Vec<Option<Request<'_>>> = (0..n)
            .map(|i| {
                if pre.is_null(i) || dose.is_null(i) {
                    rejections.push(
                        i,
                        Reason::new(
                            "missing_field",
                            "preEnrollmentCode and vaccination.dose are required for dedupe",
                        ),
                    );
                    return None;
                }
                let Some(action) = EventKind::parse(kind.value(i)).map(EventKind::action) else {
                    rejections.push(
                        i,
                        Reason::new(
                            "unknown_event_kind",
                            format!("event kind {:?} is not one dedupe knows", kind.value(i)),
                        ),
                    );
                    return None;
                };
                let program = if program.is_null(i) {
                    ""
                } else {
                    program.value(i)
                };
                Some(Request {
                    key: dedupe_key(tenant.value(i), program, pre.value(i), dose.value(i)),
                    action,
                    origin: origin_hash(source_id.value(i), offset.value(i)),
                    until_day: until.filter(|u| u.is_valid(i)).map(|u| u.value(i)),
                    day: ingest.value(i).div_euclid(86_400_000) as i32,
                    program,
                    reissue_of: reissue_of.filter(|r| r.is_valid(i)).map(|r| r.value(i)),
                })
            })
            .collect();
        // Point lookups are independent: run them in parallel, then decide in order.
        let keys_ref = &self.keys;
        let stored: Vec<Result<Option<CertState>, EngineError>> = requests
            .par_iter()
            .with_min_len(256)
            .map(|r| match r {
                None => Ok(None),
                Some(r) => Ok(keys_ref
                    .get(r.key)
                    .map_err(state_err)?
                    .and_then(|v| CertState::decode(&v))),
            })
            .collect();

        // State changed earlier in this batch wins over the stored one.
        let mut changed: HashMap<[u8; 16], CertState> = HashMap::new();
        let mut wb = self.db.batch();
        let counter_before = self.next_counter;
        let mut ids = StringBuilder::with_capacity(n, n * 13);
        let mut previous = StringBuilder::with_capacity(n, 0);
        let mut keep = vec![false; n];
        let event_rows = match &self.details {
            Some((_, codec)) => Some(codec.rows(&batch)?),
            None => None,
        };
        let meta = s(columns::META.name)?;
        let mut details_changed: HashMap<[u8; 16], Vec<u8>> = HashMap::new();
        let mut derived: Vec<(RecordBatch, String, Option<String>)> = Vec::new();
        for (i, req) in requests.iter().enumerate() {
            let Some(req) = req else { continue };
            let before = match changed.get(&req.key) {
                Some(s) => Some(*s),
                None => match &stored[i] {
                    Err(e) => return Err(EngineError::State(e.to_string())),
                    Ok(v) => *v,
                },
            };
            match self.transition(req, before)? {
                Err(reason) => rejections.push(i, reason),
                Ok((after, id, prev)) => {
                    if Some(after) != before {
                        self.undo.record(Undo::Key {
                            space: Space::Keys,
                            key: req.key,
                            previous: stored_bytes(before),
                        });
                        wb.insert(&self.keys, req.key, after.encode());
                        changed.insert(req.key, after);
                    }
                    ids.append_value(self.format_id(id));
                    previous.append_option(prev.map(|p| self.format_id(p)));
                    keep[i] = true;
                    let issued = matches!(req.action, Action::Certify | Action::Update)
                        && before.map(|b| b.counter) != Some(id);
                    if let (true, Some(rows)) = (issued, &event_rows) {
                        self.store_details(
                            &mut wb,
                            &mut details_changed,
                            req.key,
                            rows.row(i).as_ref(),
                        )?;
                        if req.action == Action::Certify && meta.is_valid(i) {
                            let program = if program.is_null(i) {
                                ""
                            } else {
                                program.value(i)
                            };
                            let ctx = ReconcileRow {
                                tenant: tenant.value(i),
                                program,
                                pre: pre.value(i),
                                dose: dose.value(i),
                                source_id: source_id.value(i),
                                offset: offset.value(i),
                                ingest_ms: ingest.value(i),
                                day: req.day,
                                meta: meta.value(i),
                            };
                            derived.extend(self.reconcile(
                                &mut wb,
                                &mut changed,
                                &mut details_changed,
                                &batch.schema(),
                                &ctx,
                            )?);
                        }
                    }
                }
            }
        }
        if self.next_counter != counter_before {
            self.undo.record(Undo::Counter(counter_before));
            wb.insert(&self.meta, NEXT_ID_KEY, self.next_counter.to_be_bytes());
        }
        self.undo.flush(&mut wb);
        wb.commit().map_err(state_err)?;

        let mut out = Processed::keep_and_append_columns(
            &batch,
            keep,
            rejections,
            vec![
                (columns::CERTIFICATE_ID.field(), Arc::new(ids.finish()) as _),
                (
                    columns::PREVIOUS_CERTIFICATE_ID.field(),
                    Arc::new(previous.finish()) as _,
                ),
            ],
            stage,
        )?;
        if !derived.is_empty() {
            // Reconciliation updates follow the batch's own rows.
            let mut parts = vec![out.output.clone()];
            for (row, id, prev) in derived {
                let mut cols = row.columns().to_vec();
                cols.push(Arc::new(StringArray::from(vec![id])));
                cols.push(Arc::new(StringArray::from(vec![prev])));
                parts.push(RecordBatch::try_new(out.output.schema(), cols)?);
            }
            out.output = arrow::compute::concat_batches(&out.output.schema(), &parts)?;
        }
        Ok(out)
    }

    fn restore(&mut self, committed_epoch: u64) -> Result<(), EngineError> {
        let entries = self
            .undo
            .entries_after(committed_epoch)
            .map_err(state_err)?;
        let mut wb = self.db.batch();
        for entry in &entries {
            match entry {
                Undo::Key {
                    space,
                    key,
                    previous,
                } => {
                    let ks = match space {
                        Space::Keys => &self.keys,
                        Space::Details => match &self.details {
                            Some((d, _)) => d,
                            // Reconciliation was switched off since: nothing to restore.
                            None => continue,
                        },
                    };
                    match previous {
                        Some(v) => wb.insert(ks, key.to_vec(), v.clone()),
                        None => wb.remove(ks, key.to_vec()),
                    }
                }
                Undo::Counter(c) => {
                    self.next_counter = *c;
                    wb.insert(&self.meta, NEXT_ID_KEY, c.to_be_bytes());
                }
            }
        }
        self.undo
            .forget_after(&mut wb, committed_epoch)
            .map_err(state_err)?;
        wb.commit().map_err(state_err)?;
        self.db.persist(PersistMode::SyncAll).map_err(state_err)?;
        if !entries.is_empty() {
            tracing::info!(
                entries = entries.len(),
                committed_epoch,
                "dedupe state rolled back to the committed epoch"
            );
        }
        self.undo.begin_epoch(committed_epoch + 1);
        Ok(())
    }

    fn on_barrier(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        // Epochs up to `epoch - 3` are committed (see `Operator::restore`): their undo can go.
        if epoch > 3 {
            let mut wb = self.db.batch();
            self.undo
                .forget_upto(&mut wb, epoch - 3)
                .map_err(state_err)?;
            wb.commit().map_err(state_err)?;
        }
        self.db.persist(PersistMode::SyncAll).map_err(state_err)?;
        self.undo.begin_epoch(epoch + 1);
        Ok(EpochOutput::default())
    }
}

fn stored_bytes(state: Option<CertState>) -> Option<Vec<u8>> {
    state.map(|s| s.encode().to_vec())
}

mod reader;
mod reconcile;
mod state;
mod transition;

use reader::format_id;
pub use reader::StateReader;
use reconcile::Details;
use state::{CertState, Space, Status, Undo, UndoLog};
use transition::{ReconcileRow, Request};

#[cfg(test)]
mod tests;
