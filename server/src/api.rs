//! The REST API under `/api/v1`, authenticated by organization API keys (Bearer).

use app::state::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use platform::tenancy::api_keys::{self, AuthFailure, KeyAuth, Scope};
use platform::tenancy::organizations;
use serde_json::json;

/// Every `/api/v1` route: the router is built from this list, and the tests that send
/// malformed requests to every route read it, so a new route is covered as it is added.
pub fn endpoints() -> Vec<(&'static str, Method, MethodRouter<AppState>)> {
    vec![("/api/v1/organization", Method::GET, get(organization))]
}

pub fn router() -> Router<AppState> {
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, (path, _, handler)| {
            router.route(path, handler)
        })
}

/// `GET /api/v1/organization`: the key's organization, its plan and member count.
async fn organization(
    State(state): State<AppState>,
    ApiKey(auth): ApiKey,
) -> Result<Json<organizations::Overview>, ApiError> {
    auth.require(Scope::Read)?;
    Ok(Json(
        organizations::overview(&state.platform, auth.organization_id).await?,
    ))
}

/// A request carrying a valid `Authorization: Bearer sk_live_...` header.
pub struct ApiKey(pub KeyAuth);

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <API key>"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <API key>"))?;
        match api_keys::authenticate(&state.platform, key.trim()).await {
            Ok(auth) => Ok(ApiKey(auth)),
            Err(AuthFailure::Key(reason)) => Err(ApiError::unauthorized(&reason.to_string())),
            Err(AuthFailure::Plan(error) | AuthFailure::Internal(error)) => Err(error.into()),
        }
    }
}

/// An API failure: a status and a JSON body `{"error": {"code", "message"}}`. Internal
/// causes are logged, never sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn unauthorized(message: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.to_owned(),
        }
    }
}

impl From<platform::Error> for ApiError {
    fn from(error: platform::Error) -> Self {
        use platform::Error as E;
        let (status, code) = match &error {
            E::Invalid { .. } | E::InvalidFields(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            E::Forbidden | E::AccountDisabled(_) => (StatusCode::FORBIDDEN, "forbidden"),
            E::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            E::LimitReached(_) => (StatusCode::PAYMENT_REQUIRED, "limit_reached"),
            E::Conflict(_) | E::EmailTaken => (StatusCode::CONFLICT, "conflict"),
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            E::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
            E::InvalidCredentials
            | E::TokenInvalid
            | E::TokenUsed
            | E::EmailAlreadyConfirmed
            | E::TokenExpired => (StatusCode::BAD_REQUEST, "bad_request"),
            E::Internal(_) | E::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if error.is_internal() {
            tracing::error!(error = %error, "API request failed");
            "Something went wrong on our side.".to_owned()
        } else {
            error.to_string()
        };
        Self {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
