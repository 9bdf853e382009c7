//! What a site runs: an image, the port it listens on, its health path, its environment
//! and where its data volume is mounted. The default is the built-in CMS (`site/`),
//! packaged by Slipway itself; an operator can configure others under `[[templates]]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Values a template's `env` may refer to as `{name}`.
pub const PLACEHOLDERS: [&str; 7] = [
    "database_url",
    "database_max_connections",
    "site_token",
    "webhook_secret",
    "site_name",
    "site_url",
    "slug",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Identifier stored with each site: 1-40 of `a-z 0-9 -`.
    pub name: String,
    /// What users see in the "create site" form.
    pub label: String,
    /// A local image (nothing is pulled). For the built-in template Slipway builds it
    /// from `provision.site_binary` when it is missing.
    pub image: String,
    #[serde(default)]
    pub builtin: bool,
    /// The port the app listens on inside the container.
    pub port: u16,
    /// A path that answers 200 once the app is ready.
    pub health_path: String,
    /// Environment of the container; values may use the `PLACEHOLDERS` as `{name}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Where the site's data volume is mounted (the only writable path besides /tmp).
    pub data_path: String,
    /// Environment variables a site's owners and admins may set themselves (Settings on
    /// the site's page); a change is applied by recreating the container.
    #[serde(default)]
    pub settings: Vec<Setting>,
}

/// One environment variable a customer may set for their site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The variable's name: `A-Z 0-9 _`, starting with a letter, at most 64 characters;
    /// never one of the template's own `env`.
    pub key: String,
    /// What the settings form calls it.
    pub label: String,
    /// One sentence under the field: what it does.
    #[serde(default)]
    pub help: String,
    /// A secret is written, never shown again (a password, an API key).
    #[serde(default)]
    pub secret: bool,
    /// The fewest characters a value may have (an empty value always unsets it).
    #[serde(default)]
    pub min_length: usize,
    /// The most characters a value may have.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
}

fn default_max_length() -> usize {
    200
}

/// The most settings one template may offer (a form, not a database).
pub const MAX_SETTINGS: usize = 20;

impl Setting {
    /// Checks a value typed for this setting; `Ok(None)` unsets it. Spaces around it are
    /// dropped; control characters (a line break included) are refused, since the value
    /// becomes one environment variable.
    pub fn check(&self, raw: &str) -> Result<Option<String>, String> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let length = value.chars().count();
        if value.chars().any(char::is_control) {
            Err(format!("{} must be one line of text.", self.label))
        } else if length > self.max_length {
            Err(format!(
                "{} may have at most {} characters (this has {length}).",
                self.label, self.max_length
            ))
        } else if length < self.min_length {
            Err(format!(
                "{} needs at least {} characters.",
                self.label, self.min_length
            ))
        } else {
            Ok(Some(value.to_owned()))
        }
    }
}

impl Template {
    pub fn builtin() -> Self {
        let env = [
            ("DATABASE_URL", "{database_url}"),
            ("DATABASE_MAX_CONNECTIONS", "{database_max_connections}"),
            ("SITE_TOKEN", "{site_token}"),
            ("WEBHOOK_SECRET", "{webhook_secret}"),
            ("SITE_NAME", "{site_name}"),
            ("SITE_URL", "{site_url}"),
            ("PORT", "8000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            name: "cms".to_owned(),
            label: "Slipway CMS (posts and pages)".to_owned(),
            image: "slipway-site:latest".to_owned(),
            builtin: true,
            port: 8000,
            // Liveness without a query each time (the database is checked every 5 minutes).
            health_path: "/healthz".to_owned(),
            env,
            data_path: "/data".to_owned(),
            settings: vec![
                Setting {
                    key: "SITE_TAGLINE".to_owned(),
                    label: "Tagline".to_owned(),
                    help: "A line shown under the site's name on every page.".to_owned(),
                    secret: false,
                    min_length: 0,
                    max_length: 120,
                },
                Setting {
                    key: "SITE_PASSWORD".to_owned(),
                    label: "Visitor password".to_owned(),
                    help: "While set, visitors need it to read the site (any user name); \
                           the editor and the API are not affected."
                        .to_owned(),
                    secret: true,
                    min_length: 8,
                    max_length: 200,
                },
            ],
        }
    }

    /// The setting `key`, if the template offers it.
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|setting| setting.key == key)
    }

    /// The container's environment as `KEY=value` strings, placeholders filled in.
    /// Values go to Docker as data (never through a shell), so any byte is safe.
    pub fn render_env(&self, values: &BTreeMap<&str, String>) -> Vec<String> {
        self.env
            .iter()
            .map(|(key, template)| format!("{key}={}", fill(template, values)))
            .collect()
    }
}

