//! The CMS's HTTP surface: public pages, the token-protected posts API and the signed
//! content-sync webhook.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;
use std::sync::Arc;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Request bodies larger than this are refused (413) before they are read.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// The editor's forms: a text at its limit, every character percent-encoded (up to 12 bytes).
const EDITOR_FORM_BODY: usize = 13 * 1024 * 1024;

pub struct Config {
    pub name: String,
    /// The site's public address (`SITE_URL`): the editor's cookie is `Secure` on https.
    pub url: String,
    /// Where uploaded images are kept (`DATA_DIR`/uploads).
    pub data_dir: std::path::PathBuf,
    pub token: String,
    pub webhook_secret: String,
    /// A line under the site's name on every public page (`SITE_TAGLINE`).
    pub tagline: Option<String>,
    /// While set, the public pages ask visitors for it (`SITE_PASSWORD`, HTTP Basic).
    pub visitor_password: Option<String>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) db: PgPool,
    pub(crate) config: Arc<Config>,
    database_check: Arc<DatabaseCheck>,
}

/// The liveness path checks the database about this often (plus up to a minute, different
/// for each process, so sites started together do not check together): probes every few
/// seconds must not keep a connection open forever.
const DATABASE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// When the database was last checked, and whether it answered.
struct DatabaseCheck {
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
    every: std::time::Duration,
}

impl Default for DatabaseCheck {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // A random number per process, without a dependency for it.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            last: tokio::sync::Mutex::new(None),
            every: DATABASE_CHECK_EVERY + std::time::Duration::from_millis(random % 60_000),
        }
    }
}

impl DatabaseCheck {
    /// `SELECT 1`. An idle site (no pooled connection) checks on a connection of its own
    /// and closes it at once, so it holds none between checks; a busy one uses its pool.
    async fn run(&self, db: &PgPool) -> bool {
        let idle = db.size() == 0;
        let checked = async {
            let mut conn = db.acquire().await?;
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&mut *conn)
                .await?;
            if idle {
                // It answered: a connection that does not close cleanly is not a database down.
                let _ = conn.close().await;
            }
            Ok::<_, sqlx::Error>(())
        };
        checked
            .await
            .inspect_err(|cause| eprintln!("site: health: {cause}"))
            .is_ok()
    }
}

pub fn router(db: PgPool, config: Config) -> Router {
    let state = AppState {
        db,
        config: Arc::new(config),
        database_check: Arc::new(DatabaseCheck::default()),
    };
    let faults = if crate::faults::enabled() {
        crate::faults::routes()
    } else {
        Router::new()
    };
    // What visitors read: behind the visitor password when there is one.
    let public = Router::new()
        .route("/", get(index))
        .route("/posts/{slug}", get(show_post))
        .route("/pages/{slug}", get(show_page))
        .route("/uploads/{name}", get(crate::editor::serve_upload))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            visitor_password,
        ));
    Router::new()
        .merge(public)
        .route("/healthz", get(liveness))
        .route("/editor", get(crate::editor::index))
        .route("/editor/sign-in", get(crate::editor::sign_in))
        .route("/editor/sign-out", post(crate::editor::sign_out))
        // A post of 1,000,000 characters, URL-encoded, needs more than the default limit.
        .route(
            "/editor/new",
            get(crate::editor::new_form)
                .post(crate::editor::create)
                .layer(axum::extract::DefaultBodyLimit::max(EDITOR_FORM_BODY)),
        )
        .route(
            "/editor/edit/{slug}",
            get(crate::editor::edit_form)
                .post(crate::editor::update)
                .layer(axum::extract::DefaultBodyLimit::max(EDITOR_FORM_BODY)),
        )
        .route("/editor/view/{slug}", get(crate::editor::view))
        .route(
            "/editor/preview",
            post(crate::editor::preview)
                .layer(axum::extract::DefaultBodyLimit::max(EDITOR_FORM_BODY)),
        )
        .route(
            "/editor/delete/{slug}",
            get(crate::editor::delete_form).post(crate::editor::delete),
        )
        .route(
            "/editor/images",
            get(crate::editor::images)
                .post(crate::editor::upload)
                .layer(
                    // The image limit plus room for the form around it.
                    axum::extract::DefaultBodyLimit::max(crate::editor::MAX_IMAGE + 64 * 1024),
                ),
        )
        .route("/api/health", get(health))
        // Static: crawlers ask for it first, and it costs the database nothing (the proxy
        // benchmark measures forwarding with it).
        .route(
            "/robots.txt",
            get(|| async {
                (
                    [("content-type", "text/plain")],
                    "User-agent: *\nAllow: /\n",
                )
            }),
        )
        // Asked for by every browser; `/favicon.ico` answers with the same picture for
        // those that ask before reading the page's `<link rel="icon">`.
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/api/posts", get(list_posts).post(create_post))
        .route(
            "/api/posts/{slug}",
            get(get_post).put(update_post).delete(delete_post),
        )
        .route("/api/sync-content", post(sync_content))
        .route("/api/editor/sign-out", post(crate::editor::sign_out_member))
        .merge(faults)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        // No page of the site may be framed by another (the editor's forms could be
        // clicked through a frame on a neighbouring site).
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                let headers = response.headers_mut();
                headers.insert(
                    header::X_FRAME_OPTIONS,
                    header::HeaderValue::from_static("DENY"),
                );
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    header::HeaderValue::from_static("frame-ancestors 'none'"),
                );
                response
            },
        ))
        .with_state(state)
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct Post {
    slug: String,
    title: String,
    body: String,
    /// `post` or `page` (pages are written in the editor).
    kind: String,
    /// `published`, or `draft` (saved in the editor, not shown on the site).
    status: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Deserialize)]
