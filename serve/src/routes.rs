//! HTTP handlers of the download API.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::events::DownloadEvent;
use super::formats::{Format, FormatError, FormatQuery};
use super::store::{CertStatus, CertificateStore, StoredCertificate};
use super::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/divoc/api/v1/certificate/revoked",
            axum::routing::post(revoked),
        )
        .route("/divoc/api/v1/certificate/status/{id}", get(status))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/did.json", get(did_document))
        .route("/certificate/api/v1/dsc.pem", get(dsc))
        .route("/certificate/api/certificatePDF/{code}", get(pdf_by_code))
        .route("/certificate/api/v1/certificates", get(list_by_code))
        .route(
            "/certificate/api/v1/certificates/{id}/{format}",
            get(download),
        )
        .with_state(state)
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
            },
        }),
    )
        .into_response()
}

async fn did_document(State(state): State<Arc<AppState>>) -> Response {
    match &state.did_document {
        Some(doc) => (
            [(header::CONTENT_TYPE, "application/did+json")],
            doc.clone(),
        )
            .into_response(),
        None => error(
            404,
            "NOT_CONFIGURED",
            "no [did] section in the serve config",
        ),
    }
}

/// `ok`, or what the certificate index could not read (503: some certificates are not served).
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let unreadable = state
        .unreadable
        .read()
        .map(|u| u.clone())
        .unwrap_or_default();
    if unreadable.is_empty() {
        return "ok".into_response();
    }
    #[derive(Serialize)]
    struct Unreadable {
        object: String,
        error: String,
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({
            "status": "degraded",
            "unreadableObjects": unreadable
                .into_iter()
                .map(|(object, error)| Unreadable { object, error })
                .collect::<Vec<_>>(),
        })),
    )
        .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    certificate_id: String,
    /// `valid`, `revoked`, `suspended` or `unknown`.
    status: &'static str,
    /// Last day of a suspension (`YYYY-MM-DD`); absent: until lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
}

async fn status_of(state: &Arc<AppState>, id: String) -> Result<StatusAnswer, Response> {
    let today = (chrono::Utc::now().timestamp().div_euclid(86_400)) as i32;
    let lookup_id = id.clone();
    let status = lookup(state, move |s| s.status(&lookup_id, today)).await?;
    let (status, until) = match status {
        CertStatus::Unknown => ("unknown", None),
        CertStatus::Valid => ("valid", None),
        CertStatus::Revoked => ("revoked", None),
        CertStatus::Suspended { until } => {
            ("suspended", until.map(divoc_model::schema::format_date))
        }
    };
    Ok(StatusAnswer {
        certificate_id: id,
        status,
        until,
    })
}

/// DIVOC's online revocation check: the body is the signed credential (what DIVOC's verifier
/// sends) or `{"certificateId": ...}`; 200 when revoked or suspended, 404 otherwise. Public, as
/// verifiers hold no token; it says nothing but the status.
async fn revoked(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(
            400,
            "BAD_BODY",
            "send the signed credential, or {\"certificateId\": \"...\"}",
        );
    };
    let id = v["certificateId"]
        .as_str()
        .or_else(|| v["evidence"][0]["certificateId"].as_str());
    let Some(id) = id else {
        return error(
            400,
            "BAD_BODY",
            "no certificateId and no evidence[0].certificateId in the body",
        );
    };
    match status_of(&state, id.to_owned()).await {
        Ok(a) if matches!(a.status, "revoked" | "suspended") => Json(a).into_response(),
        Ok(a) => (StatusCode::NOT_FOUND, Json(a)).into_response(),
        Err(r) => r,
    }
}

/// `{certificateId, status: valid | revoked | suspended | unknown, until?}`; 404 when unknown.
async fn status(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match status_of(&state, id).await {
        Ok(a) if a.status == "unknown" => (StatusCode::NOT_FOUND, Json(a)).into_response(),
        Ok(a) => Json(a).into_response(),
        Err(r) => r,
    }
}

/// Runs a lookup in the certificate index off the I/O threads; a failed read answers 500 and
/// is logged (never with the request's personal data).
async fn lookup<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&CertificateStore) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "certificate index read failed");
            Err(error(
                500,
                "INDEX_UNAVAILABLE",
                "the certificate index could not be read",
            ))
        }
        Err(_) => Err(error(
            500,
            "INDEX_UNAVAILABLE",
            "the certificate index lookup stopped",
        )),
    }
}

