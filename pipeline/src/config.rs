//! The pipeline file (`config/pipeline.toml`): engine settings, nodes with typed options, edges.
//!
//! Each node kind is a [`Component`]: a typed config struct (unknown keys are errors), a `check` that
//! validates it without side effects, and a `build` that creates the node. The binary registers every
//! component in one list; `divoc validate-config` runs parsing, graph checks and every `check`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::{Operator, Source};
use crate::storage::Storage;

/// A configuration problem: which file, which key, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}`: {}; fix: {}",
            self.file, self.key, self.problem, self.fix
        )
    }
}

impl std::error::Error for ConfigError {}

/// A problem found by a component's `check`, before the file name is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    /// Key inside the node's table, e.g. `catalogue`.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigIssue {
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Engine-wide settings (`[pipeline]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Rows per batch read from a source.
    pub batch_size: usize,
    /// How long a source waits for more input before emitting a partial batch.
    pub linger_ms: u64,
    /// Batches buffered on each node's input; a full queue blocks the sender (backpressure).
    pub channel_capacity: usize,
    /// Checkpoint (epoch) every this many milliseconds...
    pub checkpoint_interval_ms: u64,
    /// ...or after this many records from one source, whichever comes first.
    pub checkpoint_max_records: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            batch_size: 8192,
            linger_ms: 20,
            channel_capacity: 4,
            checkpoint_interval_ms: 2000,
            checkpoint_max_records: 100_000,
        }
    }
}

/// Where output and local state live (`[storage]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Object store root for published data: a local path, `file://`, `s3://`, `gs://` or `az://` URL.
    pub url: String,
    /// Local directory for durable engine state (dedupe store, write-ahead logs, checkpoints).
    pub state_dir: PathBuf,
    /// Extra object-store options (e.g. `aws_endpoint`, `aws_allow_http`), passed to `object_store`.
    pub options: BTreeMap<String, String>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            url: "./data/out".into(),
            state_dir: "./data/state".into(),
            options: BTreeMap::new(),
        }
    }
}

/// `[metrics]`: where `/metrics` is served. Absent: not served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeSpec {
    pub kind: String,
    #[serde(flatten)]
    pub options: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    #[serde(default)]
    pub pipeline: EngineSettings,
    #[serde(default)]
    pub storage: StorageSettings,
    pub metrics: Option<MetricsSettings>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeSpec>,
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
}

/// The role a component plays in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Operator,
}

/// What `check` may look at: nothing is opened or created.
pub struct CheckContext<'a> {
    /// Directory of the pipeline file; relative paths in options resolve against it.
    pub config_dir: &'a Path,
}

impl CheckContext<'_> {
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.config_dir.join(p)
        }
    }
}

/// What `build` gets: shared storage, a private state directory, metrics and the I/O runtime.
pub struct BuildContext<'a> {
    pub node: &'a str,
    pub config_dir: &'a Path,
    /// `<state_dir>/nodes/<node>`; created before `build`.
    pub state_dir: PathBuf,
    pub storage: &'a Storage,
    pub metrics: &'a Metrics,
    pub runtime: tokio::runtime::Handle,
    pub settings: &'a EngineSettings,
    /// Register here to hear about dead letters once they are durable (e.g. per-upload row status).
    pub listeners: &'a crate::operator::ListenerHub,
}

impl BuildContext<'_> {
    pub fn resolve(&self, p: &Path) -> PathBuf {
        CheckContext {
            config_dir: self.config_dir,
        }
        .resolve(p)
    }
}

pub enum BuiltNode {
    Source(Box<dyn Source>),
    Operator(Box<dyn Operator>),
}

/// One node kind: a typed, documented config with a validate-then-build step.
pub trait Component: DeserializeOwned + 'static {
    const KIND: &'static str;
    const ROLE: Role;
    /// One-line description for `divoc validate-config --list`.
    const ABOUT: &'static str;
    /// Validates options without side effects.
    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue>;
    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError>;
}

