//! The transparency log on the read side: the server follows the log the pipeline's
//! `transparency_log` node publishes (entries and signed tree heads in the store), checks every
//! tree head against the log's public key and against the entries it rebuilt the tree from, and
//! answers proofs:
//!
//! ```text
//! GET /transparency/v1/sth                                   the latest tree head it verified
//! GET /transparency/v1/inclusion?certificateId=ID[&treeSize=N] every entry of the certificate with its audit path
//! GET /transparency/v1/consistency?first=M[&second=N]        the proof that tree M is a prefix of tree N
//! ```
//!
//! Public, like a Certificate Transparency log: entries carry ids, statuses and hashes, no
//! personal data.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use divoc_connectors::storage::Storage;
use divoc_credential::VerifyingKey;
use divoc_translog::entry::{entries_key, latest_head_key};
use divoc_translog::{
    consistency_proof, inclusion_proof, root, FileLog, LogEntry, SignedTreeHead, Subtrees,
};
use serde::{Deserialize, Serialize};

use crate::store::CertificateStore;

/// `[transparency]` of `config/serve.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransparencySection {
    /// Key prefix the pipeline's `transparency_log` node publishes under.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The log key's public key (base58, as `divoc keys generate` prints it).
    pub public_key_base58: String,
}

fn default_prefix() -> String {
    "transparency".into()
}

/// The server's copy of the log and the newest tree head it verified.
pub struct LogFollower {
    storage: Storage,
    prefix: String,
    key: VerifyingKey,
    store: CertificateStore,
    log: RwLock<FileLog>,
    head: RwLock<Option<SignedTreeHead>>,
}

impl LogFollower {
    pub fn open(
        section: &TransparencySection,
        storage: Storage,
        store: CertificateStore,
        dir: &Path,
    ) -> Result<Self> {
        let key = divoc_credential::keys::public_key_from_base58(&section.public_key_base58)
            .map_err(|e| anyhow!("[transparency] public_key_base58: {e}"))?;
        let log = FileLog::open(&dir.join("translog")).map_err(|e| anyhow!("{e}"))?;
        Ok(Self {
            storage,
            prefix: section.prefix.clone(),
            key,
            store,
            log: RwLock::new(log),
            head: RwLock::new(None),
        })
    }

    /// Reads the latest tree head and the entries up to it; returns how many were added.
    pub fn refresh(&self) -> Result<u64> {
        let Some(bytes) = self.storage.get(&latest_head_key(&self.prefix))? else {
            return Ok(0);
        };
        let head: SignedTreeHead =
            serde_json::from_slice(&bytes).context("the latest tree head is not JSON")?;
        let signed_root = head
            .verify(&self.key)
            .map_err(|e| anyhow!("the latest tree head: {e}"))?;
        let mut log = self.log.write().map_err(|_| anyhow!("log lock poisoned"))?;
        if head.tree_size < log.size() {
            bail!(
                "the published tree head has {} leaves, fewer than the {} already followed: the log was rewritten",
                head.tree_size,
                log.size()
            );
        }
        let before = log.size();
        while log.size() < head.tree_size {
            let first = log.size();
            let key = entries_key(&self.prefix, first);
            let text = self.storage.get(&key)?.ok_or_else(|| {
                anyhow!("{key} is missing: the log cannot be followed past {first}")
            })?;
            let text = String::from_utf8(text.to_vec()).context("entries are not UTF-8")?;
            for line in text.lines() {
                let entry: LogEntry = serde_json::from_str(line)
                    .with_context(|| format!("{key}: not a log entry"))?;
                if entry.index != log.size() {
                    bail!(
                        "{key}: entry {} where {} was expected",
                        entry.index,
                        log.size()
                    );
                }
                // The leaf is the hash of the published line itself.
                log.push(divoc_translog::leaf_hash(line.as_bytes()))
                    .map_err(|e| anyhow!("{e}"))?;
                self.store
                    .note_log_entry(&entry.certificate_id, entry.index)?;
            }
        }
        let ours = root(&*log, head.tree_size).map_err(|e| anyhow!("{e}"))?;
        if ours != signed_root {
            // Never serve a tree the signed head does not vouch for.
            log.truncate(before).map_err(|e| anyhow!("{e}"))?;
            bail!(
                "the published entries do not hash to the signed root of size {}",
                head.tree_size
            );
        }
        log.flush().map_err(|e| anyhow!("{e}"))?;
        self.store.persist()?;
        let added = head.tree_size - before;
        *self
            .head
            .write()
            .map_err(|_| anyhow!("head lock poisoned"))? = Some(head);
        Ok(added)
    }

