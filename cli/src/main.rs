//! `divoc`: the one binary. See README.md for the commands.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use divoc::bench::{bench, BenchOptions};
use divoc::demo::{demo, DemoOptions};
use divoc_bench::gen::{write_events, GenConfig, GenFormat};

#[derive(Parser)]
#[command(
    name = "divoc",
    version,
    about = "Streaming pipeline for signed vaccination certificates (DIVOC re-imagined)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Ndjson,
    Csv,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create an Ed25519 issuer key (file mode 0600) and print its public documents.
    Generate {
        #[arg(long, default_value = "config/keys/issuer.json")]
        out: PathBuf,
        /// Issuer URL or DID; the key's controller.
        #[arg(long, default_value = "did:web:divoc.example")]
        issuer: String,
    },
    /// Rotate the issuer key: a new key for the same issuer with the next key id (`key-2` after
    /// `key-1`). Sign with the new one; keep the old one published (serve's `[did] key_files`) so
    /// certificates it signed still verify.
    Rotate {
        /// The key in use now.
        #[arg(long)]
        current: PathBuf,
        /// Where the new key goes (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a P-256 EU DCC document signer key with a self-signed DSC (testing) or a CSR for
    /// your country's CSCA (`--csr`).
    Dsc {
        /// Private key file (PKCS#8 PEM, mode 0600, never overwritten).
        #[arg(long, default_value = "data/keys/dsc-key.pem")]
        key_out: PathBuf,
        /// Certificate (or, with --csr, request) file (PEM).
        #[arg(long, default_value = "data/keys/dsc.pem")]
        out: PathBuf,
        /// Subject common name.
        #[arg(long, default_value = "DIVOC DSC")]
        common_name: String,
        /// ISO 3166-1 alpha-2 country of the issuer.
        #[arg(long, default_value = "IN")]
        country: String,
        #[arg(long, default_value_t = 365)]
        validity_days: u32,
        /// Write a PKCS#10 request instead of a self-signed certificate.
        #[arg(long)]
        csr: bool,
    },
    /// Create a P-256 SMART Health Card issuer key (private JWK, mode 0600) and print its JWKS.
    Shc {
        #[arg(long, default_value = "data/keys/shc-issuer.jwk.json")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline until its bounded sources are done (or SIGINT/SIGTERM for HTTP sources).
    Run {
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        /// Override a key of the pipeline file, e.g. --set storage.url=s3://bucket/x (repeatable).
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Sign stored certificates again (new key, templates or format) through the pipeline's DAG:
    /// select with SQL, re-issue exactly once, resumable (run the same command again).
    Reissue {
        /// SQL predicate over the `accepted` table, e.g. "vaccine_name = 'Covishield'" or "true".
        #[arg(long = "where")]
        predicate: String,
        /// The pipeline file (its source is replaced by the job's selection).
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        /// Sign with this issuer key file instead of the pipeline's.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Render with this template directory instead of the pipeline's.
        #[arg(long)]
        templates: Option<PathBuf>,
        /// Revoke the certificates replaced (default: they stay valid, downloads move on).
        #[arg(long)]
        revoke_superseded: bool,
        /// Name the job (default: a hash of the options; the same command resumes it).
        #[arg(long)]
        job: Option<String>,
        /// Progress as a line every 5 s instead of a bar.
        #[arg(long)]
        plain_progress: bool,
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Generate events and run the default pipeline on them in a fresh directory.
    Demo {
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "data/demo")]
        dir: PathBuf,
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Check a pipeline file: syntax, node kinds and options, edges, cycles.
    ValidateConfig {
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        #[arg(long = "set")]
        sets: Vec<String>,
        /// List the known node kinds.
        #[arg(long)]
        list: bool,
    },
    /// Write synthetic certify events (NDJSON or DIVOC bulk CSV).
    Gen {
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        #[arg(long, default_value_t = 0.02)]
        invalid_share: f64,
        #[arg(long, default_value_t = 0.01)]
        duplicate_share: f64,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the real pipeline end to end on generated events and report throughput, latency, RSS.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 0.02)]
        invalid_share: f64,
        #[arg(long, default_value_t = 0.01)]
        duplicate_share: f64,
        /// Insert this many dedupe keys before the run.
        #[arg(long, default_value_t = 0)]
        preload_keys: u64,
        #[arg(long, default_value = "data/bench")]
        dir: PathBuf,
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        /// Existing input file or directory (skips generation).
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Print one JSON line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issuer keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Serve certificate downloads (PDF, QR, credential, EU DCC, SMART Health Card, FHIR, DDCC)
    /// from the published certificates until SIGINT/SIGTERM.
    Serve {
        #[arg(long, default_value = "config/serve.toml")]
        config: PathBuf,
        /// Override a key of the serve file, e.g. --set listen=127.0.0.1:9000 (repeatable).
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// SQL over the published data (DataFusion): `divoc sql "SELECT ..."`, or a shell without a query.
    Sql {
        /// The query; without one, an interactive shell (history, Tab completes tables and columns).
        query: Option<String>,
        /// Pipeline file whose [storage] names the store.
        #[arg(long, default_value = "config/pipeline.toml")]
        config: PathBuf,
        /// Store URL or directory, instead of the pipeline file's.
        #[arg(long)]
        storage: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: divoc::sql::OutputFormat,
        /// Write the answer to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also the tables with personal data (`accepted`).
        #[arg(long)]
        full: bool,
        #[arg(long, default_value_t = 100_000)]
        max_rows: usize,
    },
    /// Verify a certificate offline: VALID, REVOKED, SUSPENDED (until when) or INVALID (why).
    /// DIVOC credential JSON, its QR payload (ZIP) or QR image (PNG), an EU DCC (`HC1:` text) or a
    /// SMART Health Card (`shc:/` text, compact JWS or .smart-health-card file).
    Verify {
        /// The certificate file.
        file: PathBuf,
        /// DIVOC credential: the issuer key file, a verification method document or the DID
        /// document (/.well-known/did.json). EU DCC: the DSC certificate (PEM). SMART Health
        /// Card: the issuer's JWKS.
        #[arg(long, required_unless_present = "audit")]
        key: Option<PathBuf>,
        /// Status list credentials (saved from /status/v1/... of `divoc serve`): decides
        /// REVOKED and SUSPENDED offline. Repeat for each list.
        #[arg(long = "status", requires = "key")]
        status: Vec<PathBuf>,
        /// The issuer key the status lists are signed with, when --key is not it (EU DCC).
        #[arg(long, requires = "status")]
        status_key: Option<PathBuf>,
        /// Check the issuer's transparency log at this server (`divoc serve` with [transparency])
        /// instead of the signature.
        #[arg(long)]
        audit: Option<String>,
        /// The log's public key (base58), for --audit.
        #[arg(long, requires = "audit")]
        log_key: Option<String>,
        /// A tree head saved earlier: also check the log only grew since (--audit).
        #[arg(long, requires = "audit")]
        since: Option<PathBuf>,
        /// After the signature, ask this server for the certificate's status (revoked,
        /// suspended): `divoc serve`'s URL.
        #[arg(long, requires = "key")]
        online: Option<String>,
    },
    /// HTTP load generator (run it as a second process against `divoc run` with an http_source).
    Load {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "/divoc/api/v1/certify")]
        path: String,
        /// Bearer token (default: $DIVOC_TOKEN).
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        #[arg(long, default_value_t = 100)]
        per_request: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 11)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Run { config, sets } => {
            let plan = divoc::load_pipeline(&config, &sets)?;
            let stop = divoc::stop_on_signals(&rt);
            let summary = divoc::run(&plan, &rt, stop)?;
            print!("{}", divoc::format_summary(&summary, None));
        }
        Command::Reissue {
            predicate,
            config,
            key,
            templates,
            revoke_superseded,
            job,
            plain_progress,
            sets,
        } => {
            let stop = divoc::stop_on_signals(&rt);
            let outcome = divoc::reissue::reissue(
                &divoc::reissue::ReissueOptions {
                    config,
                    sets,
                    predicate,
                    key,
                    templates,
                    revoke_superseded,
                    job,
                    plain_progress,
                },
                &rt,
                stop,
            )?;
            println!(
                "job {}: {} certificates selected",
                outcome.job, outcome.selected
            );
            print!("{}", divoc::format_summary(&outcome.summary, None));
        }
        Command::Demo {
            events,
            seed,
            dir,
            config,
            sets,
        } => demo(
            &DemoOptions {
                events,
                seed,
                dir,
                config,
                sets,
            },
            &rt,
        )?,
        Command::ValidateConfig { config, sets, list } => {
            if list {
                for k in divoc::registry().kinds() {
                    println!("{:<12} {:?}  {}", k.kind(), k.role(), k.about());
                }
            }
            let plan = divoc::load_pipeline(&config, &sets)?;
            println!(
                "{}: ok ({} nodes, {} edges; order: {})",
                config.display(),
                plan.order.len(),
                plan.file.edges.len(),
                plan.order.join(" -> ")
            );
        }
        Command::Gen {
            count,
            seed,
            format,
            invalid_share,
            duplicate_share,
            out,
        } => {
            if !(0.0..=1.0).contains(&invalid_share)
                || !(0.0..=1.0).contains(&duplicate_share)
                || invalid_share + duplicate_share > 1.0
            {
                bail!("--invalid-share and --duplicate-share must be within 0..=1 and sum to at most 1");
            }
            let cfg = GenConfig {
                count,
                seed,
                invalid_share,
                duplicate_share,
                format: match format {
                    Format::Ndjson => GenFormat::Ndjson,
                    Format::Csv => GenFormat::Csv,
                },
                ..GenConfig::default()
            };
            let summary = match out {
                Some(p) => {
                    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create {}", dir.display()))?;
                    }
                    let f = std::fs::File::create(&p)
                        .with_context(|| format!("cannot create {}", p.display()))?;
                    write_events(&cfg, std::io::BufWriter::with_capacity(1 << 20, f))?
                }
                None => write_events(&cfg, std::io::BufWriter::new(std::io::stdout().lock()))?,
            };
            eprintln!(
                "generated {} events: {} valid, {} duplicates, {} invalid {:?}",
                summary.total,
                summary.valid_unique,
                summary.duplicates,
                summary.invalid,
                summary.invalid_by_reason
            );
        }
        Command::Bench {
            events,
            seed,
            invalid_share,
            duplicate_share,
            preload_keys,
            dir,
            config,
            input,
            sets,
            json,
        } => bench(
            &BenchOptions {
                events,
                seed,
                invalid_share,
                duplicate_share,
                preload_keys,
                dir,
                config,
                input,
                sets,
                json,
            },
            &rt,
        )?,
        Command::Keys {
            action: KeysAction::Generate { out, issuer },
        } => {
            let key =
                divoc_operators::keys::IssuerKey::generate(&issuer).map_err(anyhow::Error::msg)?;
            key.save(&out).map_err(anyhow::Error::msg)?;
            println!("wrote {} (mode 0600)", out.display());
            println!(
                "verification method:\n{}",
                serde_json::to_string_pretty(&key.verification_method_doc())?
            );
            println!(
                "controller document:\n{}",
                serde_json::to_string_pretty(&key.controller_doc())?
            );
        }
        Command::Keys {
            action: KeysAction::Rotate { current, out },
        } => {
            let old =
                divoc_operators::keys::IssuerKey::load(&current).map_err(anyhow::Error::msg)?;
            let key = old.rotated().map_err(anyhow::Error::msg)?;
            key.save(&out).map_err(anyhow::Error::msg)?;
            println!(
                "wrote {} (mode 0600): {} follows {}",
                out.display(),
                key.verification_method,
                old.verification_method
            );
            println!(
                "next: point the sign node's key_file at {}, and list both files in config/serve.toml\n  [did]\n  key_files = [{:?}, {:?}]\nso the DID document keeps the old key: certificates it signed still verify.",
                out.display(),
                current.display().to_string(),
                out.display().to_string()
            );
        }
        Command::Keys {
            action:
                KeysAction::Dsc {
                    key_out,
                    out,
                    common_name,
                    country,
                    validity_days,
                    csr,
                },
        } => divoc::keys::create_dsc(&key_out, &out, &common_name, &country, validity_days, csr)?,
        Command::Keys {
            action: KeysAction::Shc { out },
        } => divoc::keys::create_shc_key(&out)?,
        Command::Sql {
            query,
            config,
            storage,
            format,
            out,
            full,
            max_rows,
        } => divoc::sql::sql(
            divoc::sql::SqlOptions {
                config,
                storage,
                query,
                format,
                out,
                full,
                max_rows,
            },
            &rt,
        )?,
        Command::Serve { config, sets } => {
            let plan = divoc_serve::ServePlan::load(&config, &sets)?;
            let stop = divoc::stop_on_signals(&rt);
            let server = divoc_serve::start(&plan, &rt)?;
            println!(
                "serving certificate downloads on http://{} (Ctrl-C to stop)",
                server.addr
            );
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            server.stop(&rt)?;
        }
        Command::Verify {
            file,
            key,
            status,
            status_key,
            audit,
            log_key,
            since,
            online,
        } => {
            if let Some(server) = audit {
                let log_key = log_key.ok_or_else(|| {
                    anyhow::anyhow!("--audit needs --log-key <base58 public key>")
                })?;
                let report = divoc::audit::audit(&file, &server, &log_key, since.as_deref(), &rt)?;
                println!("{report}");
                if !report.starts_with("IN LOG") {
                    std::process::exit(1);
                }
            }
            if let Some(key) = key {
                let verified = divoc::verify::verify_any(
                    &file,
                    &divoc::verify::VerifyInputs {
                        key: &key,
                        status_lists: &status,
                        status_key: status_key.as_deref(),
                        today: chrono::Utc::now().format("%Y-%m-%d").to_string(),
                    },
                )?;
                println!("{}", verified.outcome);
                if !verified.outcome.is_valid() {
                    std::process::exit(1);
                }
                if let Some(server) = online {
                    let id = verified.certificate_id.ok_or_else(|| {
                        anyhow::anyhow!(
                            "--online needs a certificate id, and this certificate carries none"
                        )
                    })?;
                    let status = divoc::audit::online_status(&id, &server, &rt)?;
                    println!("{status}");
                    if !status.starts_with("VALID") {
                        std::process::exit(1);
                    }
                }
            }
        }
        Command::Load {
            addr,
            path,
            token,
            events,
            per_request,
            concurrency,
            seed,
            json,
        } => {
            let token = match token.or_else(|| std::env::var("DIVOC_TOKEN").ok()) {
                Some(t) => t,
                None => bail!("pass --token or set DIVOC_TOKEN (the bearer token configured in the http_source)"),
            };
            let cfg = divoc_bench::load::LoadConfig {
                addr,
                path,
                token,
                events_per_request: per_request,
                concurrency,
                total_events: events,
                seed,
            };
            let r = rt.block_on(divoc_bench::load::run_load(&cfg))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"requests": r.requests, "events": r.events, "errors": r.errors, "elapsed_s": r.elapsed_s,
                        "events_per_s": r.events_per_s, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
                        "status_counts": r.status_counts})
                );
            } else {
                println!(
                    "{} requests ({} events accepted, {} errors) in {:.2}s: {:.0} events/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; statuses {:?}",
                    r.requests, r.events, r.errors, r.elapsed_s, r.events_per_s, r.p50_ms, r.p99_ms, r.max_ms, r.status_counts
                );
            }
        }
    }
    Ok(())
}
