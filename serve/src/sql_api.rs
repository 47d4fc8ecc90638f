//! The analytics read side: `POST /api/sql`, the named dashboard queries and the dashboard page.
//!
//! ```text
//! POST /api/sql                 {"sql": "SELECT ..."}; JSON answer, or Arrow IPC stream with
//!                               Accept: application/vnd.apache.arrow.stream
//! GET  /api/dashboard           the named queries (name, title, chart)
//! GET  /api/dashboard/{name}    one named query, filters ?from=&to=&tenant=&state=&vaccine=
//! GET  /dashboard/...           the dashboard page (static files, charting library included)
//! ```
//!
//! Every `/api` route needs a bearer token from `[analytics]`; `analytics` tokens read the
//! PII-free tables, `full` tokens also `accepted`. Queries are read-only and bounded in rows and
//! time ([`divoc_analytics`]).

use std::path::{Component, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use divoc_analytics::{
    Access, AnalyticsError, DashboardQueries, Filters, Limits, QueryResult, SqlEngine,
};
use serde::{Deserialize, Serialize};

/// `[analytics]` of `serve.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSection {
    /// Bearer tokens for the SQL API and the dashboard's queries.
    #[serde(default)]
    pub tokens: Vec<AnalyticsToken>,
    /// Environment variable holding one more token, with `analytics` access.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Rows returned at most per query.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Time a query may take, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// The named dashboard queries (one chart each).
    #[serde(default = "default_queries")]
    pub queries: PathBuf,
    /// Directory of the dashboard page's files.
    #[serde(default = "default_page")]
    pub page: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsToken {
    pub token: String,
    /// `analytics` (PII-free tables) or `full` (also `accepted`).
    #[serde(default = "default_access")]
    pub access: String,
}

fn default_max_rows() -> usize {
    10_000
}
fn default_timeout() -> u64 {
    10_000
}
fn default_queries() -> PathBuf {
    PathBuf::from("../dashboards/queries.toml")
}
fn default_page() -> PathBuf {
    PathBuf::from("../dashboards/page")
}
fn default_access() -> String {
    "analytics".into()
}

pub struct SqlState {
    pub analytics: SqlEngine,
    pub full: SqlEngine,
    pub tokens: Vec<(String, Access)>,
    pub queries: DashboardQueries,
    pub limits: Limits,
    pub page: PathBuf,
}

impl SqlState {
    pub async fn open(
        section: &AnalyticsSection,
        storage_url: &str,
        storage_options: &std::collections::BTreeMap<String, String>,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        for t in &section.tokens {
            let access = match t.access.as_str() {
                "analytics" => Access::Analytics,
                "full" => Access::Full,
                other => anyhow::bail!(
                    "[analytics] token access {other:?}: use \"analytics\" or \"full\""
                ),
            };
            if t.token.len() < crate::MIN_TOKEN_CHARS {
                anyhow::bail!(
                    "[analytics] tokens must be at least {} characters",
                    crate::MIN_TOKEN_CHARS
                );
            }
            tokens.push((t.token.clone(), access));
        }
        if let Some(var) = &section.token_env {
            if let Ok(v) = std::env::var(var) {
                if v.len() >= crate::MIN_TOKEN_CHARS {
                    tokens.push((v, Access::Analytics));
                }
            }
        }
        Ok(Self {
            analytics: SqlEngine::open(storage_url, storage_options, Access::Analytics).await?,
            full: SqlEngine::open(storage_url, storage_options, Access::Full).await?,
            tokens,
            queries: DashboardQueries::load(&resolve(&section.queries))?,
            limits: Limits {
                max_rows: section.max_rows,
                timeout: Duration::from_millis(section.timeout_ms),
            },
            page: resolve(&section.page),
        })
    }

    fn access(&self, headers: &HeaderMap) -> Option<Access> {
        let given = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))?
            .1
            .trim();
        // Every token is compared, so timing does not tell which one nearly matched.
        let mut found = None;
        for (t, a) in &self.tokens {
            if crate::routes::same_secret(t, given) {
                found = Some(*a);
            }
        }
        found
    }

    fn engine(&self, access: Access) -> &SqlEngine {
        match access {
            Access::Analytics => &self.analytics,
            Access::Full => &self.full,
        }
    }
}

pub fn router(state: Arc<SqlState>) -> Router {
    Router::new()
        .route("/api/sql", post(sql))
        .route("/api/dashboard", get(list_queries))
        .route("/api/dashboard/{name}", get(named))
        .route(
            "/dashboard",
            get(|| async { axum::response::Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(page_index))
        .route("/dashboard/{*path}", get(page_file))
        .with_state(state)
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }),
    )
        .into_response()
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "send Authorization: Bearer <token> with a token from [analytics] tokens",
    )
}

