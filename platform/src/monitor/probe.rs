//! How the monitor asks a site whether it is healthy: an HTTP `GET` of its health path.
//!
//! The server hands the monitor the tenant proxy's own pooled client (so a probe travels
//! the same way a visitor's request does); [`BareProber`] is a client-less fallback for
//! processes without the proxy, and for tests.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;

/// Answers the status code of `GET path` at `address`, or why there was none, within
/// `timeout`.
pub trait Prober: Send + Sync + 'static {
    fn probe(&self, address: SocketAddr, path: &str, timeout: Duration) -> ProbeFuture<'_>;
}

/// A bare HTTP/1.0 exchange per probe.
#[derive(Debug, Clone, Copy, Default)]
pub struct BareProber;

impl Prober for BareProber {
    fn probe(&self, address: SocketAddr, path: &str, timeout: Duration) -> ProbeFuture<'_> {
        let path = path.to_owned();
        Box::pin(async move {
            http_status(address, &path, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A bare `GET path` over HTTP/1.0: the status code, within `timeout`.
pub async fn http_status(
    address: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<u16> {
    crate::infra::bare_http::status(address, "GET", path, &[], &[], timeout).await
}
