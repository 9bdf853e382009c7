//! A site's environment settings: the variables its template lets the customer set
//! (`templates[].settings`, e.g. the built-in CMS's tagline and visitor password). Values
//! are checked against the template; plain ones are stored as text, secret ones sealed with
//! the master key and never shown again. A change gives the site a new generation with a
//! "Settings changed" deployment, and the reconciler recreates the container with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{DeploymentReason, DesiredState, insert_deployment, seal_context};
use crate::Platform;
use crate::catalog::templates::{Setting, Template};
use crate::kernel::error::FormCheck;
use crate::kernel::secrets::MasterKey;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::{Action, Membership};

/// A setting as the site page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingView {
    pub key: String,
    pub label: String,
    pub help: String,
    pub secret: bool,
    pub max_length: usize,
    /// The value in use; never a secret's.
    pub value: Option<String>,
    /// Whether a value is set (all that is shown of a secret).
    pub is_set: bool,
}

/// A stored value: plain, or sealed.
enum Stored {
    Plain(String),
    Sealed(Vec<u8>),
}

/// The settings the site's template offers, with what is set. Any member may read them.
pub async fn list(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<Vec<SettingView>> {
    let template_name: String = sqlx::query_scalar(
        "SELECT template FROM sites WHERE id = $1 AND organization_id = $2 AND status <> 'deleted'",
    )
    .bind(site_id)
    .bind(by.organization_id)
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let template = template_of(platform, &template_name)?;
    let stored = stored(&platform.db, site_id).await?;
    Ok(template
        .settings
        .iter()
        .map(|setting| {
            let value = stored.get(&setting.key);
            SettingView {
                key: setting.key.clone(),
                label: setting.label.clone(),
                help: setting.help.clone(),
                secret: setting.secret,
                max_length: setting.max_length,
                value: match value {
                    Some(Stored::Plain(plain)) if !setting.secret => Some(plain.clone()),
                    _ => None,
                },
                is_set: value.is_some(),
            }
        })
        .collect())
}

/// Saves the settings form (owners and admins). `values` holds what was typed for each
/// setting the form shows: an empty value unsets a plain setting and keeps a secret as it
/// is; `unset` names secrets to remove. Every refused value is answered at once, each at
/// its setting's key. Returns the keys that changed: none when the form changed nothing,
/// and then no deployment is made (so a form sent twice restarts the site once).
pub async fn save(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    values: &BTreeMap<String, String>,
    unset: &[String],
) -> Result<Vec<String>> {
    by.require(Action::ManageSites)?;
    let mut tx = platform.db.begin().await?;
    // The site's row lock makes each save one decision: two at once are applied in turn,
    // and the second sees the first's values.
    let site = sqlx::query(
        "SELECT slug, template, desired_state FROM sites
          WHERE id = $1 AND organization_id = $2 AND status <> 'deleted' FOR NO KEY UPDATE",
    )
    .bind(site_id)
    .bind(by.organization_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let slug: String = site.try_get("slug")?;
    let desired = DesiredState::stored(site.try_get("desired_state")?)?;
    if desired == DesiredState::Deleted {
        return Err(Error::Conflict("This site is being deleted.".to_owned()));
    }
    let template = template_of(platform, site.try_get("template")?)?;
    let wanted = check_form(template, values, unset)?;
    let stored = stored(&mut *tx, site_id).await?;
    let key = master_key(platform)?;
    let mut changed = Vec::new();
    for (setting, value) in wanted {
        let current = stored.get(&setting.key);
        let same = match (&value, current) {
            (None, None) => true,
            (Some(value), Some(Stored::Plain(plain))) => !setting.secret && plain == value,
            (Some(value), Some(Stored::Sealed(sealed))) => {
                setting.secret && open(key, site_id, &setting.key, sealed)? == *value
            }
            _ => false,
        };
        if same {
            continue;
        }
        match value {
            None => {
                sqlx::query("DELETE FROM site_settings WHERE site_id = $1 AND key = $2")
                    .bind(site_id)
                    .bind(&setting.key)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(value) => {
                let (plain, sealed) = if setting.secret {
                    let context = seal_context(site_id, &format!("setting:{}", setting.key));
                    (None, Some(key.seal(&context, value.as_bytes())))
                } else {
                    (Some(value), None)
                };
                sqlx::query(
                    "INSERT INTO site_settings (site_id, key, value, value_sealed, updated_by)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (site_id, key) DO UPDATE
                        SET value = EXCLUDED.value, value_sealed = EXCLUDED.value_sealed,
                            updated_by = EXCLUDED.updated_by, updated_at = now()",
                )
                .bind(site_id)
                .bind(&setting.key)
                .bind(plain)
                .bind(sealed)
                .bind(by.user_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        changed.push(setting.key.clone());
    }
    if !changed.is_empty() {
        let generation: i64 = sqlx::query_scalar(
            "UPDATE sites SET generation = generation + 1, updated_at = now(), failures = 0,
                              next_attempt_at = now()
              WHERE id = $1 RETURNING generation",
        )
        .bind(site_id)
        .fetch_one(&mut *tx)
        .await?;
        let reason = DeploymentReason::Settings;
        insert_deployment(&mut tx, site_id, generation, reason, Some(by.user_id)).await?;
        // The names of what changed, never a value (a secret's least of all).
        audit::record(
            &mut *tx,
            audit::Entry::new(reason.audit_action(), Actor::User(by.user_id))
                .organization(by.organization_id)
                .subject(format!("site:{slug}"))
                .details(serde_json::json!({ "site_id": site_id, "changed": changed })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Each setting the form changes, with its new value (`None`: unset), or every refusal.
fn check_form<'t>(
    template: &'t Template,
    values: &BTreeMap<String, String>,
    unset: &[String],
) -> Result<Vec<(&'t Setting, Option<String>)>> {
    let mut check = FormCheck::default();
    for key in values.keys().chain(unset) {
        if template.setting(key).is_none() {
            check.field::<()>(Err(Error::invalid(
                key.clone(),
                format!("This site's app has no setting {key}."),
            )));
        }
    }
    let mut wanted = Vec::new();
    for setting in &template.settings {
        if unset.contains(&setting.key) {
            wanted.push((setting, None));
            continue;
        }
        let Some(raw) = values.get(&setting.key) else {
            continue;
        };
        let checked = setting
            .check(raw)
            .map_err(|message| Error::invalid(setting.key.clone(), message));
        match check.field(checked) {
            // An empty secret field keeps the secret: it is never shown, so never refilled.
            Some(None) if setting.secret => {}
            Some(value) => wanted.push((setting, value)),
            None => {}
        }
    }
    check.finish(|| Some(wanted))
}

/// The site's settings as `KEY=value` entries for its container: those its template still
/// offers, secrets opened.
pub(crate) async fn environment(
    platform: &Platform,
    site_id: Uuid,
    template: &Template,
) -> Result<Vec<String>> {
    let stored = stored(&platform.db, site_id).await?;
    let mut env = Vec::new();
    for setting in &template.settings {
        let value = match stored.get(&setting.key) {
            None => continue,
            Some(Stored::Plain(plain)) => plain.clone(),
            Some(Stored::Sealed(sealed)) => {
                open(master_key(platform)?, site_id, &setting.key, sealed)?
            }
        };
        env.push(format!("{}={value}", setting.key));
    }
    Ok(env)
}

/// Whether a container's environment differs from `wanted` in any of the template's
/// settings (one set, changed or unset since it was made).
pub(crate) fn differ(container_env: &[String], template: &Template, wanted: &[String]) -> bool {
    template.settings.iter().any(|setting| {
        let prefix = format!("{}=", setting.key);
        let find = |env: &[String]| env.iter().find(|entry| entry.starts_with(&prefix)).cloned();
        find(container_env) != find(wanted)
    })
}

/// Forgets the settings of a site that is gone (its secrets with them).
pub(crate) async fn forget(tx: &mut sqlx::PgConnection, site_id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM site_settings WHERE site_id = $1")
        .bind(site_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn stored<'e>(
    db: impl sqlx::PgExecutor<'e>,
    site_id: Uuid,
) -> Result<BTreeMap<String, Stored>> {
    let rows = sqlx::query("SELECT key, value, value_sealed FROM site_settings WHERE site_id = $1")
        .bind(site_id)
        .fetch_all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let key: String = row.try_get("key")?;
            let value = match row.try_get::<Option<String>, _>("value")? {
                Some(plain) => Stored::Plain(plain),
                None => Stored::Sealed(row.try_get("value_sealed")?),
            };
            Ok((key, value))
        })
        .collect()
}

fn template_of<'p>(platform: &'p Platform, name: &str) -> Result<&'p Template> {
    platform
        .template(name)
        .ok_or_else(|| Error::Internal(format!("the site's template {name:?} is not configured")))
}

fn master_key(platform: &Platform) -> Result<&MasterKey> {
    platform
        .master_key
        .as_ref()
        .ok_or_else(|| Error::Internal("no master key configured".to_owned()))
}

fn open(key: &MasterKey, site_id: Uuid, setting: &str, sealed: &[u8]) -> Result<String> {
    key.open_string(
        &seal_context(site_id, &format!("setting:{setting}")),
        sealed,
    )
    .map_err(|error| Error::Internal(format!("setting {setting}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_differs_only_in_the_templates_settings() {
        let template = Template::builtin();
        let container = vec![
            "PATH=/bin".to_owned(),
            "SITE_NAME=Old name".to_owned(),
            "SITE_TAGLINE=Notes".to_owned(),
        ];
        let same = vec!["SITE_TAGLINE=Notes".to_owned()];
        assert!(!differ(&container, &template, &same));
        assert!(differ(
            &container,
            &template,
            &["SITE_TAGLINE=Other".to_owned()]
        ));
        // Unset since, or newly set.
        assert!(differ(&container, &template, &[]));
        assert!(differ(
            &container,
            &template,
            &[same[0].clone(), "SITE_PASSWORD=hunter22".to_owned()]
        ));
    }

    #[test]
    fn the_form_is_checked_whole() {
        let template = Template::builtin();
        let values = BTreeMap::from([
            ("SITE_TAGLINE".to_owned(), "line\nbreak".to_owned()),
            ("SITE_PASSWORD".to_owned(), "short".to_owned()),
        ]);
        match check_form(&template, &values, &[]) {
            Err(Error::InvalidFields(fields)) => {
                let keys: Vec<&str> = fields.iter().map(|(key, _)| key.as_ref()).collect();
                assert_eq!(keys, ["SITE_TAGLINE", "SITE_PASSWORD"]);
            }
            other => panic!("{other:?}"),
        }
        let unknown = BTreeMap::from([("HOME".to_owned(), "/root".to_owned())]);
        assert!(matches!(
            check_form(&template, &unknown, &[]),
            Err(Error::Invalid { field, .. }) if field == "HOME"
        ));
        // An empty secret field keeps the secret; an empty plain one unsets it.
        let values = BTreeMap::from([
            ("SITE_TAGLINE".to_owned(), " ".to_owned()),
            ("SITE_PASSWORD".to_owned(), String::new()),
        ]);
        let wanted = check_form(&template, &values, &[]).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(
            (wanted[0].0.key.as_str(), &wanted[0].1),
            ("SITE_TAGLINE", &None)
        );
    }
}
