//! The verifier side of the read server: the verify page and everything it verifies with.
//!
//! ```text
//! GET  /verify                                  the page (serve/verify-page/, built with esbuild)
//! GET  /verify/app.js, /verify/sw.js            its script and its service worker (offline)
//! GET  /verify/v1/trust                         contexts, issuer keys, status lists, JWKS, DSC
//! POST /verify/v1/outcomes                      {outcome, format, reason}: analytics, no PII
//! GET  /status/v1/{program}/{purpose}/{list}    a Bitstring Status List credential
//! ```
//!
//! The page fetches the trust bundle once and keeps it (localStorage + service worker), so a
//! verifier that loaded it once decides offline: signatures, status bits, suspension ends. No
//! route here needs a token: everything served is public by design (keys, contexts, status lists
//! hide holders among 131,072 bits), and an outcome carries no certificate data.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use divoc_connectors::storage::Storage;
use divoc_credential::status_list::{is_safe_program_id, StatusPurpose, DEFAULT_BASE_URL};
use divoc_credential::DocumentLoader;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::did::Method;
use crate::events::{VerificationEvent, VerificationLog};

const PAGE: &str = include_str!("../verify-page/index.html");
const APP: &str = include_str!("../verify-page/dist/app.js");
const SERVICE_WORKER: &str = include_str!("../verify-page/sw.js");

/// How long a built trust bundle is reused (the lists change once per pipeline epoch).
const TRUST_TTL: Duration = Duration::from_secs(5);

/// `[verify]` of `config/serve.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    /// Issuer key files (or verification method documents) the page trusts, every program's and
    /// every rotated key still in circulation. Default: `[did] key_files`.
    #[serde(default)]
    pub key_files: Vec<PathBuf>,
    /// Where the `status_list` sink publishes (its `prefix`).
    #[serde(default = "default_status_prefix")]
    pub status_prefix: String,
    /// The lists' public URL (`status_list.base_url`); `/status/v1` of this server answers it.
    #[serde(default = "default_status_base")]
    pub status_base_url: String,
}

fn default_status_prefix() -> String {
    "status".into()
}
fn default_status_base() -> String {
    DEFAULT_BASE_URL.into()
}

/// What the verify routes share.
pub struct VerifyState {
    storage: Storage,
    status_prefix: String,
    keys: Vec<Method>,
    contexts: Map<String, Value>,
    jwks: Option<Value>,
    dsc: Vec<String>,
    log: VerificationLog,
    trust: Mutex<Option<(Instant, Bytes)>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Trust<'a> {
    generated_at: String,
    contexts: &'a Map<String, Value>,
    keys: &'a [Method],
    status_lists: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<&'a Value>,
    dsc: &'a [String],
}

impl VerifyState {
    /// `jwks`: the SMART Health Card issuer and its key set; `dsc`: the EU DCC signer (PEM).
    pub fn new(
        section: &VerifySection,
        key_files: &[PathBuf],
        storage: Storage,
        jwks: Option<(String, Value)>,
        dsc: Option<String>,
        log: VerificationLog,
    ) -> Result<Self> {
        let keys = crate::did::read_methods(key_files, "verify")?;
        if keys.is_empty() {
            anyhow::bail!(
                "[verify] no issuer keys: set key_files (or [did] key_files) to the issuer key files"
            );
        }
        let loader = DocumentLoader::default();
        let mut contexts = Map::new();
        for url in loader.urls() {
            if let Ok(doc) = loader.load(url) {
                contexts.insert(url.to_owned(), (*doc).clone());
            }
        }
        Ok(VerifyState {
            storage,
            status_prefix: section.status_prefix.trim_end_matches('/').to_owned(),
            keys,
            contexts,
            jwks: jwks.map(|(iss, set)| Value::Object(Map::from_iter([(iss, set)]))),
            dsc: dsc.into_iter().collect(),
            log,
            trust: Mutex::new(None),
        })
    }

    /// Every published status list, by its URL (`id`).
    fn status_lists(&self) -> Result<Map<String, Value>> {
        let mut lists = Map::new();
        for key in self.storage.list(&format!("{}/", self.status_prefix))? {
            if !key.ends_with(".json") {
                continue;
            }
            let Some(bytes) = self.storage.get(&key)? else {
                continue;
            };
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(list) => {
                    if let Some(id) = list.get("id").and_then(Value::as_str) {
                        lists.insert(id.to_owned(), list.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "status list is not JSON; left out")
                }
            }
        }
        Ok(lists)
    }

