//! `divoc sql`: queries over the published data with DataFusion, one-shot or as a shell.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use divoc_analytics::{Access, Limits, QueryResult, SqlEngine};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context as LineContext, Helper};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}

pub struct SqlOptions {
    /// Pipeline file whose `[storage]` names the store (when `storage` is not given).
    pub config: PathBuf,
    /// Store URL or path, overriding the pipeline file's.
    pub storage: Option<String>,
    pub query: Option<String>,
    pub format: OutputFormat,
    pub out: Option<PathBuf>,
    /// Include the tables with personal data (`accepted`).
    pub full: bool,
    pub max_rows: usize,
}

/// The store URL and options of a pipeline file, relative paths resolved against its directory.
/// Only `[storage]` is read: the rest of the pipeline need not be runnable here.
pub fn storage_of(config: &Path) -> Result<(String, BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(config).with_context(|| {
        format!(
            "cannot read {}; pass --config or --storage",
            config.display()
        )
    })?;
    let doc: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", config.display(), e.message()))?;
    let storage = doc.get("storage").and_then(|s| s.as_table());
    let url = storage
        .and_then(|s| s.get("url"))
        .and_then(|u| u.as_str())
        .unwrap_or("./data/out");
    let options = storage
        .and_then(|s| s.get("options"))
        .and_then(|o| o.as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        let dir = config.parent().unwrap_or(Path::new("."));
        dir.join(url).display().to_string()
    };
    Ok((url, options))
}

pub fn sql(opts: SqlOptions, rt: &tokio::runtime::Runtime) -> Result<()> {
    let (url, options) = match &opts.storage {
        Some(s) => (s.clone(), BTreeMap::new()),
        None => storage_of(&opts.config)?,
    };
    let access = if opts.full {
        Access::Full
    } else {
        Access::Analytics
    };
    let engine = rt
        .block_on(SqlEngine::open(&url, &options, access))
        .map_err(|e| anyhow!("{e}"))?;
    let limits = Limits {
        max_rows: opts.max_rows,
        ..Limits::default()
    };
    match &opts.query {
        Some(q) => {
            let result = rt
                .block_on(engine.query(q, &limits))
                .map_err(|e| anyhow!("{e}"))?;
            match &opts.out {
                Some(path) => {
                    let mut f = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    write_result(&result, opts.format, &mut f)?;
                }
                None => write_result(&result, opts.format, &mut std::io::stdout().lock())?,
            }
            if result.truncated {
                eprintln!(
                    "(cut at {} rows; raise --max-rows or aggregate)",
                    opts.max_rows
                );
            }
            Ok(())
        }
        None => shell(&engine, &limits, rt),
    }
}

/// Writes a result as a table, CSV, a JSON array of objects, or Parquet.
pub fn write_result(result: &QueryResult, format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches(&result.batches)?;
            writeln!(out, "{text}")?;
            writeln!(out, "{} row(s)", result.rows())?;
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(result.schema.fields().iter().map(|f| f.name()))?;
            for b in &result.batches {
                for row in text_rows(b)? {
                    w.write_record(row.iter().map(|c| c.as_deref().unwrap_or("")))?;
                }
            }
            w.flush()?;
        }
        OutputFormat::Json => {
            let mut rows = Vec::new();
            for b in &result.batches {
                rows.extend(divoc_connectors::sinks::ndjson::json_rows(b, &[])?);
            }
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
        OutputFormat::Parquet => {
            let batch = arrow::compute::concat_batches(&result.schema, &result.batches)?;
            out.write_all(&divoc_connectors::parquet::encode_parquet(&batch)?)?;
        }
    }
    Ok(())
}

fn text_rows(b: &RecordBatch) -> Result<Vec<Vec<Option<String>>>> {
    let opts = FormatOptions::default();
    let fmts: Vec<ArrayFormatter> = b
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<Result<_, _>>()?;
    Ok((0..b.num_rows())
        .map(|i| {
            b.columns()
                .iter()
                .zip(&fmts)
                .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                .collect()
        })
        .collect())
}

/// Completes table names, column names and SQL keywords.
struct SqlHelper {
    words: Vec<String>,
}

impl Completer for SqlHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &LineContext<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let prefix = line[start..pos].to_lowercase();
        let found = self
            .words
            .iter()
            .filter(|w| !prefix.is_empty() && w.to_lowercase().starts_with(&prefix))
            .map(|w| Pair {
                display: w.clone(),
                replacement: w.clone(),
            })
            .collect();
        Ok((start, found))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}
impl Highlighter for SqlHelper {}
impl Validator for SqlHelper {}
impl Helper for SqlHelper {}

const KEYWORDS: [&str; 24] = [
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "SUM", "COUNT", "AVG", "MIN",
    "MAX", "DISTINCT", "AS", "AND", "OR", "NOT", "BETWEEN", "DESC", "ASC", "HAVING", "SHOW",
    "TABLES", "DESCRIBE",
];

fn shell(engine: &SqlEngine, limits: &Limits, rt: &tokio::runtime::Runtime) -> Result<()> {
    let mut words: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
    for t in engine.tables() {
        words.push(t.clone());
        if let Ok(cols) = rt.block_on(engine.columns(t)) {
            words.extend(cols);
        }
    }
    words.sort();
    words.dedup();
    let mut rl: rustyline::Editor<SqlHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    rl.set_helper(Some(SqlHelper { words }));
    let history = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".divoc_sql_history"))
        .unwrap_or_else(|| PathBuf::from(".divoc_sql_history"));
    let _ = rl.load_history(&history);
    println!(
        "divoc sql: tables {}. End statements with ';', Tab completes, Ctrl-D quits.",
        engine.tables().join(", ")
    );
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "sql> "
        } else {
            "...> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                statement.push_str(&line);
                statement.push('\n');
                if !line.trim_end().ends_with(';') {
                    continue;
                }
                let q = std::mem::take(&mut statement);
                let _ = rl.add_history_entry(q.trim());
                match rt.block_on(engine.query(q.trim().trim_end_matches(';'), limits)) {
                    Ok(r) => write_result(&r, OutputFormat::Table, &mut std::io::stdout())?,
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => statement.clear(),
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => bail!("terminal: {e}"),
        }
    }
    let _ = rl.save_history(&history);
    Ok(())
}
