//! The read side. `divoc serve`: the certificate download API over the published certificates;
//! the verify page and status lists ([`verify_page`]), the SQL API, the transparency log. Also
//! `/metrics` for `divoc run`.
//!
//! ```text
//! GET /certificate/api/certificatePDF/{preEnrollmentCode}[?language=hi]   DIVOC's path: PDF of the latest dose
//! GET /certificate/api/v1/certificates?preEnrollmentCode=P                 the beneficiary's certificates
//! GET /certificate/api/v1/certificates/{certificateId}/{format}           pdf, qr.png, qr.svg, credential.json,
//!     dcc.txt, dcc.png, dcc.svg, smart-health-card, shc.png, shc.svg, fhir.json, ddcc.json
//! GET /.well-known/jwks.json                                               SMART Health Card issuer keys
//! GET /certificate/api/v1/dsc.pem                                          EU DCC document signer certificate
//! GET /health
//! ```
//!
//! Every certificate route needs `Authorization: Bearer <token>`; a token sees only its own
//! tenant's certificates (deny by default: no token configured, every request is 401). Every
//! answer to a certificate download (the PDF and format routes, 200 or 404/422 alike) is recorded
//! as a download event for analytics ([`events`]); refused tokens, bad queries, unknown formats
//! and listings are not downloads and are not recorded.

pub mod did;
pub mod events;
pub mod formats;
pub mod metrics_server;
mod routes;
pub mod sql_api;
pub mod store;
pub mod transparency;
pub mod verify_page;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use divoc_connectors::http::{TokenConfig, MIN_TOKEN_CHARS};
use divoc_connectors::storage::Storage;
use serde::Deserialize;

use events::DownloadLog;
use formats::{DccSection, Formats, ShcSection};
use store::indexer::Indexer;
use store::{CertificateStore, StoreOptions};

/// `config/serve.toml`. Relative paths resolve against the file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Socket address, e.g. `127.0.0.1:8090`.
    pub listen: String,
    /// The store the pipeline publishes into (same as its `storage.url`).
    pub storage_url: String,
    /// Object-store options (same as the pipeline's `storage.options`: `aws_endpoint`,
    /// `aws_allow_http`, credentials, ...).
    #[serde(default)]
    pub storage_options: std::collections::BTreeMap<String, String>,
    /// Prefix of the accepted certificates in the store.
    #[serde(default = "default_accepted")]
    pub accepted_prefix: String,
    /// Directory of the certificate index (an embedded key-value store the server keeps up to
    /// date from the published data). Default: beside a local store, `<storage_url>.serve-index`;
    /// required for cloud stores. One server per directory.
    #[serde(default)]
    pub index_dir: Option<PathBuf>,
    /// Block cache of the certificate index, MiB.
    #[serde(default = "default_index_cache")]
    pub index_cache_mib: u64,
    /// How often newly published objects are picked up, in milliseconds.
    #[serde(default = "default_refresh")]
    pub refresh_interval_ms: u64,
    /// How often download events are written out, in milliseconds.
    #[serde(default = "default_events_flush")]
    pub events_flush_interval_ms: u64,
    /// Accepted bearer tokens, each mapped to the tenant it may read.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Environment variable holding one more token, for tenant `default`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Directory with `fonts/`, `templates/`, `languages.toml`, `assets/`.
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// Template set used for tenants without their own.
    #[serde(default = "default_fallback")]
    pub fallback_template: String,
    /// Vaccine/country code map for the FHIR and DDCC bundles.
    #[serde(default = "default_codes")]
    pub fhir_codes: PathBuf,
    /// EU DCC issuing; absent = DCC downloads answer 404.
    #[serde(default)]
    pub dcc: Option<DccSection>,
    /// SMART Health Card issuing; absent = SHC downloads answer 404.
    #[serde(default)]
    pub shc: Option<ShcSection>,
    /// SQL API and dashboard; absent = not served.
    #[serde(default)]
    pub analytics: Option<sql_api::AnalyticsSection>,
    /// The issuer's keys for `/.well-known/did.json`; absent = not served.
    #[serde(default)]
    pub did: Option<did::DidSection>,
    /// The transparency log to follow and prove from; absent = not served.
    #[serde(default)]
    pub transparency: Option<transparency::TransparencySection>,
    /// The verify page, its trust bundle and the status lists; absent = not served.
    #[serde(default)]
    pub verify: Option<verify_page::VerifySection>,
}

fn default_accepted() -> String {
    "accepted".into()
}
fn default_index_cache() -> u64 {
    64
}
fn default_refresh() -> u64 {
    2000
}
fn default_events_flush() -> u64 {
    5000
}
fn default_templates() -> PathBuf {
    PathBuf::from(".")
}
fn default_fallback() -> String {
    "default".into()
}
fn default_codes() -> PathBuf {
    PathBuf::from("shc-codes.toml")
}

/// A loaded serve config: the file plus its directory.
pub struct ServePlan {
    pub cfg: ServeConfig,
    pub dir: PathBuf,
}

