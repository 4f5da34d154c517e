//! `GET /metrics`: the guard's counters (the library's `metrics` feature,
//! names `jwt_revoke_*`) in the Prometheus text format.
//!
//! `metrics-exporter-prometheus` is used without its own HTTP listener: the
//! recorder is installed in the process and this route renders it on
//! request, on the demo's own address. The route needs no token, like most
//! scrape endpoints: the counters carry no subject, token or claim (labels
//! are error codes, reasons and cache results), and the demo listens on
//! 127.0.0.1 by default. A deployment facing the internet would serve it
//! on an internal port instead.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// The Prometheus text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Installs the Prometheus recorder as the process's `metrics` recorder.
///
/// Call it before building the guard: the guard registers its counters
/// once, at build time, and a counter registered before any recorder
/// exists reports nowhere.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new().install_recorder()
}

/// The `/metrics` route, for merging into the application's router.
pub fn router<S: Clone + Send + Sync + 'static>(handle: PrometheusHandle) -> Router<S> {
    Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
}

async fn render(State(handle): State<PrometheusHandle>) -> impl IntoResponse {
    // The exporter's periodic housekeeping (histogram draining, idle
    // metrics), done at each scrape instead of on a background task.
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render())
}
