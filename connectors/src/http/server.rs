//! The HTTP API: DIVOC's certify endpoints, upload status, bearer-token tenants.
//!
//! Every route but `GET /health` requires `Authorization: Bearer <token>`; the token decides the
//! tenant. `/health` answers 200 `{"status":"ok"}` (503 `{"status":"failing"}` once the WAL writer
//! failed) to anyone, and tells nothing else. A certify request is validated as a whole, in one
//! pass over the body, before anything is written: either every element reaches the write-ahead
//! log (200 after it is durable) or none does (400 naming the element and JSON path). Each record
//! of the log is the exact text of its JSON element or CSV row, located in the request body.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use divoc_model::event::{csv_header_index, parse_request_json, truncate, EventKind};
use divoc_pipeline::metrics::Metrics;
use futures::StreamExt;
use prometheus::{HistogramVec, IntCounter, IntCounterVec};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use super::config::TokenRole;
use super::lifecycle;
use super::registry::{Registry, UploadStatus};
use super::wal::{PendingBody, PendingRow, PendingUpload, WalShared, WriterMsg};
use divoc_model::lifecycle::SharedCertificateStates;

/// Extra bytes a multipart envelope may add around the CSV file.
const MULTIPART_SLACK: usize = 64 * 1024;
/// Buckets of `divoc_http_request_duration_seconds`: a certify answer waits for the WAL fsync; a
/// bulk upload of many MiB takes seconds.
const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Most per-element problems listed in one 400 answer.
const MAX_DETAILS: usize = 100;
/// Longest message per detail (messages may quote the offending value).
const MAX_DETAIL_CHARS: usize = 300;

/// The ingest listener's own series, registered in the one registry.
#[derive(Clone)]
pub struct HttpMetrics {
    /// `divoc_http_requests_total{route, status}`.
    pub requests: IntCounterVec,
    /// `divoc_http_request_duration_seconds{route}`: from the request's arrival at the router to
    /// its answer (after the WAL fsync for an accepted certify request).
    pub duration: HistogramVec,
    /// `divoc_http_events_accepted_total`: events durably accepted over HTTP.
    pub events_accepted: IntCounter,
}

impl HttpMetrics {
    /// The families in `metrics` (created on first use, shared by every HTTP source).
    pub fn register(metrics: &Metrics) -> Result<Self, divoc_pipeline::EngineError> {
        let requests = metrics.counter_vec(
            "http_requests_total",
            "HTTP ingest requests by route and status",
            &["route", "status"],
        )?;
        let duration = metrics.histogram_vec(
            "http_request_duration_seconds",
            "HTTP ingest request latency by route",
            &["route"],
            &REQUEST_DURATION_BUCKETS,
        )?;
        let events_accepted = metrics
            .counter_vec(
                "http_events_accepted_total",
                "Events durably accepted over HTTP",
                &[],
            )?
            .with_label_values(&[] as &[&str]);
        Ok(Self {
            requests,
            duration,
            events_accepted,
        })
    }
}

pub(crate) struct ServerState {
    /// (token bytes, tenant, roles).
    pub tokens: Vec<(Vec<u8>, Arc<str>, Vec<TokenRole>)>,
    pub max_body: usize,
    pub max_events: usize,
    pub max_csv: usize,
    pub max_csv_rows: usize,
    pub tx: mpsc::Sender<WriterMsg>,
    pub registry: Arc<Registry>,
    pub shared: Arc<WalShared>,
    pub metrics: HttpMetrics,
    /// The pipeline's certificate state, when a `dedupe` node runs in this process.
    pub certificate_states: SharedCertificateStates,
}

pub(crate) type AppState = Arc<ServerState>;

/// Who sent an authenticated request: the token's tenant and roles.
#[derive(Clone)]
pub(crate) struct Caller {
    pub tenant: Arc<str>,
    pub roles: Vec<TokenRole>,
}