struct PostInput {
    slug: String,
    title: String,
    body: String,
}

#[derive(Debug, Deserialize)]
struct PostUpdate {
    title: String,
    body: String,
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// A database error: the client's when its text held a NUL, else ours.
pub(crate) fn internal(what: &str, cause: sqlx::Error) -> Response {
    if holds_nul(&cause) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, NO_NUL);
    }
    eprintln!("site: {what}: {cause}");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// PostgreSQL's text cannot hold NUL characters (`\u0000` in JSON, `%00` in a URL): its
/// refusal (SQLSTATE 22021, or 22P05 when converting) is the client's mistake.
fn holds_nul(cause: &sqlx::Error) -> bool {
    cause
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "22021" || code == "22P05")
}

const NO_NUL: &str = "text must not contain NUL characters (\\u0000)";

/// Maps the schema's named constraints to the client's mistake they describe.
fn refused(cause: sqlx::Error) -> Response {
    let constraint = cause
        .as_database_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned);
    match constraint.as_deref() {
        Some("posts_slug_key") => error(StatusCode::CONFLICT, "a post with this slug exists"),
        Some("posts_slug_format") => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "slug: lowercase letters, digits and single hyphens, at most 100 characters",
        ),
        Some("posts_title_length") => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "title: 1 to 300 characters",
        ),
        Some("posts_body_length") => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: at most 1,000,000 characters",
        ),
        _ => internal("writing a post", cause),
    }
}

/// A request refused before any work: small enough to pass around in a `Result`.
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, &self.message)
    }
}

pub(crate) fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Refusal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let expected = state.config.token.as_bytes();
    match presented {
        Some(token) if subtle::ConstantTimeEq::ct_eq(token.as_bytes(), expected).into() => Ok(()),
        _ => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "send the site token as `Authorization: Bearer <token>`".to_owned(),
        }),
    }
}

/// Liveness, cheap enough to ask every few seconds: no query, except one about every
/// [`DATABASE_CHECK_EVERY`] to keep the database honest.
async fn liveness(State(state): State<AppState>) -> Response {
    if crate::faults::HUNG.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let check = &state.database_check;
    let mut last = check.last.lock().await;
    let database_up = match *last {
        Some((at, up)) if at.elapsed() < check.every => up,
        _ => {
            let up = check.run(&state.db).await;
            *last = Some((std::time::Instant::now(), up));
            up
        }
    };
    drop(last);
    if database_up {
        axum::Json(serde_json::json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "unavailable", "database": "down" })),
        )
            .into_response()
    }
}

/// Readiness with a database round trip, every time.
async fn health(State(state): State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.db)
        .await
    {
        Ok(_) => {
            axum::Json(serde_json::json!({ "status": "ok", "database": "up" })).into_response()
        }
        Err(cause) => {
            eprintln!("site: health: {cause}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "unavailable", "database": "down" })),
            )
                .into_response()
        }
    }
}

