//! The one application state, given to page rendering and server functions alike.

use axum::extract::FromRef;
use leptos::prelude::*;

use crate::error::AppError;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub platform: platform::Platform,
    /// The Docker engine (sites' logs); `None` when provisioning is off in this process.
    pub runtime: Option<std::sync::Arc<platform::infra::docker::Runtime>>,
}

/// The state from a server function's context. Missing state is a wiring bug in the
/// server, logged and reported to the user as an internal error.
pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        // Where it happened: a request's parts are in the context of a page render and of a
        // server function called over HTTP; none means the code runs outside any request's
        // reactive owner (a future that outlived its page, say).
        let request = use_context::<axum::http::request::Parts>()
            .map(|parts| format!("{} {}", parts.method, parts.uri));
        tracing::error!(
            ?request,
            owner = Owner::current().is_some(),
            "AppState missing from the server function context"
        );
        AppError::Internal
    })
}
