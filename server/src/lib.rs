//! The `slipway` server: configuration, telemetry, the HTTP router and the CLI commands.
//! Domain logic lives in `platform`; pages and server functions in `app`.

pub mod api;
pub mod cli;
pub mod dev;
pub mod exports;
pub mod form_flash;
pub mod http;
pub mod proxy;
pub mod site_events;
pub mod telemetry;

use std::future::Future;

use anyhow::Context as _;
use app::state::AppState;
use leptos::prelude::LeptosOptions;
use platform::infra::tasks::Background;
use platform::{Config, Platform};
use tokio::net::TcpListener;

/// Leptos settings derived from Slipway's configuration. `output_name` must match the
/// `name` in `[[workspace.metadata.leptos]]`: it names the WASM and CSS files.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    // cargo-leptos sets the reload port when it watches; it only matters then.
    let reload_port = std::env::var("LEPTOS_RELOAD_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(3001);
    LeptosOptions::builder()
        .output_name("slipway")
        .site_root(config.web.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .reload_port(reload_port)
        .build()
}

/// Serves the dashboard on `listener` until `shutdown` resolves, then finishes the requests
/// in flight and returns.
pub async fn serve(
    config: &Config,
    platform: Platform,
    runtime: Option<std::sync::Arc<platform::infra::docker::Runtime>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState {
        leptos_options: leptos_options(config),
        platform,
        runtime,
    };
    // Long-lived responses (server-sent events) end when shutdown starts.
    let (stopping, stop_flag) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let router = http::router(state).layer(axum::Extension(stop_flag));
    let address = listener
        .local_addr()
        .context("reading the listener's address")?;
    tracing::info!(%address, "dashboard listening");
    // Connect info gives server functions the peer address (audit log, throttling).
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("dashboard stopped");
    Ok(())
}

/// The HTTPS listener: certificates by SNI (`*.<base_domain>` and per-domain ones, rescanned
/// every minute), served by `proxy`'s threads.
fn start_tls(
    settings: &platform::config::ProxyConfig,
    proxy: &proxy::Proxy,
    threads: usize,
    background: &Background,
) -> anyhow::Result<(
    std::net::SocketAddr,
    std::sync::Arc<proxy::tls::CertificateStore>,
)> {
    use std::sync::Arc;
    let store = Arc::new(proxy::tls::CertificateStore::new(&settings.base_domain));
    if let (Some(chain), Some(key)) = (&settings.tls.certificate, &settings.tls.key) {
        let certified = store
            .load(chain, key)
            .context("setting `proxy.tls.certificate`")?;
        store.set_wildcard(certified);
    }
    if let Some(dir) = settings.tls.certificates_dir.clone() {
        store
            .load_dir(&dir)
            .context("setting `proxy.tls.certificates_dir`")?;
        let rescan = store.clone();
        background.spawn_every(
            "certificates",
            std::time::Duration::from_secs(60),
            move || {
                let result = rescan.load_dir(&dir);
                async move {
                    if let Err(error) = result {
                        tracing::warn!(error = %format!("{error:#}"), "rescanning certificates failed");
                    }
                }
            },
        );
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(store.server_config()?));
    let tls_listener = std::net::TcpListener::bind(settings.tls.listen).with_context(|| {
        format!(
            "setting `proxy.tls.listen`: cannot listen on {}",
            settings.tls.listen
        )
    })?;
    let https = tls_listener
        .local_addr()
        .context("reading the proxy's TLS address")?;
    tracing::info!(address = %https, "tenant proxy (HTTPS) listening");
    let served = proxy::serve_on_threads(
        proxy.clone(),
        tls_listener,
        Some(acceptor),
        threads,
        background.token(),
    )?;
    background.spawn("proxy (HTTPS)", async move {
        let _ = served.await;
    });
    Ok((https, store))
}

/// The running tenant proxy and what it keeps current. Its listeners and loops run under
/// the process's [`Background`] and stop with it.
pub struct RunningProxy {
    /// Where plain HTTP is served (redirects only, when TLS is on).
    pub http: std::net::SocketAddr,
    pub https: Option<std::net::SocketAddr>,
    pub routes: std::sync::Arc<platform::traffic::routes::RouteTable>,
    pub meters: std::sync::Arc<platform::traffic::usage::Meters>,
    pub certificates: Option<std::sync::Arc<proxy::tls::CertificateStore>>,
}

/// Starts the tenant proxy (`[proxy]`): its listeners, the route table and its updates,
/// and the usage flusher, all under `background`. When it stops, the flusher writes what
/// was counted last.
pub async fn start_proxy(
    config: &Config,
    platform: Platform,
    background: &Background,
) -> anyhow::Result<RunningProxy> {
    use std::sync::Arc;
    use std::time::Duration;
    let settings = &config.proxy;
    let meters = Arc::new(platform::traffic::usage::Meters::default());
    let routes = Arc::new(platform::traffic::routes::RouteTable::new(
        &settings.base_domain,
        meters.clone(),
    ));
    // Serve nothing until the table is loaded: an empty table would 404 every site.
    routes
        .reload(&platform)
        .await
        .context("loading the route table")?;
    let token = background.token();
    background.spawn(
        "route table",
        routes.clone().run(
            platform.clone(),
            Duration::from_secs(settings.resync_interval_secs.max(1)),
            token.clone().cancelled_owned(),
        ),
    );
    background.spawn(
        "usage flush",
        meters.clone().run_flusher(
            platform.db.clone(),
            Duration::from_secs(config.usage.flush_interval_secs.clamp(1, 10)),
            token.clone().cancelled_owned(),
        ),
    );
    let proxy = proxy::Proxy::new(routes.clone(), proxy::Settings::from_config(settings));
    let threads = settings.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let listener = std::net::TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "setting `proxy.listen`: cannot listen on {}",
            settings.listen
        )
    })?;
    let http = listener
        .local_addr()
        .context("reading the proxy's address")?;
    let (https, certificates) = if settings.tls.enabled {
        let (https, store) = start_tls(settings, &proxy, threads, background)?;
        (Some(https), Some(store))
    } else {
        (None, None)
    };
    // With TLS on, the plain listener only redirects: it must name the HTTPS port it got.
    let mut plain = proxy;
    if let Some(address) = https {
        let mut settings = proxy::Settings::from_config(settings);
        settings.redirect_to_https = Some(address.port());
        plain = proxy::Proxy::new(routes.clone(), settings);
    }
    tracing::info!(address = %http, base_domain = %settings.base_domain, "tenant proxy listening");
    let threads = proxy::serve_on_threads(plain, listener, None, threads, token)?;
    background.spawn("proxy", async move {
        let _ = threads.await;
    });
    Ok(RunningProxy {
        http,
        https,
        routes,
        meters,
        certificates,
    })
}

