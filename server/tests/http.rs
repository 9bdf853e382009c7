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
        ("/dashboard", "Overview", "Nothing to show yet"),
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
        reqwest::Client::builder()
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
        let response = client
            .post(format!("{}/api/account/sign-up", server.base))
            .header("Accept", "text/html")
            .header("Origin", &server.base)
            .header("Referer", format!("{}/signup", server.base))
            .form(&sign_up_form())
            .send()
            .await
            .expect("request");
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
            html.contains("user.signed_up"),
            "the owner reads the audit log"
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
        let client = reqwest::Client::builder()
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
        let allowed = page(Some(customer.clone())).await.expect("request");
        assert_eq!(allowed.status().as_u16(), 200);
        assert!(
            allowed
                .text()
                .await
                .expect("body")
                .contains("a platform operator")
        );

        // Every operator function and page, enumerated from the app itself so that a new
        // one cannot be forgotten: refused to nobody and to customers, answered to operators.
        let (_, _, stranger) = user(&p, "stranger@example.com", "Stranger").await;
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
        assert!(functions.len() >= 2, "operator functions: {functions:?}");
        for (path, method) in &functions {
            for (cookie, status) in &callers {
                let mut request = client
                    .request(method.clone(), format!("{}{path}", server.base))
                    .header("Origin", &server.base)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("");
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                let answer = request.send().await.expect("request");
                assert_eq!(
                    answer.status().as_u16(),
                    *status,
                    "{method} {path} as {:?}",
                    cookie.as_ref().map(|_| "someone")
                );
            }
        }
        let pages: Vec<String> = leptos_axum::generate_route_list(app::App)
            .iter()
            .map(|r| r.path().to_owned())
            .filter(|path| path.starts_with("/admin"))
            .collect();
        assert!(!pages.is_empty());
        for path in &pages {
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
