//! The editor through its HTTP surface, on a real database (one per test, `sqlx::test`)
//! and a real directory for images. Slipway's side ("Open editor") and a browser are
//! covered by Slipway's own tests; here: tickets, roles, drafts, conflicts and uploads.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sqlx::PgPool;
use tower::ServiceExt;

use crate::ticket::{Claims, sign};

const TOKEN: &str = "the-site-token";

fn app(db: PgPool) -> (Router, std::path::PathBuf) {
    app_with(db, None, None)
}

/// The site with its customer settings: a tagline and a visitor password.
fn app_with(
    db: PgPool,
    tagline: Option<&str>,
    visitor_password: Option<&str>,
) -> (Router, std::path::PathBuf) {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).unwrap();
    let data_dir = std::env::temp_dir().join(format!("site-editor-{}", hex::encode(suffix)));
    let router = crate::web::router(
        db,
        crate::web::Config {
            name: "Ada's notes".to_owned(),
            url: "http://ada.localhost:8080".to_owned(),
            data_dir: data_dir.clone(),
            token: TOKEN.to_owned(),
            webhook_secret: "secret".to_owned(),
            tagline: tagline.map(str::to_owned),
            visitor_password: visitor_password.map(str::to_owned),
        },
    );
    (router, data_dir)
}

fn ticket(role: &str) -> String {
    ticket_of("user-1", role, chrono::Utc::now().timestamp())
}

/// A ticket for member `sub`, issued at `iat` (Unix seconds) and good for a minute.
fn ticket_of(sub: &str, role: &str, iat: i64) -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    sign(
        TOKEN,
        &Claims {
            sub: sub.to_owned(),
            name: format!("Ada the {role}"),
            role: role.to_owned(),
            iat,
            exp: iat + 60,
            nonce: hex::encode(nonce),
        },
    )
}