    fn trust_bundle(&self) -> Result<Bytes> {
        if let Ok(cached) = self.trust.lock() {
            if let Some((at, bytes)) = cached.as_ref() {
                if at.elapsed() < TRUST_TTL {
                    return Ok(bytes.clone());
                }
            }
        }
        let trust = Trust {
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            contexts: &self.contexts,
            keys: &self.keys,
            status_lists: self.status_lists()?,
            jwks: self.jwks.as_ref(),
            dsc: &self.dsc,
        };
        let bytes = Bytes::from(serde_json::to_vec(&trust)?);
        if let Ok(mut cached) = self.trust.lock() {
            *cached = Some((Instant::now(), bytes.clone()));
        }
        Ok(bytes)
    }

    /// Writes the buffered outcomes.
    pub fn flush(&self) -> Result<Vec<String>> {
        self.log.flush()
    }
}

pub fn router(state: Arc<VerifyState>) -> Router {
    Router::new()
        .route("/verify", get(page))
        .route("/verify/app.js", get(app))
        .route("/verify/sw.js", get(service_worker))
        .route("/verify/v1/trust", get(trust))
        .route("/verify/v1/outcomes", post(outcome))
        .route("/status/v1/{program}/{purpose}/{list}", get(status_list))
        .with_state(state)
}

fn problem(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Detail<'a>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        code: &'a str,
        message: String,
    }
    (
        status,
        Json(Body {
            error: Detail {
                code,
                message: message.into(),
            },
        }),
    )
        .into_response()
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

async fn app() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP,
    )
        .into_response()
}

async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // The page lives at /verify, outside the worker's default scope /verify/.
            (
                header::HeaderName::from_static("service-worker-allowed"),
                "/verify",
            ),
        ],
        SERVICE_WORKER,
    )
        .into_response()
}

async fn trust(State(state): State<Arc<VerifyState>>) -> Response {
    let built = tokio::task::spawn_blocking(move || state.trust_bundle()).await;
    match built {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "trust bundle not built");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                "the status lists cannot be read right now; retry",
            )
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "building the trust bundle failed",
        ),
    }
}

/// What the page reports: words from fixed sets and a reason code, never certificate data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    outcome: String,
    format: String,
    #[serde(default)]
    reason: Option<String>,
}

const OUTCOMES: [&str; 4] = ["VALID", "REVOKED", "SUSPENDED", "INVALID"];
const FORMATS: [&str; 5] = ["divoc-vc", "divoc-qr", "shc", "eu-dcc", "unknown"];

fn is_reason_code(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

async fn outcome(
    State(state): State<Arc<VerifyState>>,
    body: Result<Json<Outcome>, JsonRejection>,
) -> Response {
    let Json(o) = match body {
        Ok(b) => b,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "INVALID_OUTCOME",
                format!("{e}; send {{\"outcome\", \"format\", \"reason\"}}"),
            )
        }
    };
    if !OUTCOMES.contains(&o.outcome.as_str()) {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_OUTCOME",
            format!("outcome must be one of {OUTCOMES:?}"),
        );
    }
    if !FORMATS.contains(&o.format.as_str()) {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_OUTCOME",
            format!("format must be one of {FORMATS:?}"),
        );
    }
    if o.reason.as_deref().is_some_and(|r| !is_reason_code(r)) {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_OUTCOME",
            "reason must be a code of lowercase letters and '-' (at most 64), never free text",
        );
    }
    state.log.record(VerificationEvent {
        time_ms: chrono::Utc::now().timestamp_millis(),
        outcome: o.outcome,
        format: o.format,
        reason: o.reason,
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn status_list(
    State(state): State<Arc<VerifyState>>,
    Path((program, purpose, list)): Path<(String, String, String)>,
) -> Response {
    let (true, Some(purpose), Ok(list)) = (
        is_safe_program_id(&program),
        StatusPurpose::parse(&purpose),
        list.parse::<u64>(),
    ) else {
        return problem(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such status list: /status/v1/<program>/<revocation|suspension>/<number>",
        );
    };
    let key = format!(
        "{}/{program}/{}/{list}.json",
        state.status_prefix,
        purpose.name()
    );
    match tokio::task::spawn_blocking(move || state.storage.get(&key)).await {
        Ok(Ok(Some(bytes))) => (
            [
                (header::CONTENT_TYPE, "application/vc+ld+json"),
                (header::CACHE_CONTROL, "max-age=60"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => problem(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such status list (no certificate of it was issued yet)",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status list not read");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                "the store cannot be read right now; retry",
            )
        }
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "reading the status list failed",
        ),
    }
}