const POST_COLUMNS: &str = "slug, title, body, kind, status, created_at, updated_at";

/// Drafts are read with the site token only; anyone reads what is published.
async fn all_posts(db: &PgPool, drafts: bool) -> Result<Vec<Post>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE $1 OR status = 'published'
          ORDER BY created_at DESC, id DESC"
    ))
    .bind(drafts)
    .fetch_all(db)
    .await
}

async fn one_post(db: &PgPool, slug: &str, drafts: bool) -> Result<Option<Post>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 AND ($2 OR status = 'published')"
    ))
    .bind(slug)
    .bind(drafts)
    .fetch_optional(db)
    .await
}

async fn list_posts(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let drafts = authorized(&state, &headers).is_ok();
    match all_posts(&state.db, drafts).await {
        Ok(posts) => axum::Json(posts).into_response(),
        Err(cause) => internal("listing posts", cause),
    }
}

async fn get_post(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let drafts = authorized(&state, &headers).is_ok();
    match one_post(&state.db, &slug, drafts).await {
        Ok(Some(post)) => axum::Json(post).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such post"),
        Err(cause) => internal("reading a post", cause),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|cause| Refusal {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!("the body is not the expected JSON: {cause}"),
    })
}

async fn create_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = authorized(&state, &headers) {
        return refusal.into_response();
    }
    let input: PostInput = match parse_json(&body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    let created = sqlx::query_as(&format!(
        "INSERT INTO posts (slug, title, body) VALUES ($1, $2, $3) RETURNING {POST_COLUMNS}"
    ))
    .bind(&input.slug)
    .bind(&input.title)
    .bind(&input.body)
    .fetch_one(&state.db)
    .await;
    match created {
        Ok(post) => (StatusCode::CREATED, axum::Json::<Post>(post)).into_response(),
        Err(cause) => refused(cause),
    }
}

