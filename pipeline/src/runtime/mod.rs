//! The DAG runtime: one OS thread per node, bounded channels between nodes (a full queue blocks the
//! sender, so backpressure reaches the source), barrier-aligned epochs and a checkpoint coordinator.
//!
//! Every node gets an implicit edge to the dead-letter sink, which writes Parquet under
//! `dead-letter/` like any other sink, so rejected events are part of the same exactly-once epochs.

mod coordinator;
mod operator_task;
mod source_task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::checkpoint::load_checkpoint;
use crate::config::{BuildContext, BuiltNode, Registry, ValidatedPipeline};
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::{
    count_reasons, EpochOutput, ListenerHub, Operator, Processed, ReasonCounts, Source,
};
use crate::parquet_out::PartitionedParquet;
use crate::storage::Storage;

/// Name of the implicit dead-letter sink node.
pub const DEAD_LETTER_NODE: &str = "dead_letter";

/// What travels on an edge.
pub(crate) enum Msg {
    Data(RecordBatch),
    Barrier(u64),
    Eof,
}

pub(crate) struct Envelope {
    pub from: usize,
    pub msg: Msg,
}

/// One outgoing connection: the downstream queue and our index among its inputs.
#[derive(Clone)]
pub(crate) struct Link {
    pub tx: Sender<Envelope>,
    pub input_index: usize,
}

impl Link {
    fn send(&self, msg: Msg) -> Result<(), EngineError> {
        self.tx
            .send(Envelope {
                from: self.input_index,
                msg,
            })
            .map_err(|_| EngineError::Other("downstream node stopped".into()))
    }
}

/// Where a node's results go.
#[derive(Clone)]
pub(crate) struct Outputs {
    pub downstream: Vec<Link>,
    pub dead_letter: Option<Link>,
}

impl Outputs {
    fn send_data(&self, batch: RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for l in &self.downstream {
            l.send(Msg::Data(batch.clone()))?;
        }
        Ok(())
    }
    fn send_dead_letters(&self, batch: Option<RecordBatch>) -> Result<(), EngineError> {
        match (batch, &self.dead_letter) {
            (Some(b), Some(l)) if b.num_rows() > 0 => l.send(Msg::Data(b)),
            _ => Ok(()),
        }
    }
    fn send_all(&self, make: impl Fn() -> Msg) -> Result<(), EngineError> {
        for l in self.downstream.iter().chain(self.dead_letter.iter()) {
            l.send(make())?;
        }
        Ok(())
    }
}

/// Messages to the coordinator.
pub(crate) enum CoordMsg {
    SourceBarrier {
        source: String,
        epoch: u64,
        position: serde_json::Value,
    },
    RequestCheckpoint,
    SourceFinished {
        source: String,
    },
    NodeAck {
        node: String,
        epoch: u64,
        output: EpochOutput,
    },
    NodeFailed {
        node: String,
        error: String,
    },
}

/// Messages from the coordinator to a source.
pub(crate) enum SourceControl {
    Trigger {
        epoch: u64,
        last: bool,
    },
    Committed {
        epoch: u64,
        position: serde_json::Value,
    },
}

/// Figures of one run, for the CLI and the bench.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Rows written by each sink node (not counting dead letters).
    pub published: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub dead_letters_by_reason: ReasonCounts,
    pub epochs_committed: u64,
    pub last_epoch: u64,
    /// Processing time, from the moment every node was built.
    pub elapsed: Duration,
    /// Time spent building nodes and opening their state before processing began.
    pub startup: Duration,
    /// Per-batch processing latencies of every operator node, in seconds.
    pub batch_latencies: Vec<f64>,
    pub resumed_from_epoch: u64,
}

/// Everything needed to start a pipeline.
pub struct RunOptions {
    pub state_dir: PathBuf,
    pub storage: Storage,
    pub metrics: Metrics,
    pub runtime: tokio::runtime::Handle,
    /// Set to request a graceful stop (SIGINT/SIGTERM): sources cut a final epoch and drain.
    pub stop: Arc<AtomicBool>,
}

struct Instantiated {
    sources: Vec<(String, Box<dyn Source>)>,
    operators: Vec<(String, Box<dyn Operator>)>,
}

