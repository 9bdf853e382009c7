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
/// Not for a plain HTML form post: its answer must stay the redirect back to the form
/// (a browser follows no `Location` on a 4xx); the server's form flash carries the error
/// over it.
pub fn set_status(status: StatusCode) {
    if is_plain_form_post() {
        return;
    }
    if let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(status);
    }
}

/// Sets the status of the current response unless something set one already.
pub fn default_status(status: StatusCode) {
    if is_plain_form_post() {
        return;
    }
    if let Some(response) = use_context::<ResponseOptions>() {
        let unset = response
            .0
            .read()
            .map(|parts| parts.status.is_none())
            .unwrap_or(false);
        if unset {
            response.set_status(status);
        }
    }
}

/// The Content-Security-Policy of a page: scripts only from this origin and the page's own
/// inline hydration scripts (they carry the per-response nonce Leptos makes), WebAssembly
/// allowed to compile, nothing framed or framing. No `form-action`: Chromium applies it to
/// the redirect after a plain form post, and checkout redirects to Stripe. Styles allow
/// inline `style` attributes (the usage graphs' bars); no inline `<style>` or script can
/// be injected to run.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let inline_scripts = nonce
        .map(|nonce| format!(" 'nonce-{nonce}'"))
        .unwrap_or_default();
    // `cargo leptos watch` reloads the page over a WebSocket to its own port.
    let reload = if std::env::var_os("LEPTOS_WATCH").is_some() {
        " ws://127.0.0.1:* ws://localhost:*"
    } else {
        ""
    };
    format!(
        "default-src 'self'; script-src 'self'{inline_scripts} 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'{reload}; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// Sets the page's Content-Security-Policy, with this response's nonce.
pub fn set_content_security_policy() {
    let nonce = leptos::nonce::use_nonce();
    let policy = content_security_policy(nonce.as_deref());
    if let (Some(response), Ok(value)) = (
        use_context::<ResponseOptions>(),
        axum::http::HeaderValue::from_str(&policy),
    ) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}
