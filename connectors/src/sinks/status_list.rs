//! `status_list`: publishes each program's W3C Bitstring Status Lists (revocation and
//! suspension), updated exactly once per epoch from the certificate changes that reach it.
//!
//! ```text
//! <prefix>/<program>/revocation/<list>.json   BitstringStatusListCredential, eddsa-rdfc-2022
//! <prefix>/<program>/suspension/<list>.json   the same, with suspendedUntil end dates
//! ```
//!
//! A certificate's bit is a function of its numeric id
//! ([`divoc_credential::status_list::StatusPosition`]), the same one `sign` writes into its
//! `credentialStatus`. An issued certificate makes its list exist (all bits clear); a revocation,
//! an update or a revoking re-issue sets the replaced certificate's revocation bit; a suspension
//! sets the suspension bit (and its end date), a lift clears it.
//!
//! Exactly once: the node's state directory keeps each list's committed bits (`lists/`).
//! `pre_commit` applies the epoch's changes and stages the new state of every list it touched
//! (`staged/<epoch>/`, fsynced); `commit` signs and publishes those lists, then moves the staged
//! state into `lists/` (a list already moved is skipped, so a repeated `commit` is harmless);
//! `abort` deletes the staging of uncommitted epochs and the replay stages them again. Lists are
//! published only after their epoch's checkpoint is stored, so a verifier never sees a change
//! the pipeline could still roll back.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Date32Type;
use bytes::Bytes;
use divoc_credential::status_list::{
    is_safe_program_id, list_url, Bitstring, StatusList, StatusPosition, StatusPurpose,
};
use divoc_credential::{Canonicalizer, IssuerKey, SigningKey};
use divoc_model::columns;
use divoc_model::event::{Action, EventKind};
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{CommitInfo, Sink};
use divoc_pipeline::EngineError;
use serde::{Deserialize, Serialize};

use crate::storage::Storage;

/// Options of a `status_list` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusListConfig {
    /// The issuer key that signs the lists: the same issuer as the certificates' (verifiers
    /// require it), so the `sign` node's `key_file`.
    pub key_file: PathBuf,
    /// Programs signed with their own issuer key (`sign.programs[].key_file`).
    #[serde(default)]
    pub programs: Vec<StatusListProgram>,
    /// The public URL the lists are served under: `sign.status_base_url`, which `divoc serve`
    /// answers at `/status/v1`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Key prefix of the published lists.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

/// A program's own list key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusListProgram {
    /// The `programId`.
    pub id: String,
    /// Its issuer key file.
    pub key_file: PathBuf,
}

fn default_base_url() -> String {
    divoc_credential::status_list::DEFAULT_BASE_URL.into()
}

fn default_prefix() -> String {
    "status".into()
}

impl Component for StatusListConfig {
    const KIND: &'static str = "status_list";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "publishes signed Bitstring Status Lists (revocation, suspension) once per epoch";

    fn needs() -> Vec<Column> {
        vec![
            columns::PROGRAM_ID,
            columns::CERTIFICATE_ID,
            columns::EVENT_KIND,
        ]
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, "status")?;
        if !self.base_url.starts_with("https://") && !self.base_url.starts_with("http://") {
            return Err(ConfigIssue::new(
                "base_url",
                format!("{:?} is not an http(s) URL", self.base_url),
                "use the public URL of the read-side server's /status/v1",
            ));
        }
        let fix = "point it at the issuer key file of the `sign` node (or of the program)";
        IssuerKey::load(&ctx.resolve(&self.key_file))
            .map_err(|e| ConfigIssue::new("key_file", e, fix))?;
        for (i, p) in self.programs.iter().enumerate() {
            if !is_safe_program_id(&p.id) {
                return Err(ConfigIssue::new(
                    format!("programs[{i}].id"),
                    format!("{:?} cannot be a URL segment", p.id),
                    "program ids with status lists use letters, digits, '.', '_', '-'",
                ));
            }
            IssuerKey::load(&ctx.resolve(&p.key_file))
                .map_err(|e| ConfigIssue::new(format!("programs[{i}].key_file"), e, fix))?;
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let load = |p: &Path| IssuerKey::load(&ctx.resolve(p)).map_err(EngineError::Config);
        let default_key = load(&self.key_file)?;
        let mut keys = HashMap::new();
        for p in &self.programs {
            keys.insert(p.id.clone(), load(&p.key_file)?);
        }
        let storage = ctx.resources.get::<Storage>()?.clone();
        Ok(BuiltNode::Sink(Box::new(StatusListSink::open(
            &ctx.state_dir,
            storage,
            self,
            default_key,
            keys,
        )?)))
    }
}

/// One list's two bitstrings and its suspensions' end dates, as the state files keep them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ListState {
    revocation: String,
    suspension: String,
    #[serde(default)]
    ends: BTreeMap<u64, String>,
}

/// The decoded form.
#[derive(Debug, Clone, Default)]
struct ListBits {
    revocation: Bitstring,
    suspension: Bitstring,
    ends: BTreeMap<u64, String>,
}

