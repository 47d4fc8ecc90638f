//! The DAG runtime: one OS thread per node, bounded channels between nodes (a full queue blocks the
//! sender, so backpressure reaches the source), barrier-aligned epochs, a checkpoint coordinator
//! and the two-phase commit of sinks ([`crate::sink`]).
//!
//! Every source and operator also feeds the dead-letter stream: the sinks declared with
//! [`SinkInput::DeadLetters`] (the binary's default dead-letter sink unless the file declares one),
//! so rejected events are part of the same exactly-once epochs as everything else.

mod coordinator;
mod node_task;
mod source_task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::checkpoint::{load_checkpoint, Checkpoint};
use crate::config::{BuildContext, BuiltNode, Registry, Role, ValidatedPipeline};
use crate::dead_letter::{count_reasons, ListenerHub, ReasonCounts};
use crate::error::EngineError;
use crate::latency::LatencyHistogram;
use crate::metrics::Metrics;
use crate::operator::{EpochOutput, Operator, Source};
use crate::resources::Resources;
use crate::sink::{CommitInfo, Sink, SinkInput};

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
#[derive(Clone, Default)]
pub(crate) struct Outputs {
    pub downstream: Vec<Link>,
    pub dead_letters: Vec<Link>,
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
        let Some(b) = batch.filter(|b| b.num_rows() > 0) else {
            return Ok(());
        };
        if self.dead_letters.is_empty() {
            return Err(EngineError::Other(
                "rows were rejected but the pipeline has no dead-letter sink".into(),
            ));
        }
        for l in &self.dead_letters {
            l.send(Msg::Data(b.clone()))?;
        }
        Ok(())
    }
    fn send_all(&self, make: impl Fn() -> Msg) -> Result<(), EngineError> {
        for l in self.downstream.iter().chain(self.dead_letters.iter()) {
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

/// The coordinator tells each sink that an epoch's checkpoint is stored (phase two).
pub(crate) struct SinkCommit {
    pub checkpoint: Arc<Checkpoint>,
}

/// Figures of one run, for the CLI and the bench.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Rows written by each sink node that consumes edges (dead letters are counted apart).
    pub published: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub dead_letters_by_reason: ReasonCounts,
    pub epochs_committed: u64,
    pub last_epoch: u64,
    /// Processing time, from the moment every node was built.
    pub elapsed: Duration,
    /// Time spent building nodes and opening their state before processing began.
    pub startup: Duration,
    /// Per-batch processing latencies of every operator and sink node (bounded histogram).
    pub batch_latency: LatencyHistogram,
    pub resumed_from_epoch: u64,
}

impl RunSummary {
    /// Accepted rows: what the busiest sink wrote (sinks on parallel branches see the same rows,
    /// so they are not added up).
    pub fn accepted(&self) -> u64 {
        self.published.values().copied().max().unwrap_or(0)
    }
}

/// Everything needed to start a pipeline.
pub struct RunOptions {
    pub state_dir: PathBuf,
    /// What components may look up at build time (e.g. the object store).
    pub resources: Resources,
    pub metrics: Metrics,
    pub runtime: tokio::runtime::Handle,
    /// Set to request a graceful stop (SIGINT/SIGTERM): sources cut a final epoch and drain.
    pub stop: Arc<AtomicBool>,
}

enum Body {
    Operator(Box<dyn Operator>),
    Sink(Box<dyn Sink>),
}

struct Instantiated {
    sources: Vec<(String, Box<dyn Source>)>,
    nodes: Vec<(String, Body)>,
}

fn instantiate(
    plan: &ValidatedPipeline,
    registry: &Registry,
    opts: &RunOptions,
    listeners: &ListenerHub,
) -> Result<Instantiated, EngineError> {
    let mut sources = Vec::new();
    let mut nodes = Vec::new();
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
            resources: &opts.resources,
            metrics: &opts.metrics,
            runtime: opts.runtime.clone(),
            settings: &plan.file.pipeline,
            listeners,
        };
        match entry.build(&spec.options, &ctx)? {
            BuiltNode::Source(s) => sources.push((name.clone(), s)),
            BuiltNode::Operator(o) => nodes.push((name.clone(), Body::Operator(o))),
            BuiltNode::Sink(s) => nodes.push((name.clone(), Body::Sink(s))),
        }
    }
    Ok(Instantiated { sources, nodes })
}