fn query_error(e: AnalyticsError) -> Response {
    match e {
        AnalyticsError::Refused(m) => error(StatusCode::BAD_REQUEST, "QUERY_REFUSED", m),
        AnalyticsError::Timeout(_) => {
            error(StatusCode::GATEWAY_TIMEOUT, "QUERY_TIMEOUT", e.to_string())
        }
        other => error(StatusCode::BAD_REQUEST, "BAD_QUERY", other.to_string()),
    }
}

#[derive(Serialize)]
struct ColumnInfo {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

#[derive(Serialize)]
struct Answer {
    columns: Vec<ColumnInfo>,
    rows: Vec<serde_json::Map<String, serde_json::Value>>,
    truncated: bool,
    elapsed_ms: u64,
}

fn json_answer(result: &QueryResult, started: Instant) -> Response {
    let mut rows = Vec::with_capacity(result.rows());
    for b in &result.batches {
        match divoc_connectors::sinks::ndjson::json_rows(b, &[]) {
            Ok(r) => rows.extend(r),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "ENCODING", e.to_string()),
        }
    }
    Json(Answer {
        columns: result
            .schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
            })
            .collect(),
        rows,
        truncated: result.truncated,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
    .into_response()
}

fn arrow_answer(result: &QueryResult) -> Response {
    let mut buf = Vec::new();
    let written = (|| {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &result.schema)?;
        for b in &result.batches {
            w.write(b)?;
        }
        w.finish()
    })();
    match written {
        Ok(()) => (
            [
                (header::CONTENT_TYPE, "application/vnd.apache.arrow.stream"),
                (
                    header::HeaderName::from_static("x-divoc-truncated"),
                    if result.truncated { "true" } else { "false" },
                ),
            ],
            buf,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "ENCODING", e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

async fn sql(State(s): State<Arc<SqlState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(access) = s.access(&headers) else {
        return unauthorized();
    };
    let req: SqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_BODY",
                format!("send {{\"sql\": \"SELECT ...\"}}: {e}"),
            )
        }
    };
    let started = Instant::now();
    let result = match s.engine(access).query(&req.sql, &s.limits).await {
        Ok(r) => r,
        Err(e) => return query_error(e),
    };
    let wants_arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.apache.arrow.stream"));
    if wants_arrow {
        arrow_answer(&result)
    } else {
        json_answer(&result, started)
    }
}

#[derive(Serialize)]
struct QueryInfo<'a> {
    name: &'a str,
    title: &'a str,
    chart: &'a str,
}

async fn list_queries(State(s): State<Arc<SqlState>>, headers: HeaderMap) -> Response {
    if s.access(&headers).is_none() {
        return unauthorized();
    }
    let list: Vec<QueryInfo<'_>> = s
        .queries
        .queries
        .iter()
        .map(|q| QueryInfo {
            name: &q.name,
            title: &q.title,
            chart: &q.chart,
        })
        .collect();
    Json(serde_json::json!({ "queries": list })).into_response()
}

async fn named(
    State(s): State<Arc<SqlState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(access) = s.access(&headers) else {
        return unauthorized();
    };
    let Ok(Query(filters)) = filters else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_QUERY",
            "filters are from, to (YYYY-MM-DD), tenant, state, vaccine",
        );
    };
    let Some(q) = s.queries.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "UNKNOWN_QUERY",
            format!("no dashboard query {name:?}; GET /api/dashboard lists them"),
        );
    };
    let started = Instant::now();
    match s.engine(access).run_named(q, &filters, &s.limits).await {
        Ok(r) => json_answer(&r, started),
        Err(e) => query_error(e),
    }
}

async fn page_index(State(s): State<Arc<SqlState>>) -> Response {
    serve_file(&s, "index.html")
}

async fn page_file(State(s): State<Arc<SqlState>>, Path(path): Path<String>) -> Response {
    serve_file(&s, &path)
}

/// A file of the page directory; paths that leave it are not found.
fn serve_file(s: &SqlState, path: &str) -> Response {
    let rel = std::path::Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such file");
    }
    let file = s.page.join(rel);
    let Ok(bytes) = std::fs::read(&file) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such file");
    };
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("md") | Some("txt") => "text/plain; charset=utf-8",
        None => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, kind)], bytes).into_response()
}
