//! Robust under concurrency and hostile input, over HTTP against a real server: limits that
//! hold when requests arrive together, live pages that cannot starve the dashboard, and a
//! 4xx (never a 5xx) for every malformed request to every server function, page and API
//! route.

use std::time::{Duration, Instant};

use platform::Platform;
use platform::tenancy::Membership;
use platform::tenancy::api_keys::{self, Scope};
use reqwest::Method;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use test_support::{TestApp, at_once, session_cookie};
use uuid::Uuid;

/// A server whose control-plane pool holds at most `max` connections (the default of a
/// small installation), on the test's database.
async fn serve_with_pool(pool: &PgPool, max: u32) -> TestApp {
    let small = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&test_support::database_url(pool))
        .await
        .expect("a pool on the test database");
    let (listener, base) = test_support::listen().await;
    let platform = test_support::platform_at(small, &base);
    test_support::spawn_app_on(listener, base, platform)
}

/// What a browser's JavaScript does against one server: cheap to clone into the tasks of
/// a parallel burst.
#[derive(Clone)]
struct Caller {
    client: reqwest::Client,
    base: String,
}

impl Caller {
    fn of(server: &TestApp) -> Self {
        Self {
            client: server.client.clone(),
            base: server.base.clone(),
        }
    }

    /// A server function called as the page calls it (a form body, the page's Origin),
    /// optionally signed in.
    async fn call(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, String)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Origin", &self.base)
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request
            .send()
            .await
            .expect("the request reaches the server");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Opens a live site page's event stream (the response is held, not read).
    async fn open_events(&self, site: Uuid, cookie: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/sites/{site}/events", self.base))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("the stream opens")
    }
}

async fn call(
    server: &TestApp,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, String)],
) -> (u16, String) {
    Caller::of(server).call(path, cookie, form).await
}

