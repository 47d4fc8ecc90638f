//! The engine's side of the Sink contract, with in-memory components: every epoch is
//! pre-committed before the checkpoint is stored and committed after it, in order; a restart
//! re-runs the last commit and aborts later epochs; the dead-letter stream reaches every
//! dead-letter sink; a commits-only sink sees each checkpoint and no rows.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use arrow::array::{AsArray, Int64Array, StringArray, TimestampMillisecondArray, UInt64Array};
use arrow::datatypes::{Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use divoc_pipeline::checkpoint::load_checkpoint;
use divoc_pipeline::columns::{envelope, Column, ColumnType};
use divoc_pipeline::config::{
    entry, parse_pipeline, BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Registry,
    Role,
};
use divoc_pipeline::dead_letter::{Reason, Rejections};
use divoc_pipeline::metrics::Metrics;
use divoc_pipeline::operator::{EpochOutput, Operator, Processed, Source, SourcePoll};
use divoc_pipeline::resources::Resources;
use divoc_pipeline::runtime::{run_pipeline, RunOptions};
use divoc_pipeline::sink::{CommitInfo, Sink, SinkInput};
use divoc_pipeline::EngineError;
use serde::Deserialize;

const VALUE: Column = Column::required("value", ColumnType::Int64);

/// What the sinks saw, in order, shared with the test through a resource.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Emits `count` rows with values 0..count, `per_poll` at a time; the position is the next value.
#[derive(Deserialize)]
struct CountConfig {
    count: i64,
    per_poll: i64,
}

struct Count {
    next: i64,
    cfg: CountConfig,
}

impl Component for CountConfig {
    const KIND: &'static str = "count";
    const ROLE: Role = Role::Source;
    const ABOUT: &'static str = "test source";
    fn adds() -> Vec<Column> {
        let mut c = envelope::ALL.to_vec();
        c.push(VALUE);
        c
    }
    fn check(&self, _: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        Ok(())
    }
    fn build(self, _: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Source(Box::new(Count { next: 0, cfg: self })))
    }
}

impl Source for Count {
    fn resume(&mut self, position: Option<&serde_json::Value>) -> Result<(), EngineError> {
        self.next = position.and_then(|p| p.as_i64()).unwrap_or(0);
        Ok(())
    }
    fn poll(&mut self, max: usize) -> Result<SourcePoll, EngineError> {
        if self.next >= self.cfg.count {
            return Ok(SourcePoll::Finished);
        }
        let end = (self.next + self.cfg.per_poll.min(max as i64)).min(self.cfg.count);
        let values: Vec<i64> = (self.next..end).collect();
        let n = values.len();
        let mut fields: Vec<_> = envelope::ALL.iter().map(Column::field).collect();
        fields.push(VALUE.field());
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                Arc::new(StringArray::from(vec!["t"; n])),
                Arc::new(StringArray::from(vec!["test"; n])),
                Arc::new(TimestampMillisecondArray::from(vec![0; n]).with_timezone("+00:00")),
                Arc::new(StringArray::from(vec!["mem"; n])),
                Arc::new(UInt64Array::from_iter_values(
                    values.iter().map(|v| *v as u64),
                )),
                Arc::new(StringArray::from(vec!["{}"; n])),
                Arc::new(Int64Array::from(values)),
            ],
        )?;
        self.next = end;
        Ok(SourcePoll::Batch {
            events: Some(batch),
            dead_letters: None,
            records: n as u64,
        })
    }
    fn position(&self) -> serde_json::Value {
        serde_json::json!(self.next)
    }
}

/// Dead-letters odd values.
#[derive(Deserialize)]
struct EvensConfig {}

impl Component for EvensConfig {
    const KIND: &'static str = "evens";
    const ROLE: Role = Role::Operator;
    const ABOUT: &'static str = "test operator";
    fn needs() -> Vec<Column> {
        vec![VALUE]
    }
    fn check(&self, _: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        Ok(())
    }
    fn build(self, _: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Operator(Box::new(Evens)))
    }
}

struct Evens;