impl ListBits {
    fn to_state(&self) -> ListState {
        ListState {
            revocation: self.revocation.encode(),
            suspension: self.suspension.encode(),
            ends: self.ends.clone(),
        }
    }

    fn from_state(s: ListState) -> Result<Self, EngineError> {
        Ok(ListBits {
            revocation: Bitstring::decode(&s.revocation).map_err(state_err)?,
            suspension: Bitstring::decode(&s.suspension).map_err(state_err)?,
            ends: s.ends,
        })
    }
}

/// A list held in memory: its state after every pre-committed epoch.
struct CachedList {
    bits: ListBits,
    /// The newest epoch that staged it (kept in memory until that epoch is committed).
    staged_epoch: Option<u64>,
}

/// A change one row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Make the list exist.
    Issued,
    Revoke,
    Suspend(Option<String>),
    Lift,
}

struct ListKey {
    program: String,
    position: StatusPosition,
}

pub struct StatusListSink {
    storage: Storage,
    cfg: StatusListConfig,
    default_key: IssuerKey,
    keys: HashMap<String, IssuerKey>,
    signing_keys: HashMap<String, SigningKey>,
    canon: Canonicalizer,
    lists_dir: PathBuf,
    staged_dir: PathBuf,
    cache: HashMap<(String, u64), CachedList>,
    pending: Vec<(ListKey, Change)>,
}

fn state_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::State(format!("status list: {e}"))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
}

/// The epochs staged under `dir`, oldest first.
fn staged_epochs(dir: &Path) -> Result<Vec<u64>, EngineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    let mut epochs: Vec<u64> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    epochs.sort_unstable();
    Ok(epochs)
}

/// `(program, list, file)` of every list staged in one epoch directory.
fn staged_lists(dir: &Path) -> Result<Vec<(String, u64, PathBuf)>, EngineError> {
    let mut out = Vec::new();
    for program in std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))? {
        let program = program.map_err(|e| EngineError::io(dir, e))?.path();
        let Some(name) = program
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        for file in std::fs::read_dir(&program).map_err(|e| EngineError::io(&program, e))? {
            let file = file.map_err(|e| EngineError::io(&program, e))?.path();
            let list = file
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok());
            if let (Some(list), Some("json")) = (list, file.extension().and_then(|e| e.to_str())) {
                out.push((name.clone(), list, file));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl StatusListSink {
    /// Opens the node's state under `state_dir` (created on first use).
    pub fn open(
        state_dir: &Path,
        storage: Storage,
        cfg: StatusListConfig,
        default_key: IssuerKey,
        keys: HashMap<String, IssuerKey>,
    ) -> Result<Self, EngineError> {
        let signing_keys = keys
            .iter()
            .map(|(p, k)| (p.clone(), k.signing_key()))
            .collect();
        Ok(Self {
            storage,
            cfg,
            signing_keys,
            default_key,
            keys,
            canon: Canonicalizer::default(),
            lists_dir: state_dir.join("lists"),
            staged_dir: state_dir.join("staged"),
            cache: HashMap::new(),
            pending: Vec::new(),
        })
    }

    fn committed_path(&self, program: &str, list: u64) -> PathBuf {
        self.lists_dir.join(program).join(format!("{list}.json"))
    }

    fn read_state(path: &Path) -> Result<Option<ListBits>, EngineError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let state: ListState = serde_json::from_slice(&bytes)
                    .map_err(|e| state_err(format!("{}: {e}", path.display())))?;
                ListBits::from_state(state).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io(path, e)),
        }
    }

    fn key_of(&self, program: &str) -> (&IssuerKey, SigningKey) {
        match self.keys.get(program) {
            Some(k) => (k, self.signing_keys[program].clone()),
            None => (&self.default_key, self.default_key.signing_key()),
        }
    }

    /// Signs and publishes both lists of one state.
    fn publish(&self, program: &str, list: u64, bits: &ListBits) -> Result<(), EngineError> {
        let (key, signing) = self.key_of(program);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        for purpose in StatusPurpose::ALL {
            let (set, ends) = match purpose {
                StatusPurpose::Revocation => (&bits.revocation, BTreeMap::new()),
                StatusPurpose::Suspension => (&bits.suspension, bits.ends.clone()),
            };
            let credential = StatusList {
                url: list_url(&self.cfg.base_url, program, purpose, list),
                issuer: key.issuer.clone(),
                purpose,
                valid_from: now.clone(),
                bits: set.clone(),
                ends,
            }
            .sign(&self.canon, &signing, &key.verification_method)
            .map_err(state_err)?;
            let json = serde_json::to_vec_pretty(&credential).map_err(state_err)?;
            self.storage.put(
                &format!(
                    "{}/{program}/{}/{list}.json",
                    self.cfg.prefix,
                    purpose.name()
                ),
                Bytes::from(json),
            )?;
        }
        Ok(())
    }
}

