//! The tenant proxy: visitors' requests, routed by `Host` to their site's container.
//!
//! hyper serves HTTP/1.1 (keep-alive, upgrades such as websockets) and HTTP/2 (h2c with
//! prior knowledge on the plain listener, ALPN `h2` on the TLS one); a pooled hyper client
//! forwards to the container's address on the Slipway network (nothing is published on the
//! host). Bodies stream in both directions and are counted on the way
//! ([`body`]); every answer the proxy gives itself is a page from [`pages`].

pub mod body;
pub mod pages;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use platform::kernel::normalize_host;
use platform::traffic::routes::{Route, RouteTable, Target, Unavailable};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use self::body::{CountedRequest, MeteredResponse, ProxyBody, Recorder, RequestTally};
use self::pages::Page;

/// How the proxy behaves (from `[proxy]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub trusted_hops: usize,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub header_timeout: Duration,
    /// With TLS on: the HTTPS port the plain listener redirects to.
    pub redirect_to_https: Option<u16>,
}

impl Settings {
    pub fn from_config(config: &platform::config::ProxyConfig) -> Self {
        Self {
            trusted_hops: config.trusted_hops,
            connect_timeout: Duration::from_secs(config.connect_timeout_secs.max(1)),
            response_timeout: Duration::from_secs(config.response_timeout_secs.max(1)),
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            redirect_to_https: config.tls.enabled.then_some(config.tls.listen.port()),
        }
    }
}

/// The proxy: routes, settings and the pooled client to the sites.
#[derive(Clone)]
pub struct Proxy {
    routes: Arc<RouteTable>,
    settings: Arc<Settings>,
    client: Client<HttpConnector, ProxyBody>,
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The monitor's probes go through the same client and connection pool as visitors.
impl platform::monitor::Prober for Proxy {
    fn probe(
        &self,
        address: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> platform::monitor::probe::ProbeFuture<'_> {
        let uri = format!("http://{address}{path}");
        Box::pin(async move {
            let request = Request::get(uri)
                .header(header::HOST, "localhost")
                .header(header::USER_AGENT, "slipway-monitor")
                .body(body::full(""))
                .map_err(|e| format!("cannot make the request: {e}"))?;
            let exchange = async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| format!("no answer: {}", error_chain(&e)))?;
                let status = response.status().as_u16();
                // Read to the end, so the connection goes back to the pool.
                let _ = response.into_body().collect().await;
                Ok(status)
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| format!("no answer within {} s", timeout.as_secs_f64()))?
        })
    }
}

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1), plus the
/// proxy-only ones.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

impl Proxy {
    pub fn new(routes: Arc<RouteTable>, settings: Settings) -> Self {
        Self {
            routes,
            client: Self::client(&settings),
            settings: Arc::new(settings),
        }
    }