/// Constant-time comparison, so response timing does not reveal how much of a token matched.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The tenant of the request's bearer token (the error response is boxed: it is large).
fn tenant_of(state: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Box::new(error(
            401,
            "UNAUTHORIZED",
            "missing Authorization: Bearer <token>",
        )));
    };
    // The scheme is case-insensitive (RFC 7235 section 2.1).
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    state
        .tokens
        .iter()
        .find(|(t, _)| same_secret(t, token))
        .map(|(_, tenant)| tenant.clone())
        .ok_or_else(|| Box::new(error(401, "UNAUTHORIZED", "unknown bearer token")))
}

fn query_or_error(
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<FormatQuery, Box<Response>> {
    q.map(|Query(q)| q).map_err(|e| {
        Box::new(error(
            400,
            "BAD_QUERY",
            format!("{}; accepted parameters: language, fnt, gnt", e.body_text()),
        ))
    })
}

/// The request's tenant and its format options, or the error response.
fn authorized_query(
    state: &AppState,
    headers: &HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<(String, FormatQuery), Box<Response>> {
    Ok((tenant_of(state, headers)?, query_or_error(q)?))
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    match &state.jwks {
        Some(j) => ([(header::CONTENT_TYPE, "application/json")], j.clone()).into_response(),
        None => error(
            404,
            "SHC_NOT_CONFIGURED",
            "this server issues no SMART Health Cards",
        ),
    }
}

async fn dsc(State(state): State<Arc<AppState>>) -> Response {
    match &state.dsc_pem {
        Some(p) => (
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            p.clone(),
        )
            .into_response(),
        None => error(404, "DCC_NOT_CONFIGURED", "this server issues no EU DCCs"),
    }
}

/// `?preEnrollmentCode=...`, or the facility's print search `?mobile=...&dob=YYYY-MM-DD`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(rename = "preEnrollmentCode")]
    pre_enrollment_code: Option<String>,
    mobile: Option<String>,
    dob: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    certificate_id: String,
    dose: i64,
    links: Vec<String>,
}

async fn list_by_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let tenant = match tenant_of(&state, &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let usage = "pass ?preEnrollmentCode=<code>, or ?mobile=<number>&dob=<YYYY-MM-DD>";
    let Ok(Query(q)) = q else {
        return error(400, "BAD_QUERY", usage);
    };
    let query = match (q.pre_enrollment_code, q.mobile, q.dob) {
        (Some(code), None, None) => Ok((code, None)),
        (None, Some(mobile), Some(dob)) => match divoc_model::schema::parse_date(&dob) {
            Some(d) => Ok((mobile, Some(d))),
            None => Err("dob must be a date, YYYY-MM-DD"),
        },
        _ => Err(usage),
    };
    let (code_or_mobile, dob) = match query {
        Ok(q) => q,
        Err(why) => return error(400, "BAD_QUERY", why),
    };
    let doses = match lookup(&state, move |s| match dob {
        None => s.doses(&tenant, &code_or_mobile),
        Some(d) => s.by_contact(&tenant, &code_or_mobile, d),
    })
    .await
    {
        Ok(d) => d,
        Err(r) => return r,
    };
    if doses.is_empty() {
        return error(404, "NOT_FOUND", "no certificate for this query");
    }
    let listed: Vec<Listed> = doses
        .iter()
        .map(|d| Listed {
            certificate_id: d.certificate_id.clone(),
            dose: d.dose,
            links: Format::ALL
                .iter()
                .map(|(n, _)| format!("/certificate/api/v1/certificates/{}/{n}", d.certificate_id))
                .collect(),
        })
        .collect();
    Json(listed).into_response()
}

async fn pdf_by_code(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(code): Path<String>,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Response {
    let (tenant, query) = match authorized_query(&state, &headers, q) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let doses = {
        let tenant = tenant.clone();
        match lookup(&state, move |s| s.doses(&tenant, &code)).await {
            Ok(d) => d,
            Err(r) => return r,
        }
    };
    // The latest dose's certificate, with the full history printed on it.
    let Some(cert) = doses.last().cloned() else {
        record(&state, &tenant, None, Format::Pdf, &query, 404, 0);
        return error(
            404,
            "NOT_FOUND",
            "no certificate for this preEnrollmentCode",
        );
    };
    serve_format(state, tenant, cert, doses, Format::Pdf, query).await
}

async fn download(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, format)): Path<(String, String)>,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Response {
    let (tenant, query) = match authorized_query(&state, &headers, q) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(fmt) = Format::parse(&format) else {
        let names: Vec<&str> = Format::ALL.iter().map(|(n, _)| *n).collect();
        return error(
            404,
            "UNKNOWN_FORMAT",
            format!("unknown format {format:?}; use one of {}", names.join(", ")),
        );
    };
    let found = {
        let tenant = tenant.clone();
        lookup(&state, move |s| {
            // Another tenant's certificate is as absent as a missing one: the tenant is part of
            // the key.
            let Some(cert) = s.by_id(&tenant, &id)? else {
                return Ok(Found::Missing);
            };
            if s.is_withdrawn(&tenant, &id)? {
                return Ok(Found::Withdrawn);
            }
            let doses = s.doses(&tenant, &cert.pre_enrollment_code)?;
            Ok(Found::Current(cert, doses))
        })
        .await
    };
    let (cert, doses) = match found {
        Ok(Found::Current(cert, doses)) => (cert, doses),
        Ok(Found::Withdrawn) => {
            record(&state, &tenant, None, fmt, &query, 410, 0);
            return error(
                410,
                "CERTIFICATE_REVOKED",
                "this certificate was revoked or replaced by a correction; look up the current one by preEnrollmentCode",
            );
        }
        Ok(Found::Missing) => {
            record(&state, &tenant, None, fmt, &query, 404, 0);
            return error(404, "NOT_FOUND", "no such certificate");
        }
        Err(r) => return r,
    };
    serve_format(state, tenant, cert, doses, fmt, query).await
}

enum Found {
    Current(Arc<StoredCertificate>, Vec<Arc<StoredCertificate>>),
    Withdrawn,
    Missing,
}

async fn serve_format(
    state: Arc<AppState>,
    tenant: String,
    cert: Arc<StoredCertificate>,
    doses: Vec<Arc<StoredCertificate>>,
    fmt: Format,
    query: FormatQuery,
) -> Response {
    let worker = state.clone();
    let q = query.clone();
    let c = cert.clone();
    let now = chrono::Utc::now().timestamp();
    // Rendering and signing are CPU work: keep them off the I/O threads.
    let produced =
        tokio::task::spawn_blocking(move || worker.formats.produce(fmt, &c, &doses, &q, now)).await;
    let result = match produced {
        Ok(r) => r,
        Err(_) => Err(FormatError {
            status: 500,
            code: "FORMAT_FAILED",
            message: "the format worker stopped".into(),
        }),
    };
    match result {
        Ok((body, language)) => {
            record(
                &state,
                &tenant,
                Some(&cert.certificate_id),
                fmt,
                &FormatQuery {
                    language: language.clone().or(query.language.clone()),
                    ..Default::default()
                },
                200,
                body.len() as u64,
            );
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(fmt.content_type()),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "inline; filename=\"{}.{}\"",
                cert.certificate_id,
                fmt.name()
            )) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Some(l) = language.and_then(|l| HeaderValue::from_str(&l).ok()) {
                h.insert(header::CONTENT_LANGUAGE, l);
            }
            resp
        }
        Err(e) => {
            record(
                &state,
                &tenant,
                Some(&cert.certificate_id),
                fmt,
                &query,
                e.status,
                0,
            );
            error(e.status, e.code, e.message)
        }
    }
}

fn record(
    state: &AppState,
    tenant: &str,
    certificate_id: Option<&str>,
    fmt: Format,
    query: &FormatQuery,
    status: u16,
    bytes: u64,
) {
    state.log.record(DownloadEvent {
        time_ms: chrono::Utc::now().timestamp_millis(),
        tenant: tenant.to_owned(),
        certificate_id: certificate_id.map(str::to_owned),
        format: fmt.name().to_owned(),
        language: query.language.clone(),
        status,
        bytes,
    });
}
