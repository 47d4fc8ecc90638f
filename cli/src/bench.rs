//! `divoc bench`: the real pipeline end to end on generated events, with throughput, batch latency
//! and peak memory. Generation runs in a child process so it never counts against the run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use divoc_operators::dedupe::{Dedupe, DedupeConfig};

pub struct BenchOptions {
    pub events: u64,
    pub seed: u64,
    pub invalid_share: f64,
    pub duplicate_share: f64,
    /// Dedupe keys inserted before the run, to measure throughput against a large key store.
    pub preload_keys: u64,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Use this input instead of generating one.
    pub input: Option<PathBuf>,
    pub sets: Vec<String>,
    pub json: bool,
}

#[derive(serde::Serialize)]
struct BenchReport {
    events: u64,
    preload_keys: u64,
    seconds: f64,
    events_per_s: f64,
    startup_seconds: f64,
    published: u64,
    dead_letters: u64,
    batch_p50_ms: f64,
    batch_p99_ms: f64,
    peak_rss_mib: f64,
    /// CPU seconds (user + system, all threads, background compaction included) spent while
    /// processing: less sensitive to other load on the machine than the wall-clock rate.
    cpu_seconds: f64,
    cpu_us_per_event: f64,
    generate_seconds: f64,
    preload_seconds: f64,
    /// Certificates signed per second end to end (0 when the pipeline has no sign node).
    certificates_per_s: f64,
    raw_sign_per_s_1_thread: f64,
    raw_sign_per_s_all_cores: f64,
}

/// Raw Ed25519 signatures per second over a 108-byte message (the JWS signing input's size),
/// on one thread and on all rayon threads, measured for about `secs` each.
pub fn raw_sign_rate(secs: f64) -> (f64, f64) {
    use divoc_credential::SigningKey;
    use ed25519_dalek::Signer;
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let msg = [7u8; 108];
    let run = |key: &SigningKey| -> f64 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            for _ in 0..256 {
                std::hint::black_box(key.sign(std::hint::black_box(&msg)));
            }
            n += 256;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let one = run(&key);
    let all: f64 = rayon::broadcast(|_| run(&key)).into_iter().sum();
    (one, all)
}