/// Object-safe view of a [`Component`] for the registry.
pub trait ComponentEntry: Send + Sync {
    fn kind(&self) -> &'static str;
    fn role(&self) -> Role;
    fn about(&self) -> &'static str;
    fn check(&self, options: &toml::Table, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue>;
    fn build(
        &self,
        options: &toml::Table,
        ctx: &BuildContext<'_>,
    ) -> Result<BuiltNode, EngineError>;
}

struct Entry<C>(std::marker::PhantomData<fn() -> C>);

fn parse_options<C: DeserializeOwned>(options: &toml::Table) -> Result<C, ConfigIssue> {
    let value = toml::Value::Table(options.clone());
    C::deserialize(value).map_err(|e| {
        let msg = e.to_string();
        let key = msg
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "(options)".to_owned());
        ConfigIssue::new(
            key,
            msg.trim().replace('\n', " "),
            "check the key's spelling and type against the component's documented options",
        )
    })
}

impl<C: Component> ComponentEntry for Entry<C> {
    fn kind(&self) -> &'static str {
        C::KIND
    }
    fn role(&self) -> Role {
        C::ROLE
    }
    fn about(&self) -> &'static str {
        C::ABOUT
    }
    fn check(&self, options: &toml::Table, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        parse_options::<C>(options)?.check(ctx)
    }
    fn build(
        &self,
        options: &toml::Table,
        ctx: &BuildContext<'_>,
    ) -> Result<BuiltNode, EngineError> {
        let config = parse_options::<C>(options)
            .map_err(|i| EngineError::Config(format!("{}: {}", i.key, i.problem)))?;
        config.build(ctx)
    }
}

/// Wraps a component type for the registry list.
pub fn entry<C: Component>() -> Box<dyn ComponentEntry> {
    Box::new(Entry::<C>(std::marker::PhantomData))
}

/// The registry: every component kind the binary knows.
pub struct Registry {
    entries: Vec<Box<dyn ComponentEntry>>,
}

impl Registry {
    pub fn new(entries: Vec<Box<dyn ComponentEntry>>) -> Self {
        Self { entries }
    }
    pub fn get(&self, kind: &str) -> Option<&dyn ComponentEntry> {
        self.entries
            .iter()
            .find(|e| e.kind() == kind)
            .map(|e| e.as_ref())
    }
    pub fn kinds(&self) -> impl Iterator<Item = &dyn ComponentEntry> {
        self.entries.iter().map(|e| e.as_ref())
    }
}

/// A pipeline file that passed every check, in topological order.
#[derive(Debug, Clone)]
pub struct ValidatedPipeline {
    pub file: PipelineFile,
    pub config_dir: PathBuf,
    pub path: String,
    /// Node names, sources first, each after all its upstreams.
    pub order: Vec<String>,
}

impl ValidatedPipeline {
    pub fn upstreams(&self, node: &str) -> Vec<String> {
        self.file
            .edges
            .iter()
            .filter(|e| e.to == node)
            .map(|e| e.from.clone())
            .collect()
    }
    pub fn downstreams(&self, node: &str) -> Vec<String> {
        self.file
            .edges
            .iter()
            .filter(|e| e.from == node)
            .map(|e| e.to.clone())
            .collect()
    }
}

/// Reads and validates a pipeline file: syntax, unknown keys, kinds, edges, cycles and every node's options.
pub fn load_pipeline(path: &Path, registry: &Registry) -> Result<ValidatedPipeline, ConfigError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file_name.clone(),
        key: "(file)".into(),
        problem: format!("cannot read: {e}"),
        fix: "pass an existing pipeline file with --config".into(),
    })?;
    let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_pipeline(&text, &file_name, &config_dir, registry)
}

