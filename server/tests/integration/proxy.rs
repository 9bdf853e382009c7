//! The tenant proxy, black-box: the real proxy (`server::start_proxy`) on port 0 against a
//! fresh database, forwarding to real HTTP and websocket servers on loopback that stand in
//! for sites' containers (their addresses are what the reconciler writes to
//! `sites.upstream`; `a_provisioned_site_is_served_through_the_proxy` in
//! `tests/proxy_sites.rs` covers the reconciler's half with real containers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use futures_util::{SinkExt as _, StreamExt as _};
use platform::infra::tasks::Background;
use platform::{Config, Platform};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// A stand-in for one site's container: says who it is and what it received.
async fn upstream(name: &'static str) -> SocketAddr {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| async move {
                let header = |n: &str| {
                    headers
                        .get_all(n)
                        .iter()
                        .map(|v| v.to_str().unwrap_or("?").to_owned())
                        .collect::<Vec<_>>()
                        .join("|")
                };
                axum::Json(serde_json::json!({
                    "site": name,
                    "host": header("host"),
                    "x-forwarded-for": header("x-forwarded-for"),
                    "x-forwarded-proto": header("x-forwarded-proto"),
                    "x-forwarded-host": header("x-forwarded-host"),
                    "x-real-ip": header("x-real-ip"),
                    "forwarded": header("forwarded"),
                    "connection": header("connection"),
                    "x-secret": header("x-secret"),
                }))
            }),
        )
        .route(
            "/page",
            get(move || async move {
                (
                    [("content-type", "text/html; charset=utf-8")],
                    format!("<h1>{name}</h1>"),
                )
            }),
        )
        .route(
            "/upload",
            post(|request: Request| async move {
                let mut body = request.into_body().into_data_stream();
                let (mut bytes, mut sum) = (0u64, 0u64);
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.expect("upload chunk");
                    bytes += chunk.len() as u64;
                    sum = chunk.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                }
                format!("{bytes} {sum}")
            }),
        )
        .route(
            "/download/{n}",
            get(|Path(n): Path<usize>| async move {
                let chunks = futures_util::stream::iter((0..n.div_ceil(65_536)).map(move |i| {
                    let len = 65_536.min(n - i * 65_536);
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; len]))
                }));
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/hold/{ms}",
            get(move |Path(ms): Path<u64>| {
                let in_flight = in_flight.clone();
                async move {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    "done"
                }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let address = listener.local_addr().expect("upstream address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream serves") });
    address
}

/// A websocket server that echoes every message back.
async fn websocket_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ws");
    let address = listener.local_addr().expect("ws address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_close() || ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    address
}

/// Resolves every name to one address.
struct ToProxy(SocketAddr);

impl reqwest::dns::Resolve for ToProxy {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let address = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs) })
    }
}

struct Env {
    pool: PgPool,
    platform: Platform,
    organization: Uuid,
    proxy: server::RunningProxy,
    background: Background,
    base_domain: String,
}

async fn start_with(pool: PgPool, tune: impl FnOnce(&mut Config)) -> Env {
    let mut config = Config::default();
    config.proxy.listen = "127.0.0.1:0".parse().unwrap();
    config.proxy.tls.listen = "127.0.0.1:0".parse().unwrap();
    config.usage.flush_interval_secs = 10;
    tune(&mut config);
    let platform = test_support::platform_at(pool.clone(), "http://127.0.0.1:3000/");
    let organization = test_support::owner_on_plan(&platform, "pro")
        .await
        .organization_id;
    let background = Background::new();
    let proxy = server::start_proxy(&config, platform.clone(), &background)
        .await
        .expect("proxy starts");
    Env {
        pool,
        platform,
        organization,
        proxy,
        background,
        base_domain: config.proxy.base_domain.clone(),
    }
}

async fn start(pool: PgPool) -> Env {
    start_with(pool, |_| {}).await
}

