//! A refused form, carried across the redirect of a plain (no-JavaScript) form post.
//!
//! Without JavaScript a form posts to its server function, and server_fn answers a refusal
//! with a redirect back to the page, the error encoded in the address (`?__path=…&__err=…`).
//! The visitor then sees an address full of encoded text, and every field empty again. The
//! server's `form_flash` middleware turns that redirect into a clean one plus a one-time
//! cookie holding this [`FormFlash`]; the next page it renders carries the flash in a
//! request extension. [`provide`] puts it where server actions look for the error (leptos's
//! `ServerActionError` context) and where the forms' `field_error` finds what was typed. The page also carries it in a `<meta>` tag, so that a browser that hydrates
//! it (a form submitted before the WASM took over) renders the same error.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The `<meta>` tag's name.
const META_NAME: &str = "slipway-form-flash";

/// The cookie that carries a flash over the redirect.
pub const COOKIE: &str = "slipway_form";

/// A refused form: where it was, which server function refused it, with what, and what the
/// visitor typed (never passwords or tokens, see [`keeps`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormFlash {
    /// The page's path the browser is sent back to; the flash applies to that page only.
    pub page: String,
    /// The refusing server function's path (`ServerFn::PATH`).
    pub action: String,
    /// The error as server_fn encodes it for `__err` (URL-safe base64 of the encoded error).
    pub error: String,
    /// Each field's name and value, in the form's order.
    pub values: Vec<(String, String)>,
}

impl FormFlash {
    /// What was typed into `field` of `action`'s form, if that form is the refused one.
    pub fn typed(&self, action: &str, field: &str) -> Option<String> {
        (self.action == action)
            .then(|| self.values.iter().find(|(name, _)| name == field))
            .flatten()
            .map(|(_, value)| value.clone())
    }
}

/// Whether a field's value may be kept and shown again: never a password (re-typing one is
/// the convention, and it must not sit in a cookie or a page) nor a token from a link.
pub fn keeps(field: &str) -> bool {
    let field = field.to_ascii_lowercase();
    !["password", "token", "secret", "__"]
        .iter()
        .any(|word| field.contains(word))
}

/// Makes this request's flash, if any, the error of the server action it belongs to and
/// the source of its form's typed values. Called once, at the root of the app.
pub fn provide() {
    if let Some(flash) = current() {
        provide_context(leptos::server::ServerActionError::new(
            &flash.action,
            &flash.error,
        ));
        provide_context(flash);
    }
}

/// The `<meta>` tag that hands the flash to the hydrating browser (rendered in the head).
pub fn meta() -> impl IntoView {
    current()
        .and_then(|flash| serde_json::to_string(&flash).ok())
        .map(|content| view! { <meta name=META_NAME content=content /> })
}

#[cfg(feature = "ssr")]
fn current() -> Option<FormFlash> {
    use_context::<axum::http::request::Parts>()?
        .extensions
        .get::<FormFlash>()
        .cloned()
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn current() -> Option<FormFlash> {
    let meta = document()
        .query_selector(&format!("meta[name={META_NAME}]"))
        .ok()??;
    let flash: FormFlash = serde_json::from_str(&meta.get_attribute("content")?).ok()?;
    // Only for the page it was rendered for: after a navigation in the browser it is stale.
    (window().location().pathname().ok()? == flash.page).then_some(flash)
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn current() -> Option<FormFlash> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_never_kept() {
        for field in [
            "password",
            "current_password",
            "new_password",
            "token",
            "__path",
        ] {
            assert!(!keeps(field), "{field} must not be kept");
        }
        for field in ["email", "name", "slug", "message", "role"] {
            assert!(keeps(field), "{field} should be kept");
        }
    }

    #[test]
    fn typed_values_belong_to_the_refused_form_only() {
        let flash = FormFlash {
            page: "/dashboard/sites/new".into(),
            action: "/api/create_site".into(),
            error: String::new(),
            values: vec![("name".into(), "Blog".into())],
        };
        assert_eq!(
            flash.typed("/api/create_site", "name").as_deref(),
            Some("Blog")
        );
        assert_eq!(flash.typed("/api/rename_site", "name"), None);
        assert_eq!(flash.typed("/api/create_site", "slug"), None);
    }
}