/// The slowest of a few calls, and every status seen.
async fn slowest<F, Fut>(times: usize, request: F) -> (Duration, Vec<u16>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let mut worst = Duration::ZERO;
    let mut statuses = Vec::new();
    for _ in 0..times {
        let started = Instant::now();
        statuses.push(request().await);
        worst = worst.max(started.elapsed());
    }
    (worst, statuses)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hundred_open_live_site_pages_leave_the_dashboard_answering(pool: PgPool) {
    let server = serve_with_pool(&pool, 10).await;
    let p = &server.platform;
    let caller = Caller::of(&server);
    // A user may keep 8 live pages open: 13 customers, each with a site, hold the hundred.
    let mut customers = Vec::new();
    for n in 0..13 {
        let owner = test_support::owner_on_plan(p, "starter").await;
        let site = test_support::site(p, &owner, &format!("busy{n}")).await;
        customers.push((owner, site, session_cookie(p, owner.user_id).await));
    }
    let opened = at_once(100, |i| {
        let (caller, (_, site, cookie)) = (caller.clone(), customers[i / 8].clone());
        async move { caller.open_events(site, &cookie).await }
    })
    .await;
    assert!(
        opened.iter().all(|r| r.status() == 200),
        "{:?}",
        opened.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    // The ninth page of one user is refused with a reason, from another session too.
    let (first, first_site, _) = customers[0].clone();
    let another_session = session_cookie(p, first.user_id).await;
    let ninth = caller.open_events(first_site, &another_session).await;
    assert_eq!(ninth.status(), 429);
    assert!(ninth.text().await.unwrap().contains("close some tabs"));
    let (owner, _, last_cookie) = customers[12].clone();

    let (pool_size, pool_idle) = (p.db.size(), p.db.num_idle());
    let (health, health_statuses) =
        slowest(5, || async { server.page("/healthz", None).await.0 }).await;
    let (sign_in, sign_in_statuses) = slowest(5, || async {
        call(
            &server,
            "/api/account/sign-in",
            None,
            &[
                ("email", owner_email(p, &owner).await),
                ("password", test_support::PASSWORD.to_owned()),
            ],
        )
        .await
        .0
    })
    .await;
    let (list, list_statuses) = slowest(5, || async {
        call(&server, "/api/sites/list", Some(&last_cookie), &[])
            .await
            .0
    })
    .await;
    println!(
        "100 live pages open: pool {pool_size} connections ({pool_idle} idle) of 10; slowest of 5: \
         /healthz {health:?}, sign-in {sign_in:?}, site list {list:?}"
    );
    assert!(
        health_statuses.iter().all(|s| *s == 200),
        "{health_statuses:?}"
    );
    assert!(
        sign_in_statuses.iter().all(|s| *s == 200),
        "{sign_in_statuses:?}"
    );
    assert!(list_statuses.iter().all(|s| *s == 200), "{list_statuses:?}");
    for (what, took) in [
        ("healthz", health),
        ("sign-in", sign_in),
        ("site list", list),
    ] {
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
    }

    // Closing a page gives its session the slot back.
    drop(opened);
    let mut reopened = 0;
    for _ in 0..100 {
        if caller
            .open_events(first_site, &another_session)
            .await
            .status()
            == 200
        {
            reopened += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reopened, 1, "the closed pages' slots came back");
    // This pool is the test's own: close it so the test database can be dropped.
    p.db.close().await;
}

async fn owner_email(p: &Platform, owner: &Membership) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(owner.user_id)
        .fetch_one(&p.db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn parallel_site_creations_and_domain_additions_stop_exactly_at_the_limit(pool: PgPool) {
    let server = test_support::spawn_app(pool.clone()).await;
    let p = &server.platform;
    for round in 0..20 {
        // Starter allows one site: six clicks at once make exactly one.
        let owner = test_support::owner_on_plan(p, "starter").await;
        let cookie = session_cookie(p, owner.user_id).await;
        let results = at_once(6, |i| {
            let (caller, cookie) = (Caller::of(&server), cookie.clone());
            async move {
                let form = [
                    ("name", format!("Site {i}")),
                    ("slug", format!("r{round}-s{i}")),
                ];
                caller
                    .call("/api/sites/create", Some(&cookie), &form)
                    .await
                    .0
            }
        })
        .await;
        let made: i64 = sqlx::query_scalar("SELECT count(*) FROM sites WHERE organization_id = $1")
            .bind(owner.organization_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(made, 1, "round {round}: {results:?}");
        let mut statuses = results.clone();
        statuses.sort();
        assert_eq!(statuses, [200, 402, 402, 402, 402, 402], "round {round}");

        // A site holds at most 20 domains: 24 additions at once add exactly 20.
        let pro = test_support::owner_on_plan(p, "pro").await;
        let site = test_support::site(p, &pro, &format!("domains{round}")).await;
        let cookie = session_cookie(p, pro.user_id).await;
        let results = at_once(24, |i| {
            let (caller, cookie) = (Caller::of(&server), cookie.clone());
            async move {
                let form = [
                    ("site", site.to_string()),
                    ("domain", format!("d{i}.r{round}.example.com")),
                ];
                caller
                    .call("/api/domains/add", Some(&cookie), &form)
                    .await
                    .0
            }
        })
        .await;
        let added: i64 = sqlx::query_scalar("SELECT count(*) FROM site_domains WHERE site_id = $1")
            .bind(site)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            added,
            platform::sites::domains::MAX_DOMAINS_PER_SITE,
            "round {round}"
        );
        assert_eq!(
            results.iter().filter(|s| **s == 402).count(),
            4,
            "round {round}: {results:?}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn parallel_wrong_passwords_over_http_are_checked_at_most_five_times(pool: PgPool) {
    let server = test_support::spawn_app(pool.clone()).await;
    let p = &server.platform;
    for round in 0..20 {
        sqlx::query("DELETE FROM sign_in_failures")
            .execute(&pool)
            .await
            .unwrap();
        let owner = test_support::owner(p).await;
        let email = owner_email(p, &owner).await;
        let results = at_once(12, |_| {
            let (caller, email) = (Caller::of(&server), email.clone());
            async move {
                let form = [("email", email), ("password", "a wrong guess".to_owned())];
                caller.call("/api/account/sign-in", None, &form).await
            }
        })
        .await;
        let checked = results
            .iter()
            .filter(|(_, body)| body.contains("Email or password is incorrect"))
            .count();
        let throttled = results.iter().filter(|(status, _)| *status == 429).count();
        assert_eq!((checked, throttled), (5, 7), "round {round}: {results:?}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_send_security_headers_and_a_nonce_policy_their_scripts_match(pool: PgPool) {
    let server = test_support::spawn_app(pool.clone()).await;
    for path in ["/", "/login", "/pricing", "/no-such-page"] {
        let response = server
            .client
            .get(server.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        let policy = header("content-security-policy");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(policy.contains("object-src 'none'"), "{path}: {policy}");
        let scripts_from = policy
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_else(|| panic!("{path}: no script-src in {policy}"));
        assert!(
            !scripts_from.contains("'unsafe-inline'") && !scripts_from.contains("'unsafe-eval'"),
            "{path}: {scripts_from}"
        );
        let body = response.text().await.unwrap();
        // Every inline script carries the nonce the policy names, and only that one.
        let nonce = policy
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {policy}"));
        let scripts = body.matches("<script").count();
        assert!(scripts >= 1, "{path}");
        assert_eq!(
            body.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{path}: every script has this response's nonce"
        );
    }
    // Two responses never share a nonce.
    let policy = |server: &TestApp| {
        let request = server.client.get(server.url("/login"));
        async move {
            request.send().await.unwrap().headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_ne!(policy(&server).await, policy(&server).await);
    // Server functions and static files are not framed or sniffed either.
    let (status, _) = call(&server, "/api/account/me", None, &[]).await;
    assert_eq!(status, 200);
    let response = server
        .client
        .post(server.url("/api/account/me"))
        .header("Origin", &server.base)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_member_removed_from_their_only_organization_is_offered_to_create_one(pool: PgPool) {
    let server = test_support::spawn_app(pool.clone()).await;
    let p = &server.platform;
    let member = test_support::owner(p).await;
    // Removed from their only organization (as its last owner they could not be removed
    // through the dashboard, so the row goes directly: the state is the same).
    sqlx::query("DELETE FROM organization_members WHERE user_id = $1")
        .bind(member.user_id)
        .execute(&pool)
        .await
        .unwrap();
    let cookie = session_cookie(p, member.user_id).await;
    for path in [
        "/api/sites/list",
        "/api/team/view",
        "/api/settings/view",
        "/api/billing/overview",
        "/api/usage/report",
    ] {
        let (status, body) = call(&server, path, Some(&cookie), &[]).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert!(body.contains("NoOrganization"), "{path}: {body}");
    }
    for path in ["/dashboard", "/dashboard/sites", "/dashboard/team"] {
        let (status, page) = server.page(path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("data-no-organization"), "{path}: {page}");
        assert!(page.contains("data-form=\"create-organization\""), "{path}");
    }
    let (status, _) = call(
        &server,
        "/api/organizations/create",
        Some(&cookie),
        &[("name", "Fresh start".to_owned())],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&server, "/api/sites/list", Some(&cookie), &[]).await;
    assert_eq!(status, 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_body_over_the_limit_is_413(pool: PgPool) {
    let server = test_support::spawn_app(pool).await;
    let big = "x".repeat(server::http::MAX_BODY_BYTES + 1);
    for path in [
        "/api/account/sign-in",
        "/api/webhooks/stripe",
        "/api/sites/create",
    ] {
        let response = server
            .client
            .post(server.url(path))
            .header("Origin", &server.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        assert!(response.text().await.unwrap().contains("larger than"));
    }
}

// ---- every server function, page and API route, with malformed input ----

/// Field names the server functions take (a superset: unknown fields are ignored, a missing
/// one is a malformed request).
const FIELDS: [&str; 24] = [
    "id",
    "q",
    "after",
    "sort",
    "billing",
    "site",
    "site_id",
    "user_id",
    "key_id",
    "organization_id",
    "invitation_id",
    "domain_id",
    "domain",
    "email",
    "password",
    "name",
    "slug",
    "template",
    "role",
    "token",
    "plan",
    "interval",
    "action",
    "confirm",
];

/// Values no field should ever take: each must be refused with a 4xx.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("not a uuid", "not-a-uuid".to_owned()),
        ("nul", "a\0b".to_owned()),
        ("placeholder", "{site_token}".to_owned()),
        ("sql", "'; DROP TABLE users; --".to_owned()),
        ("control", "\u{1b}[31m\r\n\u{7f}".to_owned()),
        ("unicode", "😀\u{202e}ẞ\u{200b}".repeat(50)),
        ("negative", "-9223372036854775808".to_owned()),
        ("path", "../../etc/passwd".to_owned()),
        ("empty", String::new()),
    ]
}

/// The bodies sent to every server function: each hostile value in every field, a 1 MB
/// email, and bodies that are not a form at all.
fn bodies() -> Vec<(String, &'static str, Vec<u8>)> {
    let form = |value: &str| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for field in FIELDS {
            serializer.append_pair(field, value);
        }
        serializer.append_pair("scopes", value);
        serializer.finish().into_bytes()
    };
    let mut bodies: Vec<(String, &'static str, Vec<u8>)> = hostile_values()
        .into_iter()
        .map(|(name, value)| {
            (
                format!("every field {name}"),
                "application/x-www-form-urlencoded",
                form(&value),
            )
        })
        .collect();
    let mut huge_email = url::form_urlencoded::Serializer::new(String::new());
    huge_email.append_pair("email", &format!("{}@example.com", "a".repeat(1_000_000)));
    huge_email.append_pair("password", "x");
    huge_email.append_pair("name", "x");
    bodies.push((
        "1 MB email".into(),
        "application/x-www-form-urlencoded",
        huge_email.finish().into_bytes(),
    ));
    bodies.extend([
        ("empty".into(), "application/x-www-form-urlencoded", vec![]),
        (
            "JSON".into(),
            "application/json",
            br#"{"id":1,"email":null}"#.to_vec(),
        ),
        (
            "multipart".into(),
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1\r\n--x--\r\n".to_vec(),
        ),
        (
            "not UTF-8".into(),
            "application/x-www-form-urlencoded",
            b"id=\xff\xfe&email=\xc3\x28".to_vec(),
        ),
        (
            "percent NUL".into(),
            "application/x-www-form-urlencoded",
            b"id=%00&email=%00".to_vec(),
        ),
    ]);
    bodies
}

#[derive(Debug)]
#[allow(dead_code)] // Read through `Debug` when the test fails.
struct ServerError {
    request: String,
    status: u16,
    body: String,
}

#[sqlx::test(migrations = "../migrations")]
async fn no_malformed_request_to_any_route_gets_a_5xx(pool: PgPool) {
    let mut server = test_support::spawn_app(pool.clone()).await;
    // Redirects are answers too (a plain form post's error is a redirect): not followed,
    // so a 5xx behind one cannot hide.
    server.client = test_support::client()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let p = server.platform.clone();
    // Who calls: nobody, an owner with a site and a key, a member of no organization, an
    // operator of no organization.
    let owner = test_support::owner_on_plan(&p, "business").await;
    let site = test_support::site(&p, &owner, "fuzzed").await;
    let (_, key) = api_keys::create(&p, &owner, "fuzz", &[Scope::Read, Scope::Write], None)
        .await
        .unwrap();
    let orphan = test_support::owner(&p).await;
    let operator = test_support::owner(&p).await;
    sqlx::query("DELETE FROM organization_members WHERE user_id = ANY($1)")
        .bind([orphan.user_id, operator.user_id])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET is_operator = true WHERE id = $1")
        .bind(operator.user_id)
        .execute(&pool)
        .await
        .unwrap();
    let users = [
        None,
        Some(owner.user_id),
        Some(orphan.user_id),
        Some(operator.user_id),
    ];

    // Requests are described first and built as they are sent (a 1 MB body is shared, not
    // copied per request).
    let mut requests: Vec<(String, Box<dyn FnOnce() -> reqwest::RequestBuilder + Send>)> =
        Vec::new();
    let bodies: Vec<(String, &'static str, bytes::Bytes)> = bodies()
        .into_iter()
        .map(|(name, content_type, body)| (name, content_type, bytes::Bytes::from(body)))
        .collect();
    let mut functions: Vec<(&'static str, Method)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| {
            (
                path,
                Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            )
        })
        .collect();
    functions.sort();
    assert!(
        functions.len() >= 30,
        "server functions found: {functions:?}"
    );
    for (path, method) in &functions {
        for user in users {
            // A fresh session per function: signing out must not end the others' run.
            let cookie = match user {
                Some(id) => Some(session_cookie(&p, id).await),
                None => None,
            };
            for (name, content_type, body) in &bodies {
                for accept in ["application/json", "text/html"] {
                    let (client, url, origin) =
                        (server.client.clone(), server.url(path), server.base.clone());
                    let (method, cookie, body) = (method.clone(), cookie.clone(), body.clone());
                    let content_type = *content_type;
                    requests.push((
                        format!("{method} {path} [{name}] as {user:?} accepting {accept}"),
                        Box::new(move || {
                            // A GET function takes its arguments in the query (a raw NUL).
                            let get = method == Method::GET;
                            let target = if get {
                                format!("{url}?id=not-a-uuid&site=%00")
                            } else {
                                url
                            };
                            let mut request = client
                                .request(method, target)
                                .header("Origin", origin)
                                .header("content-type", content_type)
                                .header("accept", accept);
                            if !get {
                                request = request.body(body);
                            }
                            if let Some(cookie) = cookie {
                                request = request.header("Cookie", cookie);
                            }
                            request
                        }),
                    ));
                }
            }
        }
    }

    // Pages: every route of the app, each parameter replaced by malformed values, with
    // malformed query strings.
    let routes = leptos_axum::generate_route_list(app::App);
    let mut pages: Vec<String> = routes.iter().map(|r| r.path().to_owned()).collect();
    pages.sort();
    pages.dedup();
    assert!(pages.len() >= 15, "pages found: {pages:?}");
    let segments = [
        "not-a-uuid",
        &Uuid::new_v4().to_string(),
        "%00",
        "..%2f..",
        "%ff%fe",
    ];
    for page in &pages {
        for segment in segments {
            let path: String = page
                .split('/')
                .map(|part| {
                    if part.starts_with(':') || part.starts_with('{') {
                        segment
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for user in users {
                let mut request = server
                    .client
                    .get(format!(
                        "{}{path}?token=%00&organization=zz&site=%ff&new_key=%00&error=%7B",
                        server.base
                    ))
                    .header("accept", "text/html");
                if let Some(id) = user {
                    request = request.header("Cookie", session_cookie(&p, id).await);
                }
                requests.push((format!("GET {path} as {user:?}"), Box::new(move || request)));
            }
        }
    }

    // The REST API: every route, every method, with keys good, malformed and hostile.
    let api_headers = [
        format!("Bearer {key}"),
        "Bearer sk_live_".to_owned(),
        "Bearer \u{0}".replace('\0', "%00"),
        format!("Bearer {}", "x".repeat(10_000)),
        "Basic Zm9vOmJhcg==".to_owned(),
    ];
    for (path, _, _) in server::api::endpoints() {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            for authorization in &api_headers {
                let request = server
                    .client
                    .request(method.clone(), server.url(path))
                    .header("authorization", authorization)
                    .header("content-type", "application/json")
                    .body("{\"name\":\"\\u0000\"}");
                requests.push((
                    format!("{method} {path} [{authorization:.20}]"),
                    Box::new(move || request),
                ));
            }
        }
    }
    // Other routes: live events and logs with malformed or foreign ids (this server has no
    // Docker engine, so the owner's own site's logs, a 503 said plainly, are not asked), the
    // Stripe webhook with malformed signatures (local billing: 404 by design), non-UTF-8
    // and oversized cookies.
    for id in [
        "not-a-uuid",
        "%00",
        &site.to_string(),
        &Uuid::new_v4().to_string(),
    ] {
        for what in ["events", "logs", "logs.txt"] {
            for user in [orphan.user_id, owner.user_id] {
                if user == owner.user_id && *id == site.to_string() {
                    continue;
                }
                let request = server
                    .client
                    .get(server.url(&format!("/api/sites/{id}/{what}")))
                    .header("Cookie", session_cookie(&p, user).await);
                requests.push((
                    format!("GET {what} {id} as {user}"),
                    Box::new(move || request),
                ));
            }
        }
    }
    // The operator's CSV export with hostile queries, as everyone.
    let long = "x".repeat(5_000);
    for query in [
        "q=%00",
        "q=%ff%fe",
        "q=%25%5F%5C",
        &format!("q={long}"),
        "plan=%00&billing=%7B&sort=%ff",
        "sort=name&q=a&q=b",
    ] {
        for user in users {
            let mut request = server
                .client
                .get(server.url(&format!("/admin/organizations.csv?{query}")));
            if let Some(id) = user {
                request = request.header("Cookie", session_cookie(&p, id).await);
            }
            requests.push((
                format!("GET organizations.csv?{query:.30} as {user:?}"),
                Box::new(move || request),
            ));
        }
    }
    for signature in [
        "t=-9223372036854775808,v1=00",
        "t=,v1=",
        "t=1 , v1 = zz",
        "",
    ] {
        let request = server
            .client
            .post(server.url("/api/webhooks/stripe"))
            .header("stripe-signature", signature)
            .body("{\"id\":\"evt\\u0000\"}");
        requests.push((
            format!("stripe webhook [{signature}]"),
            Box::new(move || request),
        ));
    }
    for cookie in [
        b"slipway_session=\xff\xfe".to_vec(),
        format!("slipway_session={}", "a".repeat(8000)).into_bytes(),
        b"slipway_session=%00; slipway_session=x".to_vec(),
    ] {
        let value = reqwest::header::HeaderValue::from_bytes(&cookie).unwrap();
        let page = server
            .client
            .get(server.url("/dashboard"))
            .header("accept", "text/html")
            .header("Cookie", value.clone());
        requests.push((
            "dashboard with a malformed cookie".into(),
            Box::new(move || page),
        ));
        let function = server
            .client
            .post(server.url("/api/sites/list"))
            .header("Origin", &server.base)
            .header("Cookie", value);
        requests.push((
            "sites/list with a malformed cookie".into(),
            Box::new(move || function),
        ));
    }

    // Requests that end sessions go last: until then every signed-in request is made with
    // a live session (checked below).
    requests.sort_by_key(|(description, _)| description.contains("/api/account/sign-out"));
    let owner_lists = format!(
        "POST /api/sites/list [every field sql] as {:?} accepting application/json",
        Some(owner.user_id)
    );
    let mut owner_list_status = None;
    // Sent 16 at a time, as a busy client would.
    let total = requests.len();
    let mut failures: Vec<ServerError> = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut requests = requests.into_iter();
    loop {
        let batch: Vec<_> = requests.by_ref().take(16).collect();
        if batch.is_empty() {
            break;
        }
        let mut running = tokio::task::JoinSet::new();
        for (description, request) in batch {
            let request = request().timeout(Duration::from_secs(20));
            running.spawn(async move {
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(error) => return (description, 599, format!("no answer: {error}")),
                };
                let status = response.status().as_u16();
                // Streams (live events) are not read to their end.
                let body = if status >= 500 {
                    response.text().await.unwrap_or_default()
                } else {
                    String::new()
                };
                (description, status, body)
            });
        }
        while let Some(done) = running.join_next().await {
            let (request, status, body) = done.unwrap();
            *statuses.entry(status).or_default() += 1;
            if request == owner_lists {
                owner_list_status = Some(status);
            }
            if status >= 500 {
                failures.push(ServerError {
                    request,
                    status,
                    body: body.chars().take(300).collect(),
                });
            }
        }
    }
    println!(
        "{total} malformed requests to {} server functions, {} pages and {} API routes; statuses: {statuses:?}",
        functions.len(),
        pages.len(),
        server::api::endpoints().len()
    );
    assert!(
        failures.is_empty(),
        "{} answered 5xx: {failures:#?}",
        failures.len()
    );
    assert_eq!(
        owner_list_status,
        Some(200),
        "the owner's session was live while functions were fuzzed"
    );
}