/// Wraps the first dead-letter sink: once an epoch's dead letters are pre-committed (durable),
/// counts them by reason and tells the listeners (e.g. the HTTP source's per-upload status).
struct DeadLetterTap {
    inner: Box<dyn Sink>,
    reasons: Arc<Mutex<ReasonCounts>>,
    listeners: ListenerHub,
    pending: Vec<RecordBatch>,
}

impl Sink for DeadLetterTap {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        self.pending.push(batch.clone());
        self.inner.write(batch)
    }
    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let out = self.inner.pre_commit(epoch)?;
        let pending = std::mem::take(&mut self.pending);
        if let Ok(mut r) = self.reasons.lock() {
            for b in &pending {
                count_reasons(b, &mut r);
            }
        }
        for b in &pending {
            self.listeners.notify(b);
        }
        Ok(out)
    }
    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        self.inner.commit(info)
    }
    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        self.inner.abort(committed)
    }
    fn on_finish(&mut self) -> Result<(), EngineError> {
        self.inner.on_finish()
    }
}

/// Finishes the commit of the last committed epoch (a crash may have come between storing the
/// checkpoint and a sink's commit) and discards what later epochs staged.
fn recover_sink(
    name: &str,
    sink: &mut dyn Sink,
    checkpoint: &Checkpoint,
) -> Result<(), EngineError> {
    if checkpoint.epoch > 0 {
        let empty = EpochOutput::default();
        let info = CommitInfo {
            epoch: checkpoint.epoch,
            written: checkpoint.outputs.get(name).unwrap_or(&empty),
            checkpoint,
        };
        sink.commit(&info)?;
    }
    sink.abort(checkpoint.epoch)
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
    let built = instantiate(plan, registry, &opts, &listeners)?;
    let settings = plan.file.pipeline.clone();
    let dead_letter_sinks = plan.dead_letter_sinks();
    let counted_dead_letters = dead_letter_sinks.first().cloned();

    // One queue per operator and per sink that takes rows; inputs are numbered per receiver.
    let mut queues: BTreeMap<String, (Sender<Envelope>, Receiver<Envelope>, usize)> =
        BTreeMap::new();
    for (name, _) in &built.nodes {
        if plan.roles.get(name) != Some(&(Role::Sink, SinkInput::CommitsOnly)) {
            let (tx, rx) = bounded(settings.channel_capacity);
            queues.insert(name.clone(), (tx, rx, 0));
        }
    }
    let mut link_to = |target: &str| -> Result<Link, EngineError> {
        let q = queues
            .get_mut(target)
            .ok_or_else(|| EngineError::Config(format!("node {target} takes no input")))?;
        let link = Link {
            tx: q.0.clone(),
            input_index: q.2,
        };
        q.2 += 1;
        Ok(link)
    };
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    for name in &plan.order {
        let role = plan.roles.get(name).map(|r| r.0);
        let mut out = Outputs::default();
        for d in plan.downstreams(name) {
            out.downstream.push(link_to(&d)?);
        }
        // Sinks cannot reject rows; everything else may.
        if role != Some(Role::Sink) {
            for d in &dead_letter_sinks {
                out.dead_letters.push(link_to(d)?);
            }
        }
        outputs.insert(name.clone(), out);
    }

    let (coord_tx, coord_rx) = unbounded::<CoordMsg>();
    let reasons = Arc::new(Mutex::new(ReasonCounts::new()));
    let latency = Arc::new(Mutex::new(LatencyHistogram::new()));
    let mut handles = Vec::new();
    let mut source_controls = BTreeMap::new();
    let mut sink_controls = BTreeMap::new();

    let mut max_intent_epoch = checkpoint.epoch;
    let mut source_tasks = Vec::new();
    for (name, mut source) in built.sources {
        source.resume(checkpoint.positions.get(&name))?;
        let log_path = opts.state_dir.join("nodes").join(&name).join("epochs.log");
        let (log, intents) = crate::checkpoint::IntentLog::open(&log_path, checkpoint.epoch)?;
        if let Some((e, _)) = intents.last() {
            max_intent_epoch = max_intent_epoch.max(*e);
        }
        let (ctl_tx, ctl_rx) = unbounded();
        source_controls.insert(name.clone(), ctl_tx);
        source_tasks.push(source_task::SourceTask {
            outputs: outputs.get(&name).cloned().unwrap_or_default(),
            name,
            source,
            control: ctl_rx,
            coord: coord_tx.clone(),
            log,
            intents: intents.into(),
            last_emitted: checkpoint.epoch,
            settings: settings.clone(),
            metrics: opts.metrics.clone(),
        });
    }

    let mut ack_nodes: Vec<String> = Vec::new();
    let mut node_tasks = Vec::new();
    for (name, body) in built.nodes {
        let body = match body {
            Body::Operator(mut op) => {
                op.restore(checkpoint.epoch)?;
                node_task::NodeBody::Operator(op)
            }
            Body::Sink(mut sink) => {
                recover_sink(&name, sink.as_mut(), &checkpoint)?;
                if Some(&name) == counted_dead_letters.as_ref() {
                    sink = Box::new(DeadLetterTap {
                        inner: sink,
                        reasons: reasons.clone(),
                        listeners: listeners.clone(),
                        pending: Vec::new(),
                    });
                }
                let (tx, rx) = unbounded();
                sink_controls.insert(name.clone(), tx);
                node_task::NodeBody::Sink {
                    sink,
                    commits: rx,
                    committed: checkpoint.epoch,
                }
            }
        };
        let (input, n_inputs) = match queues.remove(&name) {
            Some((_, rx, n)) => (Some(rx), n),
            None => (None, 0),
        };
        if input.is_some() {
            ack_nodes.push(name.clone());
        }
        node_tasks.push(node_task::NodeTask {
            outputs: outputs.get(&name).cloned().unwrap_or_default(),
            name,
            body,
            input,
            n_inputs,
            coord: coord_tx.clone(),
            metrics: opts.metrics.clone(),
            latency: latency.clone(),
        });
    }
    // Only node threads may hold senders now, so queues close when their upstreams finish.
    drop(queues);
    drop(outputs);
    drop(coord_tx);
    // Opening state (e.g. replaying a large store's journal) is reported apart from processing.
    let startup = opened.elapsed();
    let started = Instant::now();
    for task in source_tasks {
        let name = task.name.clone();
        handles.push(spawn(&name, move || task.run())?);
    }
    for task in node_tasks {
        let name = task.name.clone();
        handles.push(spawn(&name, move || task.run())?);
    }

    let carried = checkpoint
        .positions
        .iter()
        .filter(|(name, _)| !source_controls.contains_key(*name))
        .map(|(n, p)| (n.clone(), p.clone()))
        .collect();
    let coordinator = coordinator::Coordinator {
        state_dir: opts.state_dir.clone(),
        metrics: opts.metrics.clone(),
        settings,
        sources: source_controls,
        sinks: sink_controls,
        ack_nodes,
        carried,
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
    let batch_latency = latency.lock().map(|l| l.clone()).unwrap_or_default();
    let is_edge_sink = |n: &str| plan.roles.get(n) == Some(&(Role::Sink, SinkInput::Edges));
    Ok(RunSummary {
        dead_letters: counted_dead_letters
            .and_then(|n| stats.rows.get(&n).copied())
            .unwrap_or(0),
        published: stats
            .rows
            .iter()
            .filter(|(n, _)| is_edge_sink(n))
            .map(|(n, r)| (n.clone(), *r))
            .collect(),
        dead_letters_by_reason,
        epochs_committed: stats.epochs,
        last_epoch: stats.last_epoch,
        elapsed: started.elapsed(),
        startup,
        batch_latency,
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