fn change_of(action: Action, replaced: bool, until: Option<String>) -> Option<Change> {
    Some(match (action, replaced) {
        (Action::Certify | Action::Update | Action::Reissue, false) => Change::Issued,
        (Action::Update | Action::Reissue, true) => Change::Revoke,
        (Action::Revoke, false) => Change::Revoke,
        (Action::Suspend, false) => Change::Suspend(until),
        (Action::LiftSuspension, false) => Change::Lift,
        _ => return None,
    })
}

impl Sink for StatusListSink {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let text = |c: Column| {
            batch
                .column_by_name(c.name)
                .and_then(|a| a.as_string_opt::<i32>())
        };
        let (Some(programs), Some(ids), Some(kinds)) = (
            text(columns::PROGRAM_ID),
            text(columns::CERTIFICATE_ID),
            text(columns::EVENT_KIND),
        ) else {
            return Err(EngineError::Schema(
                "status_list needs Utf8 columns program_id, certificate_id, event_kind".into(),
            ));
        };
        let previous = text(columns::PREVIOUS_CERTIFICATE_ID);
        let reissue_of = text(columns::REISSUE_OF);
        let until = batch
            .column_by_name(columns::SUSPEND_UNTIL.name)
            .and_then(|a| a.as_primitive_opt::<Date32Type>());
        let value = |c: Option<&arrow::array::StringArray>, i: usize| {
            c.filter(|c| c.is_valid(i) && !c.value(i).is_empty())
                .map(|c| c.value(i).to_owned())
        };
        for i in 0..batch.num_rows() {
            let (Some(kind), Some(program)) = (
                EventKind::parse(kinds.value(i)),
                value(Some(programs), i).filter(|p| is_safe_program_id(p)),
            ) else {
                continue;
            };
            let day = until
                .filter(|u| u.is_valid(i))
                .map(|u| divoc_model::schema::format_date(u.value(i)));
            let mut touched = vec![(value(Some(ids), i), false)];
            match kind {
                EventKind::Update => touched.push((value(previous, i), true)),
                EventKind::ReissueRevoking => touched.push((value(reissue_of, i), true)),
                _ => {}
            }
            for (id, replaced) in touched {
                let position = id.as_deref().and_then(StatusPosition::of_certificate);
                let change = change_of(kind.action(), replaced, day.clone());
                if let (Some(position), Some(change)) = (position, change) {
                    let key = ListKey {
                        program: program.clone(),
                        position,
                    };
                    self.pending.push((key, change));
                }
            }
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        if self.pending.is_empty() {
            return Ok(EpochOutput::default());
        }
        let rows = self.pending.len() as u64;
        let mut touched = std::collections::BTreeSet::new();
        for (key, change) in std::mem::take(&mut self.pending) {
            let id = (key.program.clone(), key.position.list);
            if !self.cache.contains_key(&id) {
                let bits = Self::read_state(&self.committed_path(&id.0, id.1))?.unwrap_or_default();
                self.cache.insert(
                    id.clone(),
                    CachedList {
                        bits,
                        staged_epoch: None,
                    },
                );
            }
            let Some(entry) = self.cache.get_mut(&id) else {
                continue;
            };
            let index = key.position.index;
            let bits = &mut entry.bits;
            match change {
                Change::Issued => {}
                Change::Revoke => bits.revocation.set(index, true),
                Change::Suspend(until) => {
                    bits.suspension.set(index, true);
                    match until {
                        Some(day) => bits.ends.insert(index, day),
                        None => bits.ends.remove(&index),
                    };
                }
                Change::Lift => {
                    bits.suspension.set(index, false);
                    bits.ends.remove(&index);
                }
            }
            entry.staged_epoch = Some(epoch);
            touched.insert(id);
        }
        let dir = self.staged_dir.join(epoch.to_string());
        for id in &touched {
            let state = self.cache[id].bits.to_state();
            let json = serde_json::to_vec(&state).map_err(state_err)?;
            write_synced(&dir.join(&id.0).join(format!("{}.json", id.1)), &json)?;
        }
        Ok(EpochOutput {
            objects: Vec::new(),
            rows,
        })
    }

    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        for epoch in staged_epochs(&self.staged_dir)? {
            if epoch > info.epoch {
                break;
            }
            let dir = self.staged_dir.join(epoch.to_string());
            for (program, list, file) in staged_lists(&dir)? {
                let Some(bits) = Self::read_state(&file)? else {
                    continue;
                };
                self.publish(&program, list, &bits)?;
                let target = self.committed_path(&program, list);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
                }
                std::fs::rename(&file, &target).map_err(|e| EngineError::io(&target, e))?;
            }
            std::fs::remove_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        }
        // Lists no uncommitted epoch staged are read back from `lists/` when next needed.
        self.cache
            .retain(|_, l| l.staged_epoch.is_some_and(|e| e > info.epoch));
        Ok(())
    }

    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        self.pending.clear();
        self.cache.clear();
        for epoch in staged_epochs(&self.staged_dir)? {
            if epoch > committed {
                let dir = self.staged_dir.join(epoch.to_string());
                std::fs::remove_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