/// Fills `{name}` placeholders in one pass over the template: a value put in is never
/// read again, so a user's value that looks like a placeholder (a site named
/// `{site_token}`) stays exactly what the user typed. Unknown `{...}` stays as written.
fn fill(template: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let value = after
            .find('}')
            .and_then(|end| Some((values.get(&after[..end])?, end)));
        match value {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks the configured templates; the message names the setting at fault.
pub fn validate(templates: &[Template]) -> Result<(), String> {
    if templates.is_empty() {
        return Err("setting `templates`: configure at least one template".to_owned());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in templates.iter().enumerate() {
        let at = |field: &str| format!("setting `templates[{i}].{field}`");
        if !is_identifier(&t.name, 40) {
            return Err(format!(
                "{}: 1-40 characters of a-z, 0-9 and - (got {:?})",
                at("name"),
                t.name
            ));
        }
        if !seen.insert(&t.name) {
            return Err(format!("{}: {:?} is used twice", at("name"), t.name));
        }
        if t.image.is_empty() || t.image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{}: an image reference without spaces",
                at("image")
            ));
        }
        if t.port == 0 {
            return Err(format!("{}: must not be 0", at("port")));
        }
        if !t.health_path.starts_with('/') {
            return Err(format!("{}: must start with /", at("health_path")));
        }
        if !t.data_path.starts_with('/') || t.data_path.contains("..") {
            return Err(format!(
                "{}: an absolute path inside the container",
                at("data_path")
            ));
        }
        for (key, value) in &t.env {
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                return Err(format!(
                    "{}: {key:?} is not a variable name (A-Z, 0-9, _)",
                    at("env")
                ));
            }
            let mut rest = value.as_str();
            while let Some(start) = rest.find('{') {
                let after = &rest[start + 1..];
                let Some(end) = after.find('}') else { break };
                let name = &after[..end];
                if !PLACEHOLDERS.contains(&name) {
                    return Err(format!(
                        "{}: unknown placeholder {{{name}}} (known: {})",
                        at(&format!("env.{key}")),
                        PLACEHOLDERS.join(", ")
                    ));
                }
                rest = &after[end + 1..];
            }
        }
        validate_settings(t, &at)?;
    }
    Ok(())
}

