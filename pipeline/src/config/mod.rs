//! The pipeline file (`config/pipeline.toml`): engine settings, nodes with typed options, edges.
//!
//! Each node kind is a [`Component`]: a typed config struct (unknown keys are errors), the columns
//! it needs and adds, a `check` that validates it without side effects, and a `build` that creates
//! the node. The binary registers every component in one list; `divoc validate-config` runs
//! parsing, graph checks, the column flow check and every `check`, and names the line of the
//! user's file each problem is on.

mod flow;
mod lines;

pub use lines::{apply_overrides, line_of_key};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::columns::Column;
use crate::dead_letter::ListenerHub;
use crate::error::EngineError;
use crate::metrics::Metrics;
use crate::operator::{Operator, Source};
use crate::resources::Resources;
use crate::sink::{Sink, SinkInput};

/// A configuration problem: which file, which key, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// Line of the user's file the key is on (None: not in the file, e.g. from `--set`).
    pub line: Option<usize>,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{line}: `{}`: {}; fix: {}",
                self.file, self.key, self.problem, self.fix
            ),
            None => write!(
                f,
                "{}: `{}`: {}; fix: {}",
                self.file, self.key, self.problem, self.fix
            ),
        }
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
    Sink,
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
    /// What the binary shares with components (e.g. the object store), by type.
    pub resources: &'a Resources,
    /// The one registry: components add their own series with [`Metrics::counter_vec`].
    pub metrics: &'a Metrics,
    pub runtime: tokio::runtime::Handle,
    pub settings: &'a EngineSettings,
    /// Register here to hear about dead letters once they are durable (e.g. per-upload row status).
    pub listeners: &'a ListenerHub,
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
    Sink(Box<dyn Sink>),
}

/// One node kind: a typed, documented config with a validate-then-build step.
pub trait Component: DeserializeOwned + 'static {
    const KIND: &'static str;
    const ROLE: Role;
    /// One-line description for `divoc validate-config --list`.
    const ABOUT: &'static str;
    /// Columns the node needs on its input, with their types.
    fn needs() -> Vec<Column> {
        Vec::new()
    }
    /// Columns the node adds to what passes through it (a source: the columns it emits).
    fn adds() -> Vec<Column> {
        Vec::new()
    }
    /// For sinks: which stream the node consumes.
    fn sink_input(&self) -> SinkInput {
        SinkInput::Edges
    }
    /// Validates options without side effects.
    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue>;
    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError>;
}

/// Object-safe view of a [`Component`] for the registry.
pub trait ComponentEntry: Send + Sync {
    fn kind(&self) -> &'static str;
    fn role(&self) -> Role;
    fn about(&self) -> &'static str;
    fn needs(&self) -> Vec<Column>;
    fn adds(&self) -> Vec<Column>;
    fn sink_input(&self, options: &toml::Table) -> Result<SinkInput, ConfigIssue>;
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
    serde_path_to_error::deserialize(value).map_err(|e| {
        let msg = e.inner().to_string();
        let path = e.path().to_string();
        let key = if path != "." {
            path
        } else {
            msg.split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| "(options)".to_owned())
        };
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
    fn needs(&self) -> Vec<Column> {
        C::needs()
    }
    fn adds(&self) -> Vec<Column> {
        C::adds()
    }
    fn sink_input(&self, options: &toml::Table) -> Result<SinkInput, ConfigIssue> {
        Ok(parse_options::<C>(options)?.sink_input())
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

/// The registry: every component kind the binary knows, and the nodes every pipeline gets unless
/// its file declares a node of that kind itself (the dead-letter sink, checkpoint manifests).
pub struct Registry {
    entries: Vec<Box<dyn ComponentEntry>>,
    defaults: Vec<(&'static str, &'static str)>,
}

impl Registry {
    pub fn new(entries: Vec<Box<dyn ComponentEntry>>) -> Self {
        Self {
            entries,
            defaults: Vec::new(),
        }
    }
    /// Adds node `name` of `kind` (default options) to every pipeline whose file declares no node
    /// of that kind.
    pub fn with_default_node(mut self, name: &'static str, kind: &'static str) -> Self {
        self.defaults.push((name, kind));
        self
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
    /// Node names, sources first, each after all its upstreams (default nodes included).
    pub order: Vec<String>,
    /// Each node's role and, for sinks, the stream it consumes.
    pub roles: BTreeMap<String, (Role, SinkInput)>,
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
    /// The sinks that consume the dead-letter stream.
    pub fn dead_letter_sinks(&self) -> Vec<String> {
        self.nodes_with(SinkInput::DeadLetters)
    }
    /// The sinks that take part in the commit phase only.
    pub fn commit_only_sinks(&self) -> Vec<String> {
        self.nodes_with(SinkInput::CommitsOnly)
    }
    fn nodes_with(&self, input: SinkInput) -> Vec<String> {
        self.order
            .iter()
            .filter(|n| self.roles.get(*n) == Some(&(Role::Sink, input)))
            .cloned()
            .collect()
    }
}

/// Reads a pipeline file, applies `--set` overrides and validates it. Errors name the file, the
/// line the key is on, the key, the problem and the fix.
pub fn load_pipeline(
    path: &Path,
    overrides: &[String],
    registry: &Registry,
) -> Result<ValidatedPipeline, ConfigError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file_name.clone(),
        line: None,
        key: "(file)".into(),
        problem: format!("cannot read: {e}"),
        fix: "pass an existing pipeline file with --config".into(),
    })?;
    let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_pipeline(&text, overrides, &file_name, &config_dir, registry)
}

/// Validates pipeline text with overrides; `file_name` and `config_dir` are used for messages
/// and relative paths.
pub fn parse_pipeline(
    text: &str,
    overrides: &[String],
    file_name: &str,
    config_dir: &Path,
    registry: &Registry,
) -> Result<ValidatedPipeline, ConfigError> {
    let err = |key: &str, problem: String, fix: &str| ConfigError {
        file: file_name.to_owned(),
        line: line_of_key(text, key),
        key: key.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
        file: file_name.to_owned(),
        line: e.span().map(|s| lines::line_at(text, s.start)),
        key: "(syntax)".into(),
        problem: e.message().trim().to_owned(),
        fix: "fix the TOML syntax; see config/pipeline.toml for a valid example".into(),
    })?;
    apply_overrides(&mut doc, overrides).map_err(|p| ConfigError {
        file: file_name.to_owned(),
        line: None,
        key: "--set".into(),
        problem: p,
        fix: "write each override as --set key.path=value".into(),
    })?;
    let file: PipelineFile = serde_path_to_error::deserialize(toml::Value::Table(doc))
        .map_err(|e| {
            let key = e.path().to_string();
            err(
                &key,
                e.inner().to_string().trim().replace('\n', " "),
                "fix the key's spelling or type, or remove the unknown key; see config/pipeline.toml for a valid example",
            )
        })?;
    validate(file, file_name, config_dir, registry, &err)
}