impl ServePlan {
    pub fn load(path: &Path, sets: &[String]) -> Result<ServePlan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}; pass one with --config", path.display()))?;
        let mut doc: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))?;
        divoc_pipeline::config::apply_overrides(&mut doc, sets).map_err(|e| anyhow!(e))?;
        let cfg: ServeConfig = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{}: {}", path.display(), e.message()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(ServePlan { cfg, dir })
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn storage_url(&self) -> String {
        let url = &self.cfg.storage_url;
        if url.contains("://") {
            url.clone()
        } else {
            self.resolve(Path::new(url)).display().to_string()
        }
    }

    /// Where the certificate index lives.
    pub fn index_dir(&self) -> Result<PathBuf> {
        match &self.cfg.index_dir {
            Some(dir) => Ok(self.resolve(dir)),
            None if !self.cfg.storage_url.contains("://") => {
                let store = self.storage_url();
                Ok(PathBuf::from(format!("{}.serve-index", store.trim_end_matches('/'))))
            }
            None => bail!(
                "storage_url {:?} is not a local directory: set index_dir to a local directory for the certificate index",
                self.cfg.storage_url
            ),
        }
    }

    /// Opens the certificate index of this plan's store.
    pub fn open_store(&self) -> Result<CertificateStore> {
        let source = format!("{}#{}", self.storage_url(), self.cfg.accepted_prefix);
        CertificateStore::open(
            &self.index_dir()?,
            &source,
            StoreOptions {
                cache_bytes: self.cfg.index_cache_mib.max(1) * 1024 * 1024,
            },
        )
    }

    /// token -> tenant, checked like the ingest API's tokens.
    fn tokens(&self) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = self
            .cfg
            .tokens
            .iter()
            .map(|t| (t.token.clone(), t.tenant.clone()))
            .collect();
        if let Some(var) = &self.cfg.token_env {
            match std::env::var(var) {
                Ok(t) => out.push((t, "default".into())),
                Err(_) => bail!(
                    "token_env = {var:?} but the environment variable is not set; export {var}=<a secret of {MIN_TOKEN_CHARS}+ characters>"
                ),
            }
        }
        for (token, _) in &out {
            if token.chars().count() < MIN_TOKEN_CHARS {
                bail!("a bearer token is shorter than {MIN_TOKEN_CHARS} characters; use a longer secret");
            }
        }
        Ok(out)
    }
}

/// Shared state of the handlers.
pub struct AppState {
    pub store: CertificateStore,
    /// Published objects the index could not read, with the reason (shown by `/health`).
    pub unreadable: RwLock<Vec<(String, String)>>,
    pub formats: Formats,
    pub tokens: Vec<(String, String)>,
    pub log: DownloadLog,
    pub jwks: Option<String>,
    pub dsc_pem: Option<String>,
    /// The issuer's DID document, serialized once.
    pub did_document: Option<String>,
    /// The verify page's state (its outcomes are flushed with the downloads).
    pub verify: Option<Arc<verify_page::VerifyState>>,
}

impl AppState {
    /// Writes buffered download events and verification outcomes.
    fn flush_events(&self) -> Result<()> {
        self.log.flush()?;
        if let Some(v) = &self.verify {
            v.flush()?;
        }
        Ok(())
    }
}

/// A running server; dropping the handle does not stop it, `stop` does.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
    state: Arc<AppState>,
    refresher: Option<std::thread::JoinHandle<()>>,
    stop_flag: Arc<std::sync::atomic::AtomicBool>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests, writes the pending download events.
    pub fn stop(mut self, rt: &tokio::runtime::Runtime) -> Result<()> {
        let _ = self.shutdown.send(());
        let _ = rt.block_on(self.done);
        self.stop_flag
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        self.state.flush_events()?;
        Ok(())
    }
}

