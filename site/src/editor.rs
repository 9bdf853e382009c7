//! The editor at `/editor`: posts and pages, drafts and publishing, Markdown with a
//! preview, and images kept on the data volume. Members arrive from Slipway's "Open
//! editor" with a single-use ticket ([`crate::ticket`]); owners, admins and editors write,
//! viewers read (drafts included). Every page is a plain HTML form: it works without
//! JavaScript, and a few lines of script add a live preview when it runs.

// Helpers answer with what to use or with the page to send instead (a `Response`): the
// page is sent at once, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::web::{AppState, document, escape, render_markdown};

/// A signed-in browser stays signed in this long.
const SESSION_HOURS: i64 = 8;
const COOKIE: &str = "site_editor";
/// Images larger than this are refused.
pub const MAX_IMAGE: usize = 5 * 1024 * 1024;

/// Who is editing, from their session cookie.
pub struct Editor {
    name: String,
    role: String,
    csrf: String,
}

impl Editor {
    fn can_write(&self) -> bool {
        self.role != "viewer"
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Editor>, Response> {
    let Some(token) = cookie_value(headers, COOKIE) else {
        return Ok(None);
    };
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT name, role, csrf FROM editor_sessions WHERE token_hash = $1 AND expires_at > now()",
    )
    .bind(hash(token))
    .fetch_optional(&state.db)
    .await
    .map_err(|cause| crate::web::internal("reading a session", cause))?;
    Ok(row.map(|(name, role, csrf)| Editor { name, role, csrf }))
}

/// The signed-in editor, or the page that says how to sign in.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Editor, Response> {
    match current(state, headers).await? {
        Some(editor) => Ok(editor),
        None => Err(message_page(
            state,
            None,
            StatusCode::UNAUTHORIZED,
            "Sign in from Slipway",
            "The editor opens from your Slipway dashboard: open this site there and choose \
             <strong>Open editor</strong>. Your sign-in lasts 8 hours.",
        )),
    }
}

/// A writer, or a refusal that says why (viewers read only).
async fn writer(state: &AppState, headers: &HeaderMap) -> Result<Editor, Response> {
    let editor = signed_in(state, headers).await?;
    if editor.can_write() {
        Ok(editor)
    } else {
        Err(message_page(
            state,
            Some(&editor),
            StatusCode::FORBIDDEN,
            "Read only",
            "Your role in this organization is <strong>viewer</strong>: you can read posts, \
             pages and drafts, but not change them. An owner or admin can change your role \
             in Slipway.",
        ))
    }
}

fn csrf_matches(editor: &Editor, presented: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), editor.csrf.as_bytes()).into()
}

