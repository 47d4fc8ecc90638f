//! `webhook`: tells a registry what happened to each certificate: one `POST` per issued, updated,
//! revoked, suspended or re-activated certificate, `{transactionId, certificateId, status, ...}`,
//! signed with an HMAC-SHA256 of the body (`X-Divoc-Signature: sha256=<hex>`), retried with
//! exponential backoff, never blocking the pipeline.
//!
//! Notifications go through a durable outbox in the node's state directory, with the staging kind
//! of two-phase commit: `pre_commit` writes the epoch's notifications to `staged-<epoch>.jsonl`,
//! `commit` (after the checkpoint) renames it `ready-<epoch>.jsonl`, `abort` deletes what later
//! epochs staged. A delivery task on the I/O runtime sends the ready files in order and deletes
//! each once every line was answered with a 2xx (or gave up after `max_attempts`, then the line is
//! kept in `failed.jsonl`). Delivery is at least once: after a crash the file being sent is sent
//! again from its start, so receivers deduplicate on `Idempotency-Key` (= transactionId + status).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt64Type};
use divoc_model::columns;
use divoc_model::event::{Action, EventKind};
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{CommitInfo, Sink};
use divoc_pipeline::EngineError;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Options of a `webhook` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where notifications are POSTed (`http://` or `https://`).
    pub url: String,
    /// Environment variable holding the HMAC secret (16+ characters), read at start.
    pub secret_env: String,
    /// Only this tenant's certificates (default: every tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Only this program's certificates (default: every program): one node per program sends
    /// each program's changes to its own receiver.
    #[serde(default)]
    pub program: Option<String>,
    /// Attempts per notification before it is kept in `failed.jsonl`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to a minute.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_attempts() -> u32 {
    12
}
fn default_backoff() -> u64 {
    500
}
fn default_timeout() -> u64 {
    10_000
}

/// One notification: the body of one POST.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The event's id: `<source id>:<source offset>` (unique, stable across replays).
    pub transaction_id: String,
    pub certificate_id: String,
    /// `issued`, `updated`, `revoked`, `suspended`, `active` (a lifted suspension) or `reissued`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_certificate_id: Option<String>,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<i64>,
}

/// The status a certificate change reports (webhooks, the transparency log).
pub(crate) fn status_of(kind: &str) -> Option<&'static str> {
    Some(match EventKind::parse(kind)?.action() {
        Action::Certify => "issued",
        Action::Update => "updated",
        Action::Revoke => "revoked",
        Action::Suspend => "suspended",
        Action::LiftSuspension => "active",
        Action::Reissue => "reissued",
    })
}

impl Component for WebhookConfig {
    const KIND: &'static str = "webhook";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "POSTs {transactionId, certificateId, status} per certificate change, HMAC-signed, retried";

    fn needs() -> Vec<Column> {
        vec![
            columns::TENANT,
            columns::CERTIFICATE_ID,
            columns::EVENT_KIND,
            columns::SOURCE_ID,
            columns::SOURCE_OFFSET,
            columns::DOSE,
        ]
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigIssue::new(
                    "url",
                    format!("{:?} is not an http(s) URL", self.url),
                    "give the receiver's URL, e.g. https://registry.example/divoc/events",
                ))
            }
        }
        if self.max_attempts == 0 {
            return Err(ConfigIssue::new(
                "max_attempts",
                "0 would never send",
                "use 1 or more",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let secret = std::env::var(&self.secret_env).map_err(|_| {
            EngineError::Config(format!(
                "webhook: environment variable {} (secret_env) is not set; export the HMAC secret",
                self.secret_env
            ))
        })?;
        if secret.trim().chars().count() < 16 {
            return Err(EngineError::Config(format!(
                "webhook: the secret in {} is shorter than 16 characters",
                self.secret_env
            )));
        }
        let dir = ctx.state_dir.join("outbox");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let deliveries = ctx.metrics.counter_vec(
            "webhook_deliveries_total",
            "Webhook notifications by outcome (delivered, retried, failed)",
            &["node", "outcome"],
        )?;
        let (wake, woken) = tokio::sync::mpsc::channel(16);
        let delivery = Delivery {
            dir: dir.clone(),
            url: self.url.clone(),
            secret: Arc::from(secret.trim().as_bytes()),
            max_attempts: self.max_attempts,
            backoff: Duration::from_millis(self.backoff_ms.max(1)),
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(self.timeout_ms.max(1)))
                .build()
                .map_err(|e| EngineError::Config(format!("webhook client: {e}")))?,
            outcomes: deliveries,
            node: ctx.node.to_owned(),
        };
        ctx.runtime.spawn(delivery.run(woken));
        Ok(BuiltNode::Sink(Box::new(Webhook {
            dir,
            tenant: self.tenant,
            program: self.program,
            pending: Vec::new(),
            wake,
        })))
    }
}