/// Validates pipeline text; `file_name` and `config_dir` are used for messages and relative paths.
pub fn parse_pipeline(
    text: &str,
    file_name: &str,
    config_dir: &Path,
    registry: &Registry,
) -> Result<ValidatedPipeline, ConfigError> {
    let err = |key: &str, problem: String, fix: &str| ConfigError {
        file: file_name.to_owned(),
        key: key.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let file: PipelineFile = toml::from_str(text).map_err(|e| {
        let key = e
            .message()
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "(syntax)".into());
        let line = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start.min(text.len())].lines().count().max(1)))
            .unwrap_or_default();
        err(
            &key,
            format!("{}{line}", e.message().trim()),
            "fix the TOML syntax or remove the unknown key; see config/pipeline.toml for a valid example",
        )
    })?;

    let s = &file.pipeline;
    if s.batch_size == 0 || s.batch_size > 1_000_000 {
        return Err(err(
            "pipeline.batch_size",
            format!("{} is out of range", s.batch_size),
            "use 1..=1000000 (8192 is a good default)",
        ));
    }
    if s.channel_capacity == 0 {
        return Err(err(
            "pipeline.channel_capacity",
            "must be at least 1".into(),
            "use a small number such as 4",
        ));
    }
    if s.checkpoint_interval_ms == 0 || s.checkpoint_max_records == 0 {
        return Err(err(
            "pipeline.checkpoint_interval_ms",
            "checkpoint interval and max records must be positive".into(),
            "use e.g. checkpoint_interval_ms = 2000 and checkpoint_max_records = 250000",
        ));
    }
    crate::storage::check_url(&file.storage.url).map_err(|p| {
        err(
            "storage.url",
            p,
            "use a local path or an s3://, gs://, az:// or file:// URL",
        )
    })?;
    if file.nodes.is_empty() {
        return Err(err(
            "nodes",
            "no nodes declared".into(),
            "declare at least a source and a sink under [nodes.<name>]",
        ));
    }

    let ctx = CheckContext { config_dir };
    let mut sources = BTreeSet::new();
    for (name, spec) in &file.nodes {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(
                &format!("nodes.{name}"),
                "node names may hold only ASCII letters, digits, '_' and '-'".into(),
                "rename the node",
            ));
        }
        let Some(entry) = registry.get(&spec.kind) else {
            let known: Vec<_> = registry.kinds().map(|k| k.kind()).collect();
            return Err(err(
                &format!("nodes.{name}.kind"),
                format!("unknown operator kind {:?}", spec.kind),
                &format!("use one of: {}", known.join(", ")),
            ));
        };
        entry
            .check(&spec.options, &ctx)
            .map_err(|i| err(&format!("nodes.{name}.{}", i.key), i.problem, &i.fix))?;
        if entry.role() == Role::Source {
            sources.insert(name.clone());
        }
    }
    if sources.is_empty() {
        return Err(err(
            "nodes",
            "no source node".into(),
            "add a node of kind file_source or http_source",
        ));
    }
    let mut seen_edges = BTreeSet::new();
    for (i, e) in file.edges.iter().enumerate() {
        for (end, name) in [("from", &e.from), ("to", &e.to)] {
            if !file.nodes.contains_key(name) {
                return Err(err(
                    &format!("edges[{i}].{end}"),
                    format!("edge refers to undeclared node {name:?} (dangling edge)"),
                    "declare the node under [nodes.<name>] or fix the edge",
                ));
            }
        }
        if sources.contains(&e.to) {
            return Err(err(
                &format!("edges[{i}].to"),
                format!("{:?} is a source and cannot have inputs", e.to),
                "point the edge at an operator",
            ));
        }
        if !seen_edges.insert((e.from.clone(), e.to.clone())) {
            return Err(err(
                &format!("edges[{i}]"),
                "duplicate edge".into(),
                "remove the repeated edge",
            ));
        }
    }
    for name in file.nodes.keys() {
        let has_in = file.edges.iter().any(|e| &e.to == name);
        if !sources.contains(name) && !has_in {
            return Err(err(
                &format!("nodes.{name}"),
                "operator has no input edge".into(),
                "connect it with [[edges]] from = \"...\", to = \"...\"",
            ));
        }
    }
    // Kahn's algorithm: whatever is left over sits on a cycle.
    let mut indegree: BTreeMap<&str, usize> = file.nodes.keys().map(|n| (n.as_str(), 0)).collect();
    for e in &file.edges {
        *indegree.entry(e.to.as_str()).or_default() += 1;
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::new();
    while let Some(n) = ready.pop() {
        order.push(n.to_owned());
        for e in file.edges.iter().filter(|e| e.from == n) {
            let d = indegree
                .get_mut(e.to.as_str())
                .expect("edge targets were checked");
            *d -= 1;
            if *d == 0 {
                ready.push(e.to.as_str());
            }
        }
    }
    if order.len() != file.nodes.len() {
        let cyclic: Vec<_> = file
            .nodes
            .keys()
            .filter(|n| !order.contains(n))
            .cloned()
            .collect();
        return Err(err(
            "edges",
            format!("the graph has a cycle through {cyclic:?}"),
            "remove an edge so data flows one way from sources to sinks",
        ));
    }
    Ok(ValidatedPipeline {
        file,
        config_dir: config_dir.to_path_buf(),
        path: file_name.to_owned(),
        order,
    })
}
