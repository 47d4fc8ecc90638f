//! Drives one operator or sink: processes batches in arrival order and aligns barriers across
//! inputs.
//!
//! When input `i` delivers the barrier of epoch N, further messages from `i` are held back until
//! every other open input delivered it too; then the node makes epoch N durable (an operator's
//! `on_barrier`, a sink's `pre_commit`), acknowledges it to the coordinator and forwards the
//! barrier. A sink also takes the coordinator's commit messages (phase two) between batches, and
//! after its inputs close it keeps taking them until the coordinator is done.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, Sender};

use super::{CoordMsg, Envelope, Msg, Outputs, SinkCommit};
use crate::dead_letter::count_reasons;
use crate::error::EngineError;
use crate::latency::LatencyHistogram;
use crate::metrics::Metrics;
use crate::operator::{EpochOutput, Operator};
use crate::sink::{CommitInfo, Sink};

pub(crate) enum NodeBody {
    Operator(Box<dyn Operator>),
    Sink {
        sink: Box<dyn Sink>,
        commits: Receiver<SinkCommit>,
        /// Last epoch whose commit this sink ran.
        committed: u64,
    },
}

pub(crate) struct NodeTask {
    pub name: String,
    pub body: NodeBody,
    /// None for a commits-only sink.
    pub input: Option<Receiver<Envelope>>,
    pub n_inputs: usize,
    pub outputs: Outputs,
    pub coord: Sender<CoordMsg>,
    pub metrics: Metrics,
    pub latency: Arc<Mutex<LatencyHistogram>>,
}

struct Alignment {
    blocked: Vec<bool>,
    closed: Vec<bool>,
    held: Vec<VecDeque<Msg>>,
    epoch: Option<u64>,
}

impl NodeTask {
    pub fn run(mut self) -> Result<(), EngineError> {
        let result = self.run_inner();
        if let Err(e) = &result {
            tracing::error!(node = %self.name, error = %e, "node failed");
            let _ = self.coord.send(CoordMsg::NodeFailed {
                node: self.name.clone(),
                error: e.to_string(),
            });
        }
        result
    }

    fn run_inner(&mut self) -> Result<(), EngineError> {
        let n = self.n_inputs;
        let mut al = Alignment {
            blocked: vec![false; n],
            closed: vec![false; n],
            held: (0..n).map(|_| VecDeque::new()).collect(),
            epoch: None,
        };
        let depth = self.metrics.queue_depth.with_label_values(&[&self.name]);
        let never = crossbeam_channel::never();
        let input = self.input.clone();
        let commits = match &self.body {
            NodeBody::Sink { commits, .. } => Some(commits.clone()),
            NodeBody::Operator(_) => None,
        };
        let mut commits_open = commits.is_some();
        let no_commits = never_commits();
        while input.is_some() && !al.closed.iter().all(|c| *c) {
            let rx = input.as_ref().unwrap_or(&never);
            depth.set(rx.len() as i64);
            let commit_rx = match (&commits, commits_open) {
                (Some(c), true) => c,
                _ => &no_commits,
            };
            crossbeam_channel::select! {
                recv(rx) -> env => match env {
                    Ok(env) => self.handle(env.from, env.msg, &mut al)?,
                    // Every sender dropped: upstreams ended (after their Eof) or failed.
                    Err(_) => break,
                },
                recv(commit_rx) -> c => match c {
                    Ok(c) => self.commit(&c)?,
                    Err(_) => commits_open = false,
                },
            }
        }
        if al.epoch.is_some() {
            return Err(EngineError::Other(format!(
                "node {}: inputs closed during barrier alignment (an upstream failed)",
                self.name
            )));
        }
        match &mut self.body {
            NodeBody::Operator(op) => op.on_finish()?,
            NodeBody::Sink { .. } => {
                // The last epochs may still be committing: take every commit until the
                // coordinator is done, so a clean stop leaves nothing staged.
                if let Some(c) = &commits {
                    while let Ok(msg) = c.recv() {
                        self.commit(&msg)?;
                    }
                }
                if let NodeBody::Sink { sink, .. } = &mut self.body {
                    sink.on_finish()?;
                }
            }
        }
        self.outputs.send_all(|| Msg::Eof)?;
        Ok(())
    }