fn validate_settings(t: &Template, at: &dyn Fn(&str) -> String) -> Result<(), String> {
    if t.settings.len() > MAX_SETTINGS {
        return Err(format!("{}: at most {MAX_SETTINGS}", at("settings")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, setting) in t.settings.iter().enumerate() {
        let at = |field: &str| at(&format!("settings[{i}].{field}"));
        let key = setting.key.as_bytes();
        let key_ok = key.len() <= 64
            && key.first().is_some_and(u8::is_ascii_uppercase)
            && key
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
        if !key_ok {
            return Err(format!(
                "{}: {:?} is not a variable name (A-Z first, then A-Z, 0-9, _; at most 64)",
                at("key"),
                setting.key
            ));
        }
        if t.env.contains_key(&setting.key) {
            return Err(format!(
                "{}: {} is set by the template's env already",
                at("key"),
                setting.key
            ));
        }
        if !seen.insert(&setting.key) {
            return Err(format!("{}: {} is used twice", at("key"), setting.key));
        }
        if setting.label.trim().is_empty() {
            return Err(format!("{}: must not be empty", at("label")));
        }
        if setting.max_length == 0 || setting.max_length > 4096 {
            return Err(format!("{}: between 1 and 4096", at("max_length")));
        }
        if setting.min_length > setting.max_length {
            return Err(format!("{}: more than max_length", at("min_length")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_template_is_valid_and_fills_its_placeholders() {
        let t = Template::builtin();
        validate(std::slice::from_ref(&t)).unwrap();
        let values = BTreeMap::from([
            ("database_url", "postgres://a@b/c".to_owned()),
            ("site_name", "My $(rm -rf /) site\n".to_owned()),
        ]);
        let env = t.render_env(&values);
        assert!(env.contains(&"DATABASE_URL=postgres://a@b/c".to_owned()));
        // Stored verbatim: the value is data for Docker, never shell input.
        assert!(env.contains(&"SITE_NAME=My $(rm -rf /) site\n".to_owned()));
    }

    #[test]
    fn values_are_put_in_once_and_never_expanded_again() {
        let t = Template::builtin();
        let values = BTreeMap::from([
            ("site_token", "s3cret-token".to_owned()),
            ("site_name", "{site_token} and {webhook_secret}".to_owned()),
            ("webhook_secret", "whsec".to_owned()),
            ("site_url", "http://{slug}.example".to_owned()),
            ("slug", "{site_name}".to_owned()),
        ]);
        let env = t.render_env(&values);
        assert!(
            env.contains(&"SITE_NAME={site_token} and {webhook_secret}".to_owned()),
            "{env:?}"
        );
        assert!(env.contains(&"SITE_TOKEN=s3cret-token".to_owned()));
        assert!(env.contains(&"SITE_URL=http://{slug}.example".to_owned()));
        assert_eq!(
            fill(
                "{a}{b}{ {unknown} {a",
                &BTreeMap::from([("a", "{b}".to_owned()), ("b", "B".to_owned())])
            ),
            "{b}B{ {unknown} {a"
        );
    }

    #[test]
    fn setting_values_are_one_line_within_their_lengths() {
        let t = Template::builtin();
        let tagline = t.setting("SITE_TAGLINE").unwrap();
        assert_eq!(
            tagline.check("  Notes from the sea  "),
            Ok(Some("Notes from the sea".into()))
        );
        assert_eq!(tagline.check("   "), Ok(None));
        assert!(
            tagline
                .check("two\nlines")
                .unwrap_err()
                .contains("one line")
        );
        assert!(
            tagline
                .check(&"é".repeat(121))
                .unwrap_err()
                .contains("at most 120")
        );
        assert!(tagline.check(&"é".repeat(120)).is_ok());
        let password = t.setting("SITE_PASSWORD").unwrap();
        assert!(password.secret);
        assert!(password.check("short").unwrap_err().contains("at least 8"));
        assert_eq!(password.check(""), Ok(None));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_setting() {
        let bad = |change: fn(&mut Template)| {
            let mut t = Template::builtin();
            change(&mut t);
            validate(&[t]).unwrap_err()
        };
        assert!(bad(|t| t.settings[0].key = "site_tagline".into()).contains("settings[0].key"));
        assert!(bad(|t| t.settings[1].key = "PORT".into()).contains("env already"));
        assert!(bad(|t| t.settings[1].key = "SITE_TAGLINE".into()).contains("used twice"));
        assert!(bad(|t| t.settings[0].max_length = 0).contains("settings[0].max_length"));
        assert!(bad(|t| t.settings[0].min_length = 500).contains("settings[0].min_length"));
    }

    #[test]
    fn bad_templates_are_refused_naming_the_setting() {
        let mut t = Template::builtin();
        t.env.insert("X".into(), "{secret_key}".into());
        let error = validate(&[t]).unwrap_err();
        assert!(error.contains("templates[0].env.X"), "{error}");
        let mut t = Template::builtin();
        t.name = "Bad Name".into();
        assert!(validate(&[t]).unwrap_err().contains("templates[0].name"));
        assert!(validate(&[]).is_err());
        let t = Template::builtin();
        assert!(
            validate(&[t.clone(), t])
                .unwrap_err()
                .contains("used twice")
        );
    }
}
