//! The `divoc` application: the component registry and the commands built on the engine.

pub mod audit;
pub mod bench;
pub mod demo;
pub mod demo_formats;
pub mod keys;
pub mod reissue;
pub mod sql;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use divoc_connectors::storage::Storage;
use divoc_pipeline::config::{entry, Registry, ValidatedPipeline};
use divoc_pipeline::metrics::Metrics;
use divoc_pipeline::resources::Resources;
use divoc_pipeline::runtime::{run_pipeline, RunOptions, RunSummary};
use divoc_serve::metrics_server::serve_metrics;

/// Every component kind this binary knows. Adding a component = its module + one line here.
pub fn registry() -> Registry {
    Registry::new(vec![
        // Sources
        entry::<divoc_connectors::files::FileSourceConfig>(),
        entry::<divoc_connectors::http::HttpSourceConfig>(),
        entry::<divoc_connectors::reissue::ReissueSourceConfig>(),
        // Operators
        entry::<divoc_operators::validate::ValidateConfig>(),
        entry::<divoc_operators::dedupe::DedupeConfig>(),
        entry::<divoc_operators::sign::SignConfig>(),
        entry::<divoc_operators::qr_payload::QrPayloadConfig>(),
        entry::<divoc_operators::render::RenderConfig>(),
        // Sinks
        entry::<divoc_connectors::sinks::publish::PublishConfig>(),
        entry::<divoc_connectors::sinks::dead_letter::DeadLetterConfig>(),
        entry::<divoc_connectors::sinks::blob::PdfSinkConfig>(),
        entry::<divoc_connectors::sinks::ndjson::NdjsonSinkConfig>(),
        entry::<divoc_connectors::sinks::manifest::ManifestConfig>(),
        entry::<divoc_connectors::sinks::analytics::AnalyticsConfig>(),
        entry::<divoc_connectors::sinks::webhook::WebhookConfig>(),
        entry::<divoc_connectors::sinks::translog::TranslogConfig>(),
        entry::<divoc_connectors::sinks::status_list::StatusListConfig>(),
    ])
    .with_default_node("dead_letter", "dead_letter")
    .with_default_node("manifest", "checkpoint_manifest")
}

/// Loads, overrides and validates a pipeline file.
pub fn load_pipeline(path: &Path, sets: &[String]) -> Result<ValidatedPipeline> {
    divoc_pipeline::config::load_pipeline(path, sets, &registry()).map_err(|e| anyhow!("{e}"))
}

/// Resolves a path from the pipeline file against the file's directory.
pub fn resolve(plan: &ValidatedPipeline, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        plan.config_dir.join(p)
    }
}

/// The storage URL with a relative local path resolved against the pipeline file's directory.
pub fn storage_url(plan: &ValidatedPipeline) -> String {
    let url = &plan.file.storage.url;
    if url.contains("://") {
        url.clone()
    } else {
        resolve(plan, Path::new(url)).display().to_string()
    }
}

/// Runs a pipeline to completion (or until `stop`), serving `/metrics` if configured.
pub fn run(
    plan: &ValidatedPipeline,
    rt: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary> {
    run_with(plan, rt, stop, Resources::new())
}

/// As [`run`], with resources of the caller's (e.g. a job's progress counters) added.
pub fn run_with(
    plan: &ValidatedPipeline,
    rt: &tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
    mut resources: Resources,
) -> Result<RunSummary> {
    let metrics = Metrics::new();
    let storage = Storage::open(
        &storage_url(plan),
        &plan.file.storage.options,
        rt.handle().clone(),
    )
    .context("cannot open the output store (storage.url)")?;
    let _metrics_server = match &plan.file.metrics {
        Some(m) if !m.listen.is_empty() => Some(serve_metrics(rt, &m.listen, metrics.clone())?),
        _ => None,
    };
    resources.insert(storage);
    resources.insert(divoc_model::lifecycle::SharedCertificateStates::default());
    let opts = RunOptions {
        state_dir: resolve(plan, &plan.file.storage.state_dir),
        resources,
        metrics,
        runtime: rt.handle().clone(),
        stop,
    };
    run_pipeline(plan, &registry(), opts).map_err(|e| anyhow!("{e}"))
}

/// Installs SIGINT/SIGTERM handlers that request a graceful stop.
pub fn stop_on_signals(rt: &tokio::runtime::Runtime) -> Arc<AtomicBool> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Register the handlers before returning, so a signal that arrives right after the caller
    // reports readiness is already ours (a handler installed inside the spawned task could come
    // too late, and the default action would kill the process without a drain).
    let (term, int) = rt.block_on(async {
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    });
    rt.spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("stop requested: draining in-flight batches");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    stop
}

/// Human summary of a run.
pub fn format_summary(s: &RunSummary, events_in: Option<u64>) -> String {
    let mut out = String::new();
    let published: u64 = s.accepted();
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let processed = events_in.unwrap_or(published + s.dead_letters);
    out.push_str(&format!("accepted (published): {published}\n"));
    let dups = s
        .dead_letters_by_reason
        .get("duplicate")
        .copied()
        .unwrap_or(0);
    out.push_str(&format!("duplicates: {dups}\n"));
    out.push_str(&format!(
        "rejected (other reasons): {}\n",
        s.dead_letters - dups
    ));
    for (r, n) in &s.dead_letters_by_reason {
        if r != "duplicate" {
            out.push_str(&format!("  {r}: {n}\n"));
        }
    }
    out.push_str(&format!(
        "processed {processed} events in {:.2}s: {:.0} events/s; epochs committed: {} (resumed after epoch {})\n",
        secs,
        processed as f64 / secs,
        s.epochs_committed,
        s.resumed_from_epoch
    ));
    out.push_str(&format!(
        "batch latency p50 {:.2} ms, p99 {:.2} ms\n",
        s.batch_latency.percentile(50.0) * 1e3,
        s.batch_latency.percentile(99.0) * 1e3
    ));
    out
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Loads a pipeline file after creating any missing issuer keys it names (demo and bench only).
pub fn load_pipeline_creating_keys(path: &Path, sets: &[String]) -> Result<ValidatedPipeline> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pipeline file {}", path.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))?;
    divoc_pipeline::config::apply_overrides(&mut doc, sets).map_err(|e| anyhow!(e))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(nodes) = doc.get("nodes").and_then(|n| n.as_table()) {
        for node in nodes.values() {
            if node.get("kind").and_then(|k| k.as_str()) == Some("sign") {
                if let Some(p) = node.get("key_file").and_then(|v| v.as_str()) {
                    let key_path = if Path::new(p).is_absolute() {
                        PathBuf::from(p)
                    } else {
                        dir.join(p)
                    };
                    if !key_path.exists() {
                        divoc_operators::keys::IssuerKey::generate("did:web:divoc.example")
                            .and_then(|k| k.save(&key_path))
                            .map_err(anyhow::Error::msg)?;
                        println!("created issuer key {} (mode 0600)", key_path.display());
                    }
                }
            }
        }
    }
    load_pipeline(path, sets)
}
