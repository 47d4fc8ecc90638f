//! `divoc demo`: generate events, run the default pipeline on them, report what happened.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use divoc_bench::gen::{write_events, GenConfig, GenFormat, GenSummary};
use divoc_connectors::parquet::read_parquet_objects;
use divoc_connectors::storage::Storage;

pub struct DemoOptions {
    pub events: u64,
    pub seed: u64,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub sets: Vec<String>,
}

fn abs(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Writes `count` events as NDJSON (80%) and DIVOC CSV (20%) under `input`.
pub fn generate_input(input: &Path, count: u64, seed: u64) -> Result<GenSummary> {
    std::fs::create_dir_all(input)?;
    let csv_count = count / 5;
    let mut total = GenSummary::default();
    for (name, n, format, s) in [
        (
            "events-0001.ndjson",
            count - csv_count,
            GenFormat::Ndjson,
            seed,
        ),
        (
            "events-0002.csv",
            csv_count,
            GenFormat::Csv,
            seed.wrapping_add(1),
        ),
    ] {
        let cfg = GenConfig {
            count: n,
            seed: s,
            invalid_share: 0.05,
            duplicate_share: 0.03,
            format,
            ..GenConfig::default()
        };
        let file = std::fs::File::create(input.join(name))?;
        let summary = write_events(&cfg, std::io::BufWriter::with_capacity(1 << 20, file))?;
        total.total += summary.total;
        total.valid_unique += summary.valid_unique;
        total.invalid += summary.invalid;
        total.duplicates += summary.duplicates;
        for (k, v) in summary.invalid_by_reason {
            *total.invalid_by_reason.entry(k).or_default() += v;
        }
    }
    Ok(total)
}

pub fn demo(opts: &DemoOptions, rt: &tokio::runtime::Runtime) -> Result<()> {
    let dir = abs(&opts.dir)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let input = dir.join("input");
    println!(
        "generating {} synthetic certify events (seed {}) into {}",
        opts.events,
        opts.seed,
        input.display()
    );
    let expected = generate_input(&input, opts.events, opts.seed)?;
    let mut sets = vec![
        format!("storage.url={}", dir.join("out").display()),
        format!("storage.state_dir={}", dir.join("state").display()),
        format!("nodes.input.path={}", input.display()),
    ];
    sets.extend(opts.sets.iter().cloned());
    let plan = crate::load_pipeline_creating_keys(&opts.config, &sets)?;
    let stop = crate::stop_on_signals(rt);
    println!(
        "running pipeline {} ({} nodes)",
        opts.config.display(),
        plan.order.len()
    );
    let summary = crate::run(&plan, rt, stop)?;
    println!();
    print!("{}", crate::format_summary(&summary, Some(expected.total)));
    println!(
        "generator expected: {} valid, {} duplicates, {} invalid",
        expected.valid_unique, expected.duplicates, expected.invalid
    );
    let storage = Storage::open(
        &crate::storage_url(&plan),
        &plan.file.storage.options,
        rt.handle().clone(),
    )?;
    let accepted = read_parquet_objects(&storage, "accepted")?;
    if let Some(b) = accepted.first() {
        let ids = b
            .column_by_name("certificate_id")
            .map(|c| c.as_string::<i32>().clone());
        let vac = b
            .column_by_name("vaccine_name")
            .map(|c| c.as_string::<i32>().clone());
        let dose = b
            .column_by_name("dose")
            .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone());
        if let (Some(ids), Some(vac), Some(dose)) = (ids, vac, dose) {
            println!("\nsample issued certificates (id, vaccine, dose):");
            for i in 0..ids.len().min(5) {
                println!(
                    "  {}  {}  dose {}",
                    ids.value(i),
                    vac.value(i),
                    if dose.is_null(i) { 0 } else { dose.value(i) }
                );
            }
        }
    }
    if let Some(b) = accepted.first() {
        let cred = b
            .column_by_name("credential")
            .map(|c| c.as_string::<i32>().clone());
        let qr = b
            .column_by_name("qr_payload")
            .map(|c| c.as_binary::<i32>().clone());
        if let (Some(cred), Some(qr)) = (cred, qr) {
            if !cred.is_empty() {
                let sample = dir.join("sample");
                std::fs::create_dir_all(&sample)?;
                std::fs::write(sample.join("certificate.json"), cred.value(0))?;
                std::fs::write(sample.join("qr-payload.zip"), qr.value(0))?;
                let code = divoc_qr::qr_code_bytes(qr.value(0))?;
                std::fs::write(sample.join("qr.png"), divoc_qr::qr_png(&code, 4)?)?;
                std::fs::write(sample.join("qr.svg"), divoc_qr::qr_svg(&code))?;
                let pretty: serde_json::Value = serde_json::from_str(cred.value(0))?;
                println!("\nfirst signed certificate (Ed25519Signature2018, {} bytes; QR payload {} bytes, QR version {:?}):", cred.value(0).len(), qr.value(0).len(), code.version());
                println!("{}", serde_json::to_string_pretty(&pretty)?);
                println!(
                    "written to {}/ (certificate.json, qr-payload.zip, qr.png, qr.svg)",
                    sample.display()
                );
                if let Some(sign) = plan.file.nodes.values().find(|n| n.kind == "sign") {
                    if let Some(k) = sign.options.get("key_file").and_then(|v| v.as_str()) {
                        let key = crate::resolve(&plan, Path::new(k));
                        println!(
                            "offline check: {}",
                            crate::verify::verify_any(
                                &sample.join("qr-payload.zip"),
                                &crate::verify::VerifyInputs {
                                    key: &key,
                                    status_lists: &[],
                                    status_key: None,
                                    today: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                                }
                            )?
                            .outcome
                        );
                    }
                }
            }
        }
    }
    let config_dir = opts.config.parent().unwrap_or(Path::new("."));
    if let Err(e) = crate::demo_formats::write_samples(
        config_dir,
        &dir.join("out").display().to_string(),
        &storage,
        &dir.join("sample"),
    ) {
        println!("\ninternational formats skipped: {e:#}");
    }
    println!("\noutput:");
    println!(
        "  accepted events (Parquet): {}/accepted/tenant=<t>/date=<d>/part-<epoch>.parquet",
        storage.url()
    );
    println!(
        "  dead letters (Parquet):    {}/dead-letter/...",
        storage.url()
    );
    println!(
        "  checkpoints:               {}/checkpoints/epoch-<n>.json",
        storage.url()
    );
    println!(
        "  analytics (PII-free):      {}/analytics/certificates/, analytics/rollups/",
        storage.url()
    );
    println!(
        "  engine state:              {}",
        dir.join("state").display()
    );
    println!(
        "\nquery it: divoc sql --storage {} \"SELECT state, SUM(certificates) AS n FROM certificate_counts GROUP BY state ORDER BY n DESC\"",
        storage.url()
    );
    Ok(())
}