impl Operator for Evens {
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError> {
        let values = batch
            .column_by_name("value")
            .unwrap()
            .as_primitive::<Int64Type>();
        let keep: Vec<bool> = values.iter().map(|v| v.unwrap_or(1) % 2 == 0).collect();
        let mut rejections = Rejections::default();
        for (i, k) in keep.iter().enumerate() {
            if !k {
                rejections.push(i, Reason::new("odd", "odd values are refused"));
            }
        }
        let output =
            arrow::compute::filter_record_batch(&batch, &arrow::array::BooleanArray::from(keep))?;
        let dead_letters = if rejections.is_empty() {
            None
        } else {
            Some(rejections.into_dead_letters(&batch, stage)?)
        };
        Ok(Processed {
            output,
            dead_letters,
        })
    }
}

/// Records every call; checks at commit time that the checkpoint is already stored.
#[derive(Deserialize)]
struct RecordConfig {
    #[serde(default)]
    stream: String,
}

struct Record {
    name: String,
    journal: Journal,
    state_dir: std::path::PathBuf,
    rows: u64,
}

impl Component for RecordConfig {
    const KIND: &'static str = "record";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str = "test sink";
    fn sink_input(&self) -> SinkInput {
        match self.stream.as_str() {
            "dead_letters" => SinkInput::DeadLetters,
            "commits" => SinkInput::CommitsOnly,
            _ => SinkInput::Edges,
        }
    }
    fn check(&self, _: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        Ok(())
    }
    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Sink(Box::new(Record {
            name: ctx.node.to_owned(),
            journal: ctx.resources.get::<Journal>()?.clone(),
            // <state>/nodes/<node>
            state_dir: ctx
                .state_dir
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf(),
            rows: 0,
        })))
    }
}

impl Sink for Record {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let stored = load_checkpoint(&self.state_dir)?.map_or(0, |c| c.epoch);
        assert!(
            stored < epoch,
            "{}: epoch {epoch} was stored before its pre-commit",
            self.name
        );
        self.journal.push(format!(
            "{} pre_commit {epoch} rows {}",
            self.name, self.rows
        ));
        Ok(EpochOutput {
            objects: vec![],
            rows: std::mem::take(&mut self.rows),
        })
    }
    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        let stored = load_checkpoint(&self.state_dir)?.map_or(0, |c| c.epoch);
        assert!(
            stored >= info.epoch,
            "{}: commit {} before its checkpoint",
            self.name,
            info.epoch
        );
        assert_eq!(info.checkpoint.epoch, info.epoch);
        self.journal.push(format!(
            "{} commit {} rows {}",
            self.name, info.epoch, info.written.rows
        ));
        Ok(())
    }
    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        self.journal
            .push(format!("{} abort after {committed}", self.name));
        Ok(())
    }
}

const PIPELINE: &str = r#"
[pipeline]
batch_size = 100
checkpoint_max_records = 250
checkpoint_interval_ms = 60000

[nodes.src]
kind = "count"
count = 1000
per_poll = 100

[nodes.evens]
kind = "evens"

[nodes.out]
kind = "record"

[nodes.rejects]
kind = "record"
stream = "dead_letters"

[nodes.manifest]
kind = "record"
stream = "commits"

[[edges]]
from = "src"
to = "evens"

[[edges]]
from = "evens"
to = "out"
"#;

fn registry() -> Registry {
    Registry::new(vec![
        entry::<CountConfig>(),
        entry::<EvensConfig>(),
        entry::<RecordConfig>(),
    ])
}

fn run(state: &std::path::Path, journal: &Journal) -> divoc_pipeline::runtime::RunSummary {
    let plan = parse_pipeline(PIPELINE, &[], "test.toml", state, &registry()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut resources = Resources::new();
    resources.insert(journal.clone());
    run_pipeline(
        &plan,
        &registry(),
        RunOptions {
            state_dir: state.to_path_buf(),
            resources,
            metrics: Metrics::new(),
            runtime: rt.handle().clone(),
            stop: Arc::new(AtomicBool::new(false)),
        },
    )
    .unwrap()
}

fn calls<'a>(log: &'a [String], node: &str, what: &str) -> Vec<&'a String> {
    log.iter()
        .filter(|l| l.starts_with(&format!("{node} {what}")))
        .collect()
}

