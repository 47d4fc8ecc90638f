//! The HTTP API: DIVOC's certify endpoints, upload status, bearer-token tenants.
//!
//! Every route but `GET /health` requires `Authorization: Bearer <token>`; the token decides the
//! tenant. `/health` answers 200 `{"status":"ok"}` (503 `{"status":"failing"}` once the WAL writer
//! failed) to anyone, and tells nothing else. A certify
//! request is validated as a whole before anything is written: either every element reaches the
//! write-ahead log (200 after it is durable) or none does (400 naming the element and JSON path).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use divoc_pipeline::event::{csv_header_index, parse_request_json, truncate, EventKind};
use divoc_pipeline::metrics::Metrics;
use futures::StreamExt;
use serde::de::IgnoredAny;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::registry::{Registry, UploadStatus};
use super::wal::{PendingRow, PendingUpload, WalShared, WriterMsg};

/// Extra bytes a multipart envelope may add around the CSV file.
const MULTIPART_SLACK: usize = 64 * 1024;
/// Most per-element problems listed in one 400 answer.
const MAX_DETAILS: usize = 100;
/// Longest message per detail (messages may quote the offending value).
const MAX_DETAIL_CHARS: usize = 300;

pub(crate) struct ServerState {
    /// (token bytes, tenant).
    pub tokens: Vec<(Vec<u8>, Arc<str>)>,
    pub max_body: usize,
    pub max_events: usize,
    pub max_csv: usize,
    pub max_csv_rows: usize,
    pub tx: mpsc::Sender<WriterMsg>,
    pub registry: Arc<Registry>,
    pub shared: Arc<WalShared>,
    pub metrics: Metrics,
}

type AppState = Arc<ServerState>;

/// The tenant of an authenticated request.
#[derive(Clone)]
struct Tenant(Arc<str>);

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
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error,
                message: message.into(),
                details: Vec::new(),
            },
        }
    }
    fn bad(error: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, message)
    }
    fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body exceeds the limit of {limit} bytes; split it into smaller requests"),
        )
    }
    fn unavailable() -> Self {
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
        p if p.starts_with(UPLOADS) && p.ends_with("/errors") => {
            "/divoc/api/v1/certify/uploads/{id}/errors"
        }
        p if p.starts_with(UPLOADS) => "/divoc/api/v1/certify/uploads/{id}",
        _ => "unmatched",
    }
}

async fn count_requests(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let resp = next.run(req).await;
    s.metrics
        .http_requests
        .with_label_values(&[route, resp.status().as_str()])
        .inc();
    resp
}

async fn not_found(State(s): State<AppState>) -> Response {
    s.metrics
        .http_requests
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

fn tenant_for(tokens: &[(Vec<u8>, Arc<str>)], headers: &HeaderMap) -> Option<Arc<str>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim().as_bytes();
    let mut found = None;
    // Check every token so timing does not reveal which one matched.
    for (t, tenant) in tokens {
        if ct_eq(t, token) {
            found = Some(tenant.clone());
        }
    }
    found
}