pub struct Webhook {
    dir: PathBuf,
    tenant: Option<String>,
    program: Option<String>,
    pending: Vec<Notice>,
    wake: tokio::sync::mpsc::Sender<()>,
}

fn staged(dir: &Path, epoch: u64) -> PathBuf {
    dir.join(format!("staged-{epoch:012}.jsonl"))
}

fn ready(dir: &Path, epoch: u64) -> PathBuf {
    dir.join(format!("ready-{epoch:012}.jsonl"))
}

fn text(b: &RecordBatch, c: Column) -> Result<&arrow::array::StringArray, EngineError> {
    b.column_by_name(c.name)
        .and_then(|a| a.as_string_opt::<i32>())
        .ok_or_else(|| EngineError::Schema(format!("webhook needs Utf8 column {}", c.name)))
}

impl Sink for Webhook {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let tenant = text(&batch, columns::TENANT)?;
        let ids = text(&batch, columns::CERTIFICATE_ID)?;
        let kinds = text(&batch, columns::EVENT_KIND)?;
        let sources = text(&batch, columns::SOURCE_ID)?;
        let previous = batch
            .column_by_name(columns::PREVIOUS_CERTIFICATE_ID.name)
            .and_then(|a| a.as_string_opt::<i32>());
        let offsets = batch
            .column_by_name(columns::SOURCE_OFFSET.name)
            .and_then(|a| a.as_primitive_opt::<UInt64Type>())
            .ok_or_else(|| EngineError::Schema("webhook needs column source_offset".into()))?;
        let doses = batch
            .column_by_name(columns::DOSE.name)
            .and_then(|a| a.as_primitive_opt::<Int64Type>());
        let programs = batch
            .column_by_name(columns::PROGRAM_ID.name)
            .and_then(|a| a.as_string_opt::<i32>());
        for i in 0..batch.num_rows() {
            if self.tenant.as_deref().is_some_and(|t| t != tenant.value(i)) {
                continue;
            }
            if let Some(wanted) = self.program.as_deref() {
                let program = programs.filter(|p| p.is_valid(i)).map(|p| p.value(i));
                if program != Some(wanted) {
                    continue;
                }
            }
            let Some(status) = status_of(kinds.value(i)) else {
                continue;
            };
            self.pending.push(Notice {
                transaction_id: format!("{}:{}", sources.value(i), offsets.value(i)),
                certificate_id: ids.value(i).to_owned(),
                status: status.to_owned(),
                previous_certificate_id: previous
                    .filter(|p| p.is_valid(i))
                    .map(|p| p.value(i).to_owned()),
                tenant: tenant.value(i).to_owned(),
                dose: doses.filter(|d| d.is_valid(i)).map(|d| d.value(i)),
            });
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        if self.pending.is_empty() {
            return Ok(EpochOutput::default());
        }
        let mut body = String::new();
        for n in std::mem::take(&mut self.pending) {
            body.push_str(
                &serde_json::to_string(&n).map_err(|e| EngineError::Other(e.to_string()))?,
            );
            body.push('\n');
        }
        let path = staged(&self.dir, epoch);
        write_durably(&path, body.as_bytes())?;
        Ok(EpochOutput {
            objects: Vec::new(),
            rows: body.lines().count() as u64,
        })
    }

    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        let from = staged(&self.dir, info.epoch);
        if from.exists() {
            let to = ready(&self.dir, info.epoch);
            std::fs::rename(&from, &to).map_err(|e| EngineError::io(&from, e))?;
            sync_dir(&self.dir)?;
            let _ = self.wake.try_send(());
        }
        Ok(())
    }

    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        for entry in std::fs::read_dir(&self.dir).map_err(|e| EngineError::io(&self.dir, e))? {
            let path = entry.map_err(|e| EngineError::io(&self.dir, e))?.path();
            let epoch = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("staged-"))
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok());
            if epoch.is_some_and(|e| e > committed) {
                std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
            }
        }
        Ok(())
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| EngineError::io(path, e))?;
    f.write_all(bytes).map_err(|e| EngineError::io(path, e))?;
    f.sync_all().map_err(|e| EngineError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::io(dir, e))
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Sends the ready files in epoch order.
struct Delivery {
    dir: PathBuf,
    url: String,
    secret: Arc<[u8]>,
    max_attempts: u32,
    backoff: Duration,
    client: reqwest::Client,
    outcomes: prometheus::IntCounterVec,
    node: String,
}

