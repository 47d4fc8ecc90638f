//! A panic while answering a request is a bug on our side, not an overload: it is answered 500
//! (never a retryable 503, which makes clients retry into it), logged with a request id, and the
//! same id is in the answer so an operator can find the log line. Every listener (ingest, downloads,
//! verify, SQL) installs this as its outermost layer.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::FutureExt as _;
use serde::Serialize;

/// Header carrying the request id on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn request_id() -> String {
    // Process start time in the high part, so ids of restarts do not repeat.
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{start:x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

#[derive(Serialize)]
struct Body {
    error: Detail,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    code: &'static str,
    message: String,
    request_id: String,
}

/// The middleware: `Router::layer(axum::middleware::from_fn(catch_panics))`.
pub async fn catch_panics(request: Request, next: Next) -> Response {
    let id = request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic payload".into());
            // The path is logged, never the body (it may carry personal data).
            tracing::error!(request_id = %id, %method, path = %path, panic = %what, "request handler panicked; answered 500");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(Body {
                    error: Detail {
                        code: "INTERNAL",
                        message: "an internal error occurred; it was logged, report the request id"
                            .into(),
                        request_id: id.clone(),
                    },
                }),
            )
                .into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn answer(
        addr: std::net::SocketAddr,
        path: &str,
    ) -> (StatusCode, Option<String>, String) {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, id, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_its_request_id() {
        let app = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route(
                "/boom",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("injected");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(catch_panics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (status, id, body) = answer(addr, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let id = id.expect("request id header");
        assert!(body.contains(&id) && body.contains("INTERNAL"), "{body}");
        let (status, other, body) = answer(addr, "/ok").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
        assert_ne!(other.expect("every answer has an id"), id);
    }
}
