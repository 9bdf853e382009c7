//! The current request, on the server: its parts, whether it is a plain HTML form post, and
//! the status of the response being made for it.

use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

pub(crate) fn parts() -> Option<Parts> {
    use_context::<Parts>()
}

/// Whether this request is a plain HTML form post (no JavaScript): its answer is a redirect,
/// so a server function's return value never reaches the page.
pub fn is_plain_form_post() -> bool {
    parts().is_some_and(|parts| {
        parts.method == axum::http::Method::POST
            && parts
                .headers
                .get(header::ACCEPT)
                .and_then(|accept| accept.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"))
    })
}

/// Sets the HTTP status of the current response (a server function's or a page's).
///
/// Not for a plain HTML form post: its answer must stay the redirect back to the form,
/// which carries the error in the URL (a browser follows no `Location` on a 4xx).
pub fn set_status(status: StatusCode) {
    if is_plain_form_post() {
        return;
    }
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(status);
    }
}