async fn authenticate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    match tenant_for(&s.tokens, req.headers()) {
        Some(tenant) => {
            req.extensions_mut().insert(Tenant(tenant));
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
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Reject> {
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
    Extension(t): Extension<Tenant>,
    req: Request,
) -> Response {
    certify(s, t, EventKind::CertifyV1, req).await
}

async fn certify_v3(
    State(s): State<AppState>,
    Extension(t): Extension<Tenant>,
    req: Request,
) -> Response {
    certify(s, t, EventKind::CertifyV3, req).await
}

async fn certify(s: AppState, tenant: Tenant, kind: EventKind, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, s.max_body).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let max_events = s.max_events;
    let rows = match tokio::task::spawn_blocking(move || validate_certify(&bytes, max_events)).await
    {
        Ok(Ok(rows)) => rows,
        Ok(Err(r)) => return r.into_response(),
        Err(_) => return Reject::unavailable().into_response(),
    };
    submit(&s, &tenant, kind, rows).await
}

async fn submit(
    s: &ServerState,
    tenant: &Tenant,
    kind: EventKind,
    rows: Vec<PendingRow>,
) -> Response {
    let (reply, answer) = oneshot::channel();
    let msg = WriterMsg {
        upload: PendingUpload {
            tenant: tenant.0.to_string(),
            kind,
            rows,
        },
        reply,
    };
    if s.tx.send(msg).await.is_err() {
        return Reject::unavailable().into_response();
    }
    match answer.await {
        Ok(Ok(c)) => {
            s.metrics.http_events_accepted.inc_by(c.rows as u64);
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

/// Byte spans of the elements of a top-level JSON array. `text` must already be valid JSON.
/// Returns `None` when the top-level value is not an array.
pub(crate) fn split_json_array(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i += 1;
    ws(&mut i);
    let mut out = Vec::new();
    if b.get(i) == Some(&b']') {
        return Some(out);
    }
    loop {
        let start = i;
        let mut depth = 0usize;
        let mut in_str = false;
        while i < b.len() {
            let c = b[i];
            if in_str {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_str = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => break,
                    b'}' | b']' => depth -= 1,
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        out.push(
            text.get(start..i)?
                .trim_end_matches([' ', '\t', '\n', '\r']),
        );
        match b.get(i) {
            Some(b',') => {
                i += 1;
                ws(&mut i);
            }
            _ => return Some(out),
        }
    }
}

fn blank(v: Option<&str>) -> bool {
    v.is_none_or(|s| s.trim().is_empty())
}

/// Validates a certify body: a non-empty JSON array of objects that parse as certify requests and
/// carry `preEnrollmentCode` and one of `recipient.age` / `recipient.dob`.
pub(crate) fn validate_certify(body: &[u8], max_events: usize) -> Result<Vec<PendingRow>, Reject> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Reject::bad(
            "INVALID_BODY",
            format!(
                "the body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Reject::bad(
            "INVALID_BODY",
            "the body is empty; send a JSON array of certify requests",
        ));
    }
    serde_json::from_str::<IgnoredAny>(text)
        .map_err(|e| Reject::bad("INVALID_BODY", format!("the body is not valid JSON: {e}")))?;
    let elements = split_json_array(text).ok_or_else(|| {
        Reject::bad(
            "INVALID_BODY",
            "the body must be a JSON array of certify requests, e.g. [{\"preEnrollmentCode\": ...}]",
        )
    })?;
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
    for (index, el) in elements.iter().enumerate() {
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
    Ok(elements
        .into_iter()
        .map(|e| PendingRow {
            body: e.to_owned(),
            issue: None,
        })
        .collect())
}

/// A CSV row as a JSON object (column -> cell), columns in header order.
struct CellMap<'a> {
    names: &'a [String],
    cells: &'a csv::StringRecord,
}

impl Serialize for CellMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.names.len()))?;
        for (k, v) in self.names.iter().zip(self.cells.iter()) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Splits a DIVOC bulk CSV into rows. A bad header refuses the whole upload; a row whose cell
/// count differs from the header is kept with an `issue` so it becomes a `malformed_csv` dead letter.
pub(crate) fn parse_bulk_csv(bytes: &[u8], max_rows: usize) -> Result<Vec<PendingRow>, Reject> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Reject::bad(
            "INVALID_ENCODING",
            format!(
                "the CSV is not UTF-8 (invalid byte at offset {}); save it as UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
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
    let mut rows = Vec::new();
    for result in rdr.records() {
        if rows.len() >= max_rows {
            return Err(Reject::bad(
                "TOO_MANY_ROWS",
                format!("the CSV has more than {max_rows} rows; split the file"),
            ));
        }
        let row = match result {
            Ok(rec) if rec.len() == names.len() => PendingRow {
                body: serde_json::to_string(&CellMap {
                    names: &names,
                    cells: &rec,
                })
                .map_err(|e| Reject::bad("INVALID_CSV", format!("cannot encode a row: {e}")))?,
                issue: None,
            },
            Ok(rec) => PendingRow {
                body: serde_json::to_string(&rec.iter().collect::<Vec<_>>())
                    .map_err(|e| Reject::bad("INVALID_CSV", format!("cannot encode a row: {e}")))?,
                issue: Some(format!(
                    "row has {} cells but the header has {} columns",
                    rec.len(),
                    names.len()
                )),
            },
            Err(e) => PendingRow {
                body: "[]".to_owned(),
                issue: Some(format!("unreadable CSV row: {e}")),
            },
        };
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Reject::bad(
            "EMPTY_UPLOAD",
            "the CSV has a header but no data rows",
        ));
    }
    Ok(rows)
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
    Extension(t): Extension<Tenant>,
    req: Request,
) -> Response {
    let bytes = match bulk_csv_bytes(&s, req).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let max_rows = s.max_csv_rows;
    let rows = match tokio::task::spawn_blocking(move || parse_bulk_csv(&bytes, max_rows)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(r)) => return r.into_response(),
        Err(_) => return Reject::unavailable().into_response(),
    };
    submit(&s, &t, EventKind::BulkCsv, rows).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_uploads(
    State(s): State<AppState>,
    Extension(t): Extension<Tenant>,
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
        uploads: s.registry.list(&t.0, limit),
    })
    .into_response()
}

