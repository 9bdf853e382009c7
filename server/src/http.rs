//! The axum router: health, pages, server functions and static assets.

use std::time::Duration;

use app::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::infra::db::{self, Health};
use serde_json::json;
use tower_http::trace::TraceLayer;

/// How long `/healthz` waits for the database before calling it down. Short, so a load
/// balancer's probe gets its answer before its own timeout.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// How long a page may take to render. Pages render in milliseconds; one that has not
/// rendered by then never will (Leptos can lose a Suspense wake-up, see the test servers'
/// `Turn` in test-support), and the visitor gets an error page that says to reload instead
/// of a request that never ends.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);

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
    // Live pages and live logs count against the same caps.
    let streams = axum::Extension(std::sync::Arc::new(
        crate::site_events::OpenStreams::default(),
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/api/sites/{id}/events",
            get(crate::site_events::site_events).layer(streams.clone()),
        )
        .route(
            "/api/sites/events",
            get(crate::site_events::organization_site_events).layer(streams.clone()),
        )
        .route(
            "/api/sites/{id}/logs",
            get(crate::site_events::site_logs).layer(streams),
        )
        .route(
            "/api/sites/{id}/logs.txt",
            get(crate::site_events::download_logs),
        )
        .route("/api/webhooks/stripe", post(stripe_webhook))
        .route(
            "/admin/organizations.csv",
            get(crate::exports::organizations),
        )
        .route("/admin/users.csv", get(crate::exports::users))
        .route("/admin/jobs.csv", get(crate::exports::jobs))
        .route("/admin/sites.csv", get(crate::exports::sites))
        .route(
            "/admin/subscriptions.csv",
            get(crate::exports::subscriptions),
        )
        .route("/admin/incidents.csv", get(crate::exports::incidents))
        .route("/admin/audit.csv", get(crate::exports::audit))
        .merge(crate::api::router())
        .leptos_routes_with_context(&state, routes, context.clone(), render)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::form_flash::form_flash,
        ))
        .layer(middleware::from_fn_with_state(PAGE_DEADLINE, page_deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_writes,
        ))
        .layer(middleware::from_fn(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(count_requests))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Counts each answered request by route (the matched pattern, never the raw path: ids
/// would explode the series) and status, and times it.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    platform::infra::metrics::HTTP_REQUESTS.inc(&[&route, &status]);
    platform::infra::metrics::HTTP_DURATION.observe(&[&route], started.elapsed());
    response
}

/// CSRF protection for every state-changing request that a browser could send with our
/// session cookie (server functions and form posts): its `Origin` (or, lacking one, its
/// `Referer`) must be the configured public URL's origin. Browsers always send `Origin`
/// on cross-site POSTs and cannot forge it. `/api/v1` authenticates by bearer key, never by
/// cookie, so it needs no check; nor does Stripe's webhook, which is authenticated by its
/// signature and never carries a cookie.
async fn same_origin_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    if safe || path.starts_with("/api/v1/") || path == "/api/webhooks/stripe" {
        return next.run(request).await;
    }
    let expected = state.platform.public_url.origin().ascii_serialization();
    let presented = request_origin(request.headers());
    if presented.as_deref() == Some(expected.as_str()) {
        next.run(request).await
    } else {
        tracing::warn!(?presented, %expected, path = %request.uri().path(), "cross-origin write refused");
        (
            StatusCode::FORBIDDEN,
            "Refused: this request did not come from a Slipway page (its Origin does not match the configured public_url).",
        )
            .into_response()
    }
}

/// The largest request body the dashboard accepts (forms, server functions, Stripe's
/// events, which stay far below it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Pages answer within `deadline` or with a 503 error page. Not server functions and live
/// streams (under `/api/`) nor exports (`.csv`): they keep their own pace.
async fn page_deadline(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/api/") || path.ends_with(".csv") {
        return next.run(request).await;
    }
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(%path, ?deadline, "page not rendered within its deadline");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                axum::response::Html(
                    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                     <title>Try again · Slipway</title></head><body><h1>This page took too \
                     long to prepare</h1><p>Nothing was changed. \
                     <a href=\"\">Reload the page</a> to try again.</p></body></html>",
                ),
            )
                .into_response()
        }
    }
}