async fn update_post(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = authorized(&state, &headers) {
        return refusal.into_response();
    }
    let input: PostUpdate = match parse_json(&body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    let updated = sqlx::query_as(&format!(
        "UPDATE posts SET title = $2, body = $3, updated_at = now() WHERE slug = $1 RETURNING {POST_COLUMNS}"
    ))
    .bind(&slug)
    .bind(&input.title)
    .bind(&input.body)
    .fetch_optional(&state.db)
    .await;
    match updated {
        Ok(Some(post)) => axum::Json::<Post>(post).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such post"),
        Err(cause) => refused(cause),
    }
}

async fn delete_post(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorized(&state, &headers) {
        return refusal.into_response();
    }
    match sqlx::query("DELETE FROM posts WHERE slug = $1")
        .bind(&slug)
        .execute(&state.db)
        .await
    {
        Ok(done) if done.rows_affected() == 1 => StatusCode::NO_CONTENT.into_response(),
        Ok(_) => error(StatusCode::NOT_FOUND, "no such post"),
        Err(cause) => internal("deleting a post", cause),
    }
}

/// A push from a content repository, GitHub-style: the body is signed with the site's
/// webhook secret in `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
/// Each entry of `posts` is created or replaced; each slug in `removed` is deleted.
#[derive(Debug, Deserialize)]
struct SyncPush {
    #[serde(default)]
    posts: Vec<PostInput>,
    #[serde(default)]
    removed: Vec<String>,
}

pub fn signature_matches(secret: &[u8], body: &[u8], header_value: Option<&str>) -> bool {
    let Some(hex_signature) = header_value.and_then(|v| v.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(signature) = hex::decode(hex_signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

async fn sync_content(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header_value = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature_matches(state.config.webhook_secret.as_bytes(), &body, header_value) {
        return error(
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 is missing or does not match the body",
        );
    }
    let push: SyncPush = match parse_json(&body) {
        Ok(push) => push,
        Err(refusal) => return refusal.into_response(),
    };
    let applied = async {
        let mut tx = state.db.begin().await?;
        for post in &push.posts {
            sqlx::query(
                "INSERT INTO posts (slug, title, body) VALUES ($1, $2, $3)
                 ON CONFLICT (slug) DO UPDATE SET title = $2, body = $3, updated_at = now()",
            )
            .bind(&post.slug)
            .bind(&post.title)
            .bind(&post.body)
            .execute(&mut *tx)
            .await?;
        }
        for slug in &push.removed {
            sqlx::query("DELETE FROM posts WHERE slug = $1")
                .bind(slug)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    };
    match applied.await {
        Ok(()) => axum::Json(serde_json::json!({
            "updated": push.posts.len(),
            "removed": push.removed.len(),
        }))
        .into_response(),
        Err(cause) => refused(cause),
    }
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown to HTML. Raw HTML in the source is shown as text, not passed through:
/// anyone holding the token or the webhook secret could otherwise inject scripts.
pub fn render_markdown(source: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let events = Parser::new_ext(
        source,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_destination(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_destination(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// A link's or image's address, if it cannot run script: relative, `http(s):` or
/// `mailto:`; anything else (`javascript:`, `data:`, `vbscript:`) becomes `#`.
fn safe_destination(dest: pulldown_cmark::CowStr<'_>) -> pulldown_cmark::CowStr<'_> {
    let lowered: String = dest
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme = lowered
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| !scheme.contains(['/', '?', '#']));
    match scheme {
        None | Some("http" | "https" | "mailto") => dest,
        Some(_) => "#".into(),
    }
}

/// A page icon: a rounded square with a document's lines, in the pages' link colour.
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#4338ca\"/>\
<path d=\"M9 10h14M9 16h14M9 22h9\" stroke=\"#fff\" stroke-width=\"2.5\" stroke-linecap=\"round\"/></svg>";

async fn favicon() -> impl IntoResponse {
    (
        [
            ("content-type", "image/svg+xml"),
            ("cache-control", "public, max-age=86400"),
        ],
        FAVICON,
    )
}

/// A whole HTML page: `title` is text, `style` and `body` are HTML.
pub(crate) fn document(title: &str, style: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
         <title>{}</title><style>{style}</style></head><body>{body}</body></html>",
        escape(title),
    )
}

const PUBLIC_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;\
padding:0 1rem;line-height:1.6;color:#1f2937}a{color:#3730a3}header a{color:inherit}\
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline}\
header strong a{text-decoration:none}img{max-width:100%}";

/// With a visitor password (`SITE_PASSWORD`), the public pages ask for it: HTTP Basic, any
/// user name, so every browser asks by itself and no page or cookie is needed. The editor,
/// the API and the health check have their own access and are not asked.
async fn visitor_password(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(password) = state.config.visitor_password.as_deref() else {
        return next.run(request).await;
    };
    if basic_password(request.headers()).is_some_and(|given| same_secret(&given, password)) {
        return next.run(request).await;
    }
    let page = document(
        "Password needed",
        PUBLIC_STYLE,
        "<main><h1>This site asks for a password</h1>\
         <p>Its owner can give it to you. Reload the page to enter it.</p></main>",
    );
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"site\", charset=\"UTF-8\"",
        )],
        Html(page),
    )
        .into_response()
}

/// The password of an `Authorization: Basic` header.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':')
        .map(|(_, password)| password.to_owned())
}

/// Compares the digests in constant time: neither the content nor the length of the
/// secret shows in how long a wrong guess takes.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::Digest;
    subtle::ConstantTimeEq::ct_eq(
        Sha256::digest(given.as_bytes()).as_slice(),
        Sha256::digest(expected.as_bytes()).as_slice(),
    )
    .into()
}

/// A public page, with the published pages in its header (or the error page to send).
#[allow(clippy::result_large_err)]
async fn page(state: &AppState, title: &str, content: &str) -> Result<Html<String>, Response> {
    let pages: Vec<(String, String)> = sqlx::query_as(
        "SELECT slug, title FROM posts WHERE kind = 'page' AND status = 'published' ORDER BY title, id",
    )
    .fetch_all(&state.db)
    .await
    .map_err(|cause| internal("listing pages", cause))?;
    let mut nav = String::new();
    if !pages.is_empty() {
        nav.push_str("<nav aria-label=\"Pages\">");
        for (slug, title) in &pages {
            nav.push_str(&format!(
                "<a href=\"/pages/{}\">{}</a> ",
                escape(slug),
                escape(title)
            ));
        }
        nav.push_str("</nav>");
    }
    Ok(Html(document(
        title,
        PUBLIC_STYLE,
        &format!(
            "<header><strong><a href=\"/\">{site}</a></strong>{tagline}{nav}</header><main>{content}</main>",
            site = escape(&state.config.name),
            tagline = state
                .config
                .tagline
                .as_deref()
                .map(|line| format!("<span data-tagline>{}</span>", escape(line)))
                .unwrap_or_default(),
        ),
    )))
}

async fn index(State(state): State<AppState>) -> Response {
    let posts: Vec<Post> = match sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE kind = 'post' AND status = 'published'
          ORDER BY created_at DESC, id DESC"
    ))
    .fetch_all(&state.db)
    .await
    {
        Ok(posts) => posts,
        Err(cause) => return internal("listing posts", cause),
    };
    let mut list = String::from("<h1>Posts</h1>");
    if posts.is_empty() {
        list.push_str("<p>Nothing published yet.</p>");
    } else {
        list.push_str("<ul>");
        for post in &posts {
            list.push_str(&format!(
                "<li><a href=\"/posts/{}\">{}</a> <small>{}</small></li>",
                escape(&post.slug),
                escape(&post.title),
                post.created_at.format("%Y-%m-%d"),
            ));
        }
        list.push_str("</ul>");
    }
    page(&state, &state.config.name, &list)
        .await
        .into_response()
}

async fn show_post(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    show_published(&state, "post", &slug).await
}

async fn show_page(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    show_published(&state, "page", &slug).await
}

/// A published post or page; drafts are not found (editors read them in the editor).
async fn show_published(state: &AppState, kind: &str, slug: &str) -> Response {
    let found: Result<Option<Post>, _> = sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM posts WHERE slug = $1 AND kind = $2 AND status = 'published'"
    ))
    .bind(slug)
    .bind(kind)
    .fetch_optional(&state.db)
    .await;
    match found {
        Ok(Some(post)) => page(
            state,
            &post.title,
            &format!(
                "<article><h1>{}</h1>{}</article>",
                escape(&post.title),
                render_markdown(&post.body)
            ),
        )
        .await
        .into_response(),
        Ok(None) => match page(state, "Not found", &format!("<h1>No such {kind}</h1>")).await {
            Ok(html) => (StatusCode::NOT_FOUND, html).into_response(),
            Err(response) => response,
        },
        Err(cause) => internal("reading a post", cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_push_signed_with_the_secret_is_accepted() {
        let body = br#"{"posts":[]}"#;
        assert!(signature_matches(
            b"s3cret",
            body,
            Some(&sign(b"s3cret", body))
        ));
    }

    #[test]
    fn wrong_secret_tampered_body_or_malformed_header_is_refused() {
        let body = br#"{"posts":[]}"#;
        let good = sign(b"s3cret", body);
        assert!(!signature_matches(b"other", body, Some(&good)));
        assert!(!signature_matches(
            b"s3cret",
            br#"{"posts":[1]}"#,
            Some(&good)
        ));
        assert!(!signature_matches(b"s3cret", body, None));
        assert!(!signature_matches(
            b"s3cret",
            body,
            Some(good.trim_start_matches("sha256="))
        ));
        assert!(!signature_matches(b"s3cret", body, Some("sha256=zz")));
    }

    #[test]
    fn links_that_would_run_script_lead_nowhere() {
        let html = render_markdown(
            "[a](javascript:alert(1)) [b](JaVaScRiPt:x) [c](%20javascript:x) ![d](data:text/html,x) [e](https://x.test/p) [f](/posts/y) [g](mailto:a@b.test)",
        );
        let lowered = html.to_ascii_lowercase();
        assert_eq!(lowered.matches("href=\"#\"").count(), 3, "{html}");
        assert!(
            !lowered.contains("=\"javascript") && !lowered.contains("=\"data:"),
            "{html}"
        );
        for kept in ["https://x.test/p", "/posts/y", "mailto:a@b.test"] {
            assert!(html.contains(kept), "{kept}: {html}");
        }
    }

    #[test]
    fn markdown_renders_and_raw_html_is_shown_as_text() {
        let html = render_markdown("# Hello\n\n*world* <script>alert(1)</script>");
        assert!(html.contains("<h1>Hello</h1>"), "{html}");
        assert!(html.contains("<em>world</em>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