impl Caller {
    /// May submit events (certify, update, revoke, suspend, lift).
    pub fn can_write(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, TokenRole::Certify | TokenRole::Admin))
    }
}

/// A JSON error answer.
#[derive(Debug, Serialize)]
pub struct ApiError {
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// A problem with one element of a certify array (or one CSV row).
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    pub index: usize,
    /// `<json path>: <problem>`.
    pub message: String,
}

/// The 200 answer of the certify and bulk endpoints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The upload id; query it under `/divoc/api/v1/certify/uploads/{id}`.
    pub transaction_id: String,
    pub accepted: usize,
}

#[derive(Debug, Serialize)]
struct UploadList {
    uploads: Vec<UploadStatus>,
}

/// The unauthenticated `/health` answer: liveness only, nothing about the data.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Debug)]
pub(crate) struct Reject {
    status: StatusCode,
    body: ApiError,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error,
                message: message.into(),
                details: Vec::new(),
            },
        }
    }
    pub(crate) fn bad(error: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }
    fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body exceeds the limit of {limit} bytes; split it into smaller requests"),
        )
    }
    /// A token without a role that may submit events.
    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this token may not submit events; give it the `certify` or `admin` role",
        )
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the ingest log is not accepting data right now; retry later",
        )
    }
    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no such {what}"),
        )
    }
    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.body.error
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/divoc/api/v1/certify", post(certify_v1))
        .route("/divoc/api/v3/certify", post(certify_v3))
        .route("/divoc/api/v1/bulkCertify", post(bulk_certify))
        .route("/divoc/api/v1/certify/uploads", get(list_uploads))
        .route("/divoc/api/v1/certify/uploads/{id}", get(upload_status))
        .route("/divoc/api/v1/certificate", put(lifecycle::update))
        .route(
            "/divoc/api/v1/certificates/{pre}",
            delete(lifecycle::revoke),
        )
        .route(
            "/divoc/api/v1/certificates/{pre}/suspension",
            post(lifecycle::suspend).delete(lifecycle::lift),
        )
        .route(
            "/divoc/api/v1/certify/uploads/{id}/errors",
            get(upload_errors),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // After the auth layer: health probes carry no token.
        .route("/health", get(health))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .fallback(not_found)
        // Bodies are read and limited by the handlers themselves (so a 413 is JSON too).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn(super::panics::catch_panics))
        .with_state(state)
}

/// The route template of a matched path (a bounded label set for metrics).
fn route_label(path: &str) -> &'static str {
    const UPLOADS: &str = "/divoc/api/v1/certify/uploads";
    match path {
        "/divoc/api/v1/certify" => "/divoc/api/v1/certify",
        "/divoc/api/v3/certify" => "/divoc/api/v3/certify",
        "/divoc/api/v1/bulkCertify" => "/divoc/api/v1/bulkCertify",
        UPLOADS => UPLOADS,
        "/health" => "/health",
        "/divoc/api/v1/certificate" => "/divoc/api/v1/certificate",
        p if p.starts_with("/divoc/api/v1/certificates/") && p.ends_with("/suspension") => {
            "/divoc/api/v1/certificates/{preEnrollmentCode}/suspension"
        }
        p if p.starts_with("/divoc/api/v1/certificates/") => {
            "/divoc/api/v1/certificates/{preEnrollmentCode}"
        }
        p if p.starts_with(UPLOADS) && p.ends_with("/errors") => {
            "/divoc/api/v1/certify/uploads/{id}/errors"
        }
        p if p.starts_with(UPLOADS) => "/divoc/api/v1/certify/uploads/{id}",
        _ => "unmatched",
    }
}

async fn count_requests(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    s.metrics
        .duration
        .with_label_values(&[route])
        .observe(started.elapsed().as_secs_f64());
    s.metrics
        .requests
        .with_label_values(&[route, resp.status().as_str()])
        .inc();
    resp
}

