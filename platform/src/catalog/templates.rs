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
        }
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