impl Env {
    /// A site row as the reconciler leaves it: `status`, and where its container listens.
    async fn site(&self, slug: &str, status: &str, upstream: Option<SocketAddr>) -> Uuid {
        self.site_in(self.organization, slug, status, upstream)
            .await
    }

    async fn site_in(
        &self,
        organization: Uuid,
        slug: &str,
        status: &str,
        upstream: Option<SocketAddr>,
    ) -> Uuid {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sites (id, organization_id, name, slug, template, status, upstream,
                                db_password_sealed, api_token_sealed, webhook_secret_sealed)
             VALUES ($1, $2, $3, $3, 'cms', $4, $5, '\\x00', '\\x00', '\\x00')",
        )
        .bind(id)
        .bind(organization)
        .bind(slug)
        .bind(status)
        .bind(upstream.map(|a| a.to_string()))
        .execute(&self.pool)
        .await
        .unwrap();
        self.wait_for_route(&format!("{slug}.{}", self.base_domain))
            .await;
        id
    }

    /// Waits (at most a second: the promise of NOTIFY) until `host` is in the table.
    async fn wait_for_route(&self, host: &str) {
        let started = Instant::now();
        while self.proxy.routes.lookup(host).is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{host} did not appear in the route table within a second"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A client for which every name resolves to the proxy, as `*.localhost` does in a
    /// browser.
    fn client(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().dns_resolver(Arc::new(ToProxy(self.proxy.http)))
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.proxy.http.port())
    }

    async fn get(&self, host: &str, path: &str) -> (u16, HeaderMap, String) {
        let response = self
            .client()
            .get(self.url(host, path))
            .send()
            .await
            .expect("the proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    /// Sends `request` as raw bytes and returns the raw response (up to the connection's end).
    async fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.proxy.http).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
        String::from_utf8_lossy(&response).into_owned()
    }

    async fn stop(self) -> PgPool {
        let late = self.background.shutdown(Duration::from_secs(15)).await;
        assert!(late.is_empty(), "still running: {late:?}");
        self.pool
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[sqlx::test(migrations = "../migrations")]
async fn routes_by_host_to_each_site_and_unknown_hosts_get_a_404_page(pool: PgPool) {
    let env = start(pool).await;
    let (alpha, beta) = (upstream("alpha").await, upstream("beta").await);
    env.site("alpha", "active", Some(alpha)).await;
    env.site("beta", "active", Some(beta)).await;

    let (status, _, body) = env.get("alpha.localhost", "/").await;
    assert_eq!((status, json(&body)["site"].as_str()), (200, Some("alpha")));
    let (status, _, body) = env.get("beta.localhost", "/").await;
    assert_eq!((status, json(&body)["site"].as_str()), (200, Some("beta")));
    // The site sees the visitor's Host, not its own address.
    assert_eq!(
        json(&body)["host"],
        format!("beta.localhost:{}", env.proxy.http.port())
    );

    let (status, headers, body) = env.get("gamma.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("No site here"), "{body}");
    assert!(
        !body.contains("127.0.0.1"),
        "an internal address leaked: {body}"
    );
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn suspended_starting_stopped_and_down_sites_explain_themselves(pool: PgPool) {
    let env = start(pool).await;
    let live = upstream("live").await;
    let suspended = env.site("suspended", "active", Some(live)).await;
    assert!(
        platform::sites::suspend(&env.platform, suspended, "payment failed")
            .await
            .unwrap()
    );
    env.site("starting", "provisioning", None).await;
    env.site("parked", "stopped", None).await;
    // Active, but nothing listens at its address any more.
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    env.site("gone", "active", Some(gone)).await;

    // The suspension reaches the table through NOTIFY, within a second.
    let started = Instant::now();
    loop {
        let (status, headers, body) = env.get("suspended.localhost", "/").await;
        if status == 503 {
            assert_eq!(headers["retry-after"], "3600");
            assert!(body.contains("This site is suspended"), "{body}");
            assert!(
                !body.contains("payment failed"),
                "the operator's reason is not for visitors"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still served after a second: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, headers, body) = env.get("starting.localhost", "/").await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (503, "10")
    );
    assert!(body.contains("being set up"), "{body}");
    let (status, _, body) = env.get("parked.localhost", "/").await;
    assert_eq!(status, 503);
    assert!(body.contains("offline"), "{body}");
    let (status, _, body) = env.get("gone.localhost", "/").await;
    assert_eq!(status, 502);
    assert!(body.contains("not responding"), "{body}");
    assert!(!body.contains(&gone.to_string()), "{body}");

    // Resumed: served again within a second.
    assert!(
        platform::sites::resume(&env.platform, suspended)
            .await
            .unwrap()
    );
    let started = Instant::now();
    while env.get("suspended.localhost", "/").await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not resumed within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_websocket_echoes_through_the_proxy(pool: PgPool) {
    let env = start(pool).await;
    env.site("chat", "active", Some(websocket_echo().await))
        .await;
    let stream = TcpStream::connect(env.proxy.http).await.unwrap();
    let url = format!("ws://chat.localhost:{}/socket", env.proxy.http.port());
    let (mut ws, response) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("the upgrade goes through");
    assert_eq!(response.status().as_u16(), 101);
    for text in ["hello", "second message", &"x".repeat(100_000)] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        let echoed = ws.next().await.expect("an echo").expect("a message");
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    ws.close(None).await.unwrap();
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn large_bodies_stream_both_ways_and_the_plan_limit_applies(pool: PgPool) {
    let env = start(pool).await;
    env.site("files", "active", Some(upstream("files").await))
        .await;
    let client = env.client();

    // 20 MiB down, streamed by the site in 64 KiB chunks.
    let size = 20 << 20;
    let mut response = client
        .get(env.url("files.localhost", &format!("/download/{size}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut received = 0usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        assert!(chunk.iter().all(|b| *b == b'x'));
        received += chunk.len();
    }
    assert_eq!(received, size);

    // 20 MiB up, chunked (no Content-Length), within the Pro plan's 25 MiB.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..320)
        .map(|i| Ok(vec![(i % 251) as u8; 65_536]))
        .collect();
    let expected_sum: u64 = (0..320u64).map(|i| (i % 251) * 65_536).sum();
    let response = client
        .post(env.url("files.localhost", "/upload"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        format!("{} {expected_sum}", 320 * 65_536)
    );

    // Over the limit: refused up front when declared, before a byte of the body is sent...
    let raw = env
        .raw(
            format!(
                "POST /upload HTTP/1.1\r\nHost: files.localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                26 << 20
            )
            .as_bytes(),
        )
        .await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    // ...and cut off when streamed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..420).map(|_| Ok(vec![1u8; 65_536])).collect();
    let response = client
        .post(env.url("files.localhost", "/upload"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status().as_u16(), 413),
        // The proxy may answer and close while the client is still sending.
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn forwarding_headers_are_set_by_the_proxy_not_the_client(pool: PgPool) {
    let env = start(pool).await;
    env.site("plain", "active", Some(upstream("plain").await))
        .await;
    let response = env
        .client()
        .get(env.url("plain.localhost", "/"))
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "bank.example")
        .header("X-Real-IP", "6.6.6.6")
        .header("Forwarded", "for=6.6.6.6")
        .header("Connection", "x-secret")
        .header("X-Secret", "hop-by-hop")
        .send()
        .await
        .unwrap();
    let seen = json(&response.text().await.unwrap());
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-real-ip"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(
        seen["x-forwarded-host"],
        format!("plain.localhost:{}", env.proxy.http.port())
    );
    assert_eq!(seen["forwarded"], "");
    assert_eq!(
        seen["x-secret"], "",
        "a header named in Connection is hop-by-hop"
    );
    env.stop().await;
}

/// Behind one trusted proxy, the client address it appended is believed, nothing before it.
#[sqlx::test(migrations = "../migrations")]
async fn behind_trusted_proxies_only_their_hops_are_believed(pool: PgPool) {
    let env = start_with(pool, |c| c.proxy.trusted_hops = 1).await;
    env.site("behind", "active", Some(upstream("behind").await))
        .await;
    let response = env
        .client()
        .get(env.url("behind.localhost", "/"))
        .header("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    let seen = json(&response.text().await.unwrap());
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-real-ip"], "203.0.113.7");
    assert_eq!(seen["x-forwarded-proto"], "https");
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn host_fuzzing_never_reaches_another_tenant_or_breaks_the_proxy(pool: PgPool) {
    let env = start(pool).await;
    env.site("mine", "active", Some(upstream("mine").await))
        .await;
    env.site("theirs", "active", Some(upstream("theirs").await))
        .await;
    let port = env.proxy.http.port();
    let status = |raw: &str| {
        raw.split(' ')
            .nth(1)
            .unwrap_or("")
            .parse::<u16>()
            .unwrap_or(0)
    };
    let get = |host_lines: &str, target: &str| {
        format!("GET {target} HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n")
    };

    // Spellings of the same host reach the same site.
    for host in [
        "MINE.LOCALHOST".to_owned(),
        "Mine.LocalHost".to_owned(),
        "mine.localhost.".to_owned(),
        format!("mine.localhost:{port}"),
        format!("mine.localhost.:{port}"),
    ] {
        let raw = env
            .raw(get(&format!("Host: {host}\r\n"), "/").as_bytes())
            .await;
        assert_eq!(status(&raw), 200, "{host}: {raw}");
        assert!(raw.contains("\"site\":\"mine\""), "{host}: {raw}");
    }
    // Ambiguous or malformed requests are refused, never guessed.
    let refused = [
        get("Host: mine.localhost\r\nHost: theirs.localhost\r\n", "/"),
        get("Host: mine.localhost\r\n", "http://theirs.localhost/"),
        get("Host: theirs.localhost\r\n", "http://mine.localhost/"),
        get("Host: mine.localhost, theirs.localhost\r\n", "/"),
        get("Host: mine.localhost/../theirs.localhost\r\n", "/"),
        get("Host: mine.localhost@theirs.localhost\r\n", "/"),
        get("Host: \r\n", "/"),
        get("", "/"),
        get("Host: mïne.localhost\r\n", "/"),
        get("Host: [::1]\r\n", "/"),
        get("Host: 127.0.0.1\r\n", "/"),
    ];
    for request in &refused {
        let raw = env.raw(request.as_bytes()).await;
        assert!(
            [400, 404].contains(&status(&raw)),
            "{request:?} was answered with: {raw}"
        );
        assert!(
            !raw.contains("\"site\""),
            "{request:?} reached a site: {raw}"
        );
    }
    // An absolute target that agrees with Host is fine.
    let raw = env
        .raw(get("Host: mine.localhost\r\n", "http://mine.localhost/").as_bytes())
        .await;
    assert!(raw.contains("\"site\":\"mine\""), "{raw}");
    // A punycode name is an ordinary (unknown here) host.
    let raw = env
        .raw(get("Host: xn--mne-bma.localhost\r\n", "/").as_bytes())
        .await;
    assert_eq!(status(&raw), 404, "{raw}");
    // Oversized headers: refused by the HTTP layer, not a crash.
    let huge = format!("Host: mine.localhost\r\nX-Big: {}\r\n", "a".repeat(100_000));
    let raw = env.raw(get(&huge, "/").as_bytes()).await;
    assert!(
        [431, 400, 0].contains(&status(&raw)),
        "{}",
        &raw[..raw.len().min(200)]
    );
    let long_host = format!("Host: {}.localhost\r\n", "a".repeat(300));
    assert_eq!(status(&env.raw(get(&long_host, "/").as_bytes()).await), 400);
    // Garbage that is not HTTP at all.
    let _ = env
        .raw(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n")
        .await;
    // Still serving, and still to the right tenant.
    let (status, _, body) = env.get("theirs.localhost", "/").await;
    assert_eq!(
        (status, json(&body)["site"].as_str()),
        (200, Some("theirs"))
    );
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn http2_with_prior_knowledge_is_routed_too(pool: PgPool) {
    let env = start(pool).await;
    env.site("modern", "active", Some(upstream("modern").await))
        .await;
    let client = env
        .client_builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(env.url("modern.localhost", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(json(&response.text().await.unwrap())["site"], "modern");
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn one_site_cannot_take_more_than_its_concurrency_limit(pool: PgPool) {
    let env = start(pool).await;
    // Starter allows 32 requests in flight per site.
    let starter = test_support::owner_on_plan(&env.platform, "starter")
        .await
        .organization_id;
    env.site_in(
        starter,
        "crowded",
        "active",
        Some(upstream("crowded").await),
    )
    .await;
    env.site("calm", "active", Some(upstream("calm").await))
        .await;
    let client = env.client();
    let url = env.url("crowded.localhost", "/hold/1500");
    let held: Vec<_> = (0..32)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    // Wait until all 32 are in flight at the proxy.
    let route = env.proxy.routes.lookup("crowded.localhost").unwrap();
    let started = Instant::now();
    while route.in_flight.available_permits() > 0 {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, headers, body) = env.get("crowded.localhost", "/").await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (503, "1")
    );
    assert!(body.contains("busy"), "{body}");
    // Another tenant is not affected.
    assert_eq!(env.get("calm.localhost", "/").await.0, 200);
    for request in held {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(env.get("crowded.localhost", "/").await.0, 200);
    env.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn traffic_is_counted_exactly_and_flushed_at_shutdown(pool: PgPool) {
    let env = start(pool).await;
    let counted = env
        .site("counted", "active", Some(upstream("counted").await))
        .await;
    let other = env
        .site("other", "active", Some(upstream("other").await))
        .await;
    let client = env.client();
    // 7 uploads of 1000 bytes (answers "1000 1000": 9 bytes each), 5 HTML pages
    // ("<h1>counted</h1>": 16 bytes), 3 downloads of 4096 bytes, 2 unknown paths (404, empty).
    for _ in 0..7 {
        let r = client
            .post(env.url("counted.localhost", "/upload"))
            .body(vec![1u8; 1000])
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "1000 1000");
    }
    for _ in 0..5 {
        client
            .get(env.url("counted.localhost", "/page"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let body = client
            .get(env.url("counted.localhost", "/download/4096"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), 4096);
    }
    for _ in 0..2 {
        let r = client
            .get(env.url("counted.localhost", "/nothing-here"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    // Requests to another site are its own.
    client
        .get(env.url("other.localhost", "/page"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let meters = env.proxy.meters.clone();
    let pool = env.stop().await;
    // Nothing is left in memory after the shutdown flush.
    assert_eq!(meters.flush(&pool).await.unwrap(), 0);

    let row: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT requests, bytes_in, bytes_out, status_2xx, status_4xx, page_views,
                (SELECT sum(b) FROM unnest(latency_buckets) b)::bigint
           FROM usage_hourly WHERE site_id = $1",
    )
    .bind(counted)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row, (17, 7000, 7 * 9 + 5 * 16 + 3 * 4096, 15, 2, 5, 17));
    let records: Vec<(String, i64)> = sqlx::query_as(
        "SELECT metric, quantity FROM usage_records WHERE site_id = $1 ORDER BY metric",
    )
    .bind(counted)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        records,
        [
            ("bandwidth".to_owned(), 7000 + 7 * 9 + 5 * 16 + 3 * 4096),
            ("requests".to_owned(), 17)
        ]
    );
    let other_requests: i64 =
        sqlx::query_scalar("SELECT requests FROM usage_hourly WHERE site_id = $1")
            .bind(other)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(other_requests, 1);
}

/// Writes a self-signed certificate for `names` as `<dir>/fullchain.pem` + `privkey.pem`.
fn certificate(dir: &std::path::Path, names: &[&str]) -> rustls_pki_types::CertificateDer<'static> {
    let generated = rcgen::generate_simple_self_signed(
        names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("fullchain.pem"), generated.cert.pem()).unwrap();
    std::fs::write(
        dir.join("privkey.pem"),
        generated.signing_key.serialize_pem(),
    )
    .unwrap();
    generated.cert.der().clone()
}

/// Opens TLS to the proxy for `server_name`; returns the certificate it presented and the
/// raw HTTP/1.1 answer to `GET /`.
async fn https_get(
    address: SocketAddr,
    server_name: &str,
    trusted: &[rustls_pki_types::CertificateDer<'static>],
) -> (rustls_pki_types::CertificateDer<'static>, String) {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in trusted {
        roots.add(certificate.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut tls = connector
        .connect(name, stream)
        .await
        .expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    (presented, String::from_utf8_lossy(&response).into_owned())
}

#[sqlx::test(migrations = "../migrations")]
async fn tls_picks_the_certificate_by_sni_and_plain_http_redirects(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    // (webpki accepts no wildcard directly under a single-label name like `localhost`.)
    let wildcard = certificate(&dir.path().join("wildcard"), &["*.sites.test"]);
    let custom = certificate(
        &dir.path().join("domains/shop.example.com"),
        &["shop.example.com"],
    );
    let certificates = dir.path().join("domains");
    let wildcard_dir = dir.path().join("wildcard");
    let env = start_with(pool, move |c| {
        c.proxy.base_domain = "sites.test".to_owned();
        c.proxy.tls.enabled = true;
        c.proxy.tls.certificate = Some(wildcard_dir.join("fullchain.pem"));
        c.proxy.tls.key = Some(wildcard_dir.join("privkey.pem"));
        c.proxy.tls.certificates_dir = Some(certificates);
    })
    .await;
    let https = env.proxy.https.expect("an HTTPS listener");
    let site = env
        .site("secure", "active", Some(upstream("secure").await))
        .await;
    sqlx::query(
        "INSERT INTO site_domains (id, site_id, organization_id, domain, token, verified_at)
         VALUES ($1, $2, $3, 'shop.example.com', 't', now())",
    )
    .bind(Uuid::new_v4())
    .bind(site)
    .bind(env.organization)
    .execute(&env.pool)
    .await
    .unwrap();
    env.wait_for_route("shop.example.com").await;
    let trusted = [wildcard.clone(), custom.clone()];

    let (presented, response) = https_get(https, "secure.sites.test", &trusted).await;
    assert_eq!(presented, wildcard);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"x-forwarded-proto\":\"https\""),
        "{response}"
    );
    let (presented, response) = https_get(https, "shop.example.com", &trusted).await;
    assert_eq!(presented, custom);
    assert!(response.contains("\"site\":\"secure\""), "{response}");
    // A name with no certificate: the handshake is refused, nothing is served.
    let stream = TcpStream::connect(https).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(wildcard.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let refused = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("other.example.org").unwrap(),
            stream,
        )
        .await;
    assert!(refused.is_err());

    // Plain HTTP only redirects, to the same host and path.
    let raw = env
        .raw(b"GET /posts/hello?x=1 HTTP/1.1\r\nHost: secure.sites.test\r\nConnection: close\r\n\r\n")
        .await;
    assert!(raw.starts_with("HTTP/1.1 308"), "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains(&format!(
            "location: https://secure.sites.test:{}/posts/hello?x=1",
            https.port()
        )),
        "{raw}"
    );
    env.stop().await;
}
