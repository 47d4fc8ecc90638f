//! Serves Prometheus metrics on `/metrics`.

use anyhow::{Context, Result};
use axum::routing::get;
use axum::Router;
use divoc_pipeline::metrics::Metrics;

/// Keeps the metrics server alive; dropping it stops the server.
pub struct MetricsServer {
    _shutdown: tokio::sync::oneshot::Sender<()>,
    pub addr: std::net::SocketAddr,
}

pub fn serve_metrics(
    rt: &tokio::runtime::Runtime,
    listen: &str,
    metrics: Metrics,
) -> Result<MetricsServer> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| {
            format!("metrics.listen {listen:?}: cannot bind; choose a free address")
        })?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move { m.render() }
        }),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(MetricsServer {
        _shutdown: tx,
        addr,
    })
}
