//! The server's HTTP surface, black-box: a real server on port 0 against a fresh database.

use std::time::{Duration, Instant};

use platform::Platform;
use platform::catalog::plans::{Catalog, Plan, default_plans};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use test_support::{TcpRelay, TestApp};

async fn serve(pool: PgPool) -> TestApp {
    test_support::spawn_app(pool).await
}

/// Serves a platform with `catalog` (its own address as its public URL).
async fn serve_catalog(pool: PgPool, catalog: Catalog) -> TestApp {
    let (listener, base) = test_support::listen().await;
    let platform = Platform::new(pool, catalog, base.parse().expect("valid URL"));
    test_support::spawn_app_on(listener, base, platform)
}

async fn healthz(server: &TestApp) -> (u16, Value) {
    let (status, body) = server.page("/healthz", None).await;
    (
        status,
        serde_json::from_str(&body).expect("healthz answers JSON"),
    )
}

/// Each server function has an endpoint of its own: two with the same path would answer
/// each other's calls once the page runs in the browser (the server renders pages by
/// calling the functions directly, so nothing else here would notice).
#[test]
fn server_function_endpoints_are_unique() {
    fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("app sources") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src"),
        &mut files,
    );
    let mut endpoints: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("source");
            text.split("#[server(endpoint = \"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(endpoints.len() > 40, "{endpoints:?}");
    endpoints.sort();
    let repeated: Vec<&String> = endpoints
        .windows(2)
        .filter(|pair| pair[0] == pair[1])
        .map(|pair| &pair[0])
        .collect();
    assert!(repeated.is_empty(), "repeated endpoints: {repeated:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_is_ok_when_the_database_answers(pool: PgPool) {
    let server = serve(pool).await;
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["status"], "up");
    assert!(body["database"]["latency_ms"].as_f64().is_some(), "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_reports_an_outage_with_503_and_recovers(pool: PgPool) {
    // The server reaches Postgres through a relay the test can cut, as a network would.
    let upstream = pool.connect_options().get_port();
    let relay = TcpRelay::start(upstream).await;
    let through_relay = (*pool.connect_options())
        .clone()
        .host("127.0.0.1")
        .port(relay.port());
    let relayed_pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(through_relay);
    let server = serve(relayed_pool).await;
    assert_eq!(healthz(&server).await.0, 200);

    relay.cut().await;
    let asked = Instant::now();
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"]["status"], "down");
    assert!(
        !body["database"]["error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "says why: {body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a probe gets its answer instead of hanging"
    );

    relay.restore().await;
    let (status, body) = healthz(&server).await;
    assert_eq!(status, 200, "recovers without a restart: {body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn pricing_shows_every_plan_with_monthly_prices(pool: PgPool) {
    let server = serve(pool).await;
    let (status, html) = server.page("/pricing", None).await;
    assert_eq!(status, 200);
    for name in ["Free", "Starter", "Pro", "Business"] {
        assert!(html.contains(name), "{name} missing");
    }
    for note in [
        "or $150 billed yearly",
        "or $490 billed yearly",
        "or $1,490 billed yearly",
        "Free forever",
    ] {
        assert!(html.contains(note), "{note:?} missing");
    }
    for price in ["$15", "$49", "$149"] {
        assert!(html.contains(price), "{price} missing");
    }
    assert!(html.contains("/month"));
    assert!(html.contains("5 hosted sites"), "limits are listed");
    assert!(html.contains("Custom domains"), "features are listed");
    // No Stripe key: local billing mode, and the page says who assigns plans.
    assert!(
        html.contains("plans are assigned by its operator"),
        "local billing notice"
    );
    assert!(
        html.contains(r#"href="/dashboard/billing?plan=pro&amp;billing=monthly""#),
        "paid plans lead to the billing page"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn pricing_shows_yearly_prices_without_javascript(pool: PgPool) {
    let server = serve(pool).await;
    let (status, html) = server.page("/pricing?billing=yearly", None).await;
    assert_eq!(status, 200);
    for note in [
        "$12.50/month, save $30",
        "$40.83/month, save $98",
        "$124.17/month, save $298",
    ] {
        assert!(html.contains(note), "{note:?} missing");
    }
    assert!(html.contains("$1,490"));
    assert!(html.contains("/year"));
    assert!(!html.contains("billed yearly"), "monthly notes are gone");
    // The selected interval is marked for assistive technology too.
    assert!(html.contains(r#"data-interval="yearly" aria-current="true""#));
}

#[sqlx::test(migrations = "../migrations")]
async fn pricing_follows_the_operators_catalog(pool: PgPool) {
    let mut hobby: Plan = default_plans().remove(1);
    hobby.id = platform::catalog::plans::PlanId::parse("hobby").expect("valid id");
    hobby.name = "Hobbyist".into();
    hobby.monthly_cents = platform::catalog::plans::Cents(700);
    hobby.yearly_cents = platform::catalog::plans::Cents(7000);
    let server = serve_catalog(pool, Catalog::new(vec![hobby]).expect("valid")).await;
    let (_, html) = server.page("/pricing", None).await;
    assert!(html.contains("Hobbyist"));
    assert!(html.contains("$7"));
    assert!(!html.contains("Starter"), "the default catalog is replaced");
    let (_, landing) = server.page("/", None).await;
    assert!(
        landing.contains("Hobbyist"),
        "the landing page lists it too"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn landing_page_lists_plans_and_links_to_pricing(pool: PgPool) {
    let server = serve(pool).await;
    let (status, html) = server.page("/", None).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Slipway</title>"), "title");
    assert!(html.contains(r#"href="/pricing""#));
    assert!(html.contains("from $15/month"));
    assert!(html.contains("from $149/month"));
}

#[sqlx::test(migrations = "../migrations")]
async fn dashboard_shell_has_every_section(pool: PgPool) {
    let server = serve(pool.clone()).await;
    let cookie = signed_in_owner(&server).await;
    let sections = [
        ("/dashboard", "Overview", "Getting started"),
        ("/dashboard/sites", "Sites", "No sites yet"),
        ("/dashboard/team", "Team", "Pending invitations"),
        ("/dashboard/billing", "Billing", "assigned by its operator"),
        ("/dashboard/usage", "Usage", "0 in 30 days"),
        ("/dashboard/settings", "Settings", "API keys"),
    ];
    for (path, title, empty_state) in sections {
        let (status, html) = server.page(path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains(&format!("<title>{title} · Slipway</title>")),
            "{path}"
        );
        assert!(html.contains(empty_state), "{path}: empty state");
        for (link, _, _) in sections {
            assert!(
                html.contains(&format!(r#"href="{link}""#)),
                "{path}: nav to {link}"
            );
        }
        assert!(
            html.contains(&format!(r#"href="{path}" aria-current="page""#)),
            "{path}: current section marked"
        );
    }
}

/// Signs up an owner through the platform and returns the session cookie.
async fn signed_in_owner(server: &TestApp) -> String {
    let owner = test_support::owner_with_email(&server.platform, "owner@example.com").await;
    test_support::session_cookie(&server.platform, owner.user_id).await
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_pages_are_404(pool: PgPool) {
    let server = serve(pool).await;
    for path in ["/nope", "/dashboard/nope", "/pricing/extra"] {
        let (status, html) = server.page(path, None).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("Page not found"), "{path}");
    }
}

mod api {
    use super::*;
    use platform::identity::signup;
    use platform::identity::signup::SignUp;
    use platform::identity::users::{NewPassword, PersonName};
    use platform::kernel::Email;
    use platform::tenancy;
    use platform::tenancy::api_keys::{self, Scope};
    use platform::tenancy::organizations::OrganizationName;

    fn platform(pool: &PgPool) -> Platform {
        Platform::new(
            pool.clone(),
            Catalog::new(default_plans()).expect("valid"),
            "http://127.0.0.1:3000/".parse().expect("valid URL"),
        )
    }

    /// Signs up `email` with an organization named `organization`; returns a key of it.
    async fn organization_with_key(
        p: &Platform,
        email: &str,
        organization: &str,
    ) -> (uuid::Uuid, String, uuid::Uuid) {
        let signed_up = signup::sign_up(
            p,
            SignUp {
                email: Email::parse(email).expect("email"),
                name: PersonName::parse("Owner").expect("name"),
                password: NewPassword::parse("correct horse battery").expect("password"),
                organization: OrganizationName::parse(organization).expect("name"),
            },
            None,
        )
        .await
        .expect("sign-up");
        let me = tenancy::membership(p, signed_up.organization_id, signed_up.user_id)
            .await
            .expect("membership");
        // API access is a Pro feature.
        test_support::set_plan(p, &me, "pro").await;
        let (key, secret) = api_keys::create(p, &me, "test", &[Scope::Read], None)
            .await
            .expect("key");
        (signed_up.organization_id, secret, key.id)
    }

    async fn get_with(
        server: &TestApp,
        authorization: Option<&str>,
    ) -> (u16, Option<String>, Value) {
        let mut request = server
            .client
            .get(format!("{}/api/v1/organization", server.base));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        (status, challenge, response.json().await.expect("JSON body"))
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn organization_endpoint_answers_for_the_keys_organization_only(pool: PgPool) {
        let p = platform(&pool);
        let (org_a, key_a, _) = organization_with_key(&p, "a@example.com", "Alpha Co").await;
        let (org_b, _, _) = organization_with_key(&p, "b@example.com", "Beta Co").await;
        let server = serve(pool).await;

        let (status, _, body) = get_with(&server, Some(&format!("Bearer {key_a}"))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], org_a.to_string());
        assert_ne!(body["id"], org_b.to_string());
        assert_eq!(body["name"], "Alpha Co");
        assert_eq!(body["slug"], "alpha-co");
        assert_eq!(body["plan_id"], "pro");
        assert_eq!(body["plan_name"], "Pro");
        assert_eq!(body["member_count"], 1);

        // On a plan without API access the key is refused, saying why.
        sqlx::query("UPDATE organizations SET plan_id = 'free' WHERE id = $1")
            .bind(org_a)
            .execute(&p.db)
            .await
            .expect("downgrade");
        let (status, _, body) = get_with(&server, Some(&format!("Bearer {key_a}"))).await;
        assert_eq!(status, 402, "{body}");
        assert_eq!(body["error"]["code"], "limit_reached");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("API access is not part of your plan"),
            "{body}"
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn wrong_revoked_or_malformed_keys_get_401_with_a_json_error(pool: PgPool) {
        let p = platform(&pool);
        let (org, key, key_id) = organization_with_key(&p, "a@example.com", "Alpha Co").await;
        let server = serve(pool.clone()).await;
        // The same key with its last character changed (to one it surely is not).
        let last = if key.ends_with('A') { 'B' } else { 'A' };
        let wrong = format!("{}{last}", &key[..key.len() - 1]);
        let cases = [
            (None, "missing Authorization"),
            (
                Some("Basic dXNlcjpwYXNz".to_owned()),
                "expected Authorization: Bearer",
            ),
            (Some("Bearer sk_live_short".to_owned()), "malformed"),
            (Some(format!("Bearer {wrong}")), "not valid"),
        ];
        for (header, message) in cases {
            let (status, challenge, body) = get_with(&server, header.as_deref()).await;
            assert_eq!(status, 401, "{header:?}");
            assert_eq!(challenge.as_deref(), Some("Bearer"));
            assert_eq!(body["error"]["code"], "unauthorized");
            let text = body["error"]["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{header:?}: {text}");
        }

        let owner: uuid::Uuid =
            sqlx::query_scalar("SELECT user_id FROM organization_members LIMIT 1")
                .fetch_one(&pool)
                .await
                .expect("owner");
        let me = tenancy::membership(&p, org, owner)
            .await
            .expect("membership");
        api_keys::revoke(&p, &me, key_id, None)
            .await
            .expect("revoke");
        let (status, _, body) = get_with(&server, Some(&format!("Bearer {key}"))).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["message"], "API key has been revoked");
    }
}

mod accounts_over_http {
    use super::*;
    use platform::identity::sessions;
    use platform::identity::signup;
    use platform::identity::signup::SignUp;
    use platform::identity::users::{NewPassword, PersonName};
    use platform::kernel::Email;
    use platform::tenancy;
    use platform::tenancy::Role;
    use platform::tenancy::organizations::OrganizationName;

    fn no_redirects() -> reqwest::Client {
        test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    async fn count(pool: &PgPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    /// What a browser without JavaScript sends for a form of `page` posting to the server
    /// function at `/api/{endpoint}`.
    async fn plain_form_post(
        client: &reqwest::Client,
        server: &TestApp,
        endpoint: &str,
        page: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(format!("{}/api/{endpoint}", server.base))
            .header("Accept", "text/html")
            .header("Origin", &server.base)
            .header("Referer", format!("{}{page}", server.base))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    fn sign_up_form() -> [(&'static str, &'static str); 4] {
        [
            ("name", "Ada Lovelace"),
            ("email", "ada@example.com"),
            ("password", "correct horse battery"),
            ("organization", "Analytical Engines"),
        ]
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_plain_form_sign_up_sets_a_safe_session_cookie(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let client = no_redirects();
        let response = plain_form_post(
            &client,
            &server,
            "account/sign-up",
            "/signup",
            &sign_up_form(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 302);
        assert_eq!(response.headers()["location"], "/dashboard");
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(cookie.starts_with("slipway_session="), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(
            !cookie.contains("Secure"),
            "plain HTTP public URL: {cookie}"
        );
        let session = cookie.split(';').next().expect("pair").to_owned();

        let dashboard = client
            .get(format!("{}/dashboard/settings", server.base))
            .header("Accept", "text/html")
            .header("Cookie", &session)
            .send()
            .await
            .expect("request");
        assert_eq!(dashboard.status().as_u16(), 200);
        let html = dashboard.text().await.expect("body");
        assert!(html.contains("ada@example.com"));
        assert!(
            html.contains("analytical-engines"),
            "settings show the organization"
        );
        assert!(
            html.contains("Account created") && !html.contains("user.signed_up"),
            "the owner reads the audit log, in words"
        );

        let anonymous = client
            .get(format!("{}/dashboard", server.base))
            .header("Accept", "text/html")
            .send()
            .await
            .expect("request");
        assert_eq!(
            anonymous.status().as_u16(),
            302,
            "signed out: sent to sign in"
        );
        assert_eq!(anonymous.headers()["location"], "/login");
    }

    /// Without JavaScript a refused form comes back to its page's own address (no encoded
    /// error in it), once, with its errors and what was typed (never the password).
    #[sqlx::test(migrations = "../migrations")]
    async fn a_refused_plain_form_comes_back_once_with_what_was_typed(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let client = no_redirects();
        let form = [
            ("name", ""),
            ("email", "ada@example.com"),
            ("password", "secret password 1"),
            ("organization", "Engines <&> Co"),
        ];
        let response = plain_form_post(
            &client,
            &server,
            "account/sign-up",
            "/signup?plan=pro",
            &form,
        )
        .await;
        assert_eq!(response.status().as_u16(), 303);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("{}/signup?plan=pro", server.base));
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.starts_with("slipway_form="), "{cookie}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let flash = cookie.split(';').next().unwrap().to_owned();

        let page = |cookie: Option<String>| {
            let client = client.clone();
            let url = format!("{}/signup?plan=pro", server.base);
            async move {
                let mut request = client.get(url).header("Accept", "text/html");
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                let response = request.send().await.expect("request");
                let cleared = response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|value| value.to_str().unwrap().starts_with("slipway_form=;"));
                (cleared, response.text().await.expect("body"))
            }
        };
        let (cleared, html) = page(Some(flash.clone())).await;
        assert!(cleared, "the flash is used up by the page it was for");
        assert!(html.contains("Enter your name."), "the error shows");
        assert!(html.contains(r#"aria-invalid="true""#));
        assert!(
            html.contains(r#"value="ada@example.com""#),
            "typed values stay"
        );
        assert!(
            html.contains(r#"value="Engines &lt;&amp;&gt; Co""#)
                || html.contains(r#"value="Engines <&amp;> Co""#),
            "and are escaped"
        );
        assert!(!html.contains("secret password 1"), "never the password");
        // Shown once: the same page opened again is a fresh form.
        let (_, again) = page(None).await;
        assert!(!again.contains("Enter your name."));
        assert!(!again.contains("ada@example.com"));
        // A flash for another page is not shown there.
        let login = client
            .get(format!("{}/login", server.base))
            .header("Accept", "text/html")
            .header("Cookie", &flash)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(!login.contains("ada@example.com") && !login.contains("Enter your name."));
        assert_eq!(count(&pool, "users").await, 0);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn writes_from_other_origins_are_refused(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let client = no_redirects();
        let attempts = [
            None,
            Some(("Origin", "http://evil.test".to_owned())),
            Some(("Referer", "http://evil.test/page".to_owned())),
        ];
        for header in attempts {
            let mut request = client
                .post(format!("{}/api/account/sign-up", server.base))
                .form(&sign_up_form());
            if let Some((name, value)) = &header {
                request = request.header(*name, value);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status().as_u16(), 403, "{header:?}");
        }
        assert_eq!(count(&pool, "users").await, 0, "nothing was created");
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn bad_input_gets_field_errors_and_changes_nothing(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let long = "x".repeat(200);
        let cases: [(&str, &str, &str); 5] = [
            ("email", "not-an-email", "email"),
            ("email", "", "email"),
            ("password", "short", "password"),
            ("name", "", "name"),
            ("organization", &long, "organization"),
        ];
        for (field, value, expected_field) in cases {
            let mut form: Vec<(&str, &str)> = sign_up_form().to_vec();
            for pair in form.iter_mut() {
                if pair.0 == field {
                    pair.1 = value;
                }
            }
            let response = server
                .client
                .post(format!("{}/api/account/sign-up", server.base))
                .header("Origin", &server.base)
                .form(&form)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status().as_u16(), 422, "{field}={value:?}");
            let body: Value = response.json().await.expect("JSON error");
            assert_eq!(body["Invalid"]["field"], expected_field, "{body}");
            assert!(
                !body["Invalid"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
            );
        }
        assert_eq!(count(&pool, "users").await, 0);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_viewer_calling_invite_directly_is_refused(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = Platform::new(
            pool.clone(),
            Catalog::new(default_plans()).expect("valid"),
            server.base.parse().expect("URL"),
        );
        let new_user = |email: &str, organization: &str| SignUp {
            email: Email::parse(email).expect("email"),
            name: PersonName::parse("Someone").expect("name"),
            password: NewPassword::parse("correct horse battery").expect("password"),
            organization: OrganizationName::parse(organization).expect("name"),
        };
        let owner = signup::sign_up(&p, new_user("owner@example.com", "Team"), None)
            .await
            .expect("owner");
        sqlx::query("UPDATE organizations SET plan_id = 'pro'")
            .execute(&pool)
            .await
            .expect("plan");
        let viewer = signup::sign_up(&p, new_user("viewer@example.com", "Own"), None)
            .await
            .expect("viewer");
        sqlx::query("INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'viewer')")
            .bind(owner.organization_id)
            .bind(viewer.user_id)
            .execute(&pool)
            .await
            .expect("membership");
        let token = sessions::create_session(&p, viewer.user_id, None, None)
            .await
            .expect("session");
        let cookie = format!("slipway_session={token}");
        let switch = server
            .client
            .post(format!("{}/api/organizations/switch", server.base))
            .header("Origin", &server.base)
            .header("Cookie", &cookie)
            .form(&[("organization_id", owner.organization_id.to_string())])
            .send()
            .await
            .expect("request");
        assert!(switch.status().is_success() || switch.status().is_redirection());

        let invitations_before = count(&pool, "invitations").await;
        let response = server
            .client
            .post(format!("{}/api/team/invite", server.base))
            .header("Origin", &server.base)
            .header("Cookie", &cookie)
            .form(&[("email", "friend@example.com"), ("role", "viewer")])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 403);
        let body = response.text().await.expect("body");
        assert!(body.contains("Your role does not allow this."), "{body}");
        assert_eq!(count(&pool, "invitations").await, invitations_before);

        let (_, team) = server.page("/dashboard/team", Some(&cookie)).await;
        assert!(
            team.contains("owner@example.com"),
            "the viewer sees the team"
        );
        assert!(
            !team.contains(r#"data-form="invite""#),
            "but no invite form"
        );
        assert!(
            !team.contains(r#"data-form="remove-member""#),
            "and no remove buttons"
        );
        let role = tenancy::membership(&p, owner.organization_id, viewer.user_id)
            .await
            .expect("still a member")
            .role;
        assert_eq!(role, Role::Viewer);

        // Made an admin, they invite, but the owner's row offers them nothing: nobody acts
        // on a member above them, so no control the server would refuse is shown.
        sqlx::query("UPDATE organization_members SET role = 'admin' WHERE user_id = $1")
            .bind(viewer.user_id)
            .execute(&pool)
            .await
            .expect("promotion");
        let (_, team) = server.page("/dashboard/team", Some(&cookie)).await;
        assert!(team.contains(r#"data-form="invite""#), "an admin invites");
        assert!(
            !team.contains(r#"data-form="remove-member""#)
                && !team.contains(r#"data-form="change-role""#),
            "nothing on the owner's row"
        );
    }
}

mod tenancy_over_http {
    use super::*;
    use platform::identity::sessions;
    use platform::identity::signup;
    use platform::identity::signup::SignUp;
    use platform::identity::users::{NewPassword, PersonName};
    use platform::kernel::Email;
    use platform::tenancy::api_keys::{self, Scope};
    use platform::tenancy::{self, organizations};

    async fn user(
        p: &Platform,
        email: &str,
        organization: &str,
    ) -> (uuid::Uuid, uuid::Uuid, String) {
        let signed_up = signup::sign_up(
            p,
            SignUp {
                email: Email::parse(email).expect("email"),
                name: PersonName::parse("Someone").expect("name"),
                password: NewPassword::parse("correct horse battery").expect("password"),
                organization: organizations::OrganizationName::parse(organization).expect("name"),
            },
            None,
        )
        .await
        .expect("sign-up");
        let token = sessions::create_session(p, signed_up.user_id, None, None)
            .await
            .expect("session");
        (
            signed_up.user_id,
            signed_up.organization_id,
            format!("slipway_session={token}"),
        )
    }

    async fn post(
        server: &TestApp,
        path: &str,
        cookie: &str,
        form: &[(&str, String)],
    ) -> (u16, String) {
        let response = server
            .client
            .post(format!("{}{path}", server.base))
            .header("Origin", &server.base)
            .header("Cookie", cookie)
            .form(form)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_member_of_a_reaches_nothing_of_b_through_server_functions(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = Platform::new(
            pool.clone(),
            Catalog::new(default_plans()).expect("valid"),
            server.base.parse().expect("URL"),
        );
        let (_, _, alice) = user(&p, "alice@example.com", "Alpha").await;
        let (bob, org_b, _) = user(&p, "bob@example.com", "Beta").await;
        sqlx::query("UPDATE organizations SET plan_id = 'pro' WHERE id = $1")
            .bind(org_b)
            .execute(&pool)
            .await
            .expect("plan");
        let bob_in_b = tenancy::membership(&p, org_b, bob)
            .await
            .expect("membership");
        let (b_key, _) = api_keys::create(&p, &bob_in_b, "deploy", &[Scope::Write], None)
            .await
            .expect("key");
        let audit_before: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE organization_id = $1")
                .bind(org_b)
                .fetch_one(&pool)
                .await
                .expect("count");

        // Alice cannot make B her working organization...
        let (status, body) = post(
            &server,
            "/api/organizations/switch",
            &alice,
            &[("organization_id", org_b.to_string())],
        )
        .await;
        assert_eq!(status, 404, "{body}");
        // ...and what she sends about B's member and key lands in her own organization, where
        // they do not exist.
        let (status, _) = post(
            &server,
            "/api/team/change-role",
            &alice,
            &[("user_id", bob.to_string()), ("role", "viewer".into())],
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = post(
            &server,
            "/api/team/remove",
            &alice,
            &[("user_id", bob.to_string())],
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = post(
            &server,
            "/api/settings/api-keys/revoke",
            &alice,
            &[("key_id", b_key.id.to_string())],
        )
        .await;
        assert_eq!(status, 404);
        // What she can read is her organization only.
        let (_, team) = post(&server, "/api/team/view", &alice, &[]).await;
        assert!(
            team.contains("alice@example.com") && !team.contains("bob@example.com"),
            "{team}"
        );
        let (_, settings) = post(&server, "/api/settings/view", &alice, &[]).await;
        assert!(
            !settings.contains("deploy") && !settings.contains("Beta"),
            "{settings}"
        );

        // B is untouched.
        assert_eq!(
            tenancy::membership(&p, org_b, bob)
                .await
                .expect("member")
                .role,
            tenancy::Role::Owner
        );
        assert!(
            api_keys::list(&p, &bob_in_b).await.expect("keys")[0]
                .revoked_at
                .is_none()
        );
        let audit_after: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE organization_id = $1")
                .bind(org_b)
                .fetch_one(&pool)
                .await
                .expect("count");
        assert_eq!(audit_after, audit_before);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn admin_is_for_operators_only(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = Platform::new(
            pool.clone(),
            Catalog::new(default_plans()).expect("valid"),
            server.base.parse().expect("URL"),
        );
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = |cookie: Option<String>| {
            let mut request = client
                .get(format!("{}/admin", server.base))
                .header("Accept", "text/html");
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            request.send()
        };
        let anonymous = page(None).await.expect("request");
        assert_eq!(anonymous.status().as_u16(), 302);
        assert_eq!(anonymous.headers()["location"], "/login");

        let (user_id, _, customer) = user(&p, "customer@example.com", "Customer").await;
        let refused = page(Some(customer.clone())).await.expect("request");
        assert_eq!(refused.status().as_u16(), 403);
        assert!(
            refused
                .text()
                .await
                .expect("body")
                .contains("This area is for platform operators.")
        );

        sqlx::query("UPDATE users SET is_operator = true WHERE id = $1")
            .bind(user_id)
            .execute(&pool)
            .await
            .expect("promote");
        // An organization on Pro ($49 a month, local billing mode): the overview counts it.
        let (payer, paying_org, _) = user(&p, "payer@example.com", "Payer").await;
        let paying_slug: String =
            sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
                .bind(paying_org)
                .fetch_one(&pool)
                .await
                .expect("slug");
        platform::billing::set_plan(&p, &paying_slug, "pro")
            .await
            .expect("plan assigned");
        let allowed = page(Some(customer.clone())).await.expect("request");
        assert_eq!(allowed.status().as_u16(), 200);
        let body = allowed.text().await.expect("body");
        assert!(body.contains("a platform operator"));
        let mrr = body
            .split(r#"data-figure="mrr""#)
            .nth(1)
            .expect("the MRR figure");
        let mrr = &mrr[..mrr.find("</div>").expect("its card")];
        assert!(mrr.contains("$49"), "{mrr}");
        assert!(
            mrr.contains("Yearly prices count as 1/12"),
            "its definition: {mrr}"
        );
        assert!(body.contains(r#"data-figure="arr""#) && body.contains("$588"));
        assert!(body.contains(r#"data-chart="mrr""#) && body.contains(r#"data-chart="movements""#));
        assert!(body.contains(r#"data-billing-mode="local billing mode""#));

        // Every operator function and page, enumerated from the app itself so that a new
        // one cannot be forgotten: refused to nobody and to customers with nothing changed,
        // answered to operators. Each function gets every argument an operator function
        // takes, about a real site, so that a missing check would act.
        let (_, _, stranger) = user(&p, "stranger@example.com", "Stranger").await;
        let site = active_site(&pool, paying_org, "payer-site").await;
        let job = dead_job(&pool, "SMTP: connection refused").await;
        let in_a_month = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d");
        let arguments = format!(
            "site={site}&user={payer}&id={payer}&job={job}&organization={paying_org}\
             &until={in_a_month}&reason=access+check&slug={paying_slug}"
        );
        // What an operator function could change: the site's suspension, the account's
        // state, the audit log, the mail sent.
        let state = || async {
            sqlx::query_as::<
                _,
                (
                    Option<String>,
                    Option<String>,
                    i64,
                    i64,
                    String,
                    Option<String>,
                ),
            >(
                "SELECT (SELECT suspended_reason FROM sites WHERE id = $1),
                        (SELECT disabled_reason FROM users WHERE id = $2),
                        (SELECT count(*) FROM audit_log),
                        (SELECT count(*) FROM mail_outbox),
                        (SELECT state FROM jobs WHERE id = $3),
                        (SELECT suspended_reason FROM organizations WHERE id = $4)",
            )
            .bind(site)
            .bind(payer)
            .bind(job)
            .bind(paying_org)
            .fetch_one(&pool)
            .await
            .expect("state")
        };
        let callers = [
            (None, 401),
            (Some(stranger.clone()), 403),
            (Some(customer.clone()), 200),
        ];
        let functions: Vec<(&str, reqwest::Method)> = leptos::server_fn::axum::server_fn_paths()
            .filter(|(path, _)| path.starts_with("/api/admin/"))
            .map(|(path, method)| {
                (
                    path,
                    reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method"),
                )
            })
            .collect();
        assert!(functions.len() >= 10, "operator functions: {functions:?}");
        for (path, method) in &functions {
            for (cookie, status) in &callers {
                let before = state().await;
                let mut request = client
                    .request(method.clone(), format!("{}{path}", server.base))
                    .header("Origin", &server.base)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(arguments.clone());
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                let answer = request.send().await.expect("request");
                let got = answer.status().as_u16();
                let who = cookie.as_ref().map(|_| "someone");
                if *status == 200 {
                    // The operator: answered (an action may refuse what the state does
                    // not allow, a suspended site's suspension, with a 4xx of its own).
                    assert!(
                        got == 200 || ((400..500).contains(&got) && got != 401 && got != 403),
                        "{method} {path} as the operator: {got}"
                    );
                } else {
                    assert_eq!(got, *status, "{method} {path} as {who:?}");
                    assert_eq!(
                        state().await,
                        before,
                        "{path} changed something for {who:?}"
                    );
                }
            }
        }
        let pages: Vec<String> = leptos_axum::generate_route_list(app::App)
            .iter()
            .map(|r| r.path().to_owned())
            .filter(|path| path.starts_with("/admin"))
            .collect();
        assert!(pages.len() >= 5, "operator pages: {pages:?}");
        for path in &pages {
            // A site's page is about the site; an account's about the account.
            let path = path
                .replace("/admin/sites/:id", &format!("/admin/sites/{site}"))
                .replace("/admin/sites/{id}", &format!("/admin/sites/{site}"))
                .replace(":slug", &paying_slug)
                .replace("{slug}", &paying_slug)
                .replace(":id", &payer.to_string())
                .replace("{id}", &payer.to_string());
            for (cookie, status) in &callers {
                let mut request = client
                    .get(format!("{}{path}", server.base))
                    .header("Accept", "text/html");
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                let answer = request.send().await.expect("request");
                let expected = if cookie.is_none() { 302 } else { *status };
                assert_eq!(answer.status().as_u16(), expected, "GET {path}");
            }
        }
    }

    /// The operator finds a customer by part of a member's email on the organization list
    /// (a plain GET form: no JavaScript needed), pages on, and exports what the search
    /// matched as CSV; the export is refused to customers and to nobody signed in.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_search_the_organizations_and_export_them(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (_, operator_cookie) = an_operator(&p).await;
        let (_, _, customer_cookie) = user(&p, "someone@customer.test", "Customer").await;
        user(&p, "zoe@zeta-widgets.test", "Zeta Widgets").await;
        for i in 0..55 {
            user(&p, &format!("bulk{i}@bulk.test"), &format!("Bulk {i}")).await;
        }
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let get = |path: String, cookie: Option<String>| {
            let mut request = client.get(format!("{}{path}", server.base));
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            request.send()
        };
        // A page or export as the operator reads it.
        let text = |path: &str| {
            let answer = get(path.to_owned(), Some(operator_cookie.clone()));
            async move { answer.await.expect("request").text().await.expect("body") }
        };

        let page = get(
            "/admin/organizations?q=ZETA-widgets&plan=&billing=&sort=".into(),
            Some(operator_cookie.clone()),
        )
        .await
        .expect("request");
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.expect("body");
        assert_eq!(html.matches("data-organization=").count(), 1, "{html}");
        assert!(html.contains("Zeta Widgets") && html.contains("zoe@zeta-widgets.test"));
        assert!(
            html.contains(r#"value="ZETA-widgets""#),
            "the search stays in its box"
        );
        assert!(!html.contains(r#"rel="next""#), "one page");
        assert!(html.contains(r#"href="/admin/organizations.csv?q=ZETA-widgets""#));

        // 58 organizations: a full page, then the rest.
        let first = text("/admin/organizations").await;
        assert_eq!(first.matches("data-organization=").count(), 50);
        let next = first
            .split(r#"rel="next""#)
            .next()
            .and_then(|before| before.rsplit("href=\"").next())
            .and_then(|href| href.split('"').next())
            .expect("a next page link")
            .replace("&amp;", "&");
        let second = text(&next).await;
        assert_eq!(second.matches("data-organization=").count(), 8);
        let slugs = |html: &str| -> Vec<String> {
            html.split("data-organization=\"")
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
                .collect()
        };
        let mut all = slugs(&first);
        all.extend(slugs(&second));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 58, "every organization once");

        // Bad filters and page links say so on the page, with a 4xx.
        for (query, message) in [
            ("plan=gold", "No such plan."),
            ("sort=price", "Sort by newest, oldest, name or revenue."),
            (
                "after=newest:-1000000000000000000~00000000-0000-0000-0000-000000000000",
                "This page link is no longer valid",
            ),
            (
                "sort=name&after=name:a%00b~00000000-0000-0000-0000-000000000000",
                "This page link is no longer valid",
            ),
            ("q=a%00b", "at most 200 characters on one line"),
        ] {
            let answer = get(
                format!("/admin/organizations?{query}"),
                Some(operator_cookie.clone()),
            )
            .await
            .expect("request");
            assert_eq!(answer.status().as_u16(), 422, "{query}");
            let page = answer.text().await.expect("body");
            // The alert's own text, not the page's serialized data.
            let alert = page
                .split(r#"role="alert""#)
                .nth(1)
                .and_then(|rest| rest.split_once('>'))
                .map(|(_, text)| text)
                .unwrap_or_else(|| panic!("{query}: no alert on the page"));
            assert!(
                alert[..alert.find('<').unwrap_or(alert.len())].contains(message),
                "{query}: {alert:.200}"
            );
        }

        let csv = get(
            "/admin/organizations.csv?q=zeta".into(),
            Some(operator_cookie.clone()),
        )
        .await
        .expect("request");
        assert_eq!(csv.status().as_u16(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        assert!(
            csv.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("organizations.csv")
        );
        let body = csv.text().await.expect("body");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2, "{body}");
        assert!(lines[0].starts_with("id,name,slug,plan,billing_status,mrr_cents"));
        assert!(lines[1].contains(",Zeta Widgets,") && lines[1].contains("zoe@zeta-widgets.test"));
        let everything = text("/admin/organizations.csv").await;
        assert_eq!(
            everything.lines().count(),
            59,
            "a header and every organization"
        );

        for (cookie, status) in [(None, 401), (Some(customer_cookie), 403)] {
            let refused = get("/admin/organizations.csv".into(), cookie)
                .await
                .expect("request");
            assert_eq!(refused.status().as_u16(), status);
            assert!(!refused.text().await.expect("body").contains("Zeta"));
        }
        let invalid = get(
            "/admin/organizations.csv?sort=price".into(),
            Some(operator_cookie),
        )
        .await
        .expect("request");
        assert_eq!(invalid.status().as_u16(), 400);
        assert!(
            invalid
                .text()
                .await
                .expect("body")
                .contains("Sort by newest")
        );
    }

    /// Sends six identical requests at once (operators acting together): exactly one
    /// acts (200), the others are refused with `refused`.
    async fn once_of_six<F>(request: impl Fn() -> F, refused: u16)
    where
        F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let answers = futures_util::future::join_all((0..6).map(|_| request())).await;
        let statuses: Vec<u16> = answers
            .into_iter()
            .map(|a| a.expect("request").status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == refused),
            "{statuses:?}"
        );
    }

    /// An operator retries a site whose provisioning failed, from its organization's page,
    /// with a reason: of six retries at once one acts (a deployment requested by the
    /// operator, due now, recorded once in the organization's audit log); the others are
    /// told it is already being retried. A site that has not failed is refused.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_retry_a_failed_provisioning_once(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, org, _) = user(&p, "ada@acme.test", "Acme Rockets").await;
        let slug = slug_of(&pool, org).await;
        let healthy = active_site(&pool, org, "healthy").await;
        let site = active_site(&pool, org, "broken").await;
        sqlx::query(
            "UPDATE sites SET status = 'failed', failures = 4,
                    status_reason = 'the app did not answer its health check',
                    next_attempt_at = now() + interval '10 minutes'
              WHERE id = $1",
        )
        .bind(site)
        .execute(&pool)
        .await
        .expect("failed");
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let html = html_of(
            &server,
            &format!("/admin/organizations/{slug}"),
            &operator_cookie,
        )
        .await;
        assert!(
            html.contains("Provisioning failed: the app did not answer its health check"),
            "{html}"
        );
        assert!(html.contains(r#"data-form="retry-broken""#));
        assert!(!html.contains(r#"data-form="retry-healthy""#));

        let retry = |site: uuid::Uuid, reason: &'static str| {
            client
                .post(format!("{}/api/admin/retry_site", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[("site", site.to_string()), ("reason", reason.to_owned())])
                .send()
        };
        let refused = retry(healthy, "just in case").await.expect("request");
        assert_eq!(refused.status().as_u16(), 409);
        assert!(
            refused
                .text()
                .await
                .expect("body")
                .contains("This site has not failed (it is active)")
        );
        // While a pass holds the site (the reconciler's claim), the retry waits for it.
        let mut pass = pool.begin().await.expect("transaction");
        assert!(
            platform::provision::claim_site(&mut pass, site)
                .await
                .expect("claim")
        );
        let busy = retry(site, "image registry is back")
            .await
            .expect("request");
        assert_eq!(busy.status().as_u16(), 409);
        assert!(
            busy.text()
                .await
                .expect("body")
                .contains("The reconciler is working on this site right now")
        );
        pass.rollback().await.expect("released");
        once_of_six(|| retry(site, "image registry is back"), 409).await;
        let (failures, due, deployments): (i32, bool, Vec<(String, Option<uuid::Uuid>)>) = (
            sqlx::query_scalar("SELECT failures FROM sites WHERE id = $1")
                .bind(site)
                .fetch_one(&pool)
                .await
                .expect("failures"),
            sqlx::query_scalar("SELECT next_attempt_at <= now() FROM sites WHERE id = $1")
                .bind(site)
                .fetch_one(&pool)
                .await
                .expect("due"),
            sqlx::query_as("SELECT reason, requested_by FROM deployments WHERE site_id = $1")
                .bind(site)
                .fetch_all(&pool)
                .await
                .expect("deployments"),
        );
        assert_eq!((failures, due), (0, true), "due now, its backoff forgotten");
        assert_eq!(deployments, [("retry".to_owned(), Some(operator))]);
        let audited: Vec<(Option<uuid::Uuid>, String, String)> = sqlx::query_as(
            "SELECT organization_id, subject, details->>'reason' FROM audit_log
              WHERE action = 'site.retry' AND actor_user_id = $1",
        )
        .bind(operator)
        .fetch_all(&pool)
        .await
        .expect("audit");
        assert_eq!(
            audited,
            [(
                Some(org),
                "site:broken".to_owned(),
                "image registry is back".to_owned()
            )]
        );
        let again = retry(site, "once more").await.expect("request");
        assert_eq!(again.status().as_u16(), 409);
        assert!(
            again
                .text()
                .await
                .expect("body")
                .contains("already being retried")
        );
    }

    /// An operator extends a canceled organization's grace period through a later day,
    /// with a reason: of six identical requests at once one acts (the end is queued for the
    /// new moment, the organization's audit log records it once); the job of the old end,
    /// run then, finds the grace period not over and is done, without deleting anything.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_extend_a_grace_period_once(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, org, _) = user(&p, "ada@acme.test", "Acme Rockets").await;
        let slug = slug_of(&pool, org).await;
        // Canceled four days ago; the sites go in three days, when the queued job runs.
        let ends: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "INSERT INTO billing_accounts (organization_id, stripe_customer_id, status,
                                           canceled_at, grace_ends_at)
             VALUES ($1, 'cus_GraceTest1', 'canceled', now() - interval '4 days',
                     date_trunc('second', now()) + interval '3 days')
             RETURNING grace_ends_at",
        )
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("a canceled subscription");
        let site = active_site(&pool, org, "kept").await;
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let html = html_of(
            &server,
            &format!("/admin/organizations/{slug}"),
            &operator_cookie,
        )
        .await;
        assert!(html.contains(r#"data-form="extend-grace""#), "{html}");
        assert!(html.contains(&format!(r#"min="{}""#, ends.format("%Y-%m-%d"))));

        let extend = |until: String, reason: &'static str| {
            client
                .post(format!("{}/api/admin/extend_grace", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[
                    ("organization", org.to_string()),
                    ("until", until),
                    ("reason", reason.to_owned()),
                ])
                .send()
        };
        let day = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d").to_string();
        for (until, status, says) in [
            (
                "next week".to_owned(),
                422,
                "Choose the day the grace period ends.",
            ),
            (
                day(chrono::Utc::now() + chrono::Duration::days(91)),
                422,
                "by at most 90 days",
            ),
            (
                day(ends - chrono::Duration::days(1)),
                409,
                "The grace period already ends",
            ),
        ] {
            let refused = extend(until.clone(), "customer asked")
                .await
                .expect("request");
            assert_eq!(refused.status().as_u16(), status, "{until}");
            assert!(
                refused.text().await.expect("body").contains(says),
                "{until}"
            );
        }
        // Through the 90th day from today: the longest extension.
        let until = chrono::Utc::now() + chrono::Duration::days(90);
        once_of_six(|| extend(day(until), "bank transfer on its way"), 409).await;
        let new_end = until
            .date_naive()
            .succ_opt()
            .expect("a day")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        let grace: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "SELECT grace_ends_at FROM billing_accounts WHERE organization_id = $1",
        )
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("grace");
        assert_eq!(grace, new_end, "through the end of the day chosen");
        let queued: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT run_at FROM jobs WHERE kind = 'billing_grace_period' AND state = 'queued'
                AND payload->>'organization_id' = $1::text",
        )
        .bind(org)
        .fetch_all(&pool)
        .await
        .expect("jobs");
        assert_eq!(queued, [new_end], "its end is queued for then");
        let audited: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
            "SELECT details->>'reason', organization_id FROM audit_log
              WHERE action = 'billing.grace_extended' AND actor_user_id = $1",
        )
        .bind(operator)
        .fetch_all(&pool)
        .await
        .expect("audit");
        assert_eq!(
            audited,
            [("bank transfer on its way".to_owned(), Some(org))]
        );

        // The old end's job, had it been queued before the extension, runs at its time
        // (now, here): the grace period is not over, so it is done and deletes nothing.
        let old_job: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, unique_key)
             VALUES ('billing_grace_period', jsonb_build_object('organization_id', $1::uuid),
                     'billing_grace_period:' || $1::text || ':old')
             RETURNING id",
        )
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("old job");
        platform::workers::run_due(&p).await.expect("jobs run");
        let (old_state, desired): (String, String) = sqlx::query_as(
            "SELECT (SELECT state FROM jobs WHERE id = $1),
                    (SELECT desired_state FROM sites WHERE id = $2)",
        )
        .bind(old_job)
        .bind(site)
        .fetch_one(&pool)
        .await
        .expect("state");
        assert_eq!(
            (old_state.as_str(), desired.as_str()),
            ("succeeded", "running")
        );
        // Had the new end's job been lost, the old one queues it again before it is done.
        sqlx::query("DELETE FROM jobs WHERE kind = 'billing_grace_period' AND state = 'queued'")
            .execute(&pool)
            .await
            .expect("lost");
        sqlx::query(
            "INSERT INTO jobs (kind, payload, unique_key)
             VALUES ('billing_grace_period', jsonb_build_object('organization_id', $1::uuid),
                     'billing_grace_period:' || $1::text || ':older')",
        )
        .bind(org)
        .execute(&pool)
        .await
        .expect("older job");
        platform::workers::run_due(&p).await.expect("jobs run");
        let queued: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT run_at FROM jobs WHERE kind = 'billing_grace_period' AND state = 'queued'",
        )
        .fetch_all(&pool)
        .await
        .expect("jobs");
        assert_eq!(queued, [new_end], "queued again for the new end");
        let mailed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mail_outbox
              WHERE to_address = 'ada@acme.test' AND subject = 'Your sites are kept longer'
                AND body_text LIKE '%bank transfer on its way%'",
        )
        .fetch_one(&pool)
        .await
        .expect("mail");
        assert_eq!(mailed, 1, "the owner is told once");
    }

    /// The page at `path` as the holder of `cookie` reads it (200 expected).
    async fn html_of(server: &TestApp, path: &str, cookie: &str) -> String {
        let answer = test_support::client()
            .build()
            .expect("client")
            .get(format!("{}{path}", server.base))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status().as_u16(), 200, "GET {path}");
        answer.text().await.expect("body")
    }

    /// The operator `ops@slipway.test` ("Operations"): its id and session cookie.
    async fn an_operator(p: &Platform) -> (uuid::Uuid, String) {
        let (operator, _, cookie) = user(p, "ops@slipway.test", "Operations").await;
        test_support::make_operator(p, operator).await;
        (operator, cookie)
    }

    async fn slug_of(pool: &PgPool, organization: uuid::Uuid) -> String {
        sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
            .bind(organization)
            .fetch_one(pool)
            .await
            .expect("slug")
    }

    /// A job that gave up, as the queue leaves it: `dead`, with its last error.
    async fn dead_job(pool: &PgPool, error: &str) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO jobs (kind, state, attempts, last_error, first_attempt_at, finished_at,
                               payload)
             VALUES ('mail', 'dead', 12, $1, now() - interval '2 days', now(),
                     '{\"outbox_id\": 0}')
             RETURNING id",
        )
        .bind(error)
        .fetch_one(pool)
        .await
        .expect("a dead job")
    }

    /// The operator finds a dead job on the job list (searched and filtered with a plain
    /// GET form), exports the list, and retries the job with a reason: of six retries at
    /// once one acts, the others are refused with the job's state; the retry is in the
    /// audit log with the operator and the reason. Customers get neither page nor export.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_find_a_dead_job_and_retry_it_with_a_reason(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, _, customer_cookie) = user(&p, "ada@acme.test", "Acme").await;
        let other = dead_job(&pool, "Stripe: 503 Service Unavailable").await;
        let job = dead_job(&pool, "SMTP: connection refused by relay.example").await;
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let get = |path: &str, cookie: &str| {
            client
                .get(format!("{}{path}", server.base))
                .header("Accept", "text/html")
                .header("Cookie", cookie)
                .send()
        };
        let page = get("/admin/jobs?q=RELAY.example&state=dead", &operator_cookie)
            .await
            .expect("request");
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.expect("body");
        assert_eq!(html.matches("data-job=").count(), 1, "{html}");
        assert!(html.contains(&format!(r#"data-job="{job}""#)));
        assert!(html.contains("SMTP: connection refused by relay.example"));
        assert!(html.contains(&format!(r#"data-form="retry-{job}""#)));
        assert!(!html.contains("Stripe: 503"));
        let refused = get("/admin/jobs", &customer_cookie).await.expect("request");
        assert_eq!(refused.status().as_u16(), 403);

        let export = get("/admin/jobs.csv?state=dead", &operator_cookie)
            .await
            .expect("request");
        assert_eq!(export.status().as_u16(), 200);
        let csv = export.text().await.expect("body");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(
            lines[1].starts_with(&format!("{job},mail,dead,12,")),
            "{csv}"
        );
        assert!(
            lines[2].starts_with(&format!("{other},mail,dead,12,")),
            "{csv}"
        );
        let export = get("/admin/jobs.csv", &customer_cookie)
            .await
            .expect("request");
        assert_eq!(export.status().as_u16(), 403);
        let export = client
            .get(format!("{}/admin/jobs.csv", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(export.status().as_u16(), 401);
        let bad = get("/admin/jobs.csv?state=asleep", &operator_cookie)
            .await
            .expect("request");
        assert_eq!(bad.status().as_u16(), 400);

        let retry = |reason: &'static str| {
            client
                .post(format!("{}/api/admin/retry_job", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[("job", job.to_string()), ("reason", reason.to_owned())])
                .send()
        };
        let no_reason = retry("").await.expect("request");
        assert_eq!(no_reason.status().as_u16(), 422);
        once_of_six(|| retry("relay fixed, ticket 4411"), 409).await;
        let (state, audited): (String, Vec<(String, String)>) = (
            sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_one(&pool)
                .await
                .expect("state"),
            sqlx::query_as(
                "SELECT subject, details->>'reason' FROM audit_log
                  WHERE action = 'job.retry' AND actor_user_id = $1",
            )
            .bind(operator)
            .fetch_all(&pool)
            .await
            .expect("audit"),
        );
        assert_ne!(state, "dead");
        assert_eq!(
            audited,
            [(format!("job:{job}"), "relay fixed, ticket 4411".to_owned())]
        );
        let again = retry("once more").await.expect("request");
        assert_eq!(again.status().as_u16(), 409);
        assert!(
            again
                .text()
                .await
                .expect("body")
                .contains("only dead jobs are retried by hand")
        );
        let dead_list = get("/admin/jobs?state=dead", &operator_cookie)
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(!dead_list.contains(&format!(r#"data-job="{job}""#)));
        assert!(dead_list.contains(&format!(r#"data-job="{other}""#)));
    }

    /// The fleet-wide lists as an operator reads them (plain GET forms): the failed
    /// provisionings with what failed and the form to retry each, a member's email finding
    /// the organization's sites, an incident found by its site's slug, and the operator's
    /// own action in the operator audit log with its reason; each list exported as CSV,
    /// which customers (403) and nobody signed in (401) are refused.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_list_failed_sites_incidents_and_their_own_actions(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (_, operator_cookie) = an_operator(&p).await;
        let (_, acme, customer_cookie) = user(&p, "ada@acme.test", "Acme").await;
        let acme_slug = slug_of(&pool, acme).await;
        // Local billing mode: an operator put Acme on Pro, its subscription here.
        sqlx::query("UPDATE organizations SET plan_id = 'pro' WHERE id = $1")
            .bind(acme)
            .execute(&pool)
            .await
            .expect("pro");
        let healthy = active_site(&pool, acme, "acme-healthy").await;
        let broken = active_site(&pool, acme, "acme-broken").await;
        sqlx::query(
            "UPDATE sites SET status = 'failed', failures = 2,
                              status_reason = 'image slipway/cms:missing not found',
                              next_attempt_at = now() + interval '10 minutes'
              WHERE id = $1",
        )
        .bind(broken)
        .execute(&pool)
        .await
        .expect("failed");
        sqlx::query(
            "INSERT INTO incidents (organization_id, site_id, kind, summary)
             VALUES ($1, $2, 'down', 'acme-healthy does not answer')",
        )
        .bind(acme)
        .bind(healthy)
        .execute(&pool)
        .await
        .expect("incident");
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let suspended = client
            .post(format!("{}/api/admin/suspend_site", server.base))
            .header("Origin", &server.base)
            .header("Accept", "application/json")
            .header("Cookie", &operator_cookie)
            .form(&[
                ("site", healthy.to_string()),
                ("reason", "malware found on the site".to_owned()),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(suspended.status().as_u16(), 200);

        let failed = html_of(&server, "/admin/sites?state=failed", &operator_cookie).await;
        assert_eq!(failed.matches("data-site=").count(), 1, "{failed}");
        assert!(failed.contains(r#"data-site="acme-broken""#));
        assert!(failed.contains("image slipway/cms:missing not found"));
        assert!(failed.contains("failed 2 times in a row"));
        assert!(failed.contains(r#"data-form="retry-acme-broken""#));
        let by_member = html_of(&server, "/admin/sites?q=ADA%40acme", &operator_cookie).await;
        assert_eq!(by_member.matches("data-site=").count(), 2, "{by_member}");
        assert!(by_member.contains(r#"data-state="suspended""#));
        assert!(by_member.contains("malware found on the site"));
        assert!(by_member.contains(&format!(r#"href="/admin/organizations/{acme_slug}""#)));
        // Newest first unless the operator sorts otherwise; the choice stays chosen.
        let position = |html: &str, slug: &str| {
            html.find(&format!(r#"data-site="{slug}""#))
                .unwrap_or_else(|| panic!("{slug}: {html}"))
        };
        assert!(position(&by_member, "acme-broken") < position(&by_member, "acme-healthy"));
        let oldest = html_of(
            &server,
            "/admin/sites?q=ADA%40acme&sort=oldest",
            &operator_cookie,
        )
        .await;
        assert!(position(&oldest, "acme-healthy") < position(&oldest, "acme-broken"));
        assert!(
            oldest.contains(r#"<option value="oldest" selected"#),
            "{oldest}"
        );
        assert!(oldest.contains("Slug, A to Z"));
        assert!(
            ["&amp;", "&"]
                .iter()
                .any(|and| oldest.contains(&format!(r#"sites.csv?q=ADA%40acme{and}sort=oldest""#))),
            "the CSV link keeps the order: {oldest}"
        );
        let incidents = html_of(
            &server,
            "/admin/incidents?q=acme-healthy&state=open",
            &operator_cookie,
        )
        .await;
        assert_eq!(
            incidents.matches("data-incident=").count(),
            1,
            "{incidents}"
        );
        assert!(incidents.contains("acme-healthy does not answer"));
        let audit = html_of(&server, "/admin/audit?q=MALWARE", &operator_cookie).await;
        assert_eq!(audit.matches("data-entry=").count(), 1, "{audit}");
        assert!(audit.contains("site.suspend"));
        assert!(audit.contains("ops@slipway.test"));
        assert!(audit.contains(&format!(r#"href="/admin/organizations/{acme_slug}""#)));
        let subscriptions = html_of(&server, "/admin/subscriptions", &operator_cookie).await;
        assert_eq!(
            subscriptions.matches("data-subscription=").count(),
            1,
            "only the paid plan: {subscriptions}"
        );
        assert!(subscriptions.contains(&format!(r#"data-subscription="{acme_slug}""#)));
        assert!(subscriptions.contains("Local billing mode"));
        let overview = html_of(&server, "/admin", &operator_cookie).await;
        for list in [
            "/admin/sites",
            "/admin/sites?state=failed",
            "/admin/subscriptions",
            "/admin/incidents",
            "/admin/audit",
        ] {
            assert!(overview.contains(&format!(r#"href="{list}""#)), "{list}");
        }

        let get = |path: &str, cookie: Option<&str>| {
            let mut request = client.get(format!("{}{path}", server.base));
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            request.send()
        };
        for (path, expected) in [
            ("/admin/sites.csv?state=failed", "acme-broken"),
            (
                "/admin/incidents.csv?state=open",
                "acme-healthy does not answer",
            ),
            (
                "/admin/audit.csv?action=site.suspend",
                "malware found on the site",
            ),
            ("/admin/subscriptions.csv?plan=pro", "ada@acme.test"),
        ] {
            let answer = get(path, Some(&operator_cookie)).await.expect("request");
            assert_eq!(answer.status().as_u16(), 200, "{path}");
            let csv = answer.text().await.expect("body");
            assert_eq!(csv.lines().count(), 2, "{path}: {csv}");
            assert!(csv.contains(expected), "{path}: {csv}");
            let refused = get(path, Some(&customer_cookie)).await.expect("request");
            assert_eq!(refused.status().as_u16(), 403, "{path}");
            let refused = get(path, None).await.expect("request");
            assert_eq!(refused.status().as_u16(), 401, "{path}");
        }
        let oldest = get(
            "/admin/sites.csv?q=ada%40acme&sort=oldest",
            Some(&operator_cookie),
        )
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
        let rows: Vec<&str> = oldest.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{oldest}");
        assert!(rows[0].contains("acme-healthy") && rows[1].contains("acme-broken"));
        for bad in [
            "/admin/sites.csv?state=asleep",
            "/admin/incidents.csv?kind=meteor",
            "/admin/audit.csv?action=DROP%20TABLE",
            "/admin/subscriptions.csv?interval=weekly",
            "/admin/sites.csv?sort=revenue",
            "/admin/incidents.csv?sort=name",
        ] {
            let answer = get(bad, Some(&operator_cookie)).await.expect("request");
            assert_eq!(answer.status().as_u16(), 400, "{bad}");
        }
    }

    /// An operator opens a site's page from the site list: its state, deployments, health,
    /// log and the actions its state allows, never the customer's credentials. A forced
    /// reconcile (of six at once, one; the others told a pass is due) and a deletion (the
    /// slug typed to confirm) are deployments requested by the operator, in the customer's
    /// audit log with the reason; the customer is mailed about the deletion.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_open_a_site_force_a_reconcile_and_delete_it(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (ada, acme, customer_cookie) = user(&p, "ada@acme.test", "Acme").await;
        let owner = platform::tenancy::Membership {
            organization_id: acme,
            user_id: ada,
            role: platform::tenancy::Role::Owner,
        };
        test_support::set_plan(&p, &owner, "pro").await;
        // Made as customers make sites: with sealed credentials the page must not unseal.
        let site = test_support::site(&p, &owner, "acme-blog").await;
        let token = platform::sites::credentials(&p, &owner, site)
            .await
            .expect("credentials")
            .api_token;
        sqlx::query(
            "UPDATE sites SET status = 'active', observed_generation = generation,
                              container_id = 'c0ffee'
              WHERE id = $1",
        )
        .bind(site)
        .execute(&pool)
        .await
        .expect("converged");
        let listed = html_of(&server, "/admin/sites?q=acme-blog", &operator_cookie).await;
        assert!(listed.contains(&format!(r#"href="/admin/sites/{site}""#)));
        let page = html_of(&server, &format!("/admin/sites/{site}"), &operator_cookie).await;
        assert!(page.contains(r#"data-operator-page="site""#));
        assert!(page.contains("c0ffee"), "the container");
        for form in [
            "suspend-acme-blog",
            "reconcile-acme-blog",
            "delete-acme-blog",
        ] {
            assert!(page.contains(&format!(r#"data-form="{form}""#)), "{form}");
        }
        assert!(
            !page.contains(r#"data-form="retry-acme-blog""#),
            "nothing failed"
        );
        assert!(page.contains("data-deployments"));
        assert!(page.contains("data-logs"));
        assert!(!page.contains(&token), "the customer's secrets are theirs");
        let missing = test_support::client()
            .build()
            .expect("client")
            .get(format!(
                "{}/admin/sites/{}",
                server.base,
                uuid::Uuid::new_v4()
            ))
            .header("Cookie", &operator_cookie)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(missing.contains("No such site."));

        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let post = |function: &str, form: Vec<(&'static str, String)>| {
            client
                .post(format!("{}/api/admin/{function}", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&form)
                .send()
        };
        let reconcile = || {
            post(
                "reconcile_site",
                vec![
                    ("site", site.to_string()),
                    ("reason", "limits edited by hand".to_owned()),
                ],
            )
        };
        once_of_six(reconcile, 409).await;
        let due = reconcile().await.expect("request");
        assert_eq!(due.status().as_u16(), 409);
        assert!(due.text().await.expect("body").contains("already due"));

        let delete = |confirm: &str| {
            post(
                "delete_site",
                vec![
                    ("site", site.to_string()),
                    ("confirm", confirm.to_owned()),
                    ("reason", "hosting malware".to_owned()),
                ],
            )
        };
        let unconfirmed = delete("acme").await.expect("request");
        assert_eq!(unconfirmed.status().as_u16(), 422);
        assert!(
            unconfirmed
                .text()
                .await
                .expect("body")
                .contains("Type acme-blog to confirm")
        );
        let deleted = delete("acme-blog").await.expect("request");
        assert_eq!(deleted.status().as_u16(), 200);
        let again = delete("acme-blog").await.expect("request");
        assert_eq!(again.status().as_u16(), 409);

        let deployments: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
            "SELECT reason, requested_by FROM deployments WHERE site_id = $1 ORDER BY created_at",
        )
        .bind(site)
        .fetch_all(&pool)
        .await
        .expect("deployments");
        assert_eq!(
            deployments,
            [
                ("create".to_owned(), Some(ada)),
                ("reconcile".to_owned(), Some(operator)),
                ("delete".to_owned(), Some(operator))
            ]
        );
        let page = html_of(&server, &format!("/admin/sites/{site}"), &operator_cookie).await;
        assert!(
            !page.contains(r#"data-form="delete-acme-blog""#),
            "being deleted"
        );
        assert!(!page.contains(r#"data-form="reconcile-acme-blog""#));
        let audit = html_of(&server, "/dashboard/settings", &customer_cookie).await;
        assert!(audit.contains("hosting malware"), "the customer reads why");
        assert!(audit.contains("limits edited by hand"));
        let mailed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mail_outbox
              WHERE to_address = 'ada@acme.test' AND subject = 'Your site acme-blog was deleted'",
        )
        .fetch_one(&pool)
        .await
        .expect("mail");
        assert_eq!(mailed, 1);
    }

    /// A site row as the reconciler leaves an active one (no container: these tests are
    /// about the operator's records and pages, not Docker).
    async fn active_site(pool: &PgPool, organization: uuid::Uuid, slug: &str) -> uuid::Uuid {
        let id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sites (id, organization_id, name, slug, template, status,
                                db_password_sealed, api_token_sealed, webhook_secret_sealed)
             VALUES ($1, $2, initcap($3), $3, 'cms', 'active', '\\x00', '\\x00', '\\x00')",
        )
        .bind(id)
        .bind(organization)
        .bind(slug)
        .execute(pool)
        .await
        .expect("a site");
        id
    }

    /// The operator opens an organization from the list, reads its members, sites,
    /// billing and audit log, and suspends and resumes its site with a reason: the
    /// customer reads the reason on the site's page, the audit log keeps who and why.
    /// Operators suspending at once: one does, the others are told it already is.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_open_an_organization_and_suspend_its_site_with_a_reason(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, org, customer_cookie) = user(&p, "ada@acme.test", "Acme Rockets").await;
        let slug = slug_of(&pool, org).await;
        platform::billing::set_plan(&p, &slug, "pro")
            .await
            .expect("plan");
        let site = active_site(&pool, org, "rockets").await;
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = |path: String, cookie: &str| {
            client
                .get(format!("{}{path}", server.base))
                .header("Cookie", cookie)
                .send()
        };
        let operator_page = || async {
            let answer = page(format!("/admin/organizations/{slug}"), &operator_cookie)
                .await
                .expect("request");
            assert_eq!(answer.status().as_u16(), 200);
            answer.text().await.expect("body")
        };
        let act = |function: &'static str, reason: &'static str| {
            client
                .post(format!("{}/api/admin/{function}", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[("site", site.to_string()), ("reason", reason.to_owned())])
                .send()
        };
        let suspension = || async {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT suspended_reason FROM sites WHERE id = $1",
            )
            .bind(site)
            .fetch_one(&pool)
            .await
            .expect("site")
        };
        let audited = |action: &'static str| {
            sqlx::query_as::<_, (Option<uuid::Uuid>, Option<String>)>(
                "SELECT actor_user_id, details->>'reason' FROM audit_log
                  WHERE action = $1 AND organization_id = $2 ORDER BY id",
            )
            .bind(action)
            .bind(org)
            .fetch_all(&pool)
        };

        // The list links to the organization's page.
        let list = page(format!("/admin/organizations?q={slug}"), &operator_cookie)
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(list.contains(&format!(r#"href="/admin/organizations/{slug}""#)));
        let html = operator_page().await;
        for expected in [
            "Acme Rockets",
            "ada@acme.test",
            "owner",
            "Pro",
            "$49 / month",
            r#"data-site="rockets""#,
            r#"data-form="suspend-rockets""#,
            r#"data-audit="""#,
        ] {
            assert!(html.contains(expected), "{expected} on the page");
        }
        let missing = page("/admin/organizations/no-such-org".into(), &operator_cookie)
            .await
            .expect("request");
        assert_eq!(missing.status().as_u16(), 404);
        assert!(
            missing
                .text()
                .await
                .expect("body")
                .contains("No organization has this address.")
        );

        // A reason is required.
        let refused = act("suspend_site", " no ").await.expect("request");
        assert_eq!(refused.status().as_u16(), 422);
        assert!(refused.text().await.expect("body").contains("Say why"));
        assert_eq!(suspension().await, None);

        // Suspended with a reason: the customer reads it on the site's page.
        let done = act("suspend_site", "phishing report 812")
            .await
            .expect("request");
        assert_eq!(done.status().as_u16(), 200);
        assert_eq!(
            suspension().await.as_deref(),
            Some("operator: phishing report 812")
        );
        assert_eq!(
            audited("site.suspend").await.expect("audit"),
            [(Some(operator), Some("phishing report 812".to_owned()))]
        );
        let customer_view = page(format!("/dashboard/sites/{site}"), &customer_cookie)
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(
            customer_view
                .contains("Suspended by the operators of this service: phishing report 812"),
            "the customer reads why"
        );
        let html = operator_page().await;
        assert!(html.contains(r#"data-form="resume-rockets""#));
        assert!(
            html.contains("phishing report 812"),
            "the reason in the audit log"
        );
        let again = act("suspend_site", "second report").await.expect("request");
        assert_eq!(again.status().as_u16(), 422);
        assert!(
            again
                .text()
                .await
                .expect("body")
                .contains("already suspended")
        );

        // Resumed with a reason.
        let resumed = act("resume_site", "page taken down")
            .await
            .expect("request");
        assert_eq!(resumed.status().as_u16(), 200);
        assert_eq!(suspension().await, None);
        assert_eq!(
            audited("site.resume").await.expect("audit"),
            [(Some(operator), Some("page taken down".to_owned()))]
        );

        // Operators at once, five times over: one suspension, one audit entry, each time.
        for round in 0..5 {
            once_of_six(|| act("suspend_site", "abuse report, many operators"), 422).await;
            assert_eq!(
                audited("site.suspend").await.expect("audit").len(),
                round + 2
            );
            once_of_six(|| act("resume_site", "all clear"), 422).await;
        }

        // Without JavaScript the form posts and comes back to the page it was sent from.
        let referer = format!("{}/admin/organizations/{slug}", server.base);
        let posted = client
            .post(format!("{}/api/admin/suspend_site", server.base))
            .header("Origin", &server.base)
            .header("Referer", &referer)
            .header("Accept", "text/html")
            .header("Cookie", &operator_cookie)
            .form(&[
                ("site", site.to_string()),
                ("reason", "plain form".to_owned()),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(posted.status().as_u16(), 302);
        let back = posted.headers()["location"].to_str().expect("location");
        assert_eq!(back.trim_end_matches('?'), referer);
        assert_eq!(suspension().await.as_deref(), Some("operator: plain form"));
    }

    /// The operator finds an account on the user list, reads it (organizations, sessions,
    /// history), and disables it with a reason: every session of it ends, its sign-in is
    /// refused with the reason; operators disabling at once disable it once. Enabled
    /// again, it signs in. The list exports as CSV, for operators only.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_find_an_account_and_disable_it_everywhere(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operations, operator_cookie) =
            user(&p, "ops@slipway.test", "Operations").await;
        test_support::make_operator(&p, operator).await;
        let (ada, acme, ada_cookie) = user(&p, "ada@acme.test", "Acme Rockets").await;
        let second_browser = format!(
            "slipway_session={}",
            sessions::create_session(&p, ada, None, Some("Firefox on a phone"))
                .await
                .expect("session")
        );
        user(&p, "bob@elsewhere.test", "Elsewhere").await;
        let client = test_support::client()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let get = |path: String, cookie: &str| {
            client
                .get(format!("{}{path}", server.base))
                .header("Accept", "text/html")
                .header("Cookie", cookie)
                .send()
        };
        let text = |path: String| {
            let answer = get(path, &operator_cookie);
            async move {
                let answer = answer.await.expect("request");
                assert_eq!(answer.status().as_u16(), 200);
                answer.text().await.expect("body")
            }
        };
        let act = |function: &'static str, user: uuid::Uuid, reason: &'static str| {
            client
                .post(format!("{}/api/admin/{function}", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[("user", user.to_string()), ("reason", reason.to_owned())])
                .send()
        };
        let sign_in = |password: &'static str| {
            client
                .post(format!("{}/api/account/sign-in", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .form(&[("email", "ada@acme.test"), ("password", password)])
                .send()
        };
        let audited = |action: &'static str| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT details->>'reason' FROM audit_log
                  WHERE action = $1 AND subject = $2 AND actor_user_id = $3 ORDER BY id",
            )
            .bind(action)
            .bind(format!("user:{ada}"))
            .bind(operator)
            .fetch_all(&pool)
        };

        // Found by part of the email, case folded; the filters narrow the list.
        let list = text("/admin/users?q=ADA%40ACME".into()).await;
        assert_eq!(list.matches("data-user=").count(), 1, "{list}");
        assert!(list.contains(&format!(r#"href="/admin/users/{ada}""#)));
        let operators = text("/admin/users?state=operator".into()).await;
        assert!(operators.contains("ops@slipway.test") && !operators.contains("ada@acme.test"));
        let page = text(format!("/admin/users/{ada}")).await;
        for expected in [
            "ada@acme.test",
            "Acme Rockets",
            r#"href="/admin/organizations/acme-rockets""#,
            "Firefox on a phone",
            "user.signed_up",
            r#"data-form="disable-user""#,
            r#"data-form="resend-verification""#,
        ] {
            assert!(page.contains(expected), "{expected} on the account's page");
        }
        let missing = get(
            format!("/admin/users/{}", uuid::Uuid::new_v4()),
            &operator_cookie,
        )
        .await
        .expect("request");
        assert_eq!(missing.status().as_u16(), 404);

        // A reason is required; operators cannot lock themselves out.
        let refused = act("disable_user", ada, "x").await.expect("request");
        assert_eq!(refused.status().as_u16(), 422);
        let refused = act("disable_user", operator, "testing myself")
            .await
            .expect("request");
        assert_eq!(refused.status().as_u16(), 409);
        assert_eq!(
            get("/dashboard".into(), &ada_cookie)
                .await
                .expect("request")
                .status()
                .as_u16(),
            200
        );

        // Operators at once: one disables, the others are told it already is.
        once_of_six(
            || act("disable_user", ada, "card testing from this account"),
            409,
        )
        .await;
        assert_eq!(
            audited("user.disabled").await.expect("audit"),
            [Some("card testing from this account".to_owned())]
        );
        // Signed out everywhere: both browsers are sent to sign in.
        for cookie in [&ada_cookie, &second_browser] {
            let answer = get("/dashboard".into(), cookie).await.expect("request");
            assert_eq!(answer.status().as_u16(), 302);
            assert_eq!(answer.headers()["location"], "/login");
        }
        // The right password is refused with the reason; a wrong one as always.
        let refused = sign_in("correct horse battery").await.expect("request");
        assert_eq!(refused.status().as_u16(), 403);
        assert!(
            refused.text().await.expect("body").contains(
                "disabled by the operators of this service: card testing from this account"
            )
        );
        let wrong = sign_in("wrong password!!").await.expect("request");
        assert_eq!(wrong.status().as_u16(), 400);
        // No reset link for a disabled account (the same answer as for any address).
        let resets = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM mail_outbox WHERE subject = 'Reset your password'",
            )
            .fetch_one(&pool)
            .await
            .expect("mail")
        };
        let before = resets().await;
        let asked = client
            .post(format!("{}/api/account/request-reset", server.base))
            .header("Origin", &server.base)
            .header("Accept", "application/json")
            .form(&[("email", "ada@acme.test")])
            .send()
            .await
            .expect("request");
        assert!(asked.status().is_success(), "{}", asked.status());
        assert_eq!(resets().await, before);
        let page = text(format!("/admin/users/{ada}")).await;
        assert!(
            page.contains("card testing from this account")
                && page.contains("user.sign_in_refused")
        );
        assert!(page.contains(r#"data-form="enable-user""#));

        // No verification mail for a disabled account.
        let refused = act("resend_verification", ada, "customer asked on chat")
            .await
            .expect("request");
        assert_eq!(refused.status().as_u16(), 409);

        // Enabled again: signs in.
        let enabled = act("enable_user", ada, "cleared by support")
            .await
            .expect("request");
        assert_eq!(enabled.status().as_u16(), 200);
        assert_eq!(
            audited("user.enabled").await.expect("audit"),
            [Some("cleared by support".to_owned())]
        );
        assert_eq!(
            sign_in("correct horse battery")
                .await
                .expect("request")
                .status()
                .as_u16(),
            200
        );

        // A fresh verification mail for an unverified address.
        let before: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mail_outbox WHERE to_address = 'ada@acme.test'",
        )
        .fetch_one(&pool)
        .await
        .expect("mail");
        let resent = act("resend_verification", ada, "customer asked on chat")
            .await
            .expect("request");
        assert_eq!(resent.status().as_u16(), 200);
        let after: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM mail_outbox WHERE to_address = 'ada@acme.test'",
        )
        .fetch_one(&pool)
        .await
        .expect("mail");
        assert_eq!(after, before + 1);

        // Acme's admins read what operators did to their member, with the reasons the
        // customer may read; the operator's own organization reads none of it.
        let log = |organization: uuid::Uuid, member: uuid::Uuid| {
            let p = p.clone();
            async move {
                let membership = tenancy::membership(&p, organization, member)
                    .await
                    .expect("membership");
                platform::tenancy::audit::recent(&p, &membership, 100)
                    .await
                    .expect("audit")
            }
        };
        let acme_log = log(acme, ada).await;
        let said = |action: &str| {
            acme_log
                .iter()
                .find(|line| line.action == action)
                .map(|line| line.reason.clone())
        };
        assert_eq!(
            said("user.disabled"),
            Some(Some("card testing from this account".to_owned()))
        );
        assert_eq!(
            said("user.verification_resent"),
            Some(None),
            "a private note"
        );
        let operations_log = log(operations, operator).await;
        assert!(
            operations_log
                .iter()
                .all(|line| !line.action.starts_with("user.disabled")
                    && !line.action.starts_with("user.enabled")),
            "{operations_log:?}"
        );

        // The export: what the search matched, for operators only.
        let csv = text("/admin/users.csv?q=acme".into()).await;
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 2, "{csv}");
        assert!(rows[0].starts_with("id,email,name") && rows[1].contains("ada@acme.test"));
        let refused = get("/admin/users.csv".into(), &second_browser)
            .await
            .expect("request");
        assert_eq!(refused.status().as_u16(), 401);
        let bad = get("/admin/users.csv?state=banned".into(), &operator_cookie)
            .await
            .expect("request");
        assert_eq!(bad.status().as_u16(), 400);
    }

    /// The operator suspends a whole organization: every site of it is suspended with the
    /// reason (billing's suspension taken over), no new site can be created, no site can be
    /// resumed alone, operators suspending at once suspend it once. Resumed, the sites it
    /// suspended serve again; one an operator suspended on its own stays suspended, even
    /// for the same words.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_suspend_a_whole_organization_and_resume_it(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, org, ada_cookie) = user(&p, "ada@acme.test", "Acme Rockets").await;
        platform::billing::set_plan(&p, "acme-rockets", "pro")
            .await
            .expect("plan");
        let running = active_site(&pool, org, "rockets").await;
        let unpaid = active_site(&pool, org, "unpaid").await;
        let phishing = active_site(&pool, org, "phishing").await;
        sqlx::query(
            "UPDATE sites SET suspended_at = now(),
                    suspended_reason = CASE WHEN id = $1 THEN 'billing: payment failed'
                                            ELSE 'operator: chargeback fraud' END
              WHERE id IN ($1, $2)",
        )
        .bind(unpaid)
        .bind(phishing)
        .execute(&pool)
        .await
        .expect("suspensions");
        let act = |function: &'static str, reason: &'static str| {
            server
                .client
                .post(format!("{}/api/admin/{function}", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[
                    ("organization", org.to_string()),
                    ("reason", reason.to_owned()),
                ])
                .send()
        };
        let reasons = || async {
            let mut rows = Vec::new();
            for site in [running, unpaid, phishing] {
                rows.push(
                    sqlx::query_scalar::<_, Option<String>>(
                        "SELECT suspended_reason FROM sites WHERE id = $1",
                    )
                    .bind(site)
                    .fetch_one(&pool)
                    .await
                    .expect("site"),
                );
            }
            rows
        };

        once_of_six(|| act("suspend_organization", "chargeback fraud"), 409).await;
        let fraud = Some("operator: chargeback fraud".to_owned());
        assert_eq!(
            reasons().await,
            [fraud.clone(), fraud.clone(), fraud.clone()]
        );
        // One of its sites cannot be resumed alone.
        let alone = server
            .client
            .post(format!("{}/api/admin/resume_site", server.base))
            .header("Origin", &server.base)
            .header("Accept", "application/json")
            .header("Cookie", &operator_cookie)
            .form(&[
                ("site", running.to_string()),
                ("reason", "just this one".to_owned()),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(alone.status().as_u16(), 409);
        assert!(
            alone
                .text()
                .await
                .expect("body")
                .contains("resume the organization")
        );
        let audited: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'organization.suspend'
                AND organization_id = $1 AND actor_user_id = $2
                AND details->>'reason' = 'chargeback fraud'",
        )
        .bind(org)
        .bind(operator)
        .fetch_one(&pool)
        .await
        .expect("audit");
        assert_eq!(audited, 1);
        // Its members can create no site meanwhile, and are told why.
        let refused = server
            .client
            .post(format!("{}/api/sites/create", server.base))
            .header("Origin", &server.base)
            .header("Accept", "application/json")
            .header("Cookie", &ada_cookie)
            .form(&[("name", "Another"), ("slug", "another-one")])
            .send()
            .await
            .expect("request");
        assert_eq!(refused.status().as_u16(), 409);
        assert!(
            refused
                .text()
                .await
                .expect("body")
                .contains("suspended by the operators of this service: chargeback fraud")
        );
        let page = server
            .client
            .get(format!("{}/admin/organizations/acme-rockets", server.base))
            .header("Cookie", &operator_cookie)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(
            page.contains("data-organization-suspended")
                && page.contains(r#"data-form="resume-organization""#)
        );

        // Resumed: the sites it suspended serve again (billing judges the unpaid one
        // again: local billing mode has no failed payment, so it serves too); the site
        // suspended for phishing stays suspended.
        let resumed = act("resume_organization", "chargeback withdrawn")
            .await
            .expect("request");
        assert_eq!(resumed.status().as_u16(), 200);
        assert_eq!(reasons().await, [None, None, fraud]);
        let again = act("resume_organization", "twice").await.expect("request");
        assert_eq!(again.status().as_u16(), 409);
    }

    /// In local billing mode the operator assigns an organization's plan from its page, with
    /// a reason the organization's audit log keeps; an unknown plan is refused.
    #[sqlx::test(migrations = "../migrations")]
    async fn operators_assign_a_plan_in_local_billing_mode(pool: PgPool) {
        let server = serve(pool.clone()).await;
        let p = server.platform.clone();
        let (operator, operator_cookie) = an_operator(&p).await;
        let (_, org, _) = user(&p, "ada@acme.test", "Acme Rockets").await;
        let page = server
            .client
            .get(format!("{}/admin/organizations/acme-rockets", server.base))
            .header("Cookie", &operator_cookie)
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(page.contains(r#"data-form="assign-plan""#));
        let assign = |plan: &'static str| {
            server
                .client
                .post(format!("{}/api/admin/assign_plan", server.base))
                .header("Origin", &server.base)
                .header("Accept", "application/json")
                .header("Cookie", &operator_cookie)
                .form(&[
                    ("organization", org.to_string()),
                    ("plan", plan.to_owned()),
                    ("reason", "signed the yearly contract".to_owned()),
                ])
                .send()
        };
        let refused = assign("platinum").await.expect("request");
        assert_eq!(refused.status().as_u16(), 422);
        assert!(
            refused
                .text()
                .await
                .expect("body")
                .contains("There is no plan")
        );
        let done = assign("business").await.expect("request");
        assert_eq!(done.status().as_u16(), 200);
        let (plan, actor, reason): (String, Option<uuid::Uuid>, Option<String>) = sqlx::query_as(
            "SELECT o.plan_id, a.actor_user_id, a.details->>'reason'
               FROM organizations o JOIN audit_log a ON a.organization_id = o.id
              WHERE o.id = $1 AND a.action = 'billing.plan_changed'",
        )
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("plan and audit");
        assert_eq!(
            (plan.as_str(), actor, reason.as_deref()),
            (
                "business",
                Some(operator),
                Some("signed the yearly contract")
            )
        );
    }
}

/// Signs up `email` (owner of a new organization on `plan`) on `platform`; returns the
/// session cookie and the owner's membership.
async fn owner_on(
    platform: &Platform,
    email: &str,
    plan: &str,
) -> (String, platform::tenancy::Membership) {
    let owner = test_support::owner_with_email(platform, email).await;
    test_support::set_plan(platform, &owner, plan).await;
    (
        test_support::session_cookie(platform, owner.user_id).await,
        owner,
    )
}

/// Site pages, actions and the live event stream answer only the site's organization.
#[sqlx::test(migrations = "../migrations")]
async fn site_pages_actions_and_events_are_scoped_to_the_organization(pool: PgPool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let key = platform::kernel::secrets::MasterKey::parse(
        &platform::kernel::secrets::MasterKey::generate(),
    )
    .expect("key");
    let p = Platform::new(
        pool.clone(),
        Catalog::new(default_plans()).expect("valid"),
        base.parse().expect("URL"),
    )
    .with_master_key(key);
    let server = test_support::spawn_app_on(listener, base, p.clone());
    let (alice, alice_member) = owner_on(&p, "alice@example.com", "pro").await;
    let (bob, _) = owner_on(&p, "bob@example.com", "pro").await;
    let site = platform::sites::create(
        &p,
        &alice_member,
        &platform::sites::NewSite {
            name: "Alice's notes".into(),
            slug: "alice-notes".into(),
            template: String::new(),
        },
    )
    .await
    .expect("site");
    let page = format!("/dashboard/sites/{}", site.id);

    let (status, html) = server.page(&page, Some(&alice)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Alice&#x27;s notes") || html.contains("Alice's notes"),
        "{html}"
    );
    assert!(html.contains("http://alice-notes.localhost:8080"));
    let (_, list) = server.page("/dashboard/sites", Some(&alice)).await;
    assert!(list.contains("alice-notes"));

    let (status, html) = server.page(&page, Some(&bob)).await;
    assert_eq!(
        status, 404,
        "another organization's site does not exist for Bob"
    );
    assert!(!html.contains("alice-notes"));
    let (_, list) = server.page("/dashboard/sites", Some(&bob)).await;
    assert!(!list.contains("alice-notes") && list.contains("No sites yet"));

    // The event stream: Alice's is open, Bob's and an anonymous one are refused.
    let events = format!("{}/api/sites/{}/events", server.base, site.id);
    let response = server
        .client
        .get(&events)
        .header("Cookie", &alice)
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );
    drop(response);
    let bob_events = server
        .client
        .get(&events)
        .header("Cookie", &bob)
        .send()
        .await
        .expect("events");
    assert_eq!(bob_events.status(), 404);
    let anonymous = server.client.get(&events).send().await.expect("events");
    assert_eq!(anonymous.status(), 401);

    // Bob cannot act on it, even with the right confirmation.
    let act = server
        .client
        .post(format!("{}/api/sites/act", server.base))
        .header("Cookie", &bob)
        .header("Origin", &server.base)
        .form(&[
            ("id", site.id.to_string()),
            ("action", "delete".to_owned()),
            ("confirm", "alice-notes".to_owned()),
        ])
        .send()
        .await
        .expect("act");
    assert_eq!(act.status(), 404);
    let desired: String = sqlx::query_scalar("SELECT desired_state FROM sites WHERE id = $1")
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert_eq!(desired, "running");

    // Alice can, and a wrong confirmation is refused first.
    let act = |confirm: &'static str| {
        server
            .client
            .post(format!("{}/api/sites/act", server.base))
            .header("Cookie", &alice)
            .header("Origin", &server.base)
            .form(&[
                ("id", site.id.to_string()),
                ("action", "delete".to_owned()),
                ("confirm", confirm.to_owned()),
            ])
            .send()
    };
    let refused = act("alice").await.expect("act");
    assert_eq!(refused.status(), 422);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("Type alice-notes to confirm")
    );
    assert_eq!(act("alice-notes").await.expect("act").status(), 200);
    let desired: String = sqlx::query_scalar("SELECT desired_state FROM sites WHERE id = $1")
        .bind(site.id)
        .fetch_one(&pool)
        .await
        .expect("row");
    assert_eq!(desired, "deleted");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sites_list_hears_of_its_own_organizations_changes_only(pool: PgPool) {
    let server = serve(pool).await;
    let alice = test_support::owner_on_plan(&server.platform, "pro").await;
    let bob = test_support::owner_on_plan(&server.platform, "pro").await;
    let cookie = test_support::session_cookie(&server.platform, alice.user_id).await;
    let url = format!("{}/api/sites/events", server.base);
    let mut stream = server
        .client
        .get(&url)
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("ascii"),
        "text/event-stream"
    );
    // Another organization's new site is not told to Alice's list.
    test_support::site(&server.platform, &bob, "bobs-site").await;
    let heard = tokio::time::timeout(Duration::from_millis(1500), stream.chunk()).await;
    assert!(heard.is_err(), "Alice heard of Bob's site: {heard:?}");
    // Her own is, at once.
    test_support::site(&server.platform, &alice, "alices-site").await;
    let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("told in time")
        .expect("a chunk")
        .expect("not the end");
    assert!(
        String::from_utf8_lossy(&chunk).contains("data: change"),
        "{chunk:?}"
    );
    // Nobody signed in: refused.
    let anonymous = server.client.get(&url).send().await.expect("events");
    assert_eq!(anonymous.status(), 401);
}

/// The self-service server functions answer a user's mistakes with 4xx and the words for
/// them, reach only the caller's own organization, account and sessions, and the account
/// and help pages render without JavaScript.
#[sqlx::test(migrations = "../migrations")]
async fn self_service_refuses_mistakes_plainly_and_stays_in_the_callers_account(pool: PgPool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let p = test_support::platform_at(pool.clone(), &base).with_support(platform::Support {
        email: Some(platform::kernel::Email::parse("help@hosting.test").expect("address")),
        docs_url: Some("https://docs.hosting.test/".parse().expect("URL")),
    });
    let server = test_support::spawn_app_on(listener, base, p.clone());
    let (alice, alice_member) = owner_on(&p, "alice@example.com", "pro").await;
    let (bob, bob_member) = owner_on(&p, "bob@example.com", "pro").await;
    let bobs_site = test_support::site(&p, &bob_member, "bobs-notes").await;
    let post = |path: &'static str, cookie: String, form: Vec<(&'static str, String)>| {
        let client = server.client.clone();
        let url = server.url(path);
        let origin = server.base.clone();
        async move {
            let response = client
                .post(url)
                .header("Origin", origin)
                .header("Cookie", cookie)
                .form(&form)
                .send()
                .await
                .expect("request");
            (
                response.status().as_u16(),
                response.text().await.expect("body"),
            )
        }
    };

    let (status, body) = post(
        "/api/settings/rename",
        alice.clone(),
        vec![("name", " ".into())],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post(
        "/api/sites/rename",
        alice.clone(),
        vec![("id", bobs_site.to_string()), ("name", "Mine now".into())],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(
        "/api/team/transfer-ownership",
        alice.clone(),
        vec![("user_id", bob_member.user_id.to_string())],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not a member"), "{body}");
    let (status, body) = post(
        "/api/account/password",
        alice.clone(),
        vec![
            ("current_password", "not it".into()),
            ("new_password", "a new long password".into()),
        ],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not your current password"), "{body}");
    let (status, body) = post(
        "/api/account/email",
        alice.clone(),
        vec![
            ("password", test_support::PASSWORD.into()),
            ("new_email", "bob@example.com".into()),
        ],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = post(
        "/api/account/email/confirm",
        String::new(),
        vec![("token", "forged".into())],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        "/api/sites/detail",
        bob.clone(),
        vec![
            ("id", bobs_site.to_string()),
            ("before", "not-a-cursor".into()),
        ],
    )
    .await;
    assert_eq!(status, 404);
    // Bob's browser cannot be ended from Alice's account.
    let bobs_handle = platform::identity::account::sessions(
        &p,
        bob_member.user_id,
        bob.trim_start_matches("slipway_session="),
    )
    .await
    .expect("sessions")[0]
        .handle
        .clone();
    let (status, _) = post(
        "/api/account/sessions/end",
        alice.clone(),
        vec![("handle", bobs_handle)],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post("/api/account/view", String::new(), vec![]).await;
    assert_eq!(status, 401);
    assert_eq!(
        platform::sites::get(&p, &bob_member, bobs_site)
            .await
            .expect("site")
            .name,
        "bobs-notes"
    );

    // The account page and the help page, as a browser without JavaScript gets them.
    let (status, page) = server.page_as(&alice_member, "/dashboard/account").await;
    assert_eq!(status, 200);
    // Every resource the page needs resolved on the server, none to an error (the browser
    // hydrates with what the server sent).
    assert!(
        !page.contains(r#"{\"Err\""#),
        "a resource failed on the server"
    );
    for expected in [
        "alice@example.com",
        "data-sessions",
        "data-current",
        r#"autocomplete="current-password""#,
        r#"autocomplete="new-password""#,
    ] {
        assert!(page.contains(expected), "{expected} missing");
    }
    let (status, help) = server.page("/help", None).await;
    assert_eq!(status, 200);
    assert!(help.contains("mailto:help@hosting.test"), "{help}");
    assert!(help.contains("https://docs.hosting.test/"));
    assert!(help.contains(r#"data-topic="domains""#));
}