    fn commit(&mut self, msg: &SinkCommit) -> Result<(), EngineError> {
        let NodeBody::Sink {
            sink, committed, ..
        } = &mut self.body
        else {
            return Ok(());
        };
        let cp = &msg.checkpoint;
        if cp.epoch <= *committed {
            return Ok(());
        }
        let empty = EpochOutput::default();
        sink.commit(&CommitInfo {
            epoch: cp.epoch,
            written: cp.outputs.get(&self.name).unwrap_or(&empty),
            checkpoint: cp,
        })?;
        *committed = cp.epoch;
        Ok(())
    }

    fn handle(&mut self, from: usize, msg: Msg, al: &mut Alignment) -> Result<(), EngineError> {
        if al.blocked[from] {
            al.held[from].push_back(msg);
            return Ok(());
        }
        match msg {
            Msg::Data(batch) => self.process(batch),
            Msg::Barrier(epoch) => {
                if let Some(current) = al.epoch {
                    if current != epoch {
                        return Err(EngineError::Other(format!(
                            "node {}: barrier {epoch} arrived while aligning {current}",
                            self.name
                        )));
                    }
                }
                al.epoch = Some(epoch);
                al.blocked[from] = true;
                self.try_complete(al)
            }
            Msg::Eof => {
                al.closed[from] = true;
                self.try_complete(al)
            }
        }
    }

    fn try_complete(&mut self, al: &mut Alignment) -> Result<(), EngineError> {
        let Some(epoch) = al.epoch else { return Ok(()) };
        if !(0..self.n_inputs).all(|i| al.blocked[i] || al.closed[i]) {
            return Ok(());
        }
        let output = match &mut self.body {
            NodeBody::Operator(op) => op.on_barrier(epoch)?,
            NodeBody::Sink { sink, .. } => sink.pre_commit(epoch)?,
        };
        self.coord
            .send(CoordMsg::NodeAck {
                node: self.name.clone(),
                epoch,
                output,
            })
            .map_err(|_| EngineError::Other("coordinator stopped".into()))?;
        self.outputs.send_all(|| Msg::Barrier(epoch))?;
        al.epoch = None;
        for b in al.blocked.iter_mut() {
            *b = false;
        }
        // Release held-back messages in input order; they may start the next alignment.
        for i in 0..self.n_inputs {
            while !al.blocked[i] {
                let Some(msg) = al.held[i].pop_front() else {
                    break;
                };
                self.handle(i, msg, al)?;
            }
        }
        Ok(())
    }

    fn process(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let rows = batch.num_rows() as u64;
        self.metrics
            .records_in
            .with_label_values(&[&self.name])
            .inc_by(rows);
        let started = Instant::now();
        let processed = match &mut self.body {
            NodeBody::Operator(op) => Some(op.process(batch, &self.name)?),
            NodeBody::Sink { sink, .. } => {
                sink.write(batch)?;
                None
            }
        };
        let secs = started.elapsed().as_secs_f64();
        self.metrics
            .batch_latency
            .with_label_values(&[&self.name])
            .observe(secs);
        if let Ok(mut l) = self.latency.lock() {
            l.record(secs);
        }
        let Some(processed) = processed else {
            return Ok(());
        };
        self.metrics
            .records_out
            .with_label_values(&[&self.name])
            .inc_by(processed.output.num_rows() as u64);
        if let Some(dl) = &processed.dead_letters {
            let mut counts = Default::default();
            count_reasons(dl, &mut counts);
            for (reason, n) in counts {
                self.metrics
                    .rejected
                    .with_label_values(&[&self.name, &reason])
                    .inc_by(n);
            }
        }
        self.outputs.send_data(processed.output)?;
        self.outputs.send_dead_letters(processed.dead_letters)?;
        Ok(())
    }
}

fn never_commits() -> Receiver<SinkCommit> {
    crossbeam_channel::never()
}