/// Refuses a body over [`MAX_BODY_BYTES`] with 413: at once when its `Content-Length`
/// says so, and a chunked one is cut off there (its reader gets an error, so the request
/// fails as malformed instead of filling memory).
async fn body_limit(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The request body is larger than the {} KiB this server accepts.",
                MAX_BODY_BYTES / 1024
            ),
        )
            .into_response();
    }
    let request = request
        .map(|body| axum::body::Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES)));
    next.run(request).await
}

/// Headers every dashboard response carries: never framed (clickjacking), no MIME
/// sniffing, the referrer only within Slipway (reset and invitation links carry tokens in
/// their query), HSTS when served over HTTPS. Pages set their own Content-Security-Policy
/// (with the nonce of their hydration scripts); any other HTML gets the same policy
/// without a nonce.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::http::HeaderValue;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html
        && !headers.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(policy) = HeaderValue::from_str(&app::request::content_security_policy(None))
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if state.platform.public_url.scheme() == "https" {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The origin a browser says a request comes from: `Origin`, else the origin of `Referer`.
fn request_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    match text(header::ORIGIN) {
        Some(origin) => Some(origin.to_owned()),
        None => text(header::REFERER)
            .and_then(|referer| url::Url::parse(referer).ok())
            .map(|url| url.origin().ascii_serialization()),
    }
}

/// Stripe's webhook: the raw body and its `Stripe-Signature`, verified, stored once, and
/// answered at once; the billing worker handles the event. A delivery that fails
/// verification is refused with 400 and has no effect.
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use platform::billing::{Received, WebhookError};
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    match platform::billing::receive_webhook(&state.platform, &body, signature).await {
        Ok(Received::Accepted { id, kind }) => {
            tracing::info!(event = %id, %kind, "Stripe event received");
            Json(json!({ "received": true })).into_response()
        }
        Ok(Received::Duplicate { .. }) => {
            Json(json!({ "received": true, "duplicate": true })).into_response()
        }
        Err(WebhookError::NotConfigured) => (
            StatusCode::NOT_FOUND,
            Json(
                json!({ "error": "Stripe is not configured on this server (local billing mode)." }),
            ),
        )
            .into_response(),
        Err(error @ (WebhookError::Signature(_) | WebhookError::Malformed(_))) => {
            tracing::warn!(%error, "Stripe webhook refused");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": error.to_string() })),
            )
                .into_response()
        }
        Err(WebhookError::Internal(error)) => {
            // Stripe retries a delivery that did not get a 2xx.
            tracing::error!(%error, "Stripe webhook could not be stored");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "not stored; retry" })),
            )
                .into_response()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A page that never renders gets the error page once its deadline has passed; a server
    /// function under `/api/` slower than that deadline still gets its answer.
    #[tokio::test]
    async fn a_page_that_never_renders_gets_an_error_page_in_time() {
        let deadline = Duration::from_millis(200);
        let router = Router::new()
            .route("/stuck", get(std::future::pending::<&'static str>))
            .route(
                "/api/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "done"
                }),
            )
            .layer(middleware::from_fn_with_state(deadline, page_deadline));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();

        let asked = std::time::Instant::now();
        let stuck = client.get(format!("{base}/stuck")).send().await.unwrap();
        assert_eq!(stuck.status().as_u16(), 503);
        assert_eq!(stuck.headers()["retry-after"], "1");
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "answered at the deadline"
        );
        let page = stuck.text().await.unwrap();
        assert!(
            page.contains("This page took too long to prepare"),
            "{page}"
        );
        assert!(page.contains("Reload the page"), "{page}");

        let slow = client.get(format!("{base}/api/slow")).send().await.unwrap();
        assert_eq!(slow.status().as_u16(), 200);
        assert_eq!(slow.text().await.unwrap(), "done");
    }
}
