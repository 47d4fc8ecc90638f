//! Drives one source: polls batches, cuts epochs where the coordinator (or, on replay, the intent
//! log) says, and never exits before the coordinator's last barrier.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{CoordMsg, Msg, Outputs, SourceControl};
use crate::checkpoint::IntentLog;
use crate::config::EngineSettings;
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::{Source, SourcePoll};

pub(crate) struct SourceTask {
    pub name: String,
    pub source: Box<dyn Source>,
    pub outputs: Outputs,
    pub control: Receiver<SourceControl>,
    pub coord: Sender<CoordMsg>,
    pub log: IntentLog,
    /// Replayed barrier positions: (epoch, records since the previous barrier).
    pub intents: VecDeque<(u64, u64)>,
    pub last_emitted: u64,
    pub settings: EngineSettings,
    pub metrics: Metrics,
}

impl SourceTask {
    pub fn run(mut self) -> Result<(), EngineError> {
        let result = self.run_inner();
        if let Err(e) = &result {
            let _ = self.coord.send(CoordMsg::NodeFailed {
                node: self.name.clone(),
                error: e.to_string(),
            });
        }
        result
    }

    fn run_inner(&mut self) -> Result<(), EngineError> {
        let mut triggered: BTreeSet<u64> = BTreeSet::new();
        let mut last_epoch: Option<u64> = None;
        let mut since_barrier: u64 = 0;
        let mut requested = false;
        let mut finished = false;
        // Set while a stopping source drains its own buffered input before the final barrier.
        let mut draining = false;
        let mut stop_begun = false;
        let records_out = self.metrics.records_out.with_label_values(&[&self.name]);
        let rejected = self.metrics.rejected.clone();
        let linger = Duration::from_millis(self.settings.linger_ms.max(1));

        loop {
            while let Ok(ctl) = self.control.try_recv() {
                self.handle_control(ctl, &mut triggered, &mut last_epoch)?;
            }
            if last_epoch.is_some() && !stop_begun {
                stop_begun = true;
                draining = self.source.begin_stop();
            }
            let next = self.last_emitted + 1;
            let mut limit = self.settings.batch_size as u64;
            let replay = self.intents.front().copied().filter(|(e, _)| *e == next);
            let due = match replay {
                Some((_, count)) if since_barrier >= count => true,
                Some((_, count)) if finished => {
                    tracing::warn!(source = %self.name, expected = count, got = since_barrier, "input ended before a logged barrier; cutting early");
                    true
                }
                Some((_, count)) => {
                    limit = limit.min(count - since_barrier);
                    false
                }
                None => triggered.contains(&next) && !(draining && last_epoch == Some(next)),
            };
            if due {
                if replay.is_some() {
                    self.intents.pop_front();
                } else {
                    self.log.append(next, since_barrier)?;
                }
                self.outputs.send_all(|| Msg::Barrier(next))?;
                self.coord
                    .send(CoordMsg::SourceBarrier {
                        source: self.name.clone(),
                        epoch: next,
                        position: self.source.position(),
                    })
                    .map_err(|_| EngineError::Other("coordinator stopped".into()))?;
                self.last_emitted = next;
                triggered.retain(|e| *e > next);
                since_barrier = 0;
                requested = false;
                if last_epoch == Some(next) {
                    self.outputs.send_all(|| Msg::Eof)?;
                    return Ok(());
                }
                continue;
            }
            if finished {
                self.wait_control(linger * 5, &mut triggered, &mut last_epoch)?;
                continue;
            }
            match self.source.poll(limit as usize)? {
                SourcePoll::Batch {
                    events,
                    dead_letters,
                    records,
                } => {
                    since_barrier += records;
                    if let Some(ev) = events {
                        records_out.inc_by(ev.num_rows() as u64);
                        self.outputs.send_data(ev)?;
                    }
                    if let Some(dl) = &dead_letters {
                        let mut counts = Default::default();
                        crate::dead_letter::count_reasons(dl, &mut counts);
                        for (reason, n) in counts {
                            rejected.with_label_values(&[&self.name, &reason]).inc_by(n);
                        }
                    }
                    self.outputs.send_dead_letters(dead_letters)?;
                    if since_barrier >= self.settings.checkpoint_max_records
                        && !requested
                        && self.intents.is_empty()
                    {
                        requested = true;
                        let _ = self.coord.send(CoordMsg::RequestCheckpoint);
                    }
                }
                SourcePoll::Idle if draining => draining = false,
                SourcePoll::Idle => self.wait_control(linger, &mut triggered, &mut last_epoch)?,
                SourcePoll::Finished => {
                    finished = true;
                    draining = false;
                    let _ = self.coord.send(CoordMsg::SourceFinished {
                        source: self.name.clone(),
                    });
                }
            }
        }
    }

    fn wait_control(
        &mut self,
        timeout: Duration,
        triggered: &mut BTreeSet<u64>,
        last_epoch: &mut Option<u64>,
    ) -> Result<(), EngineError> {
        match self.control.recv_timeout(timeout) {
            Ok(ctl) => self.handle_control(ctl, triggered, last_epoch),
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                Err(EngineError::Other("coordinator stopped".into()))
            }
        }
    }

    fn handle_control(
        &mut self,
        ctl: SourceControl,
        triggered: &mut BTreeSet<u64>,
        last_epoch: &mut Option<u64>,
    ) -> Result<(), EngineError> {
        match ctl {
            SourceControl::Trigger { epoch, last } => {
                // Triggers cover every epoch up to `epoch`: an epoch the intent log already fixes
                // is cut where the log says; the others are cut as soon as possible.
                for e in (self.last_emitted + 1)..=epoch {
                    triggered.insert(e);
                }
                if last {
                    *last_epoch = Some(epoch);
                }
                Ok(())
            }
            SourceControl::Committed { epoch, position } => {
                if epoch % 64 == 0 {
                    self.log.compact(epoch)?;
                }
                self.source.on_committed(&position)
            }
        }
    }
}
