//! Durable engine state: the committed checkpoint and each source's barrier intent log.
//!
//! Exactly-once rests on three facts:
//! 1. A checkpoint (source positions at epoch N's barrier) is committed only after every node
//!    acknowledged epoch N, i.e. after every output of epoch N is durable.
//! 2. Before a source emits a barrier it appends `(epoch, records since the previous barrier)` to its
//!    intent log and fsyncs it, so a replay cuts epochs at exactly the same records.
//! 3. Operators are deterministic given their input order and durable state, so a replayed epoch
//!    rewrites the same object keys with the same bytes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::operator::EpochOutput;

/// The last committed checkpoint, kept in `<state_dir>/checkpoint.json` and mirrored to the object
/// store as `checkpoints/epoch-<N>.json` for readers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub epoch: u64,
    /// Source node name -> its opaque position after the barrier of `epoch`.
    pub positions: BTreeMap<String, serde_json::Value>,
    /// Node name -> objects written and rows in this epoch.
    pub outputs: BTreeMap<String, EpochOutput>,
}

pub fn checkpoint_path(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoint.json")
}

pub fn load_checkpoint(state_dir: &Path) -> Result<Option<Checkpoint>, EngineError> {
    let path = checkpoint_path(state_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EngineError::State(format!("{} is corrupt ({e}); restore it from the object store's checkpoints/ or remove the state dir to start over", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// Atomically replaces the checkpoint file (write temp, fsync, rename, fsync directory).
pub fn store_checkpoint(state_dir: &Path, cp: &Checkpoint) -> Result<(), EngineError> {
    let bytes = serde_json::to_vec_pretty(cp).map_err(|e| EngineError::State(e.to_string()))?;
    write_atomic(&checkpoint_path(state_dir), &bytes)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| EngineError::io(&tmp, e))?;
        f.sync_all().map_err(|e| EngineError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| EngineError::io(dir, e))?;
    }
    Ok(())
}

/// One source's barrier intents: `<epoch> <records since previous barrier>` per line.
pub struct IntentLog {
    path: PathBuf,
    file: File,
}

impl IntentLog {
    /// Opens the log and returns the intents for epochs after `committed`, in order.
    /// A torn last line (crash mid-append) is ignored: that barrier was never emitted.
    pub fn open(path: &Path, committed: u64) -> Result<(Self, Vec<(u64, u64)>), EngineError> {
        let mut intents = Vec::new();
        if path.exists() {
            let f = File::open(path).map_err(|e| EngineError::io(path, e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| EngineError::io(path, e))?;
                if !line.ends_with(';') {
                    continue;
                }
                let mut it = line.trim_end_matches(';').split(' ');
                if let (Some(Ok(e)), Some(Ok(n))) = (
                    it.next().map(str::parse::<u64>),
                    it.next().map(str::parse::<u64>),
                ) {
                    if e > committed {
                        intents.push((e, n));
                    }
                }
            }
        }
        // Rewrite with only the live intents so the log never grows past a few lines.
        let mut text = String::new();
        for (e, n) in &intents {
            text.push_str(&format!("{e} {n};\n"));
        }
        write_atomic(path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io(path, e))?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
            },
            intents,
        ))
    }

    /// Durably records that epoch `epoch` ends after `records` more records.
    pub fn append(&mut self, epoch: u64, records: u64) -> Result<(), EngineError> {
        self.file
            .write_all(format!("{epoch} {records};\n").as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| EngineError::io(&self.path, e))
    }

    /// Drops intents up to `committed` (called after each commit).
    pub fn compact(&mut self, committed: u64) -> Result<(), EngineError> {
        let (fresh, _) = Self::open(&self.path, committed)?;
        *self = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_log_round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("epochs.log");
        let (mut log, intents) = IntentLog::open(&p, 0).unwrap();
        assert!(intents.is_empty());
        log.append(1, 10).unwrap();
        log.append(2, 5).unwrap();
        drop(log);
        // A crash mid-append leaves a line without its terminator.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"3 7")
            .unwrap();
        let (_, intents) = IntentLog::open(&p, 1).unwrap();
        assert_eq!(intents, vec![(2, 5)]);
        let (_, intents) = IntentLog::open(&p, 0).unwrap();
        assert_eq!(
            intents,
            vec![(2, 5)],
            "compaction on open dropped epoch 1 for good"
        );
    }

    #[test]
    fn checkpoint_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_checkpoint(dir.path()).unwrap(), None);
        let mut cp = Checkpoint {
            epoch: 4,
            ..Default::default()
        };
        cp.positions.insert(
            "files".into(),
            serde_json::json!({"file": "a", "offset": 3}),
        );
        store_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(load_checkpoint(dir.path()).unwrap(), Some(cp));
        std::fs::write(checkpoint_path(dir.path()), b"{").unwrap();
        assert!(load_checkpoint(dir.path()).is_err());
    }
}
