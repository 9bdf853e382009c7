//! Refused plain form posts come back as they were sent, at a clean address.
//!
//! Without JavaScript, a form posts to its server function and server_fn answers a refusal
//! with a redirect to the page it came from, the error in the address
//! (`?__path=/api/…&__err=eyJ…`). This middleware moves that error, and what was typed
//! (passwords and tokens left out), into a one-time cookie, and sends the browser to the
//! page's own address; the page that follows reads the cookie back and shows the form with
//! its errors and values (`app::form_flash`).

use app::form_flash::{self, FormFlash};
use app::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a flash waits for its page: the browser follows the redirect at once.
const LIFETIME_SECS: u64 = 60;

/// Browsers keep cookies up to about 4 KB; above this the typed values are left out (the
/// errors still show).
const MAX_COOKIE_BYTES: usize = 3500;

pub async fn form_flash(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_plain_form_post(&request) {
        refused_post(&state, request, next).await
    } else if request.method() == Method::GET
        && accepts_html(request.headers())
        && !request.uri().path().starts_with("/api/")
    {
        page(&state, request, next).await
    } else {
        next.run(request).await
    }
}

/// A browser's own form submission to a server function (not the hydrated app's call,
/// which asks for the encoded result, not HTML).
fn is_plain_form_post(request: &Request) -> bool {
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    request.method() == Method::POST
        && form
        && accepts_html(request.headers())
        && request.uri().path().starts_with("/api/")
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/html"))
}

async fn refused_post(state: &AppState, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // The router's body limit, outside this layer, has cut the body off at its size already.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form could not be read: it is larger than this server accepts.",
        )
            .into_response();
    };
    let values: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .filter(|(name, _)| form_flash::keeps(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status() != StatusCode::FOUND {
        return response;
    }
    let Some(mut location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| state.platform.public_url.join(value).ok())
    else {
        return response;
    };
    let Some((action, error)) = take_error(&mut location) else {
        return response;
    };
    let flash = FormFlash {
        page: location.path().to_owned(),
        action,
        error,
        values,
    };
    let (Some(cookie), Ok(location)) = (
        cookie_for(&flash, state),
        HeaderValue::from_str(location.as_str()),
    ) else {
        // Too large even without the values: leave server_fn's own redirect.
        return response;
    };
    response.headers_mut().insert(header::LOCATION, location);
    // See Other: the browser follows with a GET, whatever the method was.
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// Removes `__path` and `__err` from the address, returning them.
fn take_error(location: &mut url::Url) -> Option<(String, String)> {
    let mut action = None;
    let mut error = None;
    let mut rest = Vec::new();
    for (key, value) in location.query_pairs() {
        match key.as_ref() {
            "__path" => action = Some(value.into_owned()),
            "__err" => error = Some(value.into_owned()),
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    let found = action.zip(error)?;
    if rest.is_empty() {
        location.set_query(None);
    } else {
        location.query_pairs_mut().clear().extend_pairs(rest);
    }
    Some(found)
}

fn cookie_for(flash: &FormFlash, state: &AppState) -> Option<HeaderValue> {
    let encode = |flash: &FormFlash| {
        serde_json::to_vec(flash)
            .ok()
            .map(|json| URL_SAFE_NO_PAD.encode(json))
    };
    let mut value = encode(flash)?;
    if value.len() > MAX_COOKIE_BYTES {
        let without_values = FormFlash {
            values: Vec::new(),
            ..flash.clone()
        };
        value = encode(&without_values).filter(|value| value.len() <= MAX_COOKIE_BYTES)?;
    }
    HeaderValue::from_str(&cookie(state, &value, LIFETIME_SECS)).ok()
}

fn cookie(state: &AppState, value: &str, max_age_secs: u64) -> String {
    let secure = if state.platform.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}",
        form_flash::COOKIE
    )
}

/// A page request: a flash waiting for this page is handed to its rendering; any flash is
/// used up.
async fn page(state: &AppState, mut request: Request, next: Next) -> Response {
    let Some(value) = app::session::cookie_in(request.headers(), form_flash::COOKIE) else {
        return next.run(request).await;
    };
    let flash = URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|json| serde_json::from_slice::<FormFlash>(&json).ok())
        .filter(|flash| flash.page == request.uri().path());
    if let Some(flash) = flash {
        request.extensions_mut().insert(flash);
    }
    let mut response = next.run(request).await;
    if let Ok(expired) = HeaderValue::from_str(&cookie(state, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, expired);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_leaves_the_address_and_other_parameters_stay() {
        let mut url = url::Url::parse(
            "http://127.0.0.1:3000/dashboard/billing?plan=pro&__path=%2Fapi%2Fask&__err=eyJ9",
        )
        .unwrap();
        let (action, error) = take_error(&mut url).unwrap();
        assert_eq!((action.as_str(), error.as_str()), ("/api/ask", "eyJ9"));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3000/dashboard/billing?plan=pro"
        );

        let mut url =
            url::Url::parse("http://127.0.0.1:3000/signup?__path=%2Fapi%2Fx&__err=e").unwrap();
        take_error(&mut url).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:3000/signup");

        let mut url = url::Url::parse("http://127.0.0.1:3000/signup?plan=pro").unwrap();
        assert!(take_error(&mut url).is_none());
    }
}