    fn entry(&self, index: u64) -> Result<LogEntry> {
        // Entries files start at epoch boundaries: find the one holding `index`.
        let prefix = format!("{}/entries/", self.prefix);
        let keys = self.storage.list(&prefix)?;
        let first = keys
            .iter()
            .filter_map(|k| {
                k.rsplit('/')
                    .next()?
                    .strip_suffix(".jsonl")?
                    .parse::<u64>()
                    .ok()
            })
            .filter(|f| *f <= index)
            .max()
            .ok_or_else(|| anyhow!("no entries file holds leaf {index}"))?;
        let text = self
            .storage
            .get(&entries_key(&self.prefix, first))?
            .ok_or_else(|| anyhow!("entries file of leaf {index} is gone"))?;
        let line = String::from_utf8_lossy(&text)
            .lines()
            .nth((index - first) as usize)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("leaf {index} is missing from its entries file"))?;
        Ok(serde_json::from_str(&line)?)
    }
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": "TRANSPARENCY", "message": message.into()}})),
    )
        .into_response()
}

pub fn router(follower: Arc<LogFollower>) -> Router {
    Router::new()
        .route("/transparency/v1/sth", get(latest))
        .route("/transparency/v1/inclusion", get(inclusion))
        .route("/transparency/v1/consistency", get(consistency))
        .with_state(follower)
}

async fn latest(State(f): State<Arc<LogFollower>>) -> Response {
    match f.head.read().map(|h| h.clone()) {
        Ok(Some(h)) => Json(h).into_response(),
        _ => problem(StatusCode::NOT_FOUND, "no tree head published yet"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionQuery {
    certificate_id: String,
    tree_size: Option<u64>,
}

/// One entry of a certificate with its proof.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProvenEntry {
    pub leaf_index: u64,
    pub entry: LogEntry,
    pub audit_path: Vec<String>,
}

/// The answer of `/transparency/v1/inclusion`.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct InclusionAnswer {
    pub tree_size: u64,
    pub entries: Vec<ProvenEntry>,
}

fn size_or_head(f: &LogFollower, asked: Option<u64>) -> Result<u64, Box<Response>> {
    let head = f
        .head
        .read()
        .ok()
        .and_then(|h| h.as_ref().map(|h| h.tree_size))
        .ok_or_else(|| Box::new(problem(StatusCode::NOT_FOUND, "no tree head published yet")))?;
    match asked {
        Some(n) if n > head || n == 0 => Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            format!("treeSize must be 1..={head}, the latest verified head"),
        ))),
        Some(n) => Ok(n),
        None => Ok(head),
    }
}

async fn inclusion(
    State(f): State<Arc<LogFollower>>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return problem(
            StatusCode::BAD_REQUEST,
            "pass ?certificateId=<id>[&treeSize=<n>]",
        );
    };
    let size = match size_or_head(&f, q.tree_size) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let work = tokio::task::spawn_blocking(move || -> Result<InclusionAnswer> {
        let indices = f.store.log_entries_of(&q.certificate_id)?;
        let log = f.log.read().map_err(|_| anyhow!("log lock poisoned"))?;
        let mut entries = Vec::new();
        for index in indices.into_iter().filter(|i| *i < size) {
            let path = inclusion_proof(&*log, index, size).map_err(|e| anyhow!("{e}"))?;
            entries.push(ProvenEntry {
                leaf_index: index,
                entry: f.entry(index)?,
                audit_path: path.iter().map(|h| hex(h)).collect(),
            });
        }
        Ok(InclusionAnswer {
            tree_size: size,
            entries,
        })
    })
    .await;
    match work {
        Ok(Ok(a)) if a.entries.is_empty() => problem(
            StatusCode::NOT_FOUND,
            format!("certificate is not in the log of size {}", a.tree_size),
        ),
        Ok(Ok(a)) => Json(a).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "transparency proof failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the log could not be read",
            )
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the proof worker stopped",
        ),
    }
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    first: u64,
    second: Option<u64>,
}

/// The answer of `/transparency/v1/consistency`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ConsistencyAnswer {
    pub first: u64,
    pub second: u64,
    pub consistency: Vec<String>,
}

async fn consistency(
    State(f): State<Arc<LogFollower>>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return problem(
            StatusCode::BAD_REQUEST,
            "pass ?first=<size>[&second=<size>]",
        );
    };
    let second = match size_or_head(&f, q.second) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if q.first == 0 || q.first > second {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("first must be 1..={second}"),
        );
    }
    let proof = f
        .log
        .read()
        .map_err(|_| ())
        .and_then(|log| consistency_proof(&*log, q.first, second).map_err(|_| ()));
    match proof {
        Ok(p) => Json(ConsistencyAnswer {
            first: q.first,
            second,
            consistency: p.iter().map(|h| hex(h)).collect(),
        })
        .into_response(),
        Err(()) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the log could not be read",
        ),
    }
}
