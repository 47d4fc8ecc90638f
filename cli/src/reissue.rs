//! `divoc reissue`: signs stored certificates again through the pipeline's own DAG.
//!
//! 1. **Select** (once per job): DataFusion over the published `accepted` rows, the certificates
//!    that are still current (not replaced by a correction or re-issue, not revoked) and match
//!    `--where`, written once (its order is then fixed) to `<state_dir>/reissue/<job>/selection.parquet`;
//!    `job.json` (written last) fixes the job's time, so the new credentials' `issuanceDate` is the
//!    same however often the job is resumed.
//! 2. **Run** the pipeline file with its source replaced by a `reissue_source` node named
//!    `reissue_<job>` over that selection, in the same state directory: dedupe's lifecycle state
//!    decides each row (the certificate must still be the dose's current one), sign, render and
//!    the sinks publish exactly once; positions and epochs are the engine's, so a killed job
//!    resumes after its last checkpoint and re-signs nothing it committed. The main pipeline
//!    must not run meanwhile (the dedupe store is locked); its source position is kept.
//!
//! A job is named by a hash of its options (or `--job`): running the same command again resumes
//! it; a finished job does nothing more.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use divoc_analytics::{Access, SqlEngine};
use divoc_connectors::reissue::ReissueProgress;
use divoc_pipeline::config::Role;
use divoc_pipeline::resources::Resources;
use divoc_pipeline::runtime::RunSummary;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub struct ReissueOptions {
    pub config: PathBuf,
    pub sets: Vec<String>,
    /// SQL predicate over the `accepted` table's columns.
    pub predicate: String,
    /// Issuer key file to sign with (the sign nodes' `key_file`).
    pub key: Option<PathBuf>,
    /// Template directory to render with (the render nodes' `templates`).
    pub templates: Option<PathBuf>,
    pub revoke_superseded: bool,
    pub job: Option<String>,
    /// Progress as plain lines every so often instead of a bar (for logs and pipes).
    pub plain_progress: bool,
}

/// What fixes a job; stored as `job.json` once its selection is complete.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Job {
    predicate: String,
    revoke_superseded: bool,
    key: Option<PathBuf>,
    templates: Option<PathBuf>,
    issued_at_ms: i64,
    selected: u64,
}

/// The outcome of a job run.
pub struct ReissueOutcome {
    pub job: String,
    pub selected: u64,
    pub summary: RunSummary,
}

fn job_name(o: &ReissueOptions) -> String {
    if let Some(j) = &o.job {
        return j.clone();
    }
    let text = serde_json::json!([
        o.predicate,
        o.revoke_superseded,
        o.key.as_ref().map(|k| k.display().to_string()),
        o.templates.as_ref().map(|t| t.display().to_string()),
    ])
    .to_string();
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))
}

/// The certificates a job takes: current ones matching the predicate, with the columns the
/// events are rebuilt from (not the credentials: a national selection would not fit one Arrow
/// string array). Unordered, so DataFusion streams it; the order is fixed once it is written.
fn selection_sql(predicate: &str) -> String {
    let columns: Vec<&str> = divoc_model::columns::EVENT_COLUMNS
        .iter()
        .map(|c| c.name)
        .filter(|n| *n != divoc_model::columns::RAW.name)
        .chain([divoc_model::columns::CERTIFICATE_ID.name])
        .collect();
    format!(
        "SELECT {} FROM accepted \
         WHERE credential IS NOT NULL AND certificate_id IS NOT NULL \
         AND certificate_id NOT IN \
           (SELECT previous_certificate_id FROM accepted WHERE previous_certificate_id IS NOT NULL) \
         AND certificate_id NOT IN \
           (SELECT certificate_id FROM accepted WHERE event_kind = 'revoke' AND certificate_id IS NOT NULL) \
         AND ({predicate})",
        columns.join(", ")
    )
}