fn instantiate(
    plan: &ValidatedPipeline,
    registry: &Registry,
    opts: &RunOptions,
    listeners: &ListenerHub,
) -> Result<Instantiated, EngineError> {
    let mut sources = Vec::new();
    let mut operators = Vec::new();
    for name in &plan.order {
        let spec = &plan.file.nodes[name];
        let entry = registry
            .get(&spec.kind)
            .ok_or_else(|| EngineError::Config(format!("unknown kind {}", spec.kind)))?;
        let node_state = opts.state_dir.join("nodes").join(name);
        std::fs::create_dir_all(&node_state).map_err(|e| EngineError::io(&node_state, e))?;
        let ctx = BuildContext {
            node: name,
            config_dir: &plan.config_dir,
            state_dir: node_state,
            storage: &opts.storage,
            metrics: &opts.metrics,
            runtime: opts.runtime.clone(),
            settings: &plan.file.pipeline,
            listeners,
        };
        match entry.build(&spec.options, &ctx)? {
            BuiltNode::Source(s) => sources.push((name.clone(), s)),
            BuiltNode::Operator(o) => operators.push((name.clone(), o)),
        }
    }
    Ok(Instantiated { sources, operators })
}

/// The implicit sink for rejected events.
struct DeadLetterSink {
    out: PartitionedParquet,
    reasons: Arc<Mutex<ReasonCounts>>,
    listeners: ListenerHub,
    pending: Vec<RecordBatch>,
}

impl Operator for DeadLetterSink {
    fn process(&mut self, batch: RecordBatch, _stage: &str) -> Result<Processed, EngineError> {
        self.out.push(batch.clone())?;
        self.pending.push(batch);
        Ok(Processed {
            output: RecordBatch::new_empty(crate::operator::dead_letter_schema()),
            dead_letters: None,
        })
    }

    fn on_barrier(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let flushed = self.out.flush(epoch)?;
        let pending = std::mem::take(&mut self.pending);
        if let Ok(mut r) = self.reasons.lock() {
            for b in &pending {
                count_reasons(b, &mut r);
            }
        }
        for b in &pending {
            self.listeners.notify(b);
        }
        Ok(EpochOutput {
            objects: flushed.objects,
            rows: flushed.rows,
        })
    }
}