fn validate(
    mut file: PipelineFile,
    file_name: &str,
    config_dir: &Path,
    registry: &Registry,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<ValidatedPipeline, ConfigError> {
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
    check_storage_url(&file.storage.url).map_err(|p| {
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
    let mut roles: BTreeMap<String, (Role, SinkInput)> = BTreeMap::new();
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
        let input = entry
            .sink_input(&spec.options)
            .map_err(|i| err(&format!("nodes.{name}.{}", i.key), i.problem, &i.fix))?;
        if entry.role() == Role::Source {
            sources.insert(name.clone());
        }
        roles.insert(name.clone(), (entry.role(), input));
    }
    // Default nodes (the dead-letter sink, manifests) unless the file has one of that stream.
    for (name, kind) in &registry.defaults {
        let entry = registry.get(kind).ok_or_else(|| {
            err(
                "nodes",
                format!("default node kind {kind:?} is not registered"),
                "register it in the binary's registry",
            )
        })?;
        let options = toml::Table::new();
        let input = entry
            .sink_input(&options)
            .map_err(|i| err(&format!("nodes.{name}.{}", i.key), i.problem, &i.fix))?;
        if file.nodes.values().any(|n| n.kind == *kind) {
            continue;
        }
        if file.nodes.contains_key(*name) {
            return Err(err(
                &format!("nodes.{name}"),
                format!("{name:?} is the name of the default {kind} node"),
                &format!("rename the node, or declare it with kind = \"{kind}\""),
            ));
        }
        entry
            .check(&options, &ctx)
            .map_err(|i| err(&format!("nodes.{name}.{}", i.key), i.problem, &i.fix))?;
        roles.insert((*name).to_owned(), (entry.role(), input));
        file.nodes.insert(
            (*name).to_owned(),
            NodeSpec {
                kind: (*kind).to_owned(),
                options,
            },
        );
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
        if let Some((Role::Sink, _)) = roles.get(&e.from) {
            return Err(err(
                &format!("edges[{i}].from"),
                format!("{:?} is a sink: rows leave the pipeline there", e.from),
                "start the edge at the operator before the sink",
            ));
        }
        if let Some((Role::Sink, input)) = roles.get(&e.to) {
            if *input != SinkInput::Edges {
                return Err(err(
                    &format!("edges[{i}].to"),
                    format!(
                        "{:?} consumes the {} and takes no edges",
                        e.to,
                        if *input == SinkInput::DeadLetters {
                            "dead-letter stream"
                        } else {
                            "commit phase only"
                        }
                    ),
                    "remove the edge",
                ));
            }
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
        let fed_by_engine = matches!(
            roles.get(name),
            Some((Role::Sink, SinkInput::DeadLetters | SinkInput::CommitsOnly))
        );
        if !sources.contains(name) && !has_in && !fed_by_engine {
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
    // Sources first; the sinks the engine feeds (dead letters, commits) last.
    order.sort_by_key(|n| match roles.get(n) {
        Some((Role::Source, _)) => 0,
        Some((Role::Sink, SinkInput::DeadLetters | SinkInput::CommitsOnly)) => 2,
        _ => 1,
    });
    let flow_nodes: Vec<flow::FlowNode<'_>> = order
        .iter()
        .map(|n| {
            let spec = &file.nodes[n];
            let entry = registry.get(&spec.kind).expect("kinds were checked");
            let (role, input) = roles[n];
            flow::FlowNode {
                name: n,
                kind: &spec.kind,
                role,
                input,
                needs: entry.needs(),
                adds: entry.adds(),
            }
        })
        .collect();
    let upstreams = |node: &str| -> Vec<String> {
        file.edges
            .iter()
            .filter(|e| e.to == node)
            .map(|e| e.from.clone())
            .collect()
    };
    flow::check_flow(&flow_nodes, upstreams, registry)
        .map_err(|(node, problem, fix)| err(&format!("nodes.{node}"), problem, &fix))?;
    drop(flow_nodes);
    Ok(ValidatedPipeline {
        file,
        config_dir: config_dir.to_path_buf(),
        path: file_name.to_owned(),
        order,
        roles,
    })
}

/// Checks a storage URL's form (the binary opens it): a local path or a known scheme.
pub fn check_storage_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("storage URL is empty".into());
    }
    match url.split_once("://") {
        None => Ok(()),
        Some(("file" | "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss", _)) => Ok(()),
        Some((other, _)) => Err(format!("unsupported storage scheme {other:?}")),
    }
}