/// Writes the selection (to a temporary name, then renamed) and returns its row count.
fn select(
    rt: &tokio::runtime::Runtime,
    url: &str,
    options: &std::collections::BTreeMap<String, String>,
    predicate: &str,
    out: &Path,
) -> Result<u64> {
    let tmp = out.with_extension("parquet.partial");
    let rows = rt.block_on(async {
        let engine = SqlEngine::open(url, options, Access::Full)
            .await
            .context("cannot open the published data for the selection")?;
        let mut stream = engine
            .stream(&selection_sql(predicate))
            .await
            .map_err(|e| anyhow!("--where {predicate:?}: {e}"))?;
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, stream.schema(), None)?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| anyhow!("--where {predicate:?}: {e}"))?;
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        writer.close()?;
        anyhow::Ok(rows)
    })?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, out)?;
    Ok(rows)
}

/// The pipeline with its one source replaced by the job's `reissue_source` and the key and
/// templates swapped in; everything else (state directory, dedupe store, sinks) is the file's.
fn job_pipeline(
    o: &ReissueOptions,
    job: &str,
    spec: &Job,
    selection: &Path,
) -> Result<divoc_pipeline::config::ValidatedPipeline> {
    let base = crate::load_pipeline(&o.config, &o.sets)?;
    let sources: Vec<&String> = base
        .roles
        .iter()
        .filter(|(_, (role, _))| *role == Role::Source)
        .map(|(n, _)| n)
        .collect();
    let [source] = sources.as_slice() else {
        bail!(
            "{}: reissue replaces the pipeline's source, so it needs exactly one (found {})",
            o.config.display(),
            sources.len()
        );
    };
    let text = std::fs::read_to_string(&o.config)
        .with_context(|| format!("cannot read {}", o.config.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", o.config.display(), e.message()))?;
    let node = format!("reissue_{job}");
    let nodes = doc
        .get_mut("nodes")
        .and_then(|n| n.as_table_mut())
        .ok_or_else(|| anyhow!("{}: no [nodes]", o.config.display()))?;
    nodes.remove(source.as_str());
    let mut reissue = toml::Table::new();
    reissue.insert("kind".into(), "reissue_source".into());
    reissue.insert("path".into(), selection.display().to_string().into());
    reissue.insert("job".into(), job.into());
    reissue.insert("issued_at_ms".into(), spec.issued_at_ms.into());
    reissue.insert("revoke_superseded".into(), spec.revoke_superseded.into());
    nodes.insert(node.clone(), reissue.into());
    if let Some(edges) = doc.get_mut("edges").and_then(|e| e.as_array_mut()) {
        for edge in edges.iter_mut().filter_map(|e| e.as_table_mut()) {
            if edge.get("from").and_then(|f| f.as_str()) == Some(source.as_str()) {
                edge.insert("from".into(), node.clone().into());
            }
        }
    }
    // Overrides of the replaced source do not apply to the job.
    let replaced = format!("nodes.{source}.");
    let mut sets: Vec<String> = o
        .sets
        .iter()
        .filter(|s| !s.starts_with(&replaced))
        .cloned()
        .collect();
    for (name, spec_node) in &base.file.nodes {
        match spec_node.kind.as_str() {
            "sign" => {
                if let Some(k) = &o.key {
                    sets.push(format!("nodes.{name}.key_file={}", absolute(k)?.display()));
                }
            }
            "render" => {
                if let Some(t) = &o.templates {
                    sets.push(format!("nodes.{name}.templates={}", absolute(t)?.display()));
                }
            }
            _ => {}
        }
    }
    // Relative paths in the file resolve against its directory, as for `divoc run`.
    let text = toml::to_string(&doc)?;
    divoc_pipeline::config::parse_pipeline(
        &text,
        &sets,
        &o.config.display().to_string(),
        &base.config_dir,
        &crate::registry(),
    )
    .map_err(|e| anyhow!("{e}"))
}

/// Runs (or resumes) a job to its end, or until `stop`.
pub fn reissue(
    o: &ReissueOptions,
    rt: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
) -> Result<ReissueOutcome> {
    if o.predicate.trim().is_empty() {
        bail!("--where is empty: pass a SQL predicate over the accepted table, e.g. --where \"vaccine_name = 'Covishield'\" (or --where true for every current certificate)");
    }
    let base = crate::load_pipeline(&o.config, &o.sets)?;
    let state_dir = crate::resolve(&base, &base.file.storage.state_dir);
    let job = job_name(o);
    let dir = state_dir.join("reissue").join(&job);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let selection = dir.join("selection.parquet");
    let job_file = dir.join("job.json");
    let spec = match std::fs::read(&job_file) {
        Ok(bytes) => {
            let spec: Job = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", job_file.display()))?;
            if spec.predicate != o.predicate || spec.revoke_superseded != o.revoke_superseded {
                bail!(
                    "job {job} was started with --where {:?}{}; resume it with the same options or name a new job with --job",
                    spec.predicate,
                    if spec.revoke_superseded { " --revoke-superseded" } else { "" }
                );
            }
            eprintln!(
                "resuming job {job}: {} certificates selected",
                spec.selected
            );
            spec
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let issued_at_ms = chrono::Utc::now().timestamp_millis();
            let (url, options) = (crate::storage_url(&base), base.file.storage.options.clone());
            let started = Instant::now();
            let selected = select(rt, &url, &options, &o.predicate, &selection)?;
            eprintln!(
                "job {job}: selected {selected} current certificates in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let spec = Job {
                predicate: o.predicate.clone(),
                revoke_superseded: o.revoke_superseded,
                key: o.key.clone(),
                templates: o.templates.clone(),
                issued_at_ms,
                selected,
            };
            let tmp = dir.join("job.json.partial");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&spec)?)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &job_file)?;
            spec
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", job_file.display())),
    };
    let plan = job_pipeline(o, &job, &spec, &selection)?;
    let progress = ReissueProgress::default();
    let mut resources = Resources::new();
    resources.insert(progress.clone());
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (progress, done, plain, total) = (
            progress.clone(),
            done.clone(),
            o.plain_progress,
            spec.selected,
        );
        std::thread::spawn(move || report_progress(&progress, &done, plain, total))
    };
    let summary = crate::run_with(&plan, rt, stop, resources);
    done.store(true, Ordering::SeqCst);
    let _ = reporter.join();
    Ok(ReissueOutcome {
        job,
        selected: spec.selected,
        summary: summary?,
    })
}