    /// The same proxy with a connection pool of its own (one per worker thread, so that a
    /// request never waits on a connection driven by another thread).
    fn with_own_client(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            client: Self::client(&self.settings),
            settings: self.settings.clone(),
        }
    }

    fn client(settings: &Settings) -> Client<HttpConnector, ProxyBody> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.enforce_http(true);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .build(connector)
    }

    pub fn routes(&self) -> &Arc<RouteTable> {
        &self.routes
    }

    /// A pooled client of the proxy's kind, for the health monitor's probes (a proxy of
    /// its own, so probes never take a worker thread's connections).
    pub fn prober(settings: Settings) -> Arc<dyn platform::monitor::Prober> {
        let routes = Arc::new(RouteTable::new(
            "localhost",
            Arc::new(platform::traffic::usage::Meters::default()),
        ));
        Arc::new(Self::new(routes, settings))
    }

    /// Answers one request (never fails: every problem is a page).
    pub async fn handle(
        &self,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        scheme: Scheme,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let (host, route, upstream) = match self.route_for(&request, scheme) {
            Ok(found) => found,
            Err(answer) => return *answer,
        };
        let tally = Arc::new(RequestTally::default());
        // Without a permit the answer is the proxy's own page; with one, the site's.
        let recorder = |status: StatusCode, page_view: bool, permit: Option<_>| Recorder {
            meter: route.meter.clone(),
            started,
            status: status.as_u16(),
            page_view,
            site_answered: permit.is_some(),
            request: tally.clone(),
            permit,
        };
        let own_page = |page: Page| {
            let response = page.response();
            let (parts, body) = response.into_parts();
            let metered = MeteredResponse::new(body, recorder(parts.status, false, None));
            Response::from_parts(parts, metered.boxed())
        };
        let Ok(permit) = route.in_flight.clone().try_acquire_owned() else {
            return own_page(Page::Busy);
        };
        if declared_length(request.headers()).is_some_and(|n| n > route.body_limit) {
            return own_page(Page::TooLarge);
        }
        let is_get = request.method() == http::Method::GET;
        let upgrade = upgrade_protocol(request.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
        let forwarded = match self.forward_request(
            request,
            &route,
            upstream,
            &host,
            peer,
            scheme,
            &tally,
            upgrade.clone(),
        ) {
            Ok(forwarded) => forwarded,
            Err(page) => return own_page(page),
        };
        let answer = tokio::time::timeout(
            self.settings.response_timeout,
            self.client.request(forwarded),
        )
        .await;
        let mut response = match answer {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                if tally.too_large.load(Ordering::Relaxed) {
                    return own_page(Page::TooLarge);
                }
                tracing::info!(site = %route.site_id, error = %error_chain(&error), "site did not answer");
                return own_page(Page::Down);
            }
            Err(_) => return own_page(Page::Timeout),
        };
        let status = response.status();
        if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) = (status, client_upgrade) {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let meter = recorder(status, false, Some(permit));
            tokio::spawn(tunnel(client_upgrade, upstream_upgrade, meter));
            let (mut parts, _) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            if let Some(protocol) = upgrade {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol);
            }
            return Response::from_parts(parts, body::full(""));
        }
        let (mut parts, incoming) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::UPGRADE);
        let page_view = is_get
            && status.is_success()
            && parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        let body = incoming.map_err(body::BoxError::from).boxed();
        let metered = MeteredResponse::new(body, recorder(status, page_view, Some(permit)));
        Response::from_parts(parts, metered.boxed())
    }

    /// Where the request goes: its host, route and the site's address; or the answer that
    /// it goes nowhere (a page, or the redirect to HTTPS).
    fn route_for(
        &self,
        request: &Request<Incoming>,
        scheme: Scheme,
    ) -> Result<(String, Arc<Route>, SocketAddr), Box<Response<ProxyBody>>> {
        let Some(host) = request_host(request) else {
            return Err(Box::new(Page::BadRequest.response()));
        };
        let Some(route) = self.routes.lookup(&host) else {
            return Err(Box::new(Page::UnknownHost.response()));
        };
        if let (Scheme::Http, Some(port)) = (scheme, self.settings.redirect_to_https) {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            return Err(Box::new(pages::to_https(&host, port, &path)));
        }
        let page = match route.target {
            Target::Upstream(address) => return Ok((host, route, address)),
            Target::Suspended => Page::Suspended,
            Target::Unavailable(Unavailable::Starting) => Page::Starting,
            Target::Unavailable(Unavailable::Stopped) => Page::Stopped,
            Target::Unavailable(Unavailable::Down) => Page::Down,
            Target::Unavailable(Unavailable::Restarting) => Page::Restarting,
            Target::Unavailable(Unavailable::Crashing) => Page::Crashing,
        };
        Err(Box::new(page.response()))
    }

    /// The request as the site receives it: its own address in the URI, the visitor's
    /// `Host`, hop-by-hop headers removed, `X-Forwarded-*` set by us.
    #[allow(clippy::too_many_arguments)]
    fn forward_request(
        &self,
        request: Request<Incoming>,
        route: &Route,
        upstream: SocketAddr,
        host: &str,
        peer: SocketAddr,
        scheme: Scheme,
        tally: &Arc<RequestTally>,
        upgrade: Option<HeaderValue>,
    ) -> Result<Request<ProxyBody>, Page> {
        let (mut parts, incoming) = request.into_parts();
        // The site sees the name the visitor used, port included (it builds links with it);
        // `request_host` already checked that it names this site.
        let original_host = match parts.headers.get(header::HOST) {
            Some(value) => value.clone(),
            None => parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                .map_or_else(|| HeaderValue::from_str(host), Ok)
                .map_err(|_| Page::BadRequest)?,
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri =
            Uri::try_from(format!("http://{upstream}{path}")).map_err(|_| Page::BadRequest)?;
        // The site always speaks HTTP/1.1 to us, whatever the visitor used.
        parts.version = http::Version::HTTP_11;
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        headers.remove(header::UPGRADE);
        if let Some(protocol) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol);
        }
        headers.insert(header::HOST, original_host.clone());
        self.set_forwarded(headers, peer, scheme, original_host);
        let body = CountedRequest::new(incoming, tally.clone(), route.body_limit).boxed();
        Ok(Request::from_parts(parts, body))
    }

    /// `X-Forwarded-For/-Proto/-Host`: what the client sent is kept only as far as the
    /// configured trusted proxies vouch for it.
    fn set_forwarded(
        &self,
        headers: &mut HeaderMap,
        peer: SocketAddr,
        scheme: Scheme,
        host: HeaderValue,
    ) {
        let hops = self.settings.trusted_hops;
        let mut chain: Vec<String> = Vec::new();
        let mut proto = None;
        if hops > 0 {
            let claimed: Vec<String> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_owned())
                .filter(|v| v.parse::<IpAddr>().is_ok())
                .collect();
            // The nearest `hops` entries were written by proxies we trust.
            chain = claimed[claimed.len().saturating_sub(hops)..].to_vec();
            proto = headers
                .get(&X_FORWARDED_PROTO)
                .and_then(|v| v.to_str().ok())
                .filter(|v| matches!(*v, "http" | "https"))
                .map(str::to_owned);
        }
        for name in [
            &X_FORWARDED_FOR,
            &X_FORWARDED_PROTO,
            &X_FORWARDED_HOST,
            &X_REAL_IP,
            &FORWARDED,
        ] {
            headers.remove(name);
        }
        let client_ip = chain
            .first()
            .cloned()
            .unwrap_or_else(|| peer.ip().to_string());
        chain.push(peer.ip().to_string());
        if let Ok(value) = HeaderValue::from_str(&chain.join(", ")) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        if let Ok(value) = HeaderValue::from_str(&client_ip) {
            headers.insert(X_REAL_IP, value);
        }
        let proto = proto.unwrap_or_else(|| scheme.as_str().to_owned());
        if let Ok(value) = HeaderValue::from_str(&proto) {
            headers.insert(X_FORWARDED_PROTO, value);
        }
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// The host a request is for. `None` (a 400) for a missing or malformed host, two `Host`
/// headers, or an absolute request target whose authority disagrees with `Host`.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let header_host = match (hosts.next(), hosts.next()) {
        (_, Some(_)) => return None,
        (Some(value), None) => Some(normalize_host(value.to_str().ok()?)?),
        (None, None) => None,
    };
    let target_host = match request.uri().authority() {
        Some(authority) => {
            if authority.as_str().contains('@') {
                return None;
            }
            Some(normalize_host(authority.as_str())?)
        }
        None => None,
    };
    match (target_host, header_host) {
        (Some(target), Some(header)) if target != header => None,
        (Some(host), _) | (None, Some(host)) => Some(host),
        (None, None) => None,
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The protocol a request asks to switch to (`Connection: upgrade` + `Upgrade: x`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    wants
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers the `Connection` header names are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Copies bytes both ways between the visitor and the site after a `101`, then records
/// the exchange with what crossed.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    recorder: Recorder,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "upgrade did not complete");
            recorder.record(0);
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((from_client, from_upstream)) => {
            recorder
                .request
                .bytes
                .fetch_add(from_client, Ordering::Relaxed);
            recorder.record(from_upstream);
        }
        Err(_) => recorder.record(0),
    }
}