/// `GET /metrics` in Prometheus' text format, for a listener of its own; with `token`, only
/// for `Authorization: Bearer <token>`.
pub fn metrics_router(platform: Platform, token: Option<String>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let serve = move |headers: HeaderMap| {
        let platform = platform.clone();
        let token = token.clone();
        async move {
            if let Some(token) = token {
                let presented = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let matches = presented.is_some_and(|p| {
                    use subtle::ConstantTimeEq as _;
                    bool::from(p.as_bytes().ct_eq(token.as_bytes()))
                });
                if !matches {
                    return (
                        StatusCode::UNAUTHORIZED,
                        "send the metrics token as a bearer token\n",
                    )
                        .into_response();
                }
            }
            let rendered = async {
                let mut text = platform::infra::metrics::render(&platform.db).await?;
                let open = platform::incidents::open_counts(&platform.db).await?;
                platform::infra::metrics::write_gauge(
                    &mut text,
                    "slipway_incidents_open",
                    "Open incidents by kind (one per site, or organization, and kind).",
                    "kind",
                    open.iter().map(|(kind, count)| (kind.as_str(), *count)),
                );
                Ok::<_, platform::Error>(text)
            };
            match rendered.await {
                Ok(text) => (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
                    .into_response(),
                Err(error) => {
                    tracing::warn!(%error, "cannot render the metrics");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the database does not answer\n",
                    )
                        .into_response()
                }
            }
        }
    };
    axum::Router::new().route("/metrics", axum::routing::get(serve))
}

/// Serves [`metrics_router`] on `metrics.listen`, when set, under `background`.
pub async fn start_metrics(
    config: &Config,
    platform: Platform,
    background: &Background,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    use secrecy::ExposeSecret as _;
    let Some(address) = config.metrics.listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("setting `metrics.listen`: cannot listen on {address}"))?;
    let bound = listener
        .local_addr()
        .context("reading the metrics address")?;
    let token = config
        .metrics
        .bearer_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    let router = metrics_router(platform, token);
    let stop = background.token();
    background.spawn("metrics", async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "the metrics listener failed");
        }
    });
    tracing::info!(address = %bound, "metrics listening (/metrics)");
    Ok(Some(bound))
}

/// Resolves on SIGTERM or Ctrl-C, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
