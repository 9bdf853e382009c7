//! The `slipway` server: configuration, telemetry, the HTTP router and the CLI commands.
//! Domain logic lives in `platform`; pages and server functions in `app`.

pub mod api;
pub mod cli;
pub mod http;
pub mod telemetry;

use std::future::Future;

use anyhow::Context as _;
use app::state::AppState;
use leptos::prelude::LeptosOptions;
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
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState {
        leptos_options: leptos_options(config),
        platform,
    };
    let router = http::router(state);
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

/// Sends queued mail every `every`, for as long as the process runs. A failed round is
/// logged and retried at the next tick; nothing is lost (the outbox keeps the message).
pub async fn deliver_mail(
    db: sqlx::PgPool,
    smtp: platform::mail::Smtp,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match platform::mail::deliver_pending(&db, &smtp, 50).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "mail delivered"),
            Err(error) => tracing::warn!(%error, "mail delivery round failed"),
        }
    }
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
