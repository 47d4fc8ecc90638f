//! `transparency_log`: appends every certificate change (issued, updated, revoked, suspended,
//! re-activated, re-issued: certificate id, status, the credential's SHA-256, no personal data) to
//! an RFC 6962 Merkle tree log, exactly once per epoch, and publishes it for auditors:
//!
//! ```text
//! <prefix>/entries/<first leaf>.jsonl   the epoch's entries, one JSON line per leaf
//! <prefix>/sth/<size>.json              the signed tree head of each committed size
//! <prefix>/sth/latest.json              the newest one
//! ```
//!
//! The tree lives in the node's state directory ([`divoc_translog::FileLog`]). `pre_commit`
//! appends and fsyncs the epoch's leaves, publishes its entries and records `epoch -> size`;
//! `commit` signs and publishes the tree head of that size (a tree head is the only thing a
//! verifier trusts, so entries past it are invisible); `abort` truncates the tree back to the
//! size of the committed epoch, and the replay appends the same leaves again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use bytes::Bytes;
use divoc_credential::IssuerKey;
use divoc_model::columns;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{CommitInfo, Sink};
use divoc_pipeline::EngineError;
use divoc_translog::entry::{entries_key, head_key, latest_head_key, sha256_hex};
use divoc_translog::{root, FileLog, LogEntry, SignedTreeHead, Subtrees};
use serde::Deserialize;

use crate::storage::Storage;

/// Options of a `transparency_log` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslogConfig {
    /// Key file (`divoc keys generate`) that signs the tree heads: the log's key, published for
    /// auditors (a key of its own is better than the issuer's signing key).
    pub key_file: PathBuf,
    /// Key prefix of the published log.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "transparency".into()
}

impl Component for TranslogConfig {
    const KIND: &'static str = "transparency_log";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "appends each certificate change to a Merkle tree log (RFC 6962) with signed tree heads";

    fn needs() -> Vec<Column> {
        vec![
            columns::TENANT,
            columns::CERTIFICATE_ID,
            columns::EVENT_KIND,
        ]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, "transparency")?;
        IssuerKey::load(&ctx.resolve(&self.key_file)).map_err(|e| {
            ConfigIssue::new(
                "key_file",
                e,
                "create the log's key with `divoc keys generate --out <file> --issuer <log url>`",
            )
        })?;
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let key = IssuerKey::load(&ctx.resolve(&self.key_file)).map_err(EngineError::Config)?;
        let storage = ctx.resources.get::<Storage>()?.clone();
        Ok(BuiltNode::Sink(Box::new(TransparencyLog::open(
            &ctx.state_dir,
            storage,
            self.prefix,
            key.signing_key(),
        )?)))
    }
}

pub struct TransparencyLog {
    storage: Storage,
    prefix: String,
    key: divoc_credential::SigningKey,
    log: FileLog,
    /// The log's size after each epoch that appended to it.
    sizes: BTreeMap<u64, u64>,
    sizes_path: PathBuf,
    /// This epoch's entries, without their index yet.
    pending: Vec<LogEntry>,
}

fn state_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("transparency log: {e}"))
}

fn read_sizes(path: &Path) -> Result<BTreeMap<u64, u64>, EngineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(EngineError::io(path, e)),
    };
    // A torn last line (a crash mid-append) is ignored: its epoch was never committed.
    Ok(text
        .lines()
        .filter_map(|l| {
            let (e, s) = l.split_once(' ')?;
            Some((e.parse().ok()?, s.parse().ok()?))
        })
        .collect())
}

fn write_sizes(path: &Path, sizes: &BTreeMap<u64, u64>) -> Result<(), EngineError> {
    let text: String = sizes.iter().map(|(e, s)| format!("{e} {s}\n")).collect();
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
}

