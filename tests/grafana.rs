//! The Grafana dashboard (`dashboards/grafana/divoc-pipeline.json`) against a real scrape: the
//! certify API pipeline (`config/http.toml`, plus a sign -> qr_payload -> render -> pdf_sink branch
//! so the render series exist) takes valid, invalid and duplicate events over JSON and bulk CSV;
//! once a checkpoint committed, `GET /metrics` is scraped and every series, label and variable the
//! dashboard's queries name must be in it, with the right type for the query (histogram_quantile
//! over `_bucket`, rate over counters, gauges as they are). The dashboard must also have Grafana's
//! import shape. Misspelled copies of the dashboard must fail the same check.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "test-token-0123456789abcdef";
const DS_UID: &str = "${DS_PROMETHEUS}";

fn dashboard_path() -> PathBuf {
    repo().join("dashboards/grafana/divoc-pipeline.json")
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `config/http.toml` with a signing and rendering branch after `dedupe`, written into `dir`
/// (paths absolute, so the copy resolves them as the original does).
fn pipeline_with_render(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("config/http.toml")).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    let config = repo().join("config");
    let catalogue = config.join("vaccines.toml").display().to_string();
    let key = issuer_key(dir).display().to_string();
    let templates = config.display().to_string();
    let table = |pairs: &[(&str, &str)]| {
        toml::Value::Table(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), toml::Value::String(v.to_string())))
                .collect(),
        )
    };
    let nodes = doc.get_mut("nodes").unwrap().as_table_mut().unwrap();
    // Relative paths of the shipped file resolve against config/; keep them so in the copy.
    for (_, node) in nodes.iter_mut() {
        for (option, value) in node.as_table_mut().unwrap().iter_mut() {
            if let toml::Value::String(v) = value {
                let relative = !v.is_empty() && Path::new(v.as_str()).is_relative();
                if ["catalogue", "templates", "key_file", "path"].contains(&option.as_str())
                    && relative
                {
                    *v = config.join(v.as_str()).display().to_string();
                }
            }
        }
    }
    nodes.insert(
        "sign".into(),
        table(&[
            ("kind", "sign"),
            ("key_file", &key),
            ("catalogue", &catalogue),
        ]),
    );
    nodes.insert("qr_payload".into(), table(&[("kind", "qr_payload")]));
    nodes.insert(
        "render".into(),
        table(&[("kind", "render"), ("templates", &templates)]),
    );
    nodes.insert("pdfs".into(), table(&[("kind", "pdf_sink")]));
    let edges = doc.get_mut("edges").unwrap().as_array_mut().unwrap();
    for (from, to) in [
        ("dedupe", "sign"),
        ("sign", "qr_payload"),
        ("qr_payload", "render"),
        ("render", "pdfs"),
    ] {
        edges.push(table(&[("from", from), ("to", to)]));
    }
    let path = dir.join("http-render.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

fn start(dir: &Path, port: u16, metrics_port: u16) -> Server {
    let config = pipeline_with_render(dir).display().to_string();
    let args = with_sets(
        &["run", "--config", &config],
        &[
            format!("storage.url={}", dir.join("out").display()),
            format!("storage.state_dir={}", dir.join("state").display()),
            format!("nodes.ingest.listen=127.0.0.1:{port}"),
            format!("metrics.listen=127.0.0.1:{metrics_port}"),
        ],
    );
    let child = Command::new(bin())
        .args(&args)
        .env("DIVOC_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    for p in [port, metrics_port] {
        let addr: SocketAddr = format!("127.0.0.1:{p}").parse().unwrap();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = server.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("divoc run exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "divoc run did not listen on {p}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    server
}

fn stop(mut s: Server) {
    let pid = s.child.id() as i32;
    // SIGTERM: the pipeline cuts a final epoch, drains and exits 0.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let child = std::mem::replace(&mut s.child, Command::new("true").spawn().unwrap());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "clean exit after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The Prometheus text exposition.

/// One sample line: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

#[derive(Default)]
struct Scrape {
    /// Sample name (with `_bucket`, `_sum`, `_count` as exposed) -> samples.
    samples: BTreeMap<String, Vec<Sample>>,
    /// Family name -> `counter`, `gauge`, `histogram`... from `# TYPE`.
    types: BTreeMap<String, String>,
}

fn parse_exposition(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            s.types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let c: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < c.len() && c[i] != '{' && c[i] != ' ' {
            i += 1;
        }
        let name: String = c[..i].iter().collect();
        let mut labels = BTreeMap::new();
        if c.get(i) == Some(&'{') {
            i += 1;
            while c[i] != '}' {
                let start = i;
                while c[i] != '=' {
                    i += 1;
                }
                let key: String = c[start..i].iter().collect();
                assert_eq!(c[i + 1], '"', "label value quoted: {line}");
                i += 2;
                let mut value = String::new();
                while c[i] != '"' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    value.push(c[i]);
                    i += 1;
                }
                i += 1;
                if c[i] == ',' {
                    i += 1;
                }
                labels.insert(key, value);
            }
            i += 1;
        }
        let rest: String = c[i..].iter().collect();
        let value: f64 = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("sample value: {line}"));
        s.samples.entry(name).or_default().push((labels, value));
    }
    s
}

impl Scrape {
    /// Sum of the samples of `name` whose labels include `want`.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.samples
            .get(name)
            .map(|v| {
                v.iter()
                    .filter(|(l, _)| {
                        want.iter()
                            .all(|(k, x)| l.get(*k).map(String::as_str) == Some(*x))
                    })
                    .map(|(_, v)| v)
                    .sum()
            })
            .unwrap_or(0.0)
    }

    fn label_values(&self, name: &str, label: &str) -> BTreeSet<String> {
        self.samples
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|(l, _)| l.get(label).cloned())
            .collect()
    }

    /// The family kind of an exposed sample name: (`counter` | `gauge` | `histogram`, suffix).
    fn kind(&self, name: &str) -> Option<(String, &'static str)> {
        if let Some(t) = self.types.get(name) {
            return Some((t.clone(), ""));
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(t) = self.types.get(base) {
                    return Some((t.clone(), suffix));
                }
            }
        }
        None
    }
}