/// Runs a validated pipeline until its bounded sources are exhausted or `opts.stop` is set.
/// Resumes from the last committed checkpoint in `opts.state_dir`.
pub fn run_pipeline(
    plan: &ValidatedPipeline,
    registry: &Registry,
    opts: RunOptions,
) -> Result<RunSummary, EngineError> {
    let opened = Instant::now();
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| EngineError::io(&opts.state_dir, e))?;
    let checkpoint = load_checkpoint(&opts.state_dir)?.unwrap_or_default();
    let listeners = ListenerHub::default();
    let nodes = instantiate(plan, registry, &opts, &listeners)?;
    // Opening state (e.g. replaying a large store's journal) is reported apart from processing.
    let startup = opened.elapsed();
    let started = Instant::now();
    let settings = plan.file.pipeline.clone();

    // Queues: one per operator node plus the dead-letter sink. Inputs are numbered per receiver.
    let op_names: Vec<String> = nodes.operators.iter().map(|(n, _)| n.clone()).collect();
    let mut queues: BTreeMap<String, (Sender<Envelope>, Receiver<Envelope>, usize)> =
        BTreeMap::new();
    for n in op_names
        .iter()
        .chain(std::iter::once(&DEAD_LETTER_NODE.to_owned()))
    {
        let (tx, rx) = bounded(settings.channel_capacity);
        queues.insert(n.clone(), (tx, rx, 0));
    }
    let mut link_to = |target: &str| -> Link {
        let q = queues
            .get_mut(target)
            .expect("queue exists for every operator");
        let link = Link {
            tx: q.0.clone(),
            input_index: q.2,
        };
        q.2 += 1;
        link
    };
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    for name in &plan.order {
        let downstream = plan.downstreams(name).iter().map(|d| link_to(d)).collect();
        outputs.insert(
            name.clone(),
            Outputs {
                downstream,
                dead_letter: Some(link_to(DEAD_LETTER_NODE)),
            },
        );
    }

    let (coord_tx, coord_rx) = unbounded::<CoordMsg>();
    let reasons = Arc::new(Mutex::new(ReasonCounts::new()));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut handles = Vec::new();
    let mut source_controls = BTreeMap::new();

    let mut max_intent_epoch = checkpoint.epoch;
    for (name, mut source) in nodes.sources {
        source.resume(checkpoint.positions.get(&name))?;
        let log_path = opts.state_dir.join("nodes").join(&name).join("epochs.log");
        let (log, intents) = crate::checkpoint::IntentLog::open(&log_path, checkpoint.epoch)?;
        if let Some((e, _)) = intents.last() {
            max_intent_epoch = max_intent_epoch.max(*e);
        }
        let (ctl_tx, ctl_rx) = unbounded();
        source_controls.insert(name.clone(), ctl_tx);
        let task = source_task::SourceTask {
            name: name.clone(),
            source,
            outputs: outputs[&name].clone(),
            control: ctl_rx,
            coord: coord_tx.clone(),
            log,
            intents: intents.into(),
            last_emitted: checkpoint.epoch,
            settings: settings.clone(),
            metrics: opts.metrics.clone(),
        };
        handles.push(spawn(&name, move || task.run())?);
    }

    let mut ack_nodes: Vec<String> = Vec::new();
    let mut operators: Vec<(String, Box<dyn Operator>)> = nodes.operators;
    operators.push((
        DEAD_LETTER_NODE.to_owned(),
        Box::new(DeadLetterSink {
            out: PartitionedParquet::new(opts.storage.clone(), "dead-letter", vec![]),
            reasons: reasons.clone(),
            listeners: listeners.clone(),
            pending: Vec::new(),
        }),
    ));
    for (name, op) in operators {
        let (_, rx, n_inputs) = queues
            .remove(&name)
            .expect("queue exists for every operator");
        let task = operator_task::OperatorTask {
            name: name.clone(),
            op,
            input: rx,
            n_inputs,
            outputs: outputs.get(&name).cloned().unwrap_or(Outputs {
                downstream: vec![],
                dead_letter: None,
            }),
            coord: coord_tx.clone(),
            metrics: opts.metrics.clone(),
            latencies: latencies.clone(),
        };
        ack_nodes.push(name.clone());
        handles.push(spawn(&name, move || task.run())?);
    }
    // Only node threads may hold senders now, so queues close when their upstreams finish.
    drop(queues);
    drop(outputs);
    drop(coord_tx);

    let coordinator = coordinator::Coordinator {
        state_dir: opts.state_dir.clone(),
        storage: opts.storage.clone(),
        metrics: opts.metrics.clone(),
        settings,
        sources: source_controls,
        ack_nodes,
        committed: checkpoint.clone(),
        next_epoch: max_intent_epoch + 1,
        replay_upto: max_intent_epoch,
        stop: opts.stop.clone(),
    };
    let outcome = coordinator.run(coord_rx);
    let mut thread_errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => thread_errors.push(e.to_string()),
            Err(_) => thread_errors.push("a node thread panicked".into()),
        }
    }
    let stats = outcome?;
    if !thread_errors.is_empty() {
        return Err(EngineError::Other(format!(
            "pipeline failed: {}",
            thread_errors.join("; ")
        )));
    }
    let dead_letters_by_reason = reasons.lock().map(|r| r.clone()).unwrap_or_default();
    let mut batch_latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    batch_latencies.sort_by(f64::total_cmp);
    Ok(RunSummary {
        dead_letters: stats.rows.get(DEAD_LETTER_NODE).copied().unwrap_or(0),
        published: stats
            .rows
            .into_iter()
            .filter(|(n, _)| n != DEAD_LETTER_NODE)
            .collect(),
        dead_letters_by_reason,
        epochs_committed: stats.epochs,
        last_epoch: stats.last_epoch,
        elapsed: started.elapsed(),
        startup,
        batch_latencies,
        resumed_from_epoch: checkpoint.epoch,
    })
}

fn spawn(
    name: &str,
    f: impl FnOnce() -> Result<(), EngineError> + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<(), EngineError>>, EngineError> {
    std::thread::Builder::new()
        .name(format!("node-{name}"))
        .spawn(f)
        .map_err(|e| EngineError::Other(format!("cannot spawn node thread {name}: {e}")))
}

/// Percentile (0..=100) of sorted values; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