struct Answer {
    status: StatusCode,
    location: String,
    cookie: Option<String>,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    fn header_text(headers: &header::HeaderMap, name: header::HeaderName) -> String {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    let location = header_text(response.headers(), header::LOCATION);
    let content_type = header_text(response.headers(), header::CONTENT_TYPE);
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        location,
        cookie,
        content_type,
        body,
    }
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn post_form(app: &Router, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let request = Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    send(app, request).await
}

/// Signs in with a fresh ticket for `role`: the session cookie and the forms' CSRF value.
async fn sign_in(app: &Router, role: &str) -> (String, String) {
    let answer = get(
        app,
        &format!("/editor/sign-in?ticket={}", ticket(role)),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.location, "/editor");
    let cookie = answer.cookie.expect("a session cookie");
    let page = get(app, "/editor", Some(&cookie)).await.text();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form carries the CSRF value")
        .to_owned();
    (cookie, csrf)
}

fn version_in(page: &str) -> String {
    page.split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the edit form carries the version")
        .to_owned()
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn a_ticket_signs_in_once_and_a_draft_stays_hidden_until_published(db: PgPool) {
    let (app, _) = app(db);
    let ticket = ticket("editor");
    let first = get(&app, &format!("/editor/sign-in?ticket={ticket}"), None).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    let cookie_attributes = first.cookie.clone().unwrap();
    assert!(cookie_attributes.starts_with("site_editor="));
    let again = get(&app, &format!("/editor/sign-in?ticket={ticket}"), None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.text().contains("already used"), "{}", again.text());
    assert_eq!(
        get(&app, "/editor", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (cookie, csrf) = sign_in(&app, "editor").await;
    let created = post_form(
        &app,
        "/editor/new",
        &cookie,
        &[
            ("csrf", &csrf),
            ("kind", "post"),
            ("title", "Hello, World!"),
            ("slug", ""),
            ("body", "Some *emphasis*."),
            ("intent", "draft"),
        ],
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text());
    assert_eq!(created.location, "/editor/edit/hello-world?saved=draft");
    assert_eq!(
        get(&app, "/posts/hello-world", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!get(&app, "/", None).await.text().contains("Hello, World!"));
    // The posts API shows drafts to the site token's holder only.
    assert!(
        !get(&app, "/api/posts", None)
            .await
            .text()
            .contains("hello-world")
    );
    assert_eq!(
        get(&app, "/api/posts/hello-world", None).await.status,
        StatusCode::NOT_FOUND
    );
    let with_token = Request::get("/api/posts")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert!(
        send(&app, with_token)
            .await
            .text()
            .contains("\"status\":\"draft\"")
    );
    // No page of the site can be framed by another.
    let framed = app
        .clone()
        .oneshot(Request::get("/editor").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(framed.headers()[header::X_FRAME_OPTIONS], "DENY");
    // A viewer's way to an item that does not exist is a plain "not found".
    let (viewer, _) = sign_in(&app, "viewer").await;
    let odd = get(&app, "/editor/edit/a%0Ab", Some(&viewer)).await;
    assert_eq!(odd.status, StatusCode::NOT_FOUND);
    let listed = get(&app, "/editor", Some(&cookie)).await.text();
    assert!(
        listed.contains("Hello, World!") && listed.contains("Draft"),
        "{listed}"
    );

    let form = get(&app, "/editor/edit/hello-world", Some(&cookie))
        .await
        .text();
    let published = post_form(
        &app,
        "/editor/edit/hello-world",
        &cookie,
        &[
            ("csrf", &csrf),
            ("version", &version_in(&form)),
            ("title", "Hello, World!"),
            ("body", "Some *emphasis*."),
            ("intent", "publish"),
        ],
    )
    .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.text()
    );
    let public = get(&app, "/posts/hello-world", None).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.text().contains("<em>emphasis</em>"),
        "{}",
        public.text()
    );
    assert!(get(&app, "/", None).await.text().contains("Hello, World!"));
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn every_mistake_shows_at_its_field_and_the_typed_text_stays(db: PgPool) {
    let (app, _) = app(db);
    let (cookie, csrf) = sign_in(&app, "admin").await;
    let refused = post_form(
        &app,
        "/editor/new",
        &cookie,
        &[
            ("csrf", &csrf),
            ("kind", "page"),
            ("title", ""),
            ("slug", "Not A Slug"),
            ("body", "my careful words"),
            ("intent", "publish"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text();
    for (id, described_by) in [("title", "title-error"), ("slug", "slug-hint slug-error")] {
        assert!(
            page.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"{described_by}\""
            )),
            "{id}: {page}"
        );
        assert!(page.contains(&format!("id=\"{id}-error\"")), "{page}");
    }
    assert!(
        page.contains("my careful words") && page.contains("Not A Slug"),
        "{page}"
    );

    // A taken address is the address field's error, with everything typed kept.
    let fields = [
        ("csrf", csrf.as_str()),
        ("kind", "page"),
        ("title", "About"),
        ("slug", "about"),
        ("body", "first"),
        ("intent", "publish"),
    ];
    assert_eq!(
        post_form(&app, "/editor/new", &cookie, &fields)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let mut second = fields;
    second[4] = ("body", "second words");
    let taken = post_form(&app, "/editor/new", &cookie, &second).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(
        taken.text().contains("already has the address") && taken.text().contains("second words")
    );

    // The preview renders without saving anything.
    let mut preview = second;
    preview[3] = ("slug", "preview-only");
    preview[4] = ("body", "# Big words");
    preview[5] = ("intent", "preview");
    let shown = post_form(&app, "/editor/new", &cookie, &preview).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.text().contains("<h1>Big words</h1>"),
        "{}",
        shown.text()
    );
    assert_eq!(
        get(&app, "/pages/preview-only", None).await.status,
        StatusCode::NOT_FOUND
    );
    // The published page is in every public page's header.
    assert!(
        get(&app, "/", None)
            .await
            .text()
            .contains("<a href=\"/pages/about\">About</a>")
    );

    // A form from another sign-in is refused.
    let mut stale = fields;
    stale[0] = ("csrf", "not-the-value");
    stale[3] = ("slug", "stale");
    assert_eq!(
        post_form(&app, "/editor/new", &cookie, &stale).await.status,
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn a_viewer_reads_drafts_but_changes_nothing(db: PgPool) {
    let (app, _) = app(db);
    let (writer, csrf) = sign_in(&app, "owner").await;
    let draft = [
        ("csrf", csrf.as_str()),
        ("kind", "post"),
        ("title", "Secret plans"),
        ("slug", "plans"),
        ("body", "not yet"),
        ("intent", "draft"),
    ];
    assert_eq!(
        post_form(&app, "/editor/new", &writer, &draft).await.status,
        StatusCode::SEE_OTHER
    );

    let (viewer, viewer_csrf) = sign_in(&app, "viewer").await;
    let read = get(&app, "/editor/view/plans", Some(&viewer)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.text().contains("not yet"));
    let listed = get(&app, "/editor", Some(&viewer)).await.text();
    assert!(!listed.contains("New post"), "{listed}");
    assert_eq!(
        get(&app, "/editor/edit/plans", Some(&viewer))
            .await
            .location,
        "/editor/view/plans"
    );
    let mut attempt = draft;
    attempt[0] = ("csrf", &viewer_csrf);
    attempt[3] = ("slug", "mine");
    let refused = post_form(&app, "/editor/new", &viewer, &attempt).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("viewer"));
    let delete = post_form(
        &app,
        "/editor/delete/plans",
        &viewer,
        &[("csrf", &viewer_csrf)],
    )
    .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, "/editor/view/plans", Some(&writer)).await.status,
        StatusCode::OK
    );

    // Signing out ends the session on the server, not only in the browser.
    let out = post_form(&app, "/editor/sign-out", &viewer, &[("csrf", &viewer_csrf)]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/editor", Some(&viewer)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn a_ticket_fired_many_times_at_once_opens_exactly_one_session(db: PgPool) {
    let (app, _) = app(db);
    for round in 0..5 {
        let ticket = ticket("editor");
        let attempts = (0..8).map(|_| {
            let app = app.clone();
            let path = format!("/editor/sign-in?ticket={ticket}");
            tokio::spawn(async move { get(&app, &path, None).await.status })
        });
        let mut opened = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                StatusCode::SEE_OTHER => opened += 1,
                StatusCode::UNAUTHORIZED => {}
                other => panic!("round {round}: unexpected {other}"),
            }
        }
        assert_eq!(opened, 1, "round {round}");
    }
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn of_two_saves_from_the_same_version_one_wins_and_the_other_keeps_its_text(db: PgPool) {
    let (app, _) = app(db);
    let (cookie, csrf) = sign_in(&app, "editor").await;
    let created = [
        ("csrf", csrf.as_str()),
        ("kind", "post"),
        ("title", "Shared"),
        ("slug", "shared"),
        ("body", "v0"),
        ("intent", "publish"),
    ];
    assert_eq!(
        post_form(&app, "/editor/new", &cookie, &created)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    for round in 0..5 {
        let version = version_in(&get(&app, "/editor/edit/shared", Some(&cookie)).await.text());
        let saves = (0..2).map(|who| {
            let (app, cookie, csrf, version) =
                (app.clone(), cookie.clone(), csrf.clone(), version.clone());
            tokio::spawn(async move {
                let body = format!("round {round} by {who}");
                let answer = post_form(
                    &app,
                    "/editor/edit/shared",
                    &cookie,
                    &[
                        ("csrf", &csrf),
                        ("version", &version),
                        ("title", "Shared"),
                        ("body", &body),
                        ("intent", "publish"),
                    ],
                )
                .await;
                (answer.status, answer.text(), body)
            })
        });
        let mut won = 0;
        for save in saves {
            let (status, page, body) = save.await.unwrap();
            match status {
                StatusCode::SEE_OTHER => won += 1,
                StatusCode::CONFLICT => {
                    assert!(
                        page.contains("nothing was saved") && page.contains(&body),
                        "{page}"
                    )
                }
                other => panic!("round {round}: unexpected {other}: {page}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

fn multipart(csrf: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----slipway-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{file_name}\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &Router, cookie: &str, csrf: &str, file_name: &str, bytes: &[u8]) -> Answer {
    let (content_type, body) = multipart(csrf, file_name, bytes);
    let request = Request::post("/editor/images")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    send(app, request).await
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn images_are_checked_stored_on_the_volume_and_served(db: PgPool) {
    let (app, data_dir) = app(db);
    let (cookie, csrf) = sign_in(&app, "editor").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-tiny-picture".to_vec();
    let stored = upload(&app, &cookie, &csrf, "../../cat.png", &png).await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.text());
    let name = stored
        .location
        .trim_start_matches("/editor/images?uploaded=")
        .to_owned();
    assert!(name.ends_with(".png") && name.len() == 36, "{name}");
    assert_eq!(
        std::fs::read(data_dir.join("uploads").join(&name)).unwrap(),
        png
    );
    let served = get(&app, &format!("/uploads/{name}"), None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.content_type, "image/png");
    assert_eq!(served.body, png);
    let listed = get(&app, "/editor/images", Some(&cookie)).await.text();
    assert!(
        listed.contains(&format!("![cat.png](/uploads/{name})")),
        "{listed}"
    );

    let svg = upload(
        &app,
        &cookie,
        &csrf,
        "x.png",
        b"<svg><script>alert(1)</script></svg>",
    )
    .await;
    assert_eq!(svg.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        svg.text().contains("is not a PNG, JPEG, GIF or WebP image"),
        "{}",
        svg.text()
    );
    assert!(svg.text().contains("aria-invalid=\"true\""));
    let mut big = png.clone();
    big.resize(crate::editor::MAX_IMAGE + 1, 0);
    let too_big = upload(&app, &cookie, &csrf, "big.png", &big).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_big.text().contains("At most 5 MB"),
        "{}",
        too_big.text()
    );
    let (viewer, viewer_csrf) = sign_in(&app, "viewer").await;
    assert_eq!(
        upload(&app, &viewer, &viewer_csrf, "v.png", &png)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, "/uploads/..%2F..%2Fetc%2Fpasswd", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let files = std::fs::read_dir(data_dir.join("uploads")).unwrap().count();
    assert_eq!(files, 1, "only the accepted image is on the volume");
    let _ = std::fs::remove_dir_all(data_dir);
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn a_forged_or_expired_ticket_explains_itself(db: PgPool) {
    let (app, _) = app(db);
    let forged = sign(
        "another-sites-token",
        &Claims {
            sub: "x".to_owned(),
            name: "Mallory".to_owned(),
            role: "owner".to_owned(),
            iat: chrono::Utc::now().timestamp(),
            exp: chrono::Utc::now().timestamp() + 60,
            nonce: "00112233445566778899aabbccddeeff".to_owned(),
        },
    );
    let answer = get(&app, &format!("/editor/sign-in?ticket={forged}"), None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.text().contains("not issued for this site"));
    assert!(answer.cookie.is_none());
    let missing = get(&app, "/editor/sign-in", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.text().contains("incomplete"));
}

/// Slipway's sign-out of a member: `POST /api/editor/sign-out` with the site token.
async fn sign_out_member(app: &Router, token: &str, body: &str) -> Answer {
    let request = Request::post("/api/editor/sign-out")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(app, request).await
}

async fn signs_in(app: &Router, ticket: &str) -> Answer {
    get(app, &format!("/editor/sign-in?ticket={ticket}"), None).await
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn slipway_signs_a_member_out_of_their_sessions_and_their_older_tickets(db: PgPool) {
    let (app, _) = app(db);
    let now = chrono::Utc::now().timestamp();
    let editor = signs_in(&app, &ticket_of("member-1", "editor", now - 5)).await;
    let editor_cookie = editor.cookie.expect("signed in");
    let unsent = ticket_of("member-1", "editor", now - 3);
    let colleague = signs_in(&app, &ticket_of("member-2", "editor", now - 5)).await;
    let colleague_cookie = colleague.cookie.expect("signed in");

    // Only Slipway (the site token) signs anyone out, and says whom and since when.
    let body = format!(r#"{{"user": "member-1", "issued_before": {now}}}"#);
    let forged = sign_out_member(&app, "not-the-token", &body).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let malformed = sign_out_member(&app, TOKEN, r#"{"user": ""}"#).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.text().contains("issued_before"),
        "{}",
        malformed.text()
    );
    assert_eq!(
        get(&app, "/editor", Some(&editor_cookie)).await.status,
        StatusCode::OK
    );

    let done = sign_out_member(&app, TOKEN, &body).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.text(), r#"{"ended":1}"#);
    let refused = get(&app, "/editor", Some(&editor_cookie)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text().contains("Sign in from Slipway"));
    // A ticket issued before the sign-out (its old role) is refused, with the reason...
    let stale = signs_in(&app, &unsent).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(
        stale.text().contains("access to this site changed"),
        "{}",
        stale.text()
    );
    assert!(stale.cookie.is_none());
    // ...a new one (its new role) signs in, and the colleague was never touched.
    let fresh = signs_in(&app, &ticket_of("member-1", "viewer", now)).await;
    assert_eq!(fresh.status, StatusCode::SEE_OTHER, "{}", fresh.text());
    assert_eq!(
        get(&app, "/editor", Some(&colleague_cookie)).await.status,
        StatusCode::OK
    );
    // Asked again (a retried job), an older time never undoes a later one.
    let earlier = format!(r#"{{"user": "member-1", "issued_before": {}}}"#, now - 60);
    assert_eq!(
        sign_out_member(&app, TOKEN, &earlier).await.text(),
        r#"{"ended":0}"#
    );
    assert_eq!(
        signs_in(&app, &ticket_of("member-1", "editor", now - 1))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn a_sign_in_racing_its_members_sign_out_never_leaves_a_session_behind(db: PgPool) {
    let (app, _) = app(db.clone());
    for round in 0..8 {
        let member = format!("member-{round}");
        let now = chrono::Utc::now().timestamp();
        let ticket = ticket_of(&member, "editor", now - 1);
        let body = format!(r#"{{"user": "{member}", "issued_before": {now}}}"#);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let sign_in = {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                signs_in(&app, &ticket).await.status
            })
        };
        let sign_out = {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                sign_out_member(&app, TOKEN, &body).await.status
            })
        };
        let (signed_in, signed_out) = (sign_in.await.unwrap(), sign_out.await.unwrap());
        assert_eq!(signed_out, StatusCode::OK, "round {round}");
        assert!(
            [StatusCode::SEE_OTHER, StatusCode::UNAUTHORIZED].contains(&signed_in),
            "round {round}: {signed_in}"
        );
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM editor_sessions WHERE user_id = $1")
                .bind(&member)
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(
            left, 0,
            "round {round}: a session from a ticket older than the sign-out survived"
        );
    }
}

/// The customer's settings reach the site: the tagline is on every public page, and a
/// visitor password guards what visitors read (HTTP Basic, any user name) but not the
/// health check, the API (its token) or the editor (its sign-in).
#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn the_tagline_shows_and_the_visitor_password_guards_the_public_pages(db: PgPool) {
    use base64::Engine;
    let (app, data_dir) = app_with(db, Some("Notes <from> the sea"), Some("correct horse"));
    let basic = |pair: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let get_as = |path: &'static str, authorization: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get(path);
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = app
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned());
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                challenge,
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
    };

    for path in ["/", "/posts/hello", "/pages/about", "/uploads/x.png"] {
        let (status, challenge, body) = get_as(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Basic ")),
            "{path}: {challenge:?}"
        );
        assert!(body.contains("asks for a password"), "{body}");
    }
    for wrong in [
        basic("visitor:wrong horse"),
        basic("correct horse"),
        "Bearer x".to_owned(),
    ] {
        assert_eq!(get_as("/", Some(wrong)).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = get_as("/", Some(basic("anyone:correct horse"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("<span data-tagline>Notes &lt;from&gt; the sea</span>"),
        "the tagline, escaped: {body}"
    );

    // Not guarded: the health check, the API with its token, the editor's own sign-in.
    assert_eq!(get_as("/healthz", None).await.0, StatusCode::OK);
    assert_eq!(
        get_as("/api/posts", Some(format!("Bearer {TOKEN}")))
            .await
            .0,
        StatusCode::OK
    );
    let (_, challenge, body) = get_as("/editor", None).await;
    assert!(
        challenge.is_none() && !body.contains("asks for a password"),
        "the editor signs in its own way: {challenge:?} {body}"
    );
    let _ = std::fs::remove_dir_all(data_dir);
}

/// Without settings, nothing is asked and no tagline is shown.
#[sqlx::test(migrator = "crate::web::MIGRATOR")]
async fn without_settings_the_site_is_open_and_has_no_tagline(db: PgPool) {
    let (app, data_dir) = app(db);
    let answer = get(&app, "/", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&answer.body).contains("data-tagline"));
    let _ = std::fs::remove_dir_all(data_dir);
}