fn scrape(addr: SocketAddr) -> (String, Scrape) {
    let (st, body) = http(addr, "GET", "/metrics", None, "text/plain", b"");
    assert_eq!(st, 200, "{body}");
    let parsed = parse_exposition(&body);
    (body, parsed)
}

// ---------------------------------------------------------------------------------------------
// PromQL, as far as the dashboard uses it.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String),
    Str,
    Num,
    Range,
    P(char),
}

fn tokens(expr: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = expr.chars().collect();
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' || ch == '`' {
            i += 1;
            let start = i;
            while i < c.len() && c[i] != ch {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            if i >= c.len() {
                return Err(format!("unterminated string in {expr:?}"));
            }
            // Grafana interpolates variables inside strings too (`{instance=~"$instance"}`).
            let text: String = c[start..i].iter().collect();
            for piece in text.split('$').skip(1) {
                let name: String = piece
                    .trim_start_matches('{')
                    .chars()
                    .take_while(|x| ident(*x))
                    .collect();
                out.push(Tok::Var(name));
            }
            i += 1;
            out.push(Tok::Str);
        } else if ch == '[' {
            // A range like [5m] or [$__rate_interval]: its variable is still checked.
            let start = i;
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
            if i >= c.len() {
                return Err(format!("unterminated range in {expr:?}"));
            }
            let inner: String = c[start + 1..i].iter().collect();
            if let Some(v) = inner.strip_prefix('$') {
                out.push(Tok::Var(
                    v.trim_matches(|x| x == '{' || x == '}').to_owned(),
                ));
            }
            i += 1;
            out.push(Tok::Range);
        } else if ch == '$' {
            i += 1;
            let braced = c.get(i) == Some(&'{');
            if braced {
                i += 1;
            }
            let start = i;
            while i < c.len() && ident(c[i]) {
                i += 1;
            }
            out.push(Tok::Var(c[start..i].iter().collect()));
            if braced {
                if c.get(i) != Some(&'}') {
                    return Err(format!("unterminated ${{ in {expr:?}"));
                }
                i += 1;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num);
        } else if ident(ch) {
            let start = i;
            while i < c.len() && ident(c[i]) {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else {
            out.push(Tok::P(ch));
            i += 1;
        }
    }
    Ok(out)
}

/// What one query refers to.
#[derive(Debug, Default)]
struct Query {
    metrics: BTreeSet<String>,
    /// Label names in matchers and groupings.
    labels: BTreeSet<String>,
    /// Label names of `by (...)` groupings (None: no grouping).
    grouping: Option<BTreeSet<String>>,
    functions: BTreeSet<String>,
    vars: BTreeSet<String>,
}

const AGGREGATIONS: &[&str] = &["sum", "max", "min", "avg", "count", "topk", "bottomk"];
const FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "clamp_min",
    "abs",
];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring"];
/// Labels Prometheus adds to every scraped series (not in the exposition).
const TARGET_LABELS: &[&str] = &["instance", "job"];
/// Grafana's own variables.
const BUILTIN_VARS: &[&str] = &["__rate_interval", "__interval", "__range", "__range_s"];

fn analyse(expr: &str) -> Result<Query, String> {
    let toks = tokens(expr)?;
    let mut q = Query::default();
    let mut braces = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::P('{') => braces += 1,
            Tok::P('}') => braces -= 1,
            Tok::Var(v) => {
                q.vars.insert(v.clone());
            }
            Tok::Ident(id) if braces > 0 => {
                q.labels.insert(id.clone());
            }
            Tok::Ident(id) if GROUPING.contains(&id.as_str()) => {
                if toks.get(i + 1) != Some(&Tok::P('(')) {
                    return Err(format!("`{id}` without a label list in {expr:?}"));
                }
                i += 2;
                let by = q.grouping.get_or_insert_with(BTreeSet::new);
                while let Some(t) = toks.get(i) {
                    match t {
                        Tok::P(')') => break,
                        Tok::P(',') => {}
                        Tok::Ident(l) => {
                            by.insert(l.clone());
                            q.labels.insert(l.clone());
                        }
                        other => return Err(format!("{other:?} in a label list of {expr:?}")),
                    }
                    i += 1;
                }
            }
            Tok::Ident(id) if AGGREGATIONS.contains(&id.as_str()) => {
                q.functions.insert(id.clone());
            }
            Tok::Ident(id) if toks.get(i + 1) == Some(&Tok::P('(')) => {
                if !FUNCTIONS.contains(&id.as_str()) {
                    return Err(format!("unknown function `{id}` in {expr:?}"));
                }
                q.functions.insert(id.clone());
            }
            Tok::Ident(id) if id.starts_with("divoc_") => {
                q.metrics.insert(id.clone());
            }
            Tok::Ident(id) => {
                return Err(format!(
                    "`{id}` is neither a divoc_ series nor a known function in {expr:?}"
                ))
            }
            _ => {}
        }
        i += 1;
    }
    if braces != 0 {
        return Err(format!("unbalanced braces in {expr:?}"));
    }
    Ok(q)
}

/// `{{label}}` names of a legend format.
fn legend_labels(format: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = format;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// Problems of one query against the scrape (`what` names the panel and target).
fn check_query(
    what: &str,
    q: &Query,
    legend: &[String],
    vars: &BTreeSet<String>,
    s: &Scrape,
) -> Vec<String> {
    let mut problems = Vec::new();
    if q.metrics.is_empty() {
        problems.push(format!("{what}: names no divoc_ series"));
    }
    for v in &q.vars {
        if !vars.contains(v) && !BUILTIN_VARS.contains(&v.as_str()) {
            problems.push(format!(
                "{what}: variable ${v} is not defined in templating"
            ));
        }
    }
    let rates = ["rate", "irate", "increase"]
        .iter()
        .any(|f| q.functions.contains(*f));
    let quantile = q.functions.contains("histogram_quantile");
    for m in &q.metrics {
        if !s.samples.contains_key(m) {
            problems.push(format!("{what}: series {m} is not in the /metrics scrape"));
            continue;
        }
        let Some((kind, suffix)) = s.kind(m) else {
            problems.push(format!("{what}: series {m} has no # TYPE in the scrape"));
            continue;
        };
        let fits = if quantile {
            kind == "histogram" && suffix == "_bucket"
        } else if rates {
            kind == "counter" || (kind == "histogram" && !suffix.is_empty())
        } else {
            kind == "gauge"
        };
        if !fits {
            problems.push(format!(
                "{what}: {m} is a {kind}{suffix}, which does not fit {}",
                if quantile {
                    "histogram_quantile (use a histogram's _bucket)"
                } else if rates {
                    "rate/increase (use a counter)"
                } else {
                    "a plain query (counters need rate)"
                }
            ));
        }
    }
    let on_series = |l: &str| {
        TARGET_LABELS.contains(&l)
            || q.metrics.iter().any(|m| {
                s.samples
                    .get(m)
                    .is_some_and(|v| v.iter().any(|(ls, _)| ls.contains_key(l)))
            })
    };
    for l in &q.labels {
        if !on_series(l) {
            problems.push(format!("{what}: label `{l}` is on none of {:?}", q.metrics));
        }
    }
    for l in legend {
        let kept = match &q.grouping {
            Some(by) => by.contains(l),
            None => on_series(l),
        };
        if !kept {
            problems.push(format!(
                "{what}: legend {{{{{l}}}}} is not a label of the result"
            ));
        }
    }
    problems
}

/// Every panel, rows' nested panels included.
fn all_panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

/// Grafana shape and every query against the scrape; returns the problems found.
fn check_dashboard(dash: &Value, s: &Scrape) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |p: String| problems.push(p);

    // Import shape: a Prometheus datasource input, so the dashboard imports into any Grafana.
    let input_ok = dash["__inputs"].as_array().is_some_and(|a| {
        a.iter().any(|i| {
            i["name"] == "DS_PROMETHEUS"
                && i["type"] == "datasource"
                && i["pluginId"] == "prometheus"
        })
    });
    if !input_ok {
        fail("__inputs lacks the DS_PROMETHEUS datasource input".into());
    }
    if dash["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        fail(format!(
            "schemaVersion {} (want 36 or later)",
            dash["schemaVersion"]
        ));
    }
    for key in ["title", "uid"] {
        if dash[key].as_str().is_none_or(str::is_empty) {
            fail(format!("dashboard {key} missing"));
        }
    }
    if dash["uid"].as_str().is_none_or(|u| u.len() > 40) {
        fail("uid longer than Grafana's 40 characters".into());
    }

    // Variables.
    let mut vars = BTreeSet::new();
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        if !vars.insert(name.clone()) {
            fail(format!("variable {name} defined twice"));
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default();
        let what = format!("variable {name}");
        if v["datasource"]["uid"] != DS_UID {
            fail(format!("{what}: datasource is not {DS_UID}"));
        }
        let query = v["query"]
            .as_str()
            .or_else(|| v["query"]["query"].as_str())
            .unwrap_or_default();
        let Some((selector, label)) = query
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
        else {
            fail(format!(
                "{what}: query {query:?} is not label_values(series, label)"
            ));
            continue;
        };
        match analyse(selector) {
            Ok(mut q) => {
                q.labels.insert(label.trim().to_owned());
                for p in check_query(&what, &q, &[], &vars, s) {
                    fail(p);
                }
            }
            Err(e) => fail(format!("{what}: {e}")),
        }
    }

    // Panels.
    let panels = all_panels(dash);
    if panels.is_empty() {
        fail("no panels".into());
    }
    let mut ids = BTreeSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        match p["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => fail(format!("panel id {id} used twice ({title})")),
            None => fail(format!("panel {title:?} has no numeric id")),
        }
        let g = &p["gridPos"];
        let grid: Vec<Option<u64>> = ["h", "w", "x", "y"]
            .iter()
            .map(|k| g[*k].as_u64())
            .collect();
        match grid[..] {
            [Some(h), Some(w), Some(x), Some(_)] if h > 0 && w > 0 && x + w <= 24 => {}
            _ => fail(format!("panel {title:?}: bad gridPos {g}")),
        }
        if p["type"] == "row" {
            continue;
        }
        if title.is_empty() {
            fail(format!("panel {} has no title", p["id"]));
        }
        if !["timeseries", "stat", "gauge", "bargauge", "table"]
            .contains(&p["type"].as_str().unwrap_or_default())
        {
            fail(format!("panel {title:?}: unexpected type {}", p["type"]));
        }
        if p["datasource"]["uid"] != DS_UID || p["datasource"]["type"] != "prometheus" {
            fail(format!(
                "panel {title:?}: datasource is not the {DS_UID} input"
            ));
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            fail(format!("panel {title:?} has no targets"));
        }
        let mut ref_ids = BTreeSet::new();
        for t in &targets {
            let ref_id = t["refId"].as_str().unwrap_or_default();
            if ref_id.is_empty() || !ref_ids.insert(ref_id.to_owned()) {
                fail(format!(
                    "panel {title:?}: refId {ref_id:?} missing or repeated"
                ));
            }
            if t["datasource"]["uid"] != DS_UID {
                fail(format!(
                    "panel {title:?} target {ref_id}: datasource is not {DS_UID}"
                ));
            }
            let what = format!("panel {title:?} target {ref_id}");
            let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) else {
                fail(format!("{what}: no expr"));
                continue;
            };
            let legend = legend_labels(t["legendFormat"].as_str().unwrap_or_default());
            match analyse(expr) {
                Ok(q) => {
                    for p in check_query(&what, &q, &legend, &vars, s) {
                        fail(p);
                    }
                }
                Err(e) => fail(format!("{what}: {e}")),
            }
        }
    }
    problems
}

/// Every series name the dashboard's panel queries use.
fn dashboard_series(dash: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in all_panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(q) = t["expr"].as_str().and_then(|e| analyse(e).ok()) {
                out.extend(q.metrics);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------

fn event(pre: &str, vaccine: &str, date: &str, dose: u32) -> Value {
    serde_json::json!({
        "preEnrollmentCode": pre, "programId": "C19",
        "recipient": {"name": "Asha", "gender": "Female", "dob": "1980-04-01", "age": "42",
                      "identity": "did:in.gov.uidai.aadhaar:2342343334", "contact": ["tel:9880414887"],
                      "address": {"addressLine1": "1 Main Rd", "district": "Pune", "state": "Maharashtra", "pincode": "411001"}},
        "vaccination": {"name": vaccine, "batch": "B1", "manufacturer": "SII", "date": date, "dose": dose, "totalDoses": 2},
        "vaccinator": {"name": "Dr. Rao"},
        "facility": {"name": "PHC", "address": {"addressLine1": "PHC Rd", "district": "Pune", "state": "Maharashtra", "pincode": "411001"}}
    })
}

#[test]
fn every_dashboard_query_names_series_the_pipeline_exports() {
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(dashboard_path()).unwrap())
        .expect("the dashboard is valid JSON");

    let tmp = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let server = start(tmp.path(), port, metrics_port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let json = "application/json";
    let date = "2022-05-01T10:00:00Z";

    // Three valid events, one duplicate, a future date and an unknown vaccine (dead letters).
    let certify = serde_json::json!([
        event("g1", "Covishield", date, 1),
        event("g2", "Covishield", date, 1),
        event("g3", "Covaxin", date, 2),
        event("g4", "Covishield", "2099-01-01T00:00:00Z", 1),
        event("g5", "Snake Oil", date, 1),
    ]);
    let (st, body) = http(
        addr,
        "POST",
        "/divoc/api/v1/certify",
        Some(&format!("Bearer {TOKEN}")),
        json,
        certify.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    let dup = serde_json::json!([event("g1", "Covishield", date, 1)]);
    let (st, body) = http(
        addr,
        "POST",
        "/divoc/api/v3/certify",
        Some(&format!("Bearer {TOKEN}")),
        json,
        dup.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    let csv = "preEnrollmentCode,recipientName,recipientAge,vaccinationName,vaccinationDate,vaccinationDose,vaccinationTotalDoses\n\
               c1,Ravi,40,Covishield,2021-05-01,1,2\n\
               c2,Meena,41,Snake Oil,2021-05-01,1,2\n";
    let (st, body) = http(
        addr,
        "POST",
        "/divoc/api/v1/bulkCertify",
        Some(&format!("Bearer {TOKEN}")),
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(st, 200, "{body}");
    // A refused request and a health probe: more routes and statuses.
    assert_eq!(
        http(addr, "POST", "/divoc/api/v1/certify", None, json, b"[]").0,
        401
    );
    assert_eq!(http(addr, "GET", "/health", None, json, b"").0, 200);
    let accepted_over_http = 5 + 1 + 2;
    let reach_render = 4.0; // g1, g2, g3, c1

    // Wait until the valid events reached both sinks, the dead letters have their reasons and
    // a checkpoint committed (its duration observed with it).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (text, s) = loop {
        let (text, s) = scrape(metrics);
        let ready = s.sum("divoc_records_in_total", &[("node", "pdfs")]) >= reach_render
            && s.sum("divoc_records_in_total", &[("node", "publish")]) >= reach_render
            && s.sum("divoc_checkpoints_total", &[]) >= 1.0
            && s.sum("divoc_last_committed_epoch", &[]) >= 1.0
            && s.sum("divoc_checkpoint_duration_seconds_count", &[])
                == s.sum("divoc_checkpoints_total", &[])
            && s.label_values("divoc_records_rejected_total", "reason")
                .len()
                >= 3;
        if ready {
            break (text, s);
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline never got there; last scrape:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // The scrape itself: the new series carry what they should.
    assert_eq!(
        s.sum("divoc_http_events_accepted_total", &[]),
        accepted_over_http as f64,
        "{text}"
    );
    let reasons = s.label_values("divoc_records_rejected_total", "reason");
    for r in ["future_date", "unknown_vaccine", "duplicate"] {
        assert!(reasons.contains(r), "dead letters by reason {reasons:?}");
    }
    for route in s.label_values("divoc_http_requests_total", "route") {
        assert_eq!(
            s.sum(
                "divoc_http_request_duration_seconds_count",
                &[("route", &route)]
            ),
            s.sum("divoc_http_requests_total", &[("route", &route)]),
            "one latency observation per counted request on {route}"
        );
    }
    assert_eq!(
        s.sum(
            "divoc_http_request_duration_seconds_count",
            &[("route", "/divoc/api/v1/certify")]
        ),
        2.0
    );
    assert_eq!(
        s.kind("divoc_http_request_duration_seconds_bucket"),
        Some(("histogram".into(), "_bucket"))
    );
    assert_eq!(
        s.kind("divoc_checkpoint_duration_seconds_bucket"),
        Some(("histogram".into(), "_bucket"))
    );
    assert!(
        s.sum("divoc_checkpoint_duration_seconds_sum", &[]) > 0.0,
        "{text}"
    );
    assert_eq!(
        s.sum("divoc_render_failures_total", &[("node", "render")]),
        0.0
    );
    stop(server);

    // The dashboard against it.
    let problems = check_dashboard(&dash, &s);
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );
    let used = dashboard_series(&dash);
    for family in [
        "divoc_records_in_total",
        "divoc_records_out_total",
        "divoc_records_rejected_total",
        "divoc_batch_latency_seconds_bucket",
        "divoc_queue_depth",
        "divoc_checkpoints_total",
        "divoc_last_committed_epoch",
        "divoc_checkpoint_duration_seconds_bucket",
        "divoc_http_requests_total",
        "divoc_http_request_duration_seconds_bucket",
        "divoc_http_events_accepted_total",
        "divoc_render_failures_total",
    ] {
        assert!(
            used.contains(family),
            "no panel shows {family}; panels use {used:?}"
        );
    }

    // Negative controls: the same check must flag a misspelled series, a base name for a
    // histogram, a wrong label or legend, a counter without rate, an undefined variable, a
    // repeated panel id and a panel off the datasource input.
    let in_exprs = |from: &str, to: &str| -> Vec<String> {
        let mut v = dash.clone();
        let target = v["panels"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .flat_map(|p| p["targets"].as_array_mut().into_iter().flatten())
            .find(|t| t["expr"].as_str().is_some_and(|e| e.contains(from)))
            .unwrap_or_else(|| panic!("negative control needs {from:?} in an expr"));
        let expr = target["expr"].as_str().unwrap().replacen(from, to, 1);
        target["expr"] = Value::String(expr);
        check_dashboard(&v, &s)
    };
    let expr_cases = [
        (
            "divoc_records_out_total",
            "divoc_records_outt_total",
            "divoc_records_outt_total is not in the /metrics scrape",
        ),
        (
            "divoc_batch_latency_seconds_bucket",
            "divoc_batch_latency_seconds",
            "divoc_batch_latency_seconds is not in the /metrics scrape",
        ),
        (
            "divoc_batch_latency_seconds_bucket",
            "divoc_batch_latency_seconds_count",
            "does not fit histogram_quantile",
        ),
        ("by (reason)", "by (reasons)", "label `reasons`"),
        ("by (reason)", "by (node)", "legend {{reason}}"),
        (
            "rate(divoc_checkpoints_total",
            "abs(divoc_checkpoints_total",
            "counters need rate",
        ),
        (
            "$__rate_interval",
            "$__rate_intervall",
            "variable $__rate_intervall",
        ),
        ("\"$instance\"", "\"$instanse\"", "variable $instanse"),
    ];
    for (from, to, expect) in expr_cases {
        let problems = in_exprs(from, to);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "replacing {from:?} by {to:?} must report {expect:?}; got {problems:#?}"
        );
    }
    let mut twice = dash.clone();
    twice["panels"][2]["id"] = twice["panels"][1]["id"].clone();
    assert!(check_dashboard(&twice, &s)
        .iter()
        .any(|p| p.contains("used twice")));
    let mut off_input = dash.clone();
    off_input["panels"][1]["datasource"]["uid"] = "prometheus".into();
    assert!(check_dashboard(&off_input, &s)
        .iter()
        .any(|p| p.contains("datasource is not")));
    let mut no_input = dash.clone();
    no_input["__inputs"] = serde_json::json!([]);
    assert!(check_dashboard(&no_input, &s)
        .iter()
        .any(|p| p.contains("DS_PROMETHEUS")));
}