pub fn bench(opts: &BenchOptions, rt: &tokio::runtime::Runtime) -> Result<()> {
    let dir = if opts.dir.is_absolute() {
        opts.dir.clone()
    } else {
        std::env::current_dir()?.join(&opts.dir)
    };
    for sub in ["state", "out"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
    }
    let gen_started = Instant::now();
    let input = match &opts.input {
        Some(p) => std::fs::canonicalize(p).with_context(|| format!("--input {}", p.display()))?,
        None => {
            let input = dir.join("input");
            let file = input.join("events.ndjson");
            let reuse = file.exists()
                && std::fs::read_to_string(input.join("params"))
                    .ok()
                    .as_deref()
                    == Some(&params(opts));
            if !reuse {
                std::fs::create_dir_all(&input)?;
                let status = std::process::Command::new(std::env::current_exe()?)
                    .args([
                        "gen",
                        "--count",
                        &opts.events.to_string(),
                        "--seed",
                        &opts.seed.to_string(),
                    ])
                    .args([
                        "--invalid-share",
                        &opts.invalid_share.to_string(),
                        "--duplicate-share",
                        &opts.duplicate_share.to_string(),
                    ])
                    .arg("--out")
                    .arg(&file)
                    .status()
                    .context("cannot run `divoc gen`")?;
                if !status.success() {
                    bail!("`divoc gen` failed");
                }
                std::fs::write(input.join("params"), params(opts))?;
            }
            input
        }
    };
    let generate_seconds = gen_started.elapsed().as_secs_f64();
    let mut sets = vec![
        format!("storage.url={}", dir.join("out").display()),
        format!("storage.state_dir={}", dir.join("state").display()),
        format!("nodes.input.path={}", input.display()),
        "metrics.listen=".to_owned(),
    ];
    sets.extend(opts.sets.iter().cloned());
    let plan = crate::load_pipeline_creating_keys(&opts.config, &sets)?;

    let preload_started = Instant::now();
    if opts.preload_keys > 0 {
        let (name, spec) = plan
            .file
            .nodes
            .iter()
            .find(|(_, s)| s.kind == "dedupe")
            .context("--preload-keys needs a dedupe node in the pipeline")?;
        let cfg: DedupeConfig = toml::Value::Table(spec.options.clone()).try_into()?;
        let path = crate::resolve(&plan, &plan.file.storage.state_dir)
            .join("nodes")
            .join(name)
            .join("keys");
        let mut d = Dedupe::open(&path, &cfg)?;
        d.preload_synthetic("default", opts.preload_keys)?;
    }
    let preload_seconds = preload_started.elapsed().as_secs_f64();

    let signs = plan.file.nodes.values().any(|n| n.kind == "sign");
    let (raw1, raw_all) = if signs {
        raw_sign_rate(1.0)
    } else {
        (0.0, 0.0)
    };
    let stop = crate::stop_on_signals(rt);
    let cpu_before = process_cpu_seconds();
    let summary = crate::run(&plan, rt, stop)?;
    let cpu_seconds = process_cpu_seconds() - cpu_before;
    let published: u64 = summary.accepted();
    let processed = published + summary.dead_letters;
    let secs = summary.elapsed.as_secs_f64();
    let report = BenchReport {
        events: processed,
        preload_keys: opts.preload_keys,
        seconds: secs,
        events_per_s: processed as f64 / secs.max(1e-9),
        startup_seconds: summary.startup.as_secs_f64(),
        published,
        dead_letters: summary.dead_letters,
        batch_p50_ms: summary.batch_latency.percentile(50.0) * 1e3,
        batch_p99_ms: summary.batch_latency.percentile(99.0) * 1e3,
        peak_rss_mib: crate::peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        cpu_seconds,
        cpu_us_per_event: cpu_seconds * 1e6 / (processed.max(1) as f64),
        generate_seconds,
        preload_seconds,
        certificates_per_s: if signs {
            published as f64 / secs.max(1e-9)
        } else {
            0.0
        },
        raw_sign_per_s_1_thread: raw1,
        raw_sign_per_s_all_cores: raw_all,
    };
    if opts.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("pipeline: {}", opts.config.display());
        println!(
            "events processed: {} (published {}, dead-lettered {})",
            report.events, report.published, report.dead_letters
        );
        if opts.preload_keys > 0 {
            println!(
                "dedupe keys preloaded: {} in {:.1}s",
                opts.preload_keys, preload_seconds
            );
        }
        println!(
            "startup (open node state): {:.2}s  processing: {:.2}s  throughput: {:.0} events/s",
            summary.startup.as_secs_f64(),
            secs,
            report.events_per_s
        );
        println!(
            "batch latency: p50 {:.2} ms  p99 {:.2} ms (per operator batch)",
            report.batch_p50_ms, report.batch_p99_ms
        );
        println!("peak RSS: {:.0} MiB", report.peak_rss_mib);
        println!(
            "CPU while processing: {:.2} s user+system ({:.2} us per event)",
            report.cpu_seconds, report.cpu_us_per_event
        );
        if signs {
            println!(
                "signed certificates: {:.0}/s end to end; raw Ed25519 sign rate (same run): {:.0}/s on 1 thread, {:.0}/s on {} threads; end-to-end / raw all-core = {:.2}",
                report.certificates_per_s,
                raw1,
                raw_all,
                rayon::current_num_threads(),
                report.certificates_per_s / raw_all.max(1.0)
            );
        }
    }
    Ok(())
}

fn params(o: &BenchOptions) -> String {
    format!(
        "{} {} {} {}",
        o.events, o.seed, o.invalid_share, o.duplicate_share
    )
}

/// User + system CPU time of this process so far, all threads.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
