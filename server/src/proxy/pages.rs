//! What the proxy says itself, to visitors: short HTML pages that tell a person what is
//! going on and never mention internal addresses, container names or causes.
//!
//! | situation                         | status | header            |
//! |-----------------------------------|--------|-------------------|
//! | request without a usable `Host`   | 400    |                   |
//! | no site at this host              | 404    |                   |
//! | request body over the plan limit  | 413    |                   |
//! | site suspended                    | 503    | `Retry-After: 3600` |
//! | site being set up                 | 503    | `Retry-After: 10` |
//! | site stopped                      | 503    | `Retry-After: 3600` |
//! | site down, being restarted        | 503    | `Retry-After: 10` |
//! | site crashing, no longer restarted| 503    | `Retry-After: 600` |
//! | site busy (concurrency limit)     | 503    | `Retry-After: 1`  |
//! | site not answering                | 502    |                   |
//! | site too slow to answer           | 504    |                   |
//!
//! A suspended site answers 503 rather than 402: crawlers treat 503 with `Retry-After` as
//! temporary and keep the site indexed while its owner sorts out billing.

use http::{HeaderValue, Response, StatusCode, header};

use super::body::{ProxyBody, full};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    BadRequest,
    UnknownHost,
    TooLarge,
    Suspended,
    Starting,
    Stopped,
    Restarting,
    Crashing,
    Busy,
    Down,
    Timeout,
}

impl Page {
    pub fn status(self) -> StatusCode {
        match self {
            Page::BadRequest => StatusCode::BAD_REQUEST,
            Page::UnknownHost => StatusCode::NOT_FOUND,
            Page::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Page::Suspended
            | Page::Starting
            | Page::Stopped
            | Page::Restarting
            | Page::Crashing
            | Page::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Page::Down => StatusCode::BAD_GATEWAY,
            Page::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn retry_after(self) -> Option<&'static str> {
        match self {
            Page::Suspended | Page::Stopped => Some("3600"),
            Page::Starting | Page::Restarting => Some("10"),
            Page::Crashing => Some("600"),
            Page::Busy => Some("1"),
            _ => None,
        }
    }

    fn text(self) -> (&'static str, &'static str) {
        match self {
            Page::BadRequest => (
                "Bad request",
                "Your browser sent a request this server could not understand.",
            ),
            Page::UnknownHost => (
                "No site here",
                "There is no site at this address. Check the address for typing mistakes.",
            ),
            Page::TooLarge => (
                "Upload too large",
                "What you sent is larger than this site accepts.",
            ),
            Page::Suspended => (
                "This site is suspended",
                "This site is temporarily unavailable while its owner sorts out their account. Its content is safe and it will be back once they have.",
            ),
            Page::Starting => (
                "This site is being set up",
                "This site is starting. Try again in a few seconds.",
            ),
            Page::Stopped => (
                "This site is offline",
                "Its owner has stopped this site for now.",
            ),
            Page::Restarting => (
                "This site is restarting",
                "This site stopped answering and is being restarted. Try again in a few seconds.",
            ),
            Page::Crashing => (
                "This site is down",
                "This site keeps failing and its owner has been told. Try again later.",
            ),
            Page::Busy => (
                "This site is busy",
                "This site is handling as many visitors as it can right now. Try again in a moment.",
            ),
            Page::Down => (
                "This site is not responding",
                "The site did not answer. Its owner has been shown the problem; try again in a few minutes.",
            ),
            Page::Timeout => (
                "This site is taking too long",
                "The site did not answer in time. Try again in a few minutes.",
            ),
        }
    }

    pub fn response(self) -> Response<ProxyBody> {
        let (title, text) = self.text();
        let status = self.status();
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1.5rem;color:#1e293b}}\
             h1{{font-size:1.5rem}}p{{line-height:1.6;color:#475569}}small{{color:#64748b}}</style></head>\
             <body><h1>{title}</h1><p>{text}</p><small>{} {}</small></body></html>\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        let mut response = Response::new(full(html));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

/// `308` to the same host and path over HTTPS (the plain listener when TLS is on).
pub fn to_https(host: &str, https_port: u16, path_and_query: &str) -> Response<ProxyBody> {
    let location = if https_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{https_port}{path_and_query}")
    };
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