/// A bar on a terminal (done / total, rate, ETA); plain lines every 5 s otherwise.
fn report_progress(progress: &ReissueProgress, done: &AtomicBool, plain: bool, total: u64) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = (!plain && tty).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "re-issued {pos}/{len} [{bar:40}] {percent}% {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    // The rate counts this run only: a resumed job starts at its committed position.
    let mut since: Option<(u64, Instant)> = None;
    let mut last_line = Instant::now();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let pos = progress.done.load(Ordering::Relaxed);
        if since.is_none() && pos > 0 {
            since = Some((pos, Instant::now()));
            if let Some(b) = &bar {
                b.set_position(pos);
                b.reset_eta();
            }
        }
        if let Some(b) = &bar {
            b.set_position(pos);
        } else if finished || last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            let rate = since.map_or(0.0, |(first, at)| {
                pos.saturating_sub(first) as f64 / at.elapsed().as_secs_f64().max(1e-3)
            });
            let eta = if rate > 0.0 {
                format!("{:.0} s", total.saturating_sub(pos) as f64 / rate)
            } else {
                "-".into()
            };
            let percent = if total == 0 {
                100.0
            } else {
                pos as f64 * 100.0 / total as f64
            };
            eprintln!("re-issued {pos}/{total} ({percent:.1}%), {rate:.0}/s, ETA {eta}");
        }
        if finished {
            if let Some(b) = bar {
                b.finish();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
