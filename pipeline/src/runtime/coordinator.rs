//! Triggers epochs and commits checkpoints once every node acknowledged an epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{CoordMsg, SinkCommit, SourceControl};
use crate::checkpoint::{store_checkpoint, Checkpoint};
use crate::config::EngineSettings;
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::EpochOutput;

/// Epochs triggered but not yet committed are capped so held-back data stays bounded.
const MAX_EPOCHS_IN_FLIGHT: u64 = 2;

pub(crate) struct Coordinator {
    pub state_dir: PathBuf,
    pub metrics: Metrics,
    pub settings: EngineSettings,
    pub sources: BTreeMap<String, Sender<SourceControl>>,
    /// Every sink, told of each stored checkpoint (phase two of its commit).
    pub sinks: BTreeMap<String, Sender<SinkCommit>>,
    pub ack_nodes: Vec<String>,
    pub committed: Checkpoint,
    /// Positions of sources the checkpoint holds but this run does not have (a job run between
    /// runs of the main pipeline, e.g. `divoc reissue`): kept in every checkpoint, so the next run
    /// of the main pipeline resumes where it was.
    pub carried: BTreeMap<String, serde_json::Value>,
    /// The next epoch number to trigger.
    pub next_epoch: u64,
    /// Epochs up to here were cut before a crash; they are replayed from the intent logs.
    pub replay_upto: u64,
    pub stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct EpochState {
    positions: BTreeMap<String, serde_json::Value>,
    outputs: BTreeMap<String, EpochOutput>,
}

pub(crate) struct CoordinatorStats {
    pub rows: BTreeMap<String, u64>,
    pub epochs: u64,
    pub last_epoch: u64,
}

impl Coordinator {
    pub fn run(mut self, rx: Receiver<CoordMsg>) -> Result<CoordinatorStats, EngineError> {
        let mut pending: BTreeMap<u64, EpochState> = BTreeMap::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut last_triggered = self.committed.epoch;
        let mut final_epoch: Option<u64> = None;
        let mut last_trigger_at = Instant::now();
        // When each epoch not yet committed was triggered (for the checkpoint duration).
        let mut triggered_at: BTreeMap<u64, Instant> = BTreeMap::new();
        let mut checkpoint_requested = false;
        let mut stats = CoordinatorStats {
            rows: BTreeMap::new(),
            epochs: 0,
            last_epoch: self.committed.epoch,
        };
        let interval = Duration::from_millis(self.settings.checkpoint_interval_ms);

        // Re-issue the epochs that were cut before a crash, so every source reaches them.
        if self.replay_upto > self.committed.epoch {
            self.trigger(self.replay_upto, false);
            triggered_at.insert(self.replay_upto, Instant::now());
            last_triggered = self.replay_upto;
        }

        loop {
            let in_flight = last_triggered - self.committed.epoch;
            let stopping = self.stop.load(Ordering::Relaxed)
                || (!self.sources.is_empty() && finished.len() == self.sources.len());
            if final_epoch.is_none() && stopping && last_triggered >= self.replay_upto {
                let e = self.next_epoch.max(last_triggered + 1);
                self.trigger(e, true);
                triggered_at.insert(e, Instant::now());
                last_triggered = e;
                final_epoch = Some(e);
            } else if final_epoch.is_none()
                && in_flight < MAX_EPOCHS_IN_FLIGHT
                && (checkpoint_requested || last_trigger_at.elapsed() >= interval)
            {
                let e = self.next_epoch.max(last_triggered + 1);
                self.trigger(e, false);
                last_triggered = e;
                last_trigger_at = Instant::now();
                triggered_at.insert(e, last_trigger_at);
                checkpoint_requested = false;
            }
            if let Some(f) = final_epoch {
                if self.committed.epoch >= f {
                    // Closing the commit channels lets sinks finish once they ran every commit.
                    self.sinks.clear();
                    return Ok(stats);
                }
            }

            let msg = match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Other(format!(
                        "all nodes stopped before epoch {} was committed",
                        self.committed.epoch + 1
                    )))
                }
            };
            match msg {
                CoordMsg::RequestCheckpoint => checkpoint_requested = true,
                CoordMsg::SourceFinished { source } => {
                    finished.insert(source);
                }
                CoordMsg::SourceBarrier {
                    source,
                    epoch,
                    position,
                } => {
                    pending
                        .entry(epoch)
                        .or_default()
                        .positions
                        .insert(source, position);
                }
                CoordMsg::NodeAck {
                    node,
                    epoch,
                    output,
                } => {
                    pending
                        .entry(epoch)
                        .or_default()
                        .outputs
                        .insert(node, output);
                }
                CoordMsg::NodeFailed { node, error } => {
                    return Err(EngineError::Other(format!("node {node} failed: {error}")));
                }
            }
            // Commit every complete epoch in order.
            while let Some(state) = pending.get(&(self.committed.epoch + 1)) {
                let complete = self.sources.keys().all(|s| state.positions.contains_key(s))
                    && self.ack_nodes.iter().all(|n| state.outputs.contains_key(n));
                if !complete {
                    break;
                }
                let epoch = self.committed.epoch + 1;
                let state = pending.remove(&epoch).expect("checked above");
                for (n, o) in &state.outputs {
                    *stats.rows.entry(n.clone()).or_default() += o.rows;
                }
                // Epochs replayed after a crash were all re-issued by one trigger (the highest).
                let since = triggered_at.range(epoch..).next().map(|(_, t)| *t);
                triggered_at.retain(|e, _| *e > epoch);
                self.commit(epoch, state, since)?;
                stats.epochs += 1;
                stats.last_epoch = epoch;
            }
        }
    }

    fn trigger(&self, epoch: u64, last: bool) {
        for tx in self.sources.values() {
            // A source that already stopped cannot take part; its failure is reported separately.
            let _ = tx.send(SourceControl::Trigger { epoch, last });
        }
    }

    /// Stores the checkpoint of `epoch` (`triggered`: when the epoch was triggered).
    fn commit(
        &mut self,
        epoch: u64,
        state: EpochState,
        triggered: Option<Instant>,
    ) -> Result<(), EngineError> {
        let mut positions = self.carried.clone();
        positions.extend(state.positions);
        let cp = Checkpoint {
            epoch,
            positions,
            outputs: state.outputs,
        };
        // The commit point. Sinks make the epoch visible after it (a crash in between is finished
        // on restart, when every sink's commit runs again for the last committed epoch).
        store_checkpoint(&self.state_dir, &cp)?;
        self.metrics.checkpoints.inc();
        if let Some(t) = triggered {
            self.metrics
                .checkpoint_duration
                .observe(t.elapsed().as_secs_f64());
        }
        self.metrics.last_epoch.set(epoch as i64);
        for (name, tx) in &self.sources {
            if let Some(p) = cp.positions.get(name) {
                let _ = tx.send(SourceControl::Committed {
                    epoch,
                    position: p.clone(),
                });
            }
        }
        let shared = Arc::new(cp);
        for tx in self.sinks.values() {
            // A sink that stopped reports its own failure.
            let _ = tx.send(SinkCommit {
                checkpoint: shared.clone(),
            });
        }
        self.committed = Checkpoint::clone(&shared);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a coordinator with one source that answers each trigger `pause` later with the
    /// barriers of every epoch up to the triggered one; stops after `epochs` answers.
    fn run_one_source(replay_upto: u64, epochs: usize, pause: Duration) -> (Metrics, u64) {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let (src_tx, src_rx) = crossbeam_channel::unbounded();
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let coordinator = Coordinator {
            carried: BTreeMap::new(),
            state_dir: dir.path().to_owned(),
            metrics: metrics.clone(),
            settings: EngineSettings {
                checkpoint_interval_ms: 10,
                ..Default::default()
            },
            sources: BTreeMap::from([("src".to_owned(), src_tx)]),
            sinks: BTreeMap::new(),
            ack_nodes: Vec::new(),
            committed: Checkpoint::default(),
            next_epoch: replay_upto + 1,
            replay_upto,
            stop: stop.clone(),
        };
        let run = std::thread::spawn(move || coordinator.run(rx));
        let mut answered = 0;
        let mut barriers_up_to = 0;
        while let Ok(ctl) = src_rx.recv_timeout(Duration::from_secs(20)) {
            let SourceControl::Trigger { epoch, last } = ctl else {
                continue;
            };
            std::thread::sleep(pause);
            for e in barriers_up_to + 1..=epoch {
                tx.send(CoordMsg::SourceBarrier {
                    source: "src".into(),
                    epoch: e,
                    position: serde_json::json!(e),
                })
                .unwrap();
            }
            barriers_up_to = epoch;
            answered += 1;
            if answered >= epochs {
                stop.store(true, Ordering::Relaxed);
            }
            if last {
                break;
            }
        }
        let stats = run.join().unwrap().unwrap();
        (metrics, stats.epochs)
    }

    #[test]
    fn checkpoint_duration_runs_from_trigger_to_commit() {
        let pause = Duration::from_millis(30);
        let (m, epochs) = run_one_source(0, 3, pause);
        assert!(epochs >= 3, "{epochs}");
        let h = &m.checkpoint_duration;
        assert_eq!(h.get_sample_count(), epochs);
        assert_eq!(m.checkpoints.get(), epochs);
        assert!(
            h.get_sample_sum() >= pause.as_secs_f64() * epochs as f64,
            "every epoch waited for its barrier: {}",
            h.get_sample_sum()
        );
    }

    #[test]
    fn replayed_epochs_are_timed_from_their_reissue() {
        let pause = Duration::from_millis(30);
        // Epochs 1..=3 were cut before a crash: one trigger re-issues them all.
        let (m, epochs) = run_one_source(3, 1, pause);
        assert!(
            epochs >= 4,
            "three replayed epochs and a final one: {epochs}"
        );
        let h = &m.checkpoint_duration;
        assert_eq!(h.get_sample_count(), epochs);
        assert!(h.get_sample_sum() >= pause.as_secs_f64() * epochs as f64);
    }
}