/// Loads everything and starts serving.
pub fn start(plan: &ServePlan, rt: &tokio::runtime::Runtime) -> Result<RunningServer> {
    let storage = Storage::open(
        &plan.storage_url(),
        &plan.cfg.storage_options,
        rt.handle().clone(),
    )
    .context("cannot open the certificate store (storage_url)")?;
    let formats = Formats::for_plan(plan)?;
    let (store, mut indexer) = open_index(plan, &storage)?;
    // Catch up before answering, so a started server serves what was published before it.
    let caught_up = indexer.refresh()?;
    tracing::info!(
        certificates = store.approximate_len(),
        new_objects = caught_up.objects,
        unreadable_objects = caught_up.failed_objects,
        "certificate index ready"
    );
    let jwks = match &formats.shc {
        Some(s) => Some(serde_json::to_string(&s.key().jwks())?),
        None => None,
    };
    let dsc_pem = match &plan.cfg.dcc {
        Some(d) => Some(
            std::fs::read_to_string(plan.resolve(&d.certificate)).context("[dcc] certificate")?,
        ),
        None => None,
    };
    let follower = match &plan.cfg.transparency {
        Some(section) => {
            let f = transparency::LogFollower::open(
                section,
                storage.clone(),
                store.clone(),
                &plan.index_dir()?,
            )
            .context("[transparency]")?;
            if let Err(e) = f.refresh() {
                tracing::warn!(error = %format!("{e:#}"), "transparency log not followed yet");
            }
            Some(Arc::new(f))
        }
        None => None,
    };
    let did_document = match &plan.cfg.did {
        Some(section) => {
            let files: Vec<PathBuf> = section.key_files.iter().map(|f| plan.resolve(f)).collect();
            Some(serde_json::to_string(&did::DidDocument::from_files(
                &files,
            )?)?)
        }
        None => None,
    };
    let verify = match &plan.cfg.verify {
        Some(section) => {
            let key_files: Vec<PathBuf> = if section.key_files.is_empty() {
                plan.cfg
                    .did
                    .iter()
                    .flat_map(|d| d.key_files.clone())
                    .collect()
            } else {
                section.key_files.clone()
            };
            let key_files: Vec<PathBuf> = key_files.iter().map(|f| plan.resolve(f)).collect();
            let shc = match (&plan.cfg.shc, &jwks) {
                (Some(s), Some(set)) => Some((s.issuer.clone(), serde_json::from_str(set)?)),
                _ => None,
            };
            Some(Arc::new(verify_page::VerifyState::new(
                section,
                &key_files,
                storage.clone(),
                shc,
                dsc_pem.clone(),
                events::VerificationLog::new(storage.clone()),
            )?))
        }
        None => None,
    };
    let state = Arc::new(AppState {
        store,
        unreadable: RwLock::new(unreadable(&indexer)),
        formats,
        tokens: plan.tokens()?,
        log: DownloadLog::new(storage.clone()),
        jwks,
        dsc_pem,
        did_document,
        verify: verify.clone(),
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&plan.cfg.listen))
        .with_context(|| {
            format!(
                "listen {:?}: cannot bind; choose a free address",
                plan.cfg.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let mut app = routes::router(state.clone());
    if let Some(section) = &plan.cfg.analytics {
        let sql = rt
            .block_on(sql_api::SqlState::open(
                section,
                &plan.storage_url(),
                &plan.cfg.storage_options,
                |p| plan.resolve(p),
            ))
            .context("[analytics]")?;
        app = app.merge(sql_api::router(Arc::new(sql)));
    }
    if let Some(f) = &follower {
        app = app.merge(transparency::router(f.clone()));
    }
    if let Some(v) = verify {
        app = app.merge(verify_page::router(v));
    }
    let app = app.layer(axum::middleware::from_fn(
        divoc_connectors::http::panics::catch_panics,
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = rt.spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    // Index refresh and event flushes run on a plain thread: Storage blocks on its own runtime.
    let stop_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refresher = {
        let state = state.clone();
        let stop = stop_flag.clone();
        let refresh = Duration::from_millis(plan.cfg.refresh_interval_ms.max(100));
        let flush = Duration::from_millis(plan.cfg.events_flush_interval_ms.max(100));
        std::thread::spawn(move || {
            let mut last_refresh = std::time::Instant::now();
            let mut last_flush = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                if last_refresh.elapsed() >= refresh {
                    last_refresh = std::time::Instant::now();
                    match indexer.refresh() {
                        Ok(report) => {
                            if report.objects > 0 {
                                tracing::info!(
                                    objects = report.objects,
                                    added = report.certificates,
                                    "certificate index refreshed"
                                );
                            }
                            let mut problems = unreadable(&indexer);
                            if let Some(f) = &follower {
                                if let Err(e) = f.refresh() {
                                    problems.push(("transparency log".into(), format!("{e:#}")));
                                }
                            }
                            if let Ok(mut u) = state.unreadable.write() {
                                *u = problems;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "certificate index refresh failed")
                        }
                    }
                }
                if last_flush.elapsed() >= flush {
                    last_flush = std::time::Instant::now();
                    if let Err(e) = state.flush_events() {
                        tracing::warn!(error = %e, "download events not written yet; retrying");
                    }
                }
            }
        })
    };
    Ok(RunningServer {
        addr,
        shutdown: tx,
        done,
        state,
        refresher: Some(refresher),
        stop_flag,
    })
}

/// The certificate index and its indexer, rebuilt from scratch when it no longer matches the
/// published data.
pub fn open_index(plan: &ServePlan, storage: &Storage) -> Result<(CertificateStore, Indexer)> {
    let store = plan.open_store()?;
    let indexer = Indexer::new(store.clone(), storage.clone(), &plan.cfg.accepted_prefix)?;
    let Some(why) = indexer.stale()? else {
        return Ok((store, indexer));
    };
    let dir = plan.index_dir()?;
    tracing::warn!(reason = %why, index_dir = %dir.display(), "certificate index rebuilt: it no longer matches the published data");
    drop(indexer);
    drop(store);
    std::fs::remove_dir_all(&dir)
        .with_context(|| format!("cannot clear the stale index {}", dir.display()))?;
    let store = plan.open_store()?;
    let indexer = Indexer::new(store.clone(), storage.clone(), &plan.cfg.accepted_prefix)?;
    Ok((store, indexer))
}

fn unreadable(indexer: &Indexer) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = indexer
        .failed()
        .iter()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    v.sort();
    v
}
