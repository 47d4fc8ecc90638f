//! The certificate state per key and its undo log.
//!
//! One value per (tenant, programId, preEnrollmentCode, dose) key: the current certificate id (its
//! counter), the event that last changed it, the status (active, revoked, suspended until a day)
//! and the number of corrections. Values written before lifecycle events existed (16 bytes: id and
//! origin) read as active with no corrections.
//!
//! The state is epoch-transactional: the first change of a key (and of the id counter) in an epoch
//! also writes the previous value to an undo log keyed by epoch, in the same atomic write batch.
//! On restart [`rollback_after`] restores every key an uncommitted epoch changed, so the replayed
//! epochs meet exactly the state they met the first time, whatever sequence of transitions they
//! carry for one key.

use fjall::{Keyspace, OwnedWriteBatch as WriteBatch};

/// A certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
    /// Suspended until (and including) this day, in days since 1970-01-01.
    Suspended {
        until_day: i32,
    },
}

/// The stored state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertState {
    /// The current certificate's id counter.
    pub counter: u64,
    /// Hash of the source id and offset of the event that set `counter`.
    pub origin: u64,
    pub status: Status,
    /// Updates applied to this dose so far.
    pub corrections: u16,
}

const NO_DAY: i32 = i32::MIN;

impl CertState {
    pub fn encode(&self) -> [u8; 23] {
        let mut v = [0u8; 23];
        v[..8].copy_from_slice(&self.counter.to_be_bytes());
        v[8..16].copy_from_slice(&self.origin.to_be_bytes());
        let (code, day) = match self.status {
            Status::Active => (0, NO_DAY),
            Status::Revoked => (1, NO_DAY),
            Status::Suspended { until_day } => (2, until_day),
        };
        v[16] = code;
        v[17..19].copy_from_slice(&self.corrections.to_be_bytes());
        v[19..23].copy_from_slice(&day.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Self> {
        let counter = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
        let origin = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
        if v.len() == 16 {
            return Some(Self {
                counter,
                origin,
                status: Status::Active,
                corrections: 0,
            });
        }
        let corrections = u16::from_be_bytes(v.get(17..19)?.try_into().ok()?);
        let day = i32::from_be_bytes(v.get(19..23)?.try_into().ok()?);
        let status = match v.get(16)? {
            0 => Status::Active,
            1 => Status::Revoked,
            2 => Status::Suspended { until_day: day },
            _ => return None,
        };
        Some(Self {
            counter,
            origin,
            status,
            corrections,
        })
    }
}

/// Undo log entries: `epoch (8 bytes BE) | sequence (4 bytes BE)`.
fn undo_key(epoch: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&epoch.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

const UNDO_KEY_ENTRY: u8 = 0;
const UNDO_COUNTER: u8 = 1;
const UNDO_DETAIL_ENTRY: u8 = 2;

/// Which keyspace an undo entry restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// The certificate states.
    Keys,
    /// The stored events (reconciliation).
    Details,
}

/// What one epoch's undo entries restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The key's value before the epoch (`None`: the key did not exist).
    Key {
        space: Space,
        key: [u8; 16],
        previous: Option<Vec<u8>>,
    },
    /// The id counter before the epoch.
    Counter(u64),
}

impl Undo {
    fn encode(&self) -> Vec<u8> {
        match self {
            Undo::Key {
                space,
                key,
                previous,
            } => {
                let mut v = Vec::with_capacity(1 + 16 + 24);
                v.push(match space {
                    Space::Keys => UNDO_KEY_ENTRY,
                    Space::Details => UNDO_DETAIL_ENTRY,
                });
                v.extend_from_slice(key);
                if let Some(p) = previous {
                    v.extend_from_slice(p);
                }
                v
            }
            Undo::Counter(c) => {
                let mut v = vec![UNDO_COUNTER];
                v.extend_from_slice(&c.to_be_bytes());
                v
            }
        }
    }