#[test]
fn pre_commit_then_checkpoint_then_commit_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let summary = run(dir.path(), &journal);
    let log = journal.take();
    assert_eq!(summary.published["out"], 500);
    assert_eq!(
        summary.dead_letters, 500,
        "odd values reach the dead-letter sink"
    );
    assert_eq!(summary.dead_letters_by_reason["odd"], 500);
    let last = summary.last_epoch;
    assert!(
        last >= 2,
        "a checkpoint is requested every 250 records: {last} epochs"
    );
    for node in ["out", "rejects", "manifest"] {
        let commits: Vec<u64> = calls(&log, node, "commit")
            .iter()
            .map(|l| l.split(' ').nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            commits,
            (1..=last).collect::<Vec<_>>(),
            "{node} commits every epoch once, in order"
        );
        for e in 1..=last {
            let pre = log
                .iter()
                .position(|l| l.starts_with(&format!("{node} pre_commit {e} ")));
            let com = log
                .iter()
                .position(|l| l.starts_with(&format!("{node} commit {e} ")));
            if node == "manifest" {
                assert!(
                    pre.is_none(),
                    "a commits-only sink is never asked to pre-commit"
                );
            } else {
                assert!(
                    pre.unwrap() < com.unwrap(),
                    "{node}: pre_commit {e} before commit {e}"
                );
            }
        }
    }
    let rows = |node: &str| -> u64 {
        calls(&log, node, "commit")
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(rows("out"), 500, "commit is told what pre_commit wrote");
    assert_eq!(rows("rejects"), 500);
    assert!(calls(&log, "out", "abort")
        .iter()
        .any(|l| l.ends_with("after 0")));

    // Restart: the last commit runs again (a crash may have come before it), later epochs are
    // aborted, and nothing new is written.
    let first_run = log;
    let summary = run(dir.path(), &journal);
    let log = journal.take();
    for node in ["out", "rejects", "manifest"] {
        let first: Vec<&String> = log.iter().filter(|l| l.starts_with(node)).take(2).collect();
        assert_eq!(
            first,
            [
                &format!(
                    "{node} commit {last} rows {}",
                    rows_in(&first_run, node, last)
                ),
                &format!("{node} abort after {last}")
            ],
            "{node} on restart"
        );
    }
    assert_eq!(summary.published.get("out").copied().unwrap_or(0), 0);
}

/// The rows the restart's re-commit of `epoch` reports for `node` (from the stored checkpoint).
fn rows_in(log: &[String], node: &str, epoch: u64) -> u64 {
    log.iter()
        .find_map(|l| l.strip_prefix(&format!("{node} commit {epoch} rows ")))
        .map(|r| r.parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn every_dead_letter_sink_gets_the_whole_stream() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    let text =
        format!("{PIPELINE}\n[nodes.more_rejects]\nkind = \"record\"\nstream = \"dead_letters\"\n");
    let plan = parse_pipeline(&text, &[], "test.toml", dir.path(), &registry()).unwrap();
    let mut sinks = plan.dead_letter_sinks();
    sinks.sort();
    assert_eq!(sinks, ["more_rejects", "rejects"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut resources = Resources::new();
    resources.insert(journal.clone());
    let summary = run_pipeline(
        &plan,
        &registry(),
        RunOptions {
            state_dir: dir.path().to_path_buf(),
            resources,
            metrics: Metrics::new(),
            runtime: rt.handle().clone(),
            stop: Arc::new(AtomicBool::new(false)),
        },
    )
    .unwrap();
    let log = journal.take();
    let total = |node: &str| -> u64 {
        log.iter()
            .filter_map(|l| l.strip_prefix(&format!("{node} commit ")))
            .map(|r| r.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(total("rejects"), 500);
    assert_eq!(total("more_rejects"), 500);
    assert_eq!(summary.published["out"], 500);
}