/// Serves the proxy on `listener` with `threads` worker threads until `stop` turns true.
///
/// Each thread runs a single-threaded runtime that accepts from the shared socket and keeps
/// its own pool of connections to the sites, as nginx's worker processes do: a request is
/// handled start to end on one thread. (On one multi-threaded runtime, a visitor's
/// connection and the pooled connection to the site were driven by different threads, and
/// waking each other cost more than the forwarding itself: see `benches/proxy.rs`.)
pub fn serve_on_threads(
    proxy: Proxy,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    threads: usize,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let mut workers = Vec::with_capacity(threads.max(1));
    for n in 0..threads.max(1) {
        let listener = listener.try_clone()?;
        let proxy = proxy.with_own_client();
        let tls = tls.clone();
        let stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        workers.push(
            std::thread::Builder::new()
                .name(format!("proxy-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(listener) => {
                                serve(proxy, listener, tls, stop.cancelled_owned()).await;
                            }
                            Err(error) => tracing::error!(%error, "proxy worker cannot listen"),
                        }
                    });
                })?,
        );
    }
    Ok(tokio::task::spawn_blocking(move || {
        for worker in workers {
            if worker.join().is_err() {
                tracing::error!("a proxy worker thread panicked");
            }
        }
    }))
}

/// Serves the proxy on `listener` (plain, or TLS with `tls`) until `shutdown`, then lets
/// requests in flight finish (up to 10 s).
pub async fn serve(
    proxy: Proxy,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.settings.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&builder, watcher, stream, proxy, peer, scheme).await,
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, watcher, stream, proxy, peer, scheme).await
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("proxy connections still open after 10 s; closing them");
    }
}