impl Delivery {
    async fn run(self, mut woken: tokio::sync::mpsc::Receiver<()>) {
        loop {
            match self.deliver_ready().await {
                Ok(()) => {}
                Err(e) => tracing::warn!(node = %self.node, error = %e, "webhook outbox"),
            }
            // Woken by a commit, or look again after a while.
            let _ = tokio::time::timeout(Duration::from_secs(1), woken.recv()).await;
        }
    }

    async fn deliver_ready(&self) -> Result<(), String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ready-"))
            })
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            for line in text.lines().filter(|l| !l.is_empty()) {
                if !self.send(line).await {
                    let failed = self.dir.join("failed.jsonl");
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&failed)
                        .map_err(|e| e.to_string())?;
                    use std::io::Write;
                    writeln!(f, "{line}").map_err(|e| e.to_string())?;
                }
            }
            std::fs::remove_file(&file).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// One notification, with retries; false when every attempt failed.
    async fn send(&self, line: &str) -> bool {
        let key = serde_json::from_str::<Notice>(line)
            .map(|n| format!("{}/{}", n.transaction_id, n.status))
            .unwrap_or_default();
        let sig = signature(&self.secret, line.as_bytes());
        let mut delay = self.backoff;
        for attempt in 1..=self.max_attempts {
            let answer = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-divoc-signature", &sig)
                .header("idempotency-key", &key)
                .body(line.to_owned())
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => {
                    self.outcomes
                        .with_label_values(&[&self.node, "delivered"])
                        .inc();
                    return true;
                }
                other => {
                    let why = match other {
                        Ok(r) => format!("status {}", r.status()),
                        Err(e) => e.to_string(),
                    };
                    tracing::debug!(node = %self.node, attempt, %why, "webhook attempt failed");
                    if attempt == self.max_attempts {
                        break;
                    }
                    self.outcomes
                        .with_label_values(&[&self.node, "retried"])
                        .inc();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
        self.outcomes
            .with_label_values(&[&self.node, "failed"])
            .inc();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn statuses_follow_event_kinds() {
        assert_eq!(status_of("certify_v1"), Some("issued"));
        assert_eq!(status_of("bulk_csv"), Some("issued"));
        assert_eq!(status_of("update"), Some("updated"));
        assert_eq!(status_of("revoke"), Some("revoked"));
        assert_eq!(status_of("suspend"), Some("suspended"));
        assert_eq!(status_of("lift_suspension"), Some("active"));
        assert_eq!(status_of("reissue"), Some("reissued"));
        assert_eq!(status_of("reissue_revoking"), Some("reissued"));
        assert_eq!(status_of("other"), None);
    }

    /// One node per receiver: the tenant and program filters pick its certificates.
    #[test]
    fn tenant_and_program_filters_pick_the_notices() {
        use arrow::array::{ArrayRef, StringArray, UInt64Array};
        let text = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let batch = RecordBatch::try_from_iter(vec![
            (columns::TENANT.name, text(&["a", "a", "b"])),
            (columns::PROGRAM_ID.name, text(&["MMR", "C19", "MMR"])),
            (columns::CERTIFICATE_ID.name, text(&["1", "2", "3"])),
            (columns::EVENT_KIND.name, text(&["certify_v1"; 3])),
            (columns::SOURCE_ID.name, text(&["f"; 3])),
            (
                columns::SOURCE_OFFSET.name,
                Arc::new(UInt64Array::from(vec![0u64, 1, 2])) as ArrayRef,
            ),
        ])
        .unwrap();
        let picked = |tenant: Option<&str>, program: Option<&str>| {
            let (wake, _rx) = tokio::sync::mpsc::channel(1);
            let mut w = Webhook {
                dir: PathBuf::new(),
                tenant: tenant.map(str::to_owned),
                program: program.map(str::to_owned),
                pending: Vec::new(),
                wake,
            };
            w.write(batch.clone()).unwrap();
            w.pending
                .iter()
                .map(|n| n.certificate_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(picked(None, None), ["1", "2", "3"]);
        assert_eq!(picked(None, Some("MMR")), ["1", "3"]);
        assert_eq!(picked(Some("a"), Some("MMR")), ["1"]);
        assert_eq!(picked(Some("b"), Some("C19")), Vec::<String>::new());
    }
}
