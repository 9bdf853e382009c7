//! The axum router: health, pages, server functions and static assets.

use std::time::Duration;

use app::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::db::{self, Health};
use serde_json::json;
use tower_http::trace::TraceLayer;

/// How long `/healthz` waits for the database before calling it down. Short, so a load
/// balancer's probe gets its answer before its own timeout.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let render = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::api::router())
        .leptos_routes_with_context(&state, routes, context.clone(), render)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `200` with the database's latency when it answers, `503` with the reason when not.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match db::check(&state.platform.db, HEALTH_DEADLINE).await {
        Health::Up { latency } => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "database": { "status": "up", "latency_ms": latency.as_secs_f64() * 1000.0 },
            })),
        ),
        Health::Down { reason } => {
            tracing::warn!(%reason, "health check: database down");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "database": { "status": "down", "error": reason },
                })),
            )
        }
    }
}
