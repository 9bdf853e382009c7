//! `site`: the small CMS Slipway hosts by default.
//!
//! Configuration comes from the environment Slipway gives the container:
//! `DATABASE_URL` (its own role, its own schema first on the search path), `SITE_TOKEN`
//! (bearer token for `/api/posts`), `WEBHOOK_SECRET` (HMAC key of `/api/sync-content`),
//! `SITE_NAME`, `PORT` (default 8000), `DATABASE_MAX_CONNECTIONS` (default 2).
//!
//! Subcommands besides `serve` (the default): `health` asks the running server's
//! `/healthz` (a scratch image has no curl), and `probe tcp HOST:PORT` /
//! `probe unix PATH` / `probe postgres URL` report whether something is reachable from inside the container
//! (Slipway's isolation tests run them with `docker exec`); `disk-usage PATH` prints the
//! bytes under PATH (Slipway samples the data volume's size with it: a scratch image has
//! no `du`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

mod editor;
mod faults;
mod ticket;
mod web;

#[cfg(test)]
mod editor_tests;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("site: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => runtime.block_on(serve()),
        ["health"] => runtime.block_on(health()),
        ["probe", "tcp", address] => runtime.block_on(probe_tcp(address)),
        ["probe", "unix", path] => runtime.block_on(probe_unix(path)),
        ["probe", "postgres", url] => runtime.block_on(probe_postgres(url)),
        ["disk-usage", path] => disk_usage(std::path::Path::new(path)).map(|bytes| println!("{bytes}")),
        _ => Err(
            "usage: site [serve | health | probe tcp HOST:PORT | probe unix PATH | probe postgres URL | disk-usage PATH]"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("site: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Bytes allocated under `path` (files and directories, symlinks not followed), as `du`
/// counts them: 512-byte blocks actually used.
fn disk_usage(path: &std::path::Path) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|error| format!("{}: {error}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|error| format!("{}: {error}", path.display()))?;
            total += disk_usage(&entry.path())?;
        }
    }
    Ok(total)
}

/// Where the site keeps files (`DATA_DIR`, default `/data`: the volume Slipway mounts).
pub(crate) fn data_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("DATA_DIR").unwrap_or_else(|_| "/data".to_owned()))
}

fn port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("PORT must be a port number, not {value:?}")),
        Err(_) => Ok(8000),
    }
}

/// A setting the customer may leave unset (Slipway sets it only when they set it).
fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn required(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn serve() -> Result<(), String> {
    faults::crash_if_marked();
    let config = web::Config {
        name: std::env::var("SITE_NAME").unwrap_or_else(|_| "My site".to_owned()),
        url: std::env::var("SITE_URL").unwrap_or_default(),
        data_dir: data_dir(),
        token: required("SITE_TOKEN")?,
        webhook_secret: required("WEBHOOK_SECRET")?,
        tagline: optional("SITE_TAGLINE"),
        visitor_password: optional("SITE_PASSWORD"),
    };
    let database_url = required("DATABASE_URL")?;
    // Within the role's CONNECTION LIMIT (the plan's), and idle connections are closed
    // after 10 s (shorter than the monitor's 15 s probes, which touch the database only
    // every 5 minutes) so that hundreds of quiet sites hold few of the cluster's connections.
    let max_connections = match std::env::var("DATABASE_MAX_CONNECTIONS") {
        Ok(value) => value
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("DATABASE_MAX_CONNECTIONS must be a positive number, not {value:?}")
            })?,
        Err(_) => 2,
    };
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&database_url)
        .map_err(|error| format!("DATABASE_URL is not usable: {error}"))?;
    // Migrate before answering: the health check only turns green once the schema is ready.
    let mut attempt = 0;
    while let Err(error) = web::MIGRATOR.run(&db).await {
        attempt += 1;
        if attempt >= 30 {
            return Err(format!("cannot migrate the database: {error}"));
        }
        eprintln!("site: waiting for the database ({error})");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let address = SocketAddr::from(([0, 0, 0, 0], port()?));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    eprintln!("site: listening on {address}");
    axum::serve(listener, web::router(db, config))
        .with_graceful_shutdown(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
        .map_err(|error| format!("server error: {error}"))
}

/// `GET /healthz` over a bare HTTP/1.0 exchange: enough for a health check.
async fn health() -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = SocketAddr::from(([127, 0, 0, 1], port()?));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| "no answer within 3 s".to_owned())?
        .map_err(|error| format!("cannot ask {address}: {error}"))?;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("unhealthy: {status_line}"))
    }
}

async fn probe_tcp(address: &str) -> Result<(), String> {
    probe_connect(tokio::net::TcpStream::connect(address)).await
}

async fn probe_unix(path: &str) -> Result<(), String> {
    probe_connect(tokio::net::UnixStream::connect(path)).await
}

/// "reachable" when `connect` succeeds within 3 s.
async fn probe_connect<T>(
    connect: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {
            println!("reachable");
            Ok(())
        }
        Ok(Err(error)) => Err(format!("unreachable: {error}")),
        Err(_) => Err("unreachable: timed out".to_owned()),
    }
}

async fn probe_postgres(url: &str) -> Result<(), String> {
    use sqlx::Connection;
    let connect = sqlx::PgConnection::connect(url);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => {
            println!("connected");
            Ok(())
        }
        Ok(Err(error)) => Err(format!("refused: {error}")),
        Err(_) => Err("refused: timed out".to_owned()),
    }
}