async fn not_found(State(s): State<AppState>) -> Response {
    s.metrics
        .requests
        .with_label_values(&["unmatched", "404"])
        .inc();
    Reject::not_found("route").into_response()
}

/// Compares in time independent of where the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn caller_for(
    tokens: &[(Vec<u8>, Arc<str>, Vec<TokenRole>)],
    headers: &HeaderMap,
) -> Option<Caller> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim().as_bytes();
    let mut found = None;
    // Check every token so timing does not reveal which one matched.
    for (t, tenant, roles) in tokens {
        if ct_eq(t, token) {
            found = Some(Caller {
                tenant: tenant.clone(),
                roles: roles.clone(),
            });
        }
    }
    found
}

async fn authenticate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    match caller_for(&s.tokens, req.headers()) {
        Some(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        None => Reject::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or unknown bearer token; send `Authorization: Bearer <token>` with a token configured for your tenant",
        )
        .into_response(),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a body of at most `limit` bytes.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Reject> {
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(Reject::too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Reject::bad(
                "INVALID_BODY",
                format!("could not read the request body: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(Reject::too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

async fn certify_v1(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    req: Request,
) -> Response {
    certify(s, t, EventKind::CertifyV1, req).await
}

async fn certify_v3(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    req: Request,
) -> Response {
    certify(s, t, EventKind::CertifyV3, req).await
}

async fn certify(s: AppState, caller: Caller, kind: EventKind, req: Request) -> Response {
    if !caller.can_write() {
        return Reject::forbidden().into_response();
    }
    match read_certify_body(&s, req).await {
        Ok(body) => submit(&s, &caller.tenant, kind, body).await,
        Err(r) => r.into_response(),
    }
}

/// Reads a certify-shaped body (certify, update) within the limits and checks it off the I/O
/// threads.
pub(crate) async fn read_certify_body(
    s: &ServerState,
    req: Request,
) -> Result<PendingBody, Reject> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, s.max_body).await?;
    let max_events = s.max_events;
    tokio::task::spawn_blocking(move || validate_certify(Vec::from(bytes), max_events))
        .await
        .map_err(|_| Reject::unavailable())?
}

pub(crate) async fn submit(
    s: &ServerState,
    tenant: &str,
    kind: EventKind,
    body: PendingBody,
) -> Response {
    let (reply, answer) = oneshot::channel();
    let msg = WriterMsg {
        upload: PendingUpload {
            tenant: tenant.to_string(),
            kind,
            body,
        },
        reply,
    };
    if s.tx.send(msg).await.is_err() {
        return Reject::unavailable().into_response();
    }
    match answer.await {
        Ok(Ok(c)) => {
            s.metrics.events_accepted.inc_by(c.rows as u64);
            tracing::debug!(upload_id = %c.upload_id, rows = c.rows, kind = kind.as_str(), "upload durable");
            Json(Accepted {
                transaction_id: c.upload_id,
                accepted: c.rows,
            })
            .into_response()
        }
        _ => Reject::unavailable().into_response(),
    }
}

fn blank(v: Option<&str>) -> bool {
    v.is_none_or(|s| s.trim().is_empty())
}

/// The body as a `String`, or a 400 naming the first invalid byte.
fn utf8_body(body: Vec<u8>, code: &'static str, what: &str) -> Result<String, Reject> {
    String::from_utf8(body).map_err(|e| {
        Reject::bad(
            code,
            format!(
                "{what} is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Byte span of `part` within `text` (`part` must borrow from `text`).
fn span_in(text: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let range = start..start.checked_add(part.len())?;
    // Holds only if `part` really is that slice of `text`.
    (text.get(range.clone())?.as_ptr() == part.as_ptr()).then_some(range)
}

fn internal(what: &str) -> Reject {
    Reject::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        format!("could not locate {what} in the body"),
    )
}

/// Validates a certify body in one pass: a non-empty JSON array of objects that parse as certify
/// requests and carry `preEnrollmentCode` and one of `recipient.age` / `recipient.dob`. The rows
/// are the elements' exact text.
pub(crate) fn validate_certify(body: Vec<u8>, max_events: usize) -> Result<PendingBody, Reject> {
    let text = utf8_body(body, "INVALID_BODY", "the body")?;
    if text.trim().is_empty() {
        return Err(Reject::bad(
            "INVALID_BODY",
            "the body is empty; send a JSON array of certify requests",
        ));
    }
    let not_json = |e: serde_json::Error| {
        Reject::bad("INVALID_BODY", format!("the body is not valid JSON: {e}"))
    };
    let elements: Vec<&RawValue> = match serde_json::from_str(&text) {
        Ok(v) => v,
        // A type error: the top-level value is not an array (if it is JSON at all).
        Err(e) if e.classify() == Category::Data => {
            serde_json::from_str::<IgnoredAny>(&text).map_err(not_json)?;
            return Err(Reject::bad(
                "INVALID_BODY",
                "the body must be a JSON array of certify requests, e.g. [{\"preEnrollmentCode\": ...}]",
            ));
        }
        Err(e) => return Err(not_json(e)),
    };
    if elements.is_empty() {
        return Err(Reject::bad(
            "INVALID_BODY",
            "the array is empty; send at least one certify request",
        ));
    }
    if elements.len() > max_events {
        return Err(Reject::bad(
            "TOO_MANY_EVENTS",
            format!(
                "the array has {} elements, at most {max_events} are accepted per request; split the batch",
                elements.len()
            ),
        ));
    }
    let mut details = Vec::new();
    let mut bad = 0usize;
    let mut type_errors = false;
    let mut rows = Vec::with_capacity(elements.len());
    for (index, el) in elements.iter().enumerate() {
        let el = el.get();
        let mut problems: Vec<String> = Vec::new();
        if !el.starts_with('{') {
            type_errors = true;
            problems.push("expected a JSON object (a certify request)".to_owned());
        } else {
            match parse_request_json(el) {
                Err(msg) => {
                    type_errors = true;
                    problems.push(msg);
                }
                Ok(req) => {
                    if blank(req.pre_enrollment_code.as_deref()) {
                        problems.push("preEnrollmentCode: is required".to_owned());
                    }
                    let r = req.recipient.as_ref();
                    if blank(r.and_then(|r| r.age.as_deref()))
                        && blank(r.and_then(|r| r.dob.as_deref()))
                    {
                        problems.push(
                            "recipient.age: one of recipient.age or recipient.dob is required"
                                .to_owned(),
                        );
                    }
                }
            }
        }
        if !problems.is_empty() {
            bad += 1;
        }
        for p in problems {
            if details.len() < MAX_DETAILS {
                details.push(ErrorDetail {
                    index,
                    message: truncate(&p, MAX_DETAIL_CHARS),
                });
            }
        }
        if bad == 0 {
            rows.push(PendingRow {
                body: span_in(&text, el).ok_or_else(|| internal("an element"))?,
                issue: None,
            });
        }
    }
    if bad > 0 {
        let (error, what) = if type_errors {
            ("INVALID_FIELD_TYPE", "invalid")
        } else {
            ("MISSING_FIELDS", "missing required fields")
        };
        let mut r = Reject::bad(
            error,
            format!(
                "{bad} of {} elements are {what}; nothing was accepted",
                elements.len()
            ),
        );
        r.body.details = details;
        return Err(r);
    }
    Ok(PendingBody {
        text,
        header: 0..0,
        rows,
    })
}

/// Exact text of the CSV record that spans `start..end` of `text` (csv reader positions), without
/// the blank lines before it and its line terminator.
fn record_span(text: &str, start: u64, end: u64) -> Option<Range<usize>> {
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    let s = text.get(start..end)?;
    let lead = s.len() - s.trim_start_matches(['\r', '\n']).len();
    let trail = s.len() - s.trim_end_matches(['\r', '\n']).len();
    Some(start + lead..(end - trail).max(start + lead))
}

/// Splits a DIVOC bulk CSV into rows, each kept as its exact text, and the header line. A bad
/// header refuses the whole upload; a row whose cell count differs from the header is kept with an
/// `issue` so it becomes a `malformed_csv` dead letter.
pub(crate) fn parse_bulk_csv(bytes: Vec<u8>, max_rows: usize) -> Result<PendingBody, Reject> {
    let text = utf8_body(bytes, "INVALID_ENCODING", "the CSV").map_err(|mut r| {
        r.body.message.push_str("; save it as UTF-8");
        r
    })?;
    let bom = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let csv_text = &text[bom..];
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let header = rdr
        .headers()
        .map_err(|e| Reject::bad("INVALID_CSV", format!("cannot read the CSV header: {e}")))?
        .clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(Reject::bad(
            "EMPTY_UPLOAD",
            "the CSV is empty; the first line must be the header (preEnrollmentCode,recipientName,...)",
        ));
    }
    let names: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    let mut seen = BTreeSet::new();
    for n in &names {
        if !seen.insert(n.as_str()) {
            return Err(Reject::bad(
                "INVALID_CSV_HEADER",
                format!("column {:?} appears twice in the header", truncate(n, 40)),
            ));
        }
    }
    csv_header_index(&header).map_err(|m| Reject::bad("INVALID_CSV_HEADER", m))?;
    // Spans of `csv_text`, shifted to spans of `text`.
    let locate = |start: u64, end: u64, what: &str| {
        record_span(csv_text, start, end)
            .map(|r| r.start + bom..r.end + bom)
            .ok_or_else(|| internal(what))
    };
    let header_span = locate(0, rdr.position().byte(), "the CSV header")?;
    let mut rows = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let start = rdr.position().byte();
        let result = rdr.read_record(&mut rec);
        if matches!(result, Ok(false)) {
            break;
        }
        if rows.len() >= max_rows {
            return Err(Reject::bad(
                "TOO_MANY_ROWS",
                format!("the CSV has more than {max_rows} rows; split the file"),
            ));
        }
        let end = rdr.position().byte();
        let issue = match result {
            Ok(_) if rec.len() == names.len() => None,
            Ok(_) => Some(format!(
                "row has {} cells but the header has {} columns",
                rec.len(),
                names.len()
            )),
            Err(e) => Some(format!("unreadable CSV row: {e}")),
        };
        rows.push(PendingRow {
            body: locate(start, end, "a CSV row")?,
            issue,
        });
        if end == start {
            // An error that consumed nothing would repeat forever.
            break;
        }
    }
    if rows.is_empty() {
        return Err(Reject::bad(
            "EMPTY_UPLOAD",
            "the CSV has a header but no data rows",
        ));
    }
    Ok(PendingBody {
        text,
        header: header_span,
        rows,
    })
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

async fn bulk_csv_bytes(s: &ServerState, req: Request) -> Result<Bytes, Reject> {
    let (parts, body) = req.into_parts();
    match media_type(&parts.headers).as_str() {
        "multipart/form-data" => {
            let limit = s.max_csv.saturating_add(MULTIPART_SLACK);
            let bytes = read_limited(&parts.headers, body, limit).await?;
            let req = Request::from_parts(parts, Body::from(bytes));
            let mut mp = Multipart::from_request(req, &())
                .await
                .map_err(|e| Reject::bad("INVALID_MULTIPART", format!("cannot read the multipart body: {e}")))?;
            loop {
                let field = mp
                    .next_field()
                    .await
                    .map_err(|e| Reject::bad("INVALID_MULTIPART", format!("cannot read the multipart body: {e}")))?;
                let Some(field) = field else {
                    return Err(Reject::bad(
                        "MISSING_FIELDS",
                        "the multipart body has no field named `file` holding the CSV",
                    ));
                };
                if field.name() == Some("file") {
                    let data = field
                        .bytes()
                        .await
                        .map_err(|e| Reject::bad("INVALID_MULTIPART", format!("cannot read the `file` field: {e}")))?;
                    if data.len() > s.max_csv {
                        return Err(Reject::too_large(s.max_csv));
                    }
                    return Ok(data);
                }
            }
        }
        "text/csv" | "application/csv" | "text/plain" => read_limited(&parts.headers, body, s.max_csv).await,
        other => Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!(
                "content type {:?} is not accepted; send multipart/form-data with a `file` field, or text/csv",
                truncate(other, 60)
            ),
        )),
    }
}

async fn bulk_certify(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    req: Request,
) -> Response {
    if !t.can_write() {
        return Reject::forbidden().into_response();
    }
    let bytes = match bulk_csv_bytes(&s, req).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let max_rows = s.max_csv_rows;
    let body = match tokio::task::spawn_blocking(move || parse_bulk_csv(Vec::from(bytes), max_rows))
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(r)) => return r.into_response(),
        Err(_) => return Reject::unavailable().into_response(),
    };
    submit(&s, &t.tenant, EventKind::BulkCsv, body).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_uploads(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let limit = match q {
        Ok(Query(q)) => q.limit.unwrap_or(100).clamp(1, 1000),
        Err(e) => {
            return Reject::bad(
                "INVALID_QUERY",
                format!("{e}; the only parameter is limit=<1..1000>"),
            )
            .into_response()
        }
    };
    Json(UploadList {
        uploads: s.registry.list(&t.tenant, limit),
    })
    .into_response()
}

async fn upload_status(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match s.registry.status(&t.tenant, &id) {
        Some(st) => Json(st).into_response(),
        None => Reject::not_found("upload").into_response(),
    }
}

async fn upload_errors(
    State(s): State<AppState>,
    Extension(t): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match s.registry.errors(&t.tenant, &id) {
        Some(e) => Json(e).into_response(),
        None => Reject::not_found("upload").into_response(),
    }
}

async fn health(State(s): State<AppState>) -> Response {
    let failed = s.shared.lock().failed.is_some();
    let (status, text) = if failed {
        (StatusCode::SERVICE_UNAVAILABLE, "failing")
    } else {
        (StatusCode::OK, "ok")
    };
    (status, Json(Health { status: text })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(b: &PendingBody) -> Vec<&str> {
        b.rows.iter().map(|r| &b.text[r.body.clone()]).collect()
    }

    const OK: &str = r#"{"preEnrollmentCode":"p","recipient":{"age":"30"}}"#;

    #[test]
    fn certify_rows_are_the_exact_element_text() {
        let tricky = r#"{ "preEnrollmentCode" : "x,]}\"" , "recipient":{"age":"1"},"meta":{"b":[1,{"c":"]"}]}}"#;
        let body = format!(" [ {tricky} ,\n{OK}\r\n,  {OK}\t] \n");
        let b = validate_certify(body.clone().into_bytes(), 10).unwrap();
        assert_eq!(texts(&b), [tricky, OK, OK]);
        assert_eq!(b.text, body);
        assert_eq!(b.header, 0..0);
        assert!(b.rows.iter().all(|r| r.issue.is_none()));
        assert_eq!(span_in("abc", "abc"), Some(0..3));
        assert_eq!(span_in("abc", &"abc"[1..]), Some(1..3));
        assert_eq!(span_in("abc", "bc"), None);
    }

    #[test]
    fn certify_wrong_field_type_names_the_json_path() {
        let body = format!(
            r#"[{OK}, {{"preEnrollmentCode":"p","recipient":{{"age":"3"}},"vaccination":{{"dose":"one"}}}}]"#
        );
        let r = validate_certify(body.into_bytes(), 10).unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "INVALID_FIELD_TYPE");
        assert_eq!(r.body.details.len(), 1);
        assert_eq!(r.body.details[0].index, 1);
        assert!(
            r.body.details[0].message.starts_with("vaccination.dose:"),
            "{}",
            r.body.details[0].message
        );
        assert_eq!(
            r.body.message,
            "1 of 2 elements are invalid; nothing was accepted"
        );
        // Messages of the whole-body checks.
        let msg = |b: &[u8]| validate_certify(b.to_vec(), 10).unwrap_err().body.message;
        assert!(msg(b"{\"a\":1}").starts_with("the body must be a JSON array"));
        assert!(msg(b"\"[\"").starts_with("the body must be a JSON array"));
        assert!(msg(b"{\"a\":}").starts_with("the body is not valid JSON"));
        assert!(msg(b"[1,").starts_with("the body is not valid JSON"));
        assert!(msg(b"[{}] x").starts_with("the body is not valid JSON"));
        assert!(msg(b"[]").starts_with("the array is empty"));
        assert!(msg(b"  ").starts_with("the body is empty"));
        assert_eq!(
            msg(b"[\"a\xff\"]"),
            "the body is not UTF-8 (invalid byte at offset 3)"
        );
    }

    #[test]
    fn certify_validation_codes() {
        let ok = br#"[{"preEnrollmentCode":"p","recipient":{"age":"30"}}]"#;
        assert_eq!(validate_certify(ok.to_vec(), 10).unwrap().rows.len(), 1);
        let cases: &[(&[u8], &str)] = &[
            (b"", "INVALID_BODY"),
            (b"{", "INVALID_BODY"),
            (b"{}", "INVALID_BODY"),
            (b"[]", "INVALID_BODY"),
            (b"[1]", "INVALID_FIELD_TYPE"),
            (
                br#"[{"preEnrollmentCode":"p","recipient":{"age":"30"}}] x"#,
                "INVALID_BODY",
            ),
            (
                br#"[{"preEnrollmentCode":"p","recipient":{"name":"n"}}]"#,
                "MISSING_FIELDS",
            ),
            (br#"[{"recipient":{"dob":"2000-01-01"}}]"#, "MISSING_FIELDS"),
            (
                br#"[{"preEnrollmentCode":1,"recipient":{"age":"3"}}]"#,
                "INVALID_FIELD_TYPE",
            ),
            (b"[\xff]", "INVALID_BODY"),
        ];
        for (body, code) in cases {
            let r = validate_certify(body.to_vec(), 10).unwrap_err();
            assert_eq!(r.code(), *code, "{:?}", String::from_utf8_lossy(body));
        }
        let many = format!(
            "[{}]",
            [r#"{"preEnrollmentCode":"p","recipient":{"age":"1"}}"#; 3].join(",")
        );
        assert_eq!(
            validate_certify(many.into_bytes(), 2).unwrap_err().code(),
            "TOO_MANY_EVENTS"
        );
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            validate_certify(deep.into_bytes(), 10).unwrap_err().code(),
            "INVALID_FIELD_TYPE"
        );
        let deep = format!(
            r#"[{{"preEnrollmentCode":"p","recipient":{{"age":"1"}},"x":{}1{}}},{{"meta":{}1{}}}]"#,
            "[".repeat(100_000),
            "]".repeat(100_000),
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(validate_certify(deep.into_bytes(), 10).is_err());
    }

    fn csv(text: &str, max_rows: usize) -> Result<PendingBody, Reject> {
        parse_bulk_csv(text.as_bytes().to_vec(), max_rows)
    }

    #[test]
    fn csv_rows_keep_their_exact_text_or_get_issues() {
        let text = "\u{feff}preEnrollmentCode,recipientName,vaccinationDose\np1,\"A, \"\"B\"\"\",1\np2,x\n";
        let b = csv(text, 10).unwrap();
        assert_eq!(
            &b.text[b.header.clone()],
            "preEnrollmentCode,recipientName,vaccinationDose"
        );
        assert_eq!(texts(&b), ["p1,\"A, \"\"B\"\"\",1", "p2,x"]);
        assert!(b.rows[0].issue.is_none());
        assert!(b.rows[1].issue.as_deref().unwrap().contains("2 cells"));
        // CRLF, blank lines, a quoted line break, no final terminator, non-ASCII text.
        let text = "\r\n\r\nvaccinationDose,preEnrollmentCode\r\n1,\"a\r\nb\"\r\n\r\n\n2,अआ ,\"\"\n 3 ,\"😀\"";
        let b = csv(text, 10).unwrap();
        assert_eq!(
            &b.text[b.header.clone()],
            "vaccinationDose,preEnrollmentCode"
        );
        assert_eq!(texts(&b), ["1,\"a\r\nb\"", "2,अआ ,\"\"", " 3 ,\"😀\""]);
        assert!(b.rows[0].issue.is_none());
        assert!(b.rows[1].issue.as_deref().unwrap().contains("3 cells"));
        assert!(b.rows[2].issue.is_none());
        assert_eq!(
            csv("bogus\n1\n", 10).unwrap_err().code(),
            "INVALID_CSV_HEADER"
        );
        assert_eq!(
            csv("preEnrollmentCode,preEnrollmentCode\n1,2\n", 10)
                .unwrap_err()
                .code(),
            "INVALID_CSV_HEADER"
        );
        assert_eq!(
            csv("preEnrollmentCode\n", 10).unwrap_err().code(),
            "EMPTY_UPLOAD"
        );
        assert_eq!(
            csv("preEnrollmentCode\n\n\n", 10).unwrap_err().code(),
            "EMPTY_UPLOAD"
        );
        assert_eq!(csv("", 10).unwrap_err().code(), "EMPTY_UPLOAD");
        assert_eq!(
            csv("preEnrollmentCode\n1\n2\n3\n", 2).unwrap_err().code(),
            "TOO_MANY_ROWS"
        );
        assert_eq!(csv("preEnrollmentCode\n1\n2\n", 2).unwrap().rows.len(), 2);
        let r = parse_bulk_csv(b"preEnrollmentCode\n\xff\n".to_vec(), 2).unwrap_err();
        assert_eq!(r.code(), "INVALID_ENCODING");
        assert_eq!(
            r.body.message,
            "the CSV is not UTF-8 (invalid byte at offset 18); save it as UTF-8"
        );
    }

    #[test]
    fn bearer_tokens_map_to_tenants() {
        let tokens = vec![(
            b"0123456789abcdef".to_vec(),
            Arc::<str>::from("in"),
            vec![TokenRole::Read],
        )];
        let tenant_for = |t: &[(Vec<u8>, Arc<str>, Vec<TokenRole>)], h: &HeaderMap| {
            caller_for(t, h).map(|c| c.tenant)
        };
        let mut h = HeaderMap::new();
        assert!(tenant_for(&tokens, &h).is_none());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcdef"),
        );
        assert_eq!(tenant_for(&tokens, &h).as_deref(), Some("in"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  0123456789abcdef "),
        );
        assert_eq!(tenant_for(&tokens, &h).as_deref(), Some("in"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic 0123456789abcdef"),
        );
        assert!(tenant_for(&tokens, &h).is_none());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer 0123456789abcdeX"),
        );
        assert!(tenant_for(&tokens, &h).is_none());
        assert!(tenant_for(&[], &h).is_none());
        let read_only = caller_for(
            &tokens,
            &HeaderMap::from_iter([(
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer 0123456789abcdef"),
            )]),
        )
        .unwrap();
        assert!(!read_only.can_write(), "a read token may not submit events");
    }
}
