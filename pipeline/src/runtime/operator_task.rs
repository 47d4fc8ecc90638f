//! Drives one operator: processes batches in arrival order and aligns barriers across inputs.
//!
//! When input `i` delivers the barrier of epoch N, further messages from `i` are held back until
//! every other open input delivered it too; then the operator makes epoch N durable
//! (`on_barrier`), acknowledges it to the coordinator and forwards the barrier.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::{CoordMsg, Envelope, Msg, Outputs};
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::{count_reasons, Operator};

pub(crate) struct OperatorTask {
    pub name: String,
    pub op: Box<dyn Operator>,
    pub input: Receiver<Envelope>,
    pub n_inputs: usize,
    pub outputs: Outputs,
    pub coord: Sender<CoordMsg>,
    pub metrics: Metrics,
    pub latencies: Arc<Mutex<Vec<f64>>>,
}

struct Alignment {
    blocked: Vec<bool>,
    closed: Vec<bool>,
    held: Vec<VecDeque<Msg>>,
    epoch: Option<u64>,
}

impl OperatorTask {
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
        while !al.closed.iter().all(|c| *c) {
            depth.set(self.input.len() as i64);
            let env = match self.input.recv() {
                Ok(env) => env,
                // Every sender dropped: upstreams ended (after their Eof) or failed.
                Err(_) => break,
            };
            self.handle(env.from, env.msg, &mut al)?;
        }
        if al.epoch.is_some() {
            return Err(EngineError::Other(format!(
                "node {}: inputs closed during barrier alignment (an upstream failed)",
                self.name
            )));
        }
        self.op.on_finish()?;
        self.outputs.send_all(|| Msg::Eof)?;
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
        let output = self.op.on_barrier(epoch)?;
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

    fn process(&mut self, batch: arrow::record_batch::RecordBatch) -> Result<(), EngineError> {
        let rows = batch.num_rows() as u64;
        self.metrics
            .records_in
            .with_label_values(&[&self.name])
            .inc_by(rows);
        let started = Instant::now();
        let processed = self.op.process(batch, &self.name)?;
        let secs = started.elapsed().as_secs_f64();
        self.metrics
            .batch_latency
            .with_label_values(&[&self.name])
            .observe(secs);
        if let Ok(mut l) = self.latencies.lock() {
            l.push(secs);
        }
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