    fn decode(v: &[u8]) -> Option<Self> {
        match *v.first()? {
            tag @ (UNDO_KEY_ENTRY | UNDO_DETAIL_ENTRY) => {
                let key: [u8; 16] = v.get(1..17)?.try_into().ok()?;
                let rest = &v[17..];
                Some(Undo::Key {
                    space: if tag == UNDO_KEY_ENTRY {
                        Space::Keys
                    } else {
                        Space::Details
                    },
                    key,
                    previous: (!rest.is_empty()).then(|| rest.to_vec()),
                })
            }
            UNDO_COUNTER => Some(Undo::Counter(u64::from_be_bytes(
                v.get(1..9)?.try_into().ok()?,
            ))),
            _ => None,
        }
    }
}

/// Records the undo entries of the current epoch into write batches.
pub struct UndoLog {
    pub keyspace: Keyspace,
    epoch: u64,
    seq: u32,
    recorded: std::collections::HashSet<(Space, [u8; 16])>,
    counter_recorded: bool,
    /// Entries of the batch being processed, written as one record by [`UndoLog::flush`]
    /// (one LSM entry per batch, not per key: the undo log costs bytes, not entries).
    pending: Vec<u8>,
}

impl UndoLog {
    pub fn new(keyspace: Keyspace) -> Self {
        Self {
            keyspace,
            epoch: 1,
            seq: 0,
            recorded: std::collections::HashSet::new(),
            counter_recorded: false,
            pending: Vec::new(),
        }
    }

    /// The epoch the next changes belong to.
    pub fn begin_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.seq = 0;
        self.recorded.clear();
        self.counter_recorded = false;
    }

    /// Keeps the undo entry of `undo` for the next [`UndoLog::flush`], unless this epoch already
    /// has one for it.
    pub fn record(&mut self, undo: Undo) {
        match &undo {
            Undo::Key { space, key, .. } => {
                if !self.recorded.insert((*space, *key)) {
                    return;
                }
            }
            Undo::Counter(_) => {
                if std::mem::replace(&mut self.counter_recorded, true) {
                    return;
                }
            }
        }
        let entry = undo.encode();
        self.pending
            .extend_from_slice(&(entry.len() as u32).to_be_bytes());
        self.pending.extend_from_slice(&entry);
    }

    /// Adds the recorded entries to `wb` as one record (in the batch that makes the changes).
    pub fn flush(&mut self, wb: &mut WriteBatch) {
        if self.pending.is_empty() {
            return;
        }
        wb.insert(
            &self.keyspace,
            undo_key(self.epoch, self.seq).to_vec(),
            std::mem::take(&mut self.pending),
        );
        self.seq += 1;
    }

    /// The entries of epochs after `committed`, newest first (the order to apply them in).
    pub fn entries_after(&self, committed: u64) -> Result<Vec<Undo>, String> {
        let start = undo_key(committed.saturating_add(1), 0).to_vec();
        let mut out = Vec::new();
        for item in self.keyspace.range(start..) {
            let (_, v) = item.into_inner().map_err(|e| e.to_string())?;
            let mut rest: &[u8] = &v;
            while !rest.is_empty() {
                let len = rest
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes)
                    .ok_or("corrupt undo record")? as usize;
                let entry = rest.get(4..4 + len).ok_or("corrupt undo record")?;
                out.push(Undo::decode(entry).ok_or("corrupt undo entry")?);
                rest = &rest[4 + len..];
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Removes the entries of epochs up to `epoch` into `wb`.
    pub fn forget_upto(&self, wb: &mut WriteBatch, epoch: u64) -> Result<(), String> {
        let end = undo_key(epoch.saturating_add(1), 0).to_vec();
        for item in self.keyspace.range(..end) {
            let k = item.key().map_err(|e| e.to_string())?;
            wb.remove(&self.keyspace, k);
        }
        Ok(())
    }

    /// Removes the entries of epochs after `committed` into `wb` (after they were applied).
    pub fn forget_after(&self, wb: &mut WriteBatch, committed: u64) -> Result<(), String> {
        let start = undo_key(committed.saturating_add(1), 0).to_vec();
        for item in self.keyspace.range(start..) {
            let k = item.key().map_err(|e| e.to_string())?;
            wb.remove(&self.keyspace, k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_old_values_read_as_active() {
        for status in [
            Status::Active,
            Status::Revoked,
            Status::Suspended { until_day: 20_000 },
        ] {
            let s = CertState {
                counter: 42,
                origin: 7,
                status,
                corrections: 3,
            };
            assert_eq!(CertState::decode(&s.encode()), Some(s));
        }
        let mut old = [0u8; 16];
        old[..8].copy_from_slice(&5u64.to_be_bytes());
        let s = CertState::decode(&old).unwrap();
        assert_eq!((s.counter, s.status, s.corrections), (5, Status::Active, 0));
        assert_eq!(CertState::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn undo_entries_round_trip() {
        for u in [
            Undo::Key {
                space: Space::Keys,
                key: [9; 16],
                previous: None,
            },
            Undo::Key {
                space: Space::Details,
                key: [1; 16],
                previous: Some(vec![1, 2, 3]),
            },
            Undo::Counter(77),
        ] {
            assert_eq!(Undo::decode(&u.encode()), Some(u));
        }
    }
}