fn stale_form(state: &AppState, editor: &Editor) -> Response {
    message_page(
        state,
        Some(editor),
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was opened in an earlier sign-in. Go back, reload the page and try again.",
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52rem;margin:1.5rem auto;\
padding:0 1rem;line-height:1.5;color:#1f2937}a{color:#3730a3}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;border-bottom:1px solid #d1d5db;\
padding-bottom:.75rem;margin-bottom:1rem}header .who{margin-left:auto;color:#374151}\
label{display:block;font-weight:600;margin-top:1rem}input[type=text],textarea{width:100%;\
box-sizing:border-box;padding:.5rem;border:1px solid #6b7280;border-radius:.375rem;font:inherit}\
textarea{min-height:16rem;font-family:ui-monospace,monospace}\
[aria-invalid=true]{border-color:#b91c1c;border-width:2px}.error{color:#b91c1c;margin:.25rem 0}\
.hint{color:#4b5563;margin:.25rem 0;font-size:.9rem}button{font:inherit;padding:.5rem 1rem;\
border-radius:.375rem;border:1px solid #3730a3;background:#fff;color:#3730a3;cursor:pointer;margin:1rem .5rem 0 0}\
button.primary{background:#3730a3;color:#fff}button.danger{border-color:#b91c1c;color:#b91c1c}\
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #e5e7eb}\
.notice{background:#ecfdf5;border:1px solid #047857;padding:.5rem .75rem;border-radius:.375rem}\
.problem{background:#fef2f2;border:1px solid #b91c1c;padding:.5rem .75rem;border-radius:.375rem}\
#preview{border:1px dashed #6b7280;padding:0 1rem;margin-top:1rem;border-radius:.375rem}\
.badge{font-size:.8rem;padding:.1rem .4rem;border-radius:.25rem;background:#e5e7eb;color:#1f2937}\
.badge.draft{background:#fef3c7;color:#78350f}img{max-width:100%}\
@media (max-width:40rem){td,th{display:block;border:0;padding:.1rem 0}tr{display:block;\
border-bottom:1px solid #e5e7eb;padding:.5rem 0}thead{display:none}}";

/// An editor page: the site's name, where to go, and who is signed in.
fn editor_page(state: &AppState, editor: Option<&Editor>, title: &str, content: &str) -> String {
    let site = escape(&state.config.name);
    let chrome = match editor {
        Some(editor) => format!(
            "<nav aria-label=\"Editor\"><a href=\"/editor\">Posts and pages</a> · \
             <a href=\"/editor/images\">Images</a> · <a href=\"/\">View site</a></nav>\
             <span class=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/editor/sign-out\" style=\"margin:0\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" style=\"margin:0\">Sign out</button></form>",
            escape(&editor.name),
            escape(&editor.role),
            escape(&editor.csrf),
        ),
        None => "<a href=\"/\">View site</a>".to_owned(),
    };
    document(
        &format!("{} · Editor · {}", title, state.config.name),
        STYLE,
        &format!(
            "<header><strong>{site} · Editor</strong>{chrome}</header><main><h1>{}</h1>{content}</main>",
            escape(title)
        ),
    )
}

fn message_page(
    state: &AppState,
    editor: Option<&Editor>,
    status: StatusCode,
    title: &str,
    message_html: &str,
) -> Response {
    (
        status,
        Html(editor_page(
            state,
            editor,
            title,
            &format!("<p>{message_html}</p>"),
        )),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    ticket: String,
}

/// `GET /editor/sign-in?ticket=…`: a genuine, unexpired, unused ticket opens a session.
/// How a ticket's use ended.
enum Opened {
    Session,
    AlreadyUsed,
    /// Issued before Slipway last signed the member out.
    SignedOutSince,
}

/// Holds the member's sign-in decisions until the transaction ends: a sign-in and a
/// sign-out of the same member never interleave (no session from an old ticket survives
/// its sign-out).
async fn lock_member(tx: &mut sqlx::PgConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('editor member ' || $1, 0))")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// What Slipway sends to sign a member out of the editor.
#[derive(Debug, Deserialize)]
pub struct SignOutMember {
    /// The member's id in Slipway (a ticket's `sub`).
    user: String,
    /// Unix seconds on Slipway's clock: the sessions opened from tickets issued before
    /// this end, and such tickets are refused from now on.
    issued_before: i64,
}

/// `POST /api/editor/sign-out` with the site token: Slipway signs a member out because
/// their role went down or they left. Answers `{"ended": <sessions ended>}`.
pub async fn sign_out_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refusal) = crate::web::authorized(&state, &headers) {
        return refusal.into_response();
    }
    let request = match serde_json::from_slice::<SignOutMember>(&body) {
        Ok(request) if !request.user.is_empty() && request.user.len() <= 100 => request,
        _ => {
            return crate::web::error(
                StatusCode::BAD_REQUEST,
                "send {\"user\": \"<member id>\", \"issued_before\": <Unix seconds>}",
            );
        }
    };
    let ended = async {
        let mut tx = state.db.begin().await?;
        lock_member(&mut tx, &request.user).await?;
        // Tickets live minutes: an hour-old sign-out refuses none any more.
        sqlx::query("DELETE FROM editor_sign_outs WHERE recorded_at < now() - interval '1 hour'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO editor_sign_outs (user_id, issued_before) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE
                SET issued_before = greatest(editor_sign_outs.issued_before, excluded.issued_before),
                    recorded_at = now()",
        )
        .bind(&request.user)
        .bind(request.issued_before)
        .execute(&mut *tx)
        .await?;
        let ended =
            sqlx::query("DELETE FROM editor_sessions WHERE user_id = $1 AND ticket_issued_at < $2")
                .bind(&request.user)
                .bind(request.issued_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok::<_, sqlx::Error>(ended)
    };
    match ended.await {
        Ok(ended) => axum::Json(serde_json::json!({ "ended": ended })).into_response(),
        Err(cause) => crate::web::internal("signing a member out", cause),
    }
}

pub async fn sign_in(State(state): State<AppState>, Query(query): Query<SignIn>) -> Response {
    let now = chrono::Utc::now();
    let claims = match crate::ticket::verify(&state.config.token, &query.ticket, now.timestamp()) {
        Ok(claims) => claims,
        Err(refused) => {
            return message_page(
                &state,
                None,
                StatusCode::UNAUTHORIZED,
                "Cannot sign in",
                &escape(&refused.to_string()),
            );
        }
    };
    let token = format!("{}{}", random_hex(), random_hex());
    let opened = async {
        let mut tx = state.db.begin().await?;
        // One decision per member with Slipway's sign-outs (`sign_out_member`).
        lock_member(&mut tx, &claims.sub).await?;
        let issued_before: Option<i64> =
            sqlx::query_scalar("SELECT issued_before FROM editor_sign_outs WHERE user_id = $1")
                .bind(&claims.sub)
                .fetch_optional(&mut *tx)
                .await?;
        if issued_before.is_some_and(|before| claims.iat < before) {
            return Ok(Opened::SignedOutSince);
        }
        sqlx::query("DELETE FROM editor_tickets_used WHERE expires_at < now()")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM editor_sessions WHERE expires_at < now()")
            .execute(&mut *tx)
            .await?;
        // The primary key decides: of two uses of one ticket, at once or not, one inserts.
        let first_use = sqlx::query(
            "INSERT INTO editor_tickets_used (nonce, expires_at) VALUES ($1, to_timestamp($2))
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(&claims.nonce)
        .bind(claims.exp as f64)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_use {
            return Ok(Opened::AlreadyUsed);
        }
        sqlx::query(
            "INSERT INTO editor_sessions (token_hash, user_id, name, role, csrf, expires_at, ticket_issued_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6), $7)",
        )
        .bind(hash(&token))
        .bind(&claims.sub)
        .bind(&claims.name)
        .bind(&claims.role)
        .bind(random_hex())
        .bind(SESSION_HOURS as i32)
        .bind(claims.iat)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(Opened::Session)
    };
    match opened.await {
        Ok(Opened::Session) => {
            let secure = if state.config.url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                SESSION_HOURS * 3600
            );
            let mut response = Redirect::to("/editor").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(Opened::AlreadyUsed) => message_page(
            &state,
            None,
            StatusCode::UNAUTHORIZED,
            "Cannot sign in",
            "This sign-in link was already used. Open the editor again from your Slipway dashboard.",
        ),
        Ok(Opened::SignedOutSince) => message_page(
            &state,
            None,
            StatusCode::UNAUTHORIZED,
            "Cannot sign in",
            "Your access to this site changed after this sign-in link was made. Open the editor again from your Slipway dashboard.",
        ),
        Err(cause) => crate::web::internal("opening a session", cause),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let editor = match signed_in(&state, &headers).await {
        Ok(editor) => editor,
        Err(_) => return Redirect::to("/").into_response(),
    };
    if !csrf_matches(&editor, &form.csrf) {
        return stale_form(&state, &editor);
    }
    if let Some(token) = cookie_value(&headers, COOKIE)
        && let Err(cause) = sqlx::query("DELETE FROM editor_sessions WHERE token_hash = $1")
            .bind(hash(token))
            .execute(&state.db)
            .await
    {
        return crate::web::internal("ending a session", cause);
    }
    let mut response = message_page(
        &state,
        None,
        StatusCode::OK,
        "Signed out",
        "You are signed out of the editor.",
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("site_editor=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

#[derive(sqlx::FromRow)]
struct Item {
    slug: String,
    title: String,
    body: String,
    kind: String,
    status: String,
    author: String,
    updated_at: chrono::DateTime<chrono::Utc>,
}

const ITEM_COLUMNS: &str = "slug, title, body, kind, status, author, updated_at";

/// The post or page at `slug`, or the "not found" page.
async fn found(state: &AppState, editor: &Editor, slug: &str) -> Result<Item, Response> {
    match item(state, slug).await? {
        Some(item) => Ok(item),
        None => Err(no_such(state, editor)),
    }
}

async fn item(state: &AppState, slug: &str) -> Result<Option<Item>, Response> {
    sqlx::query_as(&format!("SELECT {ITEM_COLUMNS} FROM posts WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(&state.db)
        .await
        .map_err(|cause| crate::web::internal("reading a post", cause))
}

fn no_such(state: &AppState, editor: &Editor) -> Response {
    message_page(
        state,
        Some(editor),
        StatusCode::NOT_FOUND,
        "Not found",
        "Nothing here has this address: it may have been deleted. <a href=\"/editor\">All posts and pages</a>",
    )
}

fn status_badge(status: &str) -> String {
    if status == "draft" {
        "<span class=\"badge draft\">Draft</span>".to_owned()
    } else {
        "<span class=\"badge\">Published</span>".to_owned()
    }
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    deleted: Option<String>,
}

/// `GET /editor`: everything, drafts included, newest change first.
pub async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(notice): Query<Notice>,
) -> Result<Response, Response> {
    let editor = signed_in(&state, &headers).await?;
    let items: Vec<Item> = match sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM posts ORDER BY updated_at DESC, id DESC"
    ))
    .fetch_all(&state.db)
    .await
    {
        Ok(items) => items,
        Err(cause) => return Err(crate::web::internal("listing posts", cause)),
    };
    let mut html = String::new();
    if let Some(deleted) = notice.deleted {
        html.push_str(&format!(
            "<p class=\"notice\" role=\"status\">Deleted “{}”.</p>",
            escape(&deleted)
        ));
    }
    if editor.can_write() {
        html.push_str(
            "<p><a href=\"/editor/new?kind=post\">New post</a> · <a href=\"/editor/new?kind=page\">New page</a></p>",
        );
    } else {
        html.push_str("<p class=\"hint\">You can read everything here, drafts included; your role does not change content.</p>");
    }
    if items.is_empty() {
        html.push_str("<p>Nothing written yet.</p>");
    } else {
        html.push_str(
            "<table><thead><tr><th>Title</th><th>Kind</th><th>Status</th><th>Last change</th></tr></thead><tbody>",
        );
        for item in &items {
            let target = if editor.can_write() { "edit" } else { "view" };
            html.push_str(&format!(
                "<tr data-item=\"{slug}\"><td><a href=\"/editor/{target}/{slug}\">{title}</a></td>\
                 <td>{kind}</td><td>{badge}</td><td>{when}{by}</td></tr>",
                slug = escape(&item.slug),
                title = escape(&item.title),
                kind = if item.kind == "page" { "Page" } else { "Post" },
                badge = status_badge(&item.status),
                when = item.updated_at.format("%Y-%m-%d %H:%M UTC"),
                by = if item.author.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", escape(&item.author))
                },
            ));
        }
        html.push_str("</tbody></table>");
    }
    Ok(Html(editor_page(&state, Some(&editor), "Posts and pages", &html)).into_response())
}

/// What the form holds: what was stored, or what was typed.
#[derive(Default, Deserialize)]
pub struct Fields {
    #[serde(default)]
    title: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    kind: String,
    /// When the stored text was last changed, as the form saw it (edits only): a save
    /// over someone else's newer change is refused instead of overwriting it.
    #[serde(default)]
    version: String,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Default)]
struct Problems {
    title: Option<String>,
    slug: Option<String>,
    body: Option<String>,
    general: Option<String>,
}

impl Problems {
    fn any(&self) -> bool {
        self.title.is_some() || self.slug.is_some() || self.body.is_some() || self.general.is_some()
    }
}

fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 100
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--")
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A slug from a title: "Hello, World!" becomes `hello-world`.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    slug.truncate(100);
    slug.trim_end_matches('-').to_owned()
}

/// Every mistake in the form at once, each for its field.
fn check(fields: &mut Fields, new: bool) -> Problems {
    let mut problems = Problems::default();
    fields.title = fields.title.trim().to_owned();
    if fields.title.is_empty() {
        problems.title = Some("Give it a title.".to_owned());
    } else if fields.title.chars().count() > 300 {
        problems.title = Some("At most 300 characters.".to_owned());
    } else if fields.title.contains('\0') {
        problems.title = Some("The title holds a NUL character; remove it.".to_owned());
    }
    if new {
        fields.slug = fields.slug.trim().to_owned();
        if fields.slug.is_empty() {
            fields.slug = slugify(&fields.title);
        }
        if fields.slug.is_empty() && problems.title.is_none() {
            problems.slug = Some(
                "The title has no letters or digits to make an address from; type one here."
                    .to_owned(),
            );
        } else if !fields.slug.is_empty() && !is_slug(&fields.slug) {
            problems.slug = Some(
                "Lowercase letters, digits and single hyphens (like my-first-post), at most 100 characters."
                    .to_owned(),
            );
        }
    }
    if fields.body.chars().count() > 1_000_000 {
        problems.body = Some("At most 1,000,000 characters.".to_owned());
    } else if fields.body.contains('\0') {
        problems.body = Some("The text holds a NUL character; remove it.".to_owned());
    }
    problems
}

/// A field's attributes and its error paragraph: `aria-invalid` when there is a problem,
/// and `aria-describedby` naming its hint (`<id>-hint`, when `hinted`) and its error.
fn field_error(id: &str, hinted: bool, problem: &Option<String>) -> (String, String) {
    let mut described = Vec::new();
    if hinted {
        described.push(format!("{id}-hint"));
    }
    let mut attributes = String::new();
    let mut paragraph = String::new();
    if let Some(message) = problem {
        described.push(format!("{id}-error"));
        attributes.push_str(" aria-invalid=\"true\"");
        paragraph = format!(
            "<p class=\"error\" id=\"{id}-error\">{}</p>",
            escape(message)
        );
    }
    if !described.is_empty() {
        attributes.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
    }
    (attributes, paragraph)
}

/// The live preview: the body's Markdown, rendered by the server as the page would.
const PREVIEW_SCRIPT: &str = "<script>(()=>{const f=document.querySelector('form[data-editor]');\
if(!f)return;const p=document.getElementById('preview');let t;\
f.elements.body.addEventListener('input',()=>{clearTimeout(t);t=setTimeout(async()=>{\
const r=await fetch('/editor/preview',{method:'POST',body:new URLSearchParams({body:f.elements.body.value,csrf:f.elements.csrf.value})});\
if(r.ok){p.innerHTML='<h2>Preview</h2>'+await r.text();p.hidden=false}},250)})})()</script>";

struct FormPage<'a> {
    editor: &'a Editor,
    fields: &'a Fields,
    problems: &'a Problems,
    /// Stored status of an existing item; `None` for a new one.
    stored_status: Option<&'a str>,
    notice: Option<&'a str>,
    preview: bool,
}

fn form_page(state: &AppState, form: FormPage<'_>, status: StatusCode) -> Response {
    let FormPage {
        editor,
        fields,
        problems,
        stored_status,
        notice,
        preview,
    } = form;
    let kind_word = if fields.kind == "page" {
        "page"
    } else {
        "post"
    };
    let new = stored_status.is_none();
    let action = if new {
        "/editor/new".to_owned()
    } else {
        format!("/editor/edit/{}", escape(&fields.slug))
    };
    let (title_attrs, title_error) = field_error("title", false, &problems.title);
    let (slug_attrs, slug_error) = field_error("slug", true, &problems.slug);
    let (body_attrs, body_error) = field_error("body", true, &problems.body);
    let mut html = String::new();
    if let Some(notice) = notice {
        html.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(notice)
        ));
    }
    if let Some(general) = &problems.general {
        html.push_str(&format!(
            "<p class=\"problem\" role=\"alert\">{}</p>",
            escape(general)
        ));
    } else if problems.any() {
        html.push_str(
            "<p class=\"problem\" role=\"alert\">Nothing was saved: see the marked fields.</p>",
        );
    }
    if let Some(status) = stored_status {
        html.push_str(&format!(
            "<p>{} · {}</p>",
            status_badge(status),
            if status == "published" {
                let path = if fields.kind == "page" {
                    "pages"
                } else {
                    "posts"
                };
                format!(
                    "<a href=\"/{path}/{slug}\">/{path}/{slug}</a>",
                    slug = escape(&fields.slug)
                )
            } else {
                "visible only here until it is published".to_owned()
            }
        ));
    }
    html.push_str(&format!(
        "<form method=\"post\" action=\"{action}\" data-editor>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"kind\" value=\"{kind_word}\">\
         <input type=\"hidden\" name=\"version\" value=\"{version}\">\
         <label for=\"title\">Title</label>\
         <input type=\"text\" id=\"title\" name=\"title\" value=\"{title}\" maxlength=\"300\" required{title_attrs}>{title_error}",
        csrf = escape(&editor.csrf),
        version = escape(&fields.version),
        title = escape(&fields.title),
    ));
    if new {
        html.push_str(&format!(
            "<label for=\"slug\">Address</label>\
             <p class=\"hint\" id=\"slug-hint\">The last part of its link; left empty, it is made from the title. It cannot change later.</p>\
             <input type=\"text\" id=\"slug\" name=\"slug\" value=\"{}\" maxlength=\"100\" pattern=\"[a-z0-9]+(-[a-z0-9]+)*\"{slug_attrs}>{slug_error}",
            escape(&fields.slug),
        ));
    } else {
        html.push_str(&format!(
            "<input type=\"hidden\" name=\"slug\" value=\"{}\">",
            escape(&fields.slug)
        ));
    }
    html.push_str(&format!(
        "<label for=\"body\">Text</label>\
         <p class=\"hint\" id=\"body-hint\">Markdown: <code>## Heading</code>, <code>*emphasis*</code>, \
         <code>[link](https://…)</code>, <code>![description](/uploads/…)</code> for an image from \
         <a href=\"/editor/images\" target=\"_blank\">Images</a>.</p>\
         <textarea id=\"body\" name=\"body\"{body_attrs}>{body}</textarea>{body_error}\
         <div><button type=\"submit\" name=\"intent\" value=\"preview\">Preview</button>",
        body = escape(&fields.body),
    ));
    match stored_status {
        Some("published") => html.push_str(
            "<button type=\"submit\" name=\"intent\" value=\"publish\" class=\"primary\">Update</button>\
             <button type=\"submit\" name=\"intent\" value=\"draft\">Unpublish</button>",
        ),
        _ => html.push_str(
            "<button type=\"submit\" name=\"intent\" value=\"draft\">Save draft</button>\
             <button type=\"submit\" name=\"intent\" value=\"publish\" class=\"primary\">Publish</button>",
        ),
    }
    html.push_str("</div></form>");
    html.push_str(&format!(
        "<section id=\"preview\" aria-live=\"polite\"{}>{}</section>",
        if preview { "" } else { " hidden" },
        if preview {
            format!("<h2>Preview</h2>{}", render_markdown(&fields.body))
        } else {
            String::new()
        }
    ));
    if !new {
        html.push_str(&format!(
            "<p><a href=\"/editor/delete/{}\">Delete this {kind_word}…</a></p>",
            escape(&fields.slug)
        ));
    }
    html.push_str(PREVIEW_SCRIPT);
    let title = if new {
        format!("New {kind_word}")
    } else {
        format!("Edit “{}”", fields.title)
    };
    (
        status,
        Html(editor_page(state, Some(editor), &title, &html)),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    kind: String,
}

pub async fn new_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NewQuery>,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    let fields = Fields {
        kind: if query.kind == "page" { "page" } else { "post" }.to_owned(),
        ..Fields::default()
    };
    Ok(form_page(
        &state,
        FormPage {
            editor: &editor,
            fields: &fields,
            problems: &Problems::default(),
            stored_status: None,
            notice: None,
            preview: false,
        },
        StatusCode::OK,
    ))
}

fn saved_redirect(slug: &str, intent: &str) -> Response {
    Redirect::to(&format!("/editor/edit/{slug}?saved={intent}")).into_response()
}

/// The form again, as typed: with its problems, or with the preview asked for.
fn form_again(
    state: &AppState,
    editor: &Editor,
    fields: &Fields,
    problems: &Problems,
    stored_status: Option<&str>,
    status: StatusCode,
) -> Response {
    form_page(
        state,
        FormPage {
            editor,
            fields,
            problems,
            stored_status,
            notice: None,
            preview: fields.intent == "preview",
        },
        status,
    )
}

/// What a checked form is saved as (`draft` or `published`); or, instead, the form again:
/// with its problems (422), or with the preview asked for (nothing is saved).
fn intended_status(
    state: &AppState,
    editor: &Editor,
    fields: &Fields,
    problems: &Problems,
    stored_status: Option<&str>,
) -> Result<&'static str, Response> {
    let again = |status| form_again(state, editor, fields, problems, stored_status, status);
    if problems.any() {
        return Err(again(StatusCode::UNPROCESSABLE_ENTITY));
    }
    match fields.intent.as_str() {
        "preview" => Err(again(StatusCode::OK)),
        "publish" => Ok("published"),
        _ => Ok("draft"),
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(mut fields): Form<Fields>,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    if !csrf_matches(&editor, &fields.csrf) {
        return Err(stale_form(&state, &editor));
    }
    if fields.kind != "page" {
        fields.kind = "post".to_owned();
    }
    let mut problems = check(&mut fields, true);
    let status = intended_status(&state, &editor, &fields, &problems, None)?;
    let inserted = sqlx::query(
        "INSERT INTO posts (slug, title, body, kind, status, author) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&fields.slug)
    .bind(&fields.title)
    .bind(&fields.body)
    .bind(&fields.kind)
    .bind(status)
    .bind(&editor.name)
    .execute(&state.db)
    .await;
    Ok(match inserted {
        Ok(_) => saved_redirect(&fields.slug, status),
        Err(cause)
            if cause.as_database_error().and_then(|e| e.constraint()) == Some("posts_slug_key") =>
        {
            problems.slug = Some(format!(
                "Another post or page already has the address “{}”; choose another.",
                fields.slug
            ));
            form_again(
                &state,
                &editor,
                &fields,
                &problems,
                None,
                StatusCode::CONFLICT,
            )
        }
        Err(cause) => crate::web::internal("creating a post", cause),
    })
}

#[derive(Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: String,
}

fn version_of(item: &Item) -> String {
    item.updated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub async fn edit_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(saved): Query<Saved>,
) -> Result<Response, Response> {
    let editor = signed_in(&state, &headers).await?;
    let item = found(&state, &editor, &slug).await?;
    if !editor.can_write() {
        return Ok(Redirect::to(&format!("/editor/view/{}", item.slug)).into_response());
    }
    let fields = Fields {
        version: version_of(&item),
        title: item.title,
        slug: item.slug,
        body: item.body,
        kind: item.kind,
        ..Fields::default()
    };
    let notice = match saved.saved.as_str() {
        "published" => Some("Published."),
        "draft" => Some("Saved as a draft: only editors see it."),
        _ => None,
    };
    Ok(form_page(
        &state,
        FormPage {
            editor: &editor,
            fields: &fields,
            problems: &Problems::default(),
            stored_status: Some(&item.status),
            notice,
            preview: false,
        },
        StatusCode::OK,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(mut fields): Form<Fields>,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    if !csrf_matches(&editor, &fields.csrf) {
        return Err(stale_form(&state, &editor));
    }
    let stored = found(&state, &editor, &slug).await?;
    fields.slug = stored.slug.clone();
    fields.kind = stored.kind.clone();
    let mut problems = check(&mut fields, false);
    let status = intended_status(&state, &editor, &fields, &problems, Some(&stored.status))?;
    let version = chrono::DateTime::parse_from_rfc3339(&fields.version)
        .map(|at| at.with_timezone(&chrono::Utc))
        .ok();
    // The version check and the write are one statement: of two saves from the same
    // version, one changes the row and the other finds it changed.
    let updated = sqlx::query(
        "UPDATE posts SET title = $2, body = $3, status = $4, author = $5, updated_at = now()
          WHERE slug = $1 AND updated_at = $6",
    )
    .bind(&slug)
    .bind(&fields.title)
    .bind(&fields.body)
    .bind(status)
    .bind(&editor.name)
    .bind(version)
    .execute(&state.db)
    .await;
    Ok(match updated {
        Ok(done) if done.rows_affected() == 1 => saved_redirect(&slug, status),
        Ok(_) => {
            let latest = found(&state, &editor, &slug).await?;
            problems.general = Some(format!(
                "{} changed this {} after you opened it, so nothing was saved. Your text is below: \
                 copy what you need, then reload to see theirs.",
                if latest.author.is_empty() {
                    "Someone".to_owned()
                } else {
                    latest.author.clone()
                },
                fields.kind
            ));
            form_again(
                &state,
                &editor,
                &fields,
                &problems,
                Some(&stored.status),
                StatusCode::CONFLICT,
            )
        }
        Err(cause) => crate::web::internal("saving a post", cause),
    })
}

/// `GET /editor/view/{slug}`: any item as it reads, drafts included (viewers' way in).
pub async fn view(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, Response> {
    let editor = signed_in(&state, &headers).await?;
    let item = found(&state, &editor, &slug).await?;
    let html = format!(
        "<p>{}</p><article>{}</article>",
        status_badge(&item.status),
        render_markdown(&item.body)
    );
    Ok(Html(editor_page(&state, Some(&editor), &item.title, &html)).into_response())
}

/// `POST /editor/preview`: the Markdown body as HTML (the live preview's request).
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let editor = signed_in(&state, &headers).await?;
    if !csrf_matches(&editor, &fields.csrf) {
        return Err(StatusCode::FORBIDDEN.into_response());
    }
    Ok(Html(render_markdown(&fields.body)).into_response())
}

pub async fn delete_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    let item = found(&state, &editor, &slug).await?;
    let html = format!(
        "<p>“{title}” will be gone from the site and from the editor. This cannot be undone.</p>\
         <form method=\"post\" action=\"/editor/delete/{slug}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"danger\">Delete</button> <a href=\"/editor/edit/{slug}\">Cancel</a></form>",
        title = escape(&item.title),
        slug = escape(&item.slug),
        csrf = escape(&editor.csrf),
    );
    Ok(Html(editor_page(
        &state,
        Some(&editor),
        &format!("Delete “{}”?", item.title),
        &html,
    ))
    .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    if !csrf_matches(&editor, &form.csrf) {
        return Err(stale_form(&state, &editor));
    }
    let deleted: Result<Option<String>, _> =
        sqlx::query_scalar("DELETE FROM posts WHERE slug = $1 RETURNING title")
            .bind(&slug)
            .fetch_optional(&state.db)
            .await;
    Ok(match deleted {
        Ok(Some(title)) => {
            let query = percent_encoded(&title);
            Redirect::to(&format!("/editor?deleted={query}")).into_response()
        }
        Ok(None) => no_such(&state, &editor),
        Err(cause) => crate::web::internal("deleting a post", cause),
    })
}

/// Percent-encodes a query value (no dependency for one use).
fn percent_encoded(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The image formats accepted, recognised by their first bytes (never by name or by the
/// type the browser claims): SVG is refused, since it can carry scripts.
pub fn image_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("png", "image/png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("jpg", "image/jpeg"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("gif", "image/gif"))
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(("webp", "image/webp"))
    } else {
        None
    }
}

#[derive(sqlx::FromRow)]
struct Upload {
    name: String,
    original: String,
    bytes: i64,
}

async fn images_page(
    state: &AppState,
    editor: &Editor,
    problem: Option<&str>,
    uploaded: Option<&str>,
    status: StatusCode,
) -> Response {
    let uploads: Vec<Upload> = match sqlx::query_as(
        "SELECT name, original, bytes FROM uploads ORDER BY created_at DESC, name",
    )
    .fetch_all(&state.db)
    .await
    {
        Ok(uploads) => uploads,
        Err(cause) => return crate::web::internal("listing images", cause),
    };
    let mut html = String::new();
    if let Some(name) = uploaded {
        html.push_str(&format!(
            "<p class=\"notice\" role=\"status\">Uploaded. Put it in a post with <code>![description](/uploads/{})</code>.</p>",
            escape(name)
        ));
    }
    if editor.can_write() {
        let (attrs, error) = field_error("image", true, &problem.map(str::to_owned));
        html.push_str(&format!(
            "<form method=\"post\" action=\"/editor/images\" enctype=\"multipart/form-data\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"image\">Image</label>\
             <p class=\"hint\" id=\"image-hint\">PNG, JPEG, GIF or WebP, at most 5 MB.</p>\
             <input type=\"file\" id=\"image\" name=\"image\" accept=\"image/png,image/jpeg,image/gif,image/webp\" required{attrs}>{error}\
             <div><button type=\"submit\" class=\"primary\">Upload</button></div></form>",
            escape(&editor.csrf)
        ));
    }
    if uploads.is_empty() {
        html.push_str("<p>No images yet.</p>");
    } else {
        html.push_str(
            "<table><thead><tr><th>Image</th><th>Markdown</th><th>Size</th></tr></thead><tbody>",
        );
        for upload in &uploads {
            html.push_str(&format!(
                "<tr data-upload=\"{name}\"><td><img src=\"/uploads/{name}\" alt=\"{original}\" width=\"96\" loading=\"lazy\"></td>\
                 <td><code>![{original}](/uploads/{name})</code></td><td>{kb} KB</td></tr>",
                name = escape(&upload.name),
                original = escape(&upload.original),
                kb = (upload.bytes + 1023) / 1024,
            ));
        }
        html.push_str("</tbody></table>");
    }
    (
        status,
        Html(editor_page(state, Some(editor), "Images", &html)),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct UploadedQuery {
    #[serde(default)]
    uploaded: Option<String>,
}

pub async fn images(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UploadedQuery>,
) -> Result<Response, Response> {
    let editor = signed_in(&state, &headers).await?;
    Ok(images_page(
        &state,
        &editor,
        None,
        query.uploaded.as_deref(),
        StatusCode::OK,
    )
    .await)
}

/// The uploaded file's name as typed, made safe to show: at most 100 characters, no path.
fn original_name(name: Option<&str>) -> String {
    let name = name
        .unwrap_or("image")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("image");
    let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    if name.is_empty() {
        "image".to_owned()
    } else {
        name
    }
}

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, Response> {
    let editor = writer(&state, &headers).await?;
    let refuse = |message: String, status| {
        let state = state.clone();
        let editor = &editor;
        async move { images_page(&state, editor, Some(&message), None, status).await }
    };
    let too_big = format!(
        "At most {} MB: choose a smaller image.",
        MAX_IMAGE / 1024 / 1024
    );
    let mut csrf = String::new();
    let mut image: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(cause) if cause.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(refuse(too_big, StatusCode::PAYLOAD_TOO_LARGE).await);
            }
            Err(cause) => {
                return Err(refuse(
                    format!("The upload was not complete ({cause}); try again."),
                    StatusCode::BAD_REQUEST,
                )
                .await);
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = original_name(field.file_name());
        match field.bytes().await {
            Ok(bytes) if name == "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            Ok(bytes) if name == "image" => image = Some((file_name, bytes.to_vec())),
            Ok(_) => {}
            Err(cause) if cause.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(refuse(too_big, StatusCode::PAYLOAD_TOO_LARGE).await);
            }
            Err(cause) => {
                return Err(refuse(
                    format!("The upload was not complete ({cause}); try again."),
                    StatusCode::BAD_REQUEST,
                )
                .await);
            }
        }
    }
    if !csrf_matches(&editor, &csrf) {
        return Err(stale_form(&state, &editor));
    }
    let Some((original, bytes)) = image.filter(|(_, bytes)| !bytes.is_empty()) else {
        return Err(refuse(
            "Choose an image to upload.".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await);
    };
    if bytes.len() > MAX_IMAGE {
        return Err(refuse(too_big, StatusCode::PAYLOAD_TOO_LARGE).await);
    }
    let Some((extension, content_type)) = image_type(&bytes) else {
        return Err(refuse(
            format!("“{original}” is not a PNG, JPEG, GIF or WebP image."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await);
    };
    let name = format!("{}.{extension}", random_hex());
    let dir = state.config.data_dir.join("uploads");
    let partial = dir.join(format!(".{name}.partial"));
    // Written aside, then renamed: a half-written file never has the served name.
    let written = async {
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, dir.join(&name)).await
    };
    if let Err(cause) = written.await {
        let _ = tokio::fs::remove_file(&partial).await;
        eprintln!("site: storing an image: {cause}");
        return Err(refuse(
            "The image could not be stored (the site's disk may be full); nothing was saved."
                .to_owned(),
            StatusCode::INSUFFICIENT_STORAGE,
        )
        .await);
    }
    let recorded = sqlx::query(
        "INSERT INTO uploads (name, original, content_type, bytes, uploaded_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&name)
    .bind(&original)
    .bind(content_type)
    .bind(bytes.len() as i64)
    .bind(&editor.name)
    .execute(&state.db)
    .await;
    if let Err(cause) = recorded {
        let _ = tokio::fs::remove_file(dir.join(&name)).await;
        return Err(crate::web::internal("recording an image", cause));
    }
    Ok(Redirect::to(&format!("/editor/images?uploaded={name}")).into_response())
}

/// `GET /uploads/{name}`: an uploaded image, for everyone (posts show them).
pub async fn serve_upload(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let content_type = name
        .rsplit_once('.')
        .filter(|(stem, _)| {
            stem.len() == 32
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .and_then(|(_, extension)| match extension {
            "png" => Some("image/png"),
            "jpg" => Some("image/jpeg"),
            "gif" => Some("image/gif"),
            "webp" => Some("image/webp"),
            _ => None,
        });
    let Some(content_type) = content_type else {
        return crate::web::error(StatusCode::NOT_FOUND, "no such image");
    };
    match tokio::fs::read(state.config.data_dir.join("uploads").join(&name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => crate::web::error(StatusCode::NOT_FOUND, "no such image"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_from_titles() {
        assert_eq!(slugify("Hello, World!"), "hello-world");
        assert_eq!(slugify("  Ça va? 2026  "), "a-va-2026");
        assert_eq!(slugify("¡¿?!"), "");
        assert!(is_slug(&slugify(&"word ".repeat(40))));
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let mut fields = Fields {
            title: "   ".to_owned(),
            slug: "Not A Slug".to_owned(),
            body: "a\0b".to_owned(),
            ..Fields::default()
        };
        let problems = check(&mut fields, true);
        assert!(problems.title.is_some());
        assert!(problems.slug.is_some());
        assert!(problems.body.is_some());
    }

    #[test]
    fn images_are_recognised_by_content_never_by_name() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n....").unwrap().0, "png");
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap().0, "jpg");
        assert_eq!(image_type(b"GIF89a...").unwrap().0, "gif");
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 ").unwrap().0, "webp");
        assert_eq!(
            image_type(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            None
        );
        assert_eq!(image_type(b"<html><script>"), None);
    }

    #[test]
    fn an_uploaded_name_loses_its_path_and_control_characters() {
        assert_eq!(original_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(original_name(Some("C:\\pics\\cat.png")), "cat.png");
        assert_eq!(original_name(Some("a\nb.png")), "ab.png");
        assert_eq!(original_name(None), "image");
    }
}