impl TransparencyLog {
    /// Opens the node's log under `state_dir` (created on first use).
    pub fn open(
        state_dir: &Path,
        storage: Storage,
        prefix: String,
        key: divoc_credential::SigningKey,
    ) -> Result<Self, EngineError> {
        let log = FileLog::open(&state_dir.join("log")).map_err(state_err)?;
        let sizes_path = state_dir.join("epoch-sizes.txt");
        let sizes = read_sizes(&sizes_path)?;
        Ok(Self {
            storage,
            prefix,
            key,
            log,
            sizes,
            sizes_path,
            pending: Vec::new(),
        })
    }

    /// The size the log had after the last epoch at or before `epoch` that appended.
    fn size_at(&self, epoch: u64) -> u64 {
        self.sizes
            .range(..=epoch)
            .next_back()
            .map_or(0, |(_, s)| *s)
    }
}

impl Sink for TransparencyLog {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let text = |c: Column| {
            batch
                .column_by_name(c.name)
                .and_then(|a| a.as_string_opt::<i32>())
        };
        let (Some(tenant), Some(ids), Some(kinds)) = (
            text(columns::TENANT),
            text(columns::CERTIFICATE_ID),
            text(columns::EVENT_KIND),
        ) else {
            return Err(EngineError::Schema(
                "transparency_log needs Utf8 columns tenant, certificate_id, event_kind".into(),
            ));
        };
        let previous = text(columns::PREVIOUS_CERTIFICATE_ID);
        let credential = text(columns::CREDENTIAL);
        for i in 0..batch.num_rows() {
            let Some(status) = super::webhook::status_of(kinds.value(i)) else {
                continue;
            };
            if ids.is_null(i) {
                continue;
            }
            self.pending.push(LogEntry {
                index: 0,
                tenant: tenant.value(i).to_owned(),
                certificate_id: ids.value(i).to_owned(),
                status: status.to_owned(),
                previous_certificate_id: previous
                    .filter(|p| p.is_valid(i))
                    .map(|p| p.value(i).to_owned()),
                credential_sha256: credential
                    .filter(|c| c.is_valid(i))
                    .map(|c| sha256_hex(c.value(i).as_bytes())),
            });
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        if self.pending.is_empty() {
            return Ok(EpochOutput::default());
        }
        let first = self.log.size();
        let mut lines = String::new();
        for (n, mut entry) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            entry.index = first + n as u64;
            self.log.push(entry.leaf_hash()).map_err(state_err)?;
            lines.push_str(&entry.line());
            lines.push('\n');
        }
        self.log.flush().map_err(state_err)?;
        let key = entries_key(&self.prefix, first);
        self.storage.put(&key, Bytes::from(lines))?;
        self.sizes.insert(epoch, self.log.size());
        write_sizes(&self.sizes_path, &self.sizes)?;
        Ok(EpochOutput {
            objects: vec![key],
            rows: self.log.size() - first,
        })
    }

    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        if info.written.rows == 0 {
            return Ok(());
        }
        let size = self.size_at(info.epoch);
        let tree_root = root(&self.log, size).map_err(state_err)?;
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let head = SignedTreeHead::sign(&self.key, size, now, &tree_root);
        let json = Bytes::from(serde_json::to_vec_pretty(&head).map_err(state_err)?);
        self.storage
            .put(&head_key(&self.prefix, size), json.clone())?;
        self.storage.put(&latest_head_key(&self.prefix), json)?;
        // Sizes of epochs before this one are no longer needed to roll back.
        let keep = self.sizes.split_off(&info.epoch);
        let pruned = !self.sizes.is_empty();
        self.sizes = keep;
        if pruned {
            write_sizes(&self.sizes_path, &self.sizes)?;
        }
        Ok(())
    }

    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        self.pending.clear();
        let size = self.size_at(committed);
        if self.log.size() != size {
            self.log.truncate(size).map_err(state_err)?;
        }
        let later = self.sizes.split_off(&(committed + 1));
        if !later.is_empty() {
            write_sizes(&self.sizes_path, &self.sizes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
