//! The error a server function hands the UI: a message safe to show a user, and for form
//! input, the field it belongs to.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// A form field's value was refused; `field` is the input's name.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Several fields refused at once: (input name, message) each.
    #[error("{}", .0.iter().map(|(_, message)| message.as_str()).collect::<Vec<_>>().join(" "))]
    InvalidFields(Vec<(String, String)>),
    #[error("Sign in to continue.")]
    SignInRequired,
    /// Signed in, but a member of no organization (removed from the last one, or an
    /// operator): the dashboard offers to create one.
    #[error("You are not a member of any organization yet. Create one to get started.")]
    NoOrganization,
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found.")]
    NotFound,
    /// Refused for a reason the user can act on (the message says how).
    #[error("{0}")]
    Refused(String),
    /// Something failed on our side; the details went to the server log, not the browser.
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal,
    /// The request never reached the server function (network, encoding).
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl AppError {
    /// The message for `field`, when this error is about it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            AppError::Invalid { field: f, message } if f == field => Some(message.clone()),
            AppError::InvalidFields(fields) => fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, message)| message.clone()),
            _ => None,
        }
    }

    /// The message when it is not about one field (shown above the form).
    pub fn general(&self) -> Option<String> {
        match self {
            AppError::Invalid { .. } | AppError::InvalidFields(_) => None,
            other => Some(other.to_string()),
        }
    }
}

impl AppError {
    /// The HTTP status for this error when nothing more precise was set where it arose (a
    /// domain error sets its own, e.g. 402 for a plan limit, 429 when throttled).
    #[cfg(feature = "ssr")]
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            AppError::Invalid { .. } | AppError::InvalidFields(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::SignInRequired => StatusCode::UNAUTHORIZED,
            AppError::NoOrganization | AppError::Refused(_) => StatusCode::CONFLICT,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            // On the server this is a request that did not decode into the function's
            // arguments (an empty, JSON, multipart or non-UTF-8 body for a form): the
            // client's mistake.
            AppError::Transport(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }

    /// Encodes the error for the response, and on the server gives the response the
    /// error's status unless one was set already: server_fn would answer 500 for every
    /// error, including a malformed request.
    fn ser(&self) -> leptos::server_fn::Bytes {
        #[cfg(feature = "ssr")]
        crate::request::default_status(self.status());
        <JsonEncoding as leptos::server_fn::Encodes<Self>>::encode(self).unwrap_or_else(|error| {
            let fallback = AppError::Transport(error.to_string());
            <JsonEncoding as leptos::server_fn::Encodes<Self>>::encode(&fallback)
                .unwrap_or_default()
        })
    }
}

#[cfg(feature = "ssr")]
impl From<platform::Error> for AppError {
    /// Maps a domain error to what the user sees, and sets the response status to match.
    fn from(error: platform::Error) -> Self {
        use axum::http::StatusCode;
        use platform::Error as E;
        let (status, app) = match error {
            E::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                AppError::Invalid {
                    field: field.into_owned(),
                    message,
                },
            ),
            E::InvalidFields(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                AppError::InvalidFields(
                    fields
                        .into_iter()
                        .map(|(field, message)| (field.into_owned(), message))
                        .collect(),
                ),
            ),
            E::Forbidden => (
                StatusCode::FORBIDDEN,
                AppError::Forbidden(E::Forbidden.to_string()),
            ),
            E::NotFound => (StatusCode::NOT_FOUND, AppError::NotFound),
            E::EmailTaken => (
                StatusCode::CONFLICT,
                AppError::Invalid {
                    field: "email".into(),
                    message: E::EmailTaken.to_string(),
                },
            ),
            E::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                AppError::Refused(error.to_string()),
            ),
            E::LimitReached(message) => (StatusCode::PAYMENT_REQUIRED, AppError::Refused(message)),
            E::Conflict(message) => (StatusCode::CONFLICT, AppError::Refused(message)),
            E::AccountDisabled(_) => (
                StatusCode::FORBIDDEN,
                AppError::Forbidden(error.to_string()),
            ),
            E::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, AppError::Refused(message))
            }
            E::InvalidCredentials
            | E::TokenInvalid
            | E::TokenUsed
            | E::EmailAlreadyConfirmed
            | E::TokenExpired => (
                StatusCode::BAD_REQUEST,
                AppError::Refused(error.to_string()),
            ),
            E::Internal(_) | E::Database(_) => {
                tracing::error!(error = %error, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, AppError::Internal)
            }
        };
        crate::request::set_status(status);
        app
    }
}