async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    proxy: Proxy,
    peer: SocketAddr,
    scheme: Scheme,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let proxy = proxy.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(request, peer, scheme).await) }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(error = %error_chain(&*error), %peer, "proxy connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(
        build: impl FnOnce(http::request::Builder) -> http::request::Builder,
    ) -> Option<String> {
        request_host(&build(Request::builder()).body(()).unwrap())
    }

    #[test]
    fn the_host_comes_from_one_agreeing_source() {
        assert_eq!(
            host_of(|r| r.uri("/").header("host", "Blog.Localhost:8080")).as_deref(),
            Some("blog.localhost")
        );
        // HTTP/2 carries `:authority` in the URI and may omit Host.
        assert_eq!(
            host_of(|r| r.uri("http://blog.localhost/x")).as_deref(),
            Some("blog.localhost")
        );
        assert_eq!(
            host_of(|r| r
                .uri("http://blog.localhost/x")
                .header("host", "blog.localhost."))
            .as_deref(),
            Some("blog.localhost")
        );
    }

    #[test]
    fn ambiguous_hosts_are_refused() {
        assert_eq!(host_of(|r| r.uri("/")), None);
        assert_eq!(
            host_of(|r| r
                .uri("/")
                .header("host", "a.localhost")
                .header("host", "b.localhost")),
            None
        );
        assert_eq!(
            host_of(|r| r.uri("http://b.localhost/").header("host", "a.localhost")),
            None
        );
        assert_eq!(
            host_of(|r| r
                .uri("http://user@a.localhost/")
                .header("host", "a.localhost")),
            None
        );
        assert_eq!(
            host_of(|r| r.uri("/").header("host", "a.localhost, b.localhost")),
            None
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }
}
