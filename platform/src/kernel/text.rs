//! Names people type (a person's, an organization's, an API key's): trimmed, not empty,
//! bounded, printable.

use super::error::{Error, Result};

/// The trimmed text, or a message for `field` that says what is wrong.
pub(crate) fn display_name(
    raw: &str,
    field: &'static str,
    max_chars: usize,
    when_empty: &str,
) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::invalid(field, when_empty));
    }
    if text.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("Use at most {max_chars} characters."),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "The name contains invalid characters.",
        ));
    }
    Ok(text.to_owned())
}

/// Free text a client sent that is only ever used as a lookup key or log subject (a
/// malformed email address at sign-in): lower case, without control characters (a NUL
/// cannot be stored), at most 320 characters, so a hostile value costs nothing to keep.
pub(crate) fn bounded_key(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(320)
        .collect::<String>()
        .to_lowercase()
}