async fn upload_status(
    State(s): State<AppState>,
    Extension(t): Extension<Tenant>,
    Path(id): Path<String>,
) -> Response {
    match s.registry.status(&t.0, &id) {
        Some(st) => Json(st).into_response(),
        None => Reject::not_found("upload").into_response(),
    }
}

async fn upload_errors(
    State(s): State<AppState>,
    Extension(t): Extension<Tenant>,
    Path(id): Path<String>,
) -> Response {
    match s.registry.errors(&t.0, &id) {
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

    #[test]
    fn splits_top_level_elements_exactly() {
        let text = " [ {\"a\":\"x,]}\\\"\"} ,\n{\"b\":[1,{\"c\":2}]},3 ,\"s\" ] ";
        let parts = split_json_array(text).unwrap();
        assert_eq!(
            parts,
            [
                "{\"a\":\"x,]}\\\"\"}",
                "{\"b\":[1,{\"c\":2}]}",
                "3",
                "\"s\""
            ]
        );
        assert_eq!(split_json_array("[]").unwrap().len(), 0);
        assert_eq!(split_json_array(" [ ] ").unwrap().len(), 0);
        assert!(split_json_array("{}").is_none());
        assert!(split_json_array("\"[\"").is_none());
    }

    #[test]
    fn certify_validation_codes() {
        let ok = br#"[{"preEnrollmentCode":"p","recipient":{"age":"30"}}]"#;
        assert_eq!(validate_certify(ok, 10).unwrap().len(), 1);
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
            let r = validate_certify(body, 10).unwrap_err();
            assert_eq!(r.code(), *code, "{:?}", String::from_utf8_lossy(body));
        }
        let many = format!(
            "[{}]",
            [r#"{"preEnrollmentCode":"p","recipient":{"age":"1"}}"#; 3].join(",")
        );
        assert_eq!(
            validate_certify(many.as_bytes(), 2).unwrap_err().code(),
            "TOO_MANY_EVENTS"
        );
        // Deep nesting is refused, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            validate_certify(deep.as_bytes(), 10).unwrap_err().code(),
            "INVALID_FIELD_TYPE"
        );
        let deep = format!(
            r#"[{{"preEnrollmentCode":"p","recipient":{{"age":"1"}},"x":{}1{}}},{{"meta":{}1{}}}]"#,
            "[".repeat(100_000),
            "]".repeat(100_000),
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(validate_certify(deep.as_bytes(), 10).is_err());
    }

    #[test]
    fn csv_rows_become_objects_or_issues() {
        let csv = "\u{feff}preEnrollmentCode,recipientName,vaccinationDose\np1,\"A, \"\"B\"\"\",1\np2,x\n";
        let rows = parse_bulk_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].body,
            r#"{"preEnrollmentCode":"p1","recipientName":"A, \"B\"","vaccinationDose":"1"}"#
        );
        assert!(rows[0].issue.is_none());
        assert_eq!(rows[1].body, r#"["p2","x"]"#);
        assert!(rows[1].issue.as_deref().unwrap().contains("2 cells"));
        assert_eq!(
            parse_bulk_csv(b"bogus\n1\n", 10).unwrap_err().code(),
            "INVALID_CSV_HEADER"
        );
        assert_eq!(
            parse_bulk_csv(b"preEnrollmentCode,preEnrollmentCode\n1,2\n", 10)
                .unwrap_err()
                .code(),
            "INVALID_CSV_HEADER"
        );
        assert_eq!(
            parse_bulk_csv(b"preEnrollmentCode\n", 10)
                .unwrap_err()
                .code(),
            "EMPTY_UPLOAD"
        );
        assert_eq!(parse_bulk_csv(b"", 10).unwrap_err().code(), "EMPTY_UPLOAD");
        assert_eq!(
            parse_bulk_csv(b"preEnrollmentCode\n1\n2\n3\n", 2)
                .unwrap_err()
                .code(),
            "TOO_MANY_ROWS"
        );
    }

    #[test]
    fn bearer_tokens_map_to_tenants() {
        let tokens = vec![(b"0123456789abcdef".to_vec(), Arc::<str>::from("in"))];
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
    }
}
