//! Email addresses.

use std::fmt;

use super::error::{Error, Result};

/// An email address, trimmed and lower-cased. Deliberately simple: one `@`, a dotted
/// domain, no spaces; the verification mail proves the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let invalid = |message: &str| Err(Error::invalid("email", message));
        if email.is_empty() {
            return invalid("Enter your email address.");
        }
        if email.len() > 254 {
            return invalid("That email address is too long.");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid("Enter an email address like name@example.com.");
        };
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && email.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii());
        if !well_formed || email.chars().any(char::is_control) {
            return invalid("Enter an email address like name@example.com.");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada lovelace@example.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
