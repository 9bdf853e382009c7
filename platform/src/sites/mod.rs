//! Sites: what customers create and act on. Every action here only records what the site
//! should be (its desired state and generation) and a pending deployment; the reconciler
//! (`provision`) makes it so and records each step.

pub mod domains;
pub mod editor;
pub mod settings;
pub mod states;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use states::{
    DeploymentReason, DeploymentStatus, DeploymentStep, DesiredState, SiteStatus, StepStatus,
};

use crate::Platform;
use crate::catalog::Limit;
use crate::kernel::secrets::random_token;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::organizations::lock_for_limits;
use crate::tenancy::{Action, Membership};

/// Names that belong to Slipway's own hosts or would confuse visitors.
pub const RESERVED_SLUGS: &[&str] = &[
    "www",
    "api",
    "admin",
    "app",
    "dashboard",
    "mail",
    "smtp",
    "imap",
    "pop",
    "ftp",
    "ns1",
    "ns2",
    "dns",
    "status",
    "billing",
    "support",
    "help",
    "docs",
    "blog",
    "static",
    "assets",
    "cdn",
    "slipway",
    "root",
    "postgres",
    "localhost",
];

/// A site's slug: its host name label (`<slug>.<base domain>`). 3-40 of `a-z 0-9 -`,
/// no hyphen first or last, not reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSlug(String);

impl SiteSlug {
    pub fn parse(raw: &str) -> Result<Self> {
        let slug = raw.trim();
        let invalid = |why: &str| Error::invalid("slug", why);
        if slug.len() < 3 || slug.len() > 40 {
            return Err(invalid("Use 3 to 40 characters."));
        }
        if !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "Use only lowercase letters a-z, digits and hyphens.",
            ));
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err(invalid("A slug cannot start or end with a hyphen."));
        }
        if RESERVED_SLUGS.contains(&slug) {
            return Err(invalid("This name is reserved. Choose another."));
        }
        Ok(Self(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A site's display name: 1-80 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteName(String);

impl SiteName {
    pub fn parse(raw: &str) -> Result<Self> {
        crate::kernel::text::display_name(raw, "name", 80, "Enter a name for your site.").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The secrets of a site, sealed with the master key; the site id and the secret's
/// name are the associated data, so a value moved to another row or column never opens.
pub(crate) fn seal_context(site_id: Uuid, what: &str) -> Vec<u8> {
    format!("site:{site_id}:{what}").into_bytes()
}

/// A new site's form, as typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewSite {
    pub name: String,
    pub slug: String,
    /// Empty: the default template.
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub template: String,
    pub desired_state: DesiredState,
    pub status: SiteStatus,
    pub status_reason: Option<String>,
    pub waiting_for: Option<String>,
    /// Why the site is suspended, in the customer's words; `None` when it is not.
    pub suspended: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Creates a site (desired state `running`) and its first deployment; returns at once.
/// The reconciler does the work.
pub async fn create(platform: &Platform, by: &Membership, form: &NewSite) -> Result<SiteSummary> {
    by.require(Action::ManageSites)?;
    let mut check = crate::kernel::error::FormCheck::default();
    let name = check.field(SiteName::parse(&form.name));
    let slug = check.field(SiteSlug::parse(&form.slug));
    let template = check.field(if form.template.trim().is_empty() {
        Ok(&platform.templates[0])
    } else {
        platform
            .template(form.template.trim())
            .ok_or_else(|| Error::invalid("template", "Choose one of the listed templates."))
    });
    let (name, slug, template) = check.finish(|| Some((name?, slug?, template?)))?;
    let key = platform.master_key.as_ref().ok_or_else(|| {
        Error::Conflict(
            "Sites cannot be created on this server yet: the operator has not configured a master key (provision.master_key).".to_owned(),
        )
    })?;

    let mut tx = platform.db.begin().await?;
    // The organization's row locked: an operator suspending it waits for this site, then
    // suspends it too; or suspended it first, and this is refused (before any plan limit).
    crate::tenancy::organizations::lock_for_limits(&mut tx, by.organization_id).await?;
    let suspended = sqlx::query_scalar!(
        "SELECT suspended_reason FROM organizations WHERE id = $1",
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(reason) = suspended {
        return Err(Error::Conflict(format!(
            "This organization is suspended by the operators of this service: {reason}. It can create no site until they resume it."
        )));
    }
    refuse_over_site_limit(platform, &mut tx, by).await?;

    let id = Uuid::new_v4();
    let sealed = |what: &str, value: &str| key.seal(&seal_context(id, what), value.as_bytes());
    let inserted = sqlx::query!(
        r#"INSERT INTO sites (id, organization_id, name, slug, template, created_by,
                              db_password_sealed, api_token_sealed, webhook_secret_sealed)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING created_at"#,
        id,
        by.organization_id,
        name.as_str(),
        slug.as_str(),
        template.name,
        by.user_id,
        sealed(
            "db_password",
            &crate::kernel::secrets::random_alphanumeric(40)
        ),
        sealed("api_token", &random_token()),
        sealed("webhook_secret", &random_token()),
    )
    .fetch_one(&mut *tx)
    .await;
    let created_at = match inserted {
        Ok(row) => row.created_at,
        Err(error) => {
            let error = Error::from(error);
            return Err(match error.constraint() {
                Some("sites_slug_key") => {
                    Error::invalid("slug", "This slug is taken. Choose another.")
                }
                _ => error,
            });
        }
    };
    insert_deployment(&mut tx, id, 1, DeploymentReason::Create, Some(by.user_id)).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("site.create", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("site:{}", slug.as_str()))
            .details(serde_json::json!({ "site_id": id, "template": template.name })),
    )
    .await?;
    tx.commit().await?;
    Ok(SiteSummary {
        id,
        name: name.as_str().to_owned(),
        url: platform.site_url(slug.as_str()),
        slug: slug.as_str().to_owned(),
        template: template.name.clone(),
        desired_state: DesiredState::Running,
        status: SiteStatus::Pending,
        status_reason: None,
        waiting_for: None,
        suspended: None,
        created_at,
    })
}

/// Refuses one more site over the plan's limit. The organization's row stays locked until
/// the caller's transaction ends, so competing creations count one after another.
async fn refuse_over_site_limit(
    platform: &Platform,
    tx: &mut sqlx::PgConnection,
    by: &Membership,
) -> Result<()> {
    let plan_id = lock_for_limits(&mut *tx, by.organization_id).await?;
    let sites = sqlx::query_scalar!(
        r#"SELECT count(*) AS "sites!" FROM sites
            WHERE organization_id = $1 AND status <> 'deleted' AND desired_state <> 'deleted'"#,
        by.organization_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (limit, plan_name) = match platform.plan(&plan_id) {
        Some(plan) => (plan.limits.sites, plan.name.clone()),
        None => (Limit::Count(0), plan_id.clone()),
    };
    let used = u32::try_from(sites).unwrap_or(u32::MAX);
    if limit.allows_one_more(used) {
        return Ok(());
    }
    let max = match limit {
        Limit::Count(n) => n,
        Limit::Unlimited => u32::MAX,
    };
    Err(Error::LimitReached(match max {
        0 => format!(
            "The {plan_name} plan has no hosted sites. Upgrade your plan under Billing to create one."
        ),
        _ => format!(
            "The {plan_name} plan allows {max} site{}. Upgrade your plan under Billing to create more.",
            if max == 1 { "" } else { "s" }
        ),
    }))
}

pub(crate) async fn insert_deployment(
    tx: &mut sqlx::PgConnection,
    site_id: Uuid,
    generation: i64,
    reason: DeploymentReason,
    requested_by: Option<Uuid>,
) -> Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO deployments (id, site_id, generation, reason, requested_by)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        site_id,
        generation,
        reason.as_str(),
        requested_by
    )
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// The organization's live sites, newest first; only `site_id` when it is given.
async fn live_sites(
    platform: &Platform,
    organization_id: Uuid,
    site_id: Option<Uuid>,
) -> Result<Vec<SiteSummary>> {
    let rows = sqlx::query!(
        "SELECT id, name, slug, template, desired_state, status, status_reason, waiting_for,
                suspended_reason, suspended_at, created_at
           FROM sites
          WHERE organization_id = $1 AND status <> 'deleted' AND ($2::uuid IS NULL OR id = $2)
          ORDER BY created_at DESC",
        organization_id,
        site_id
    )
    .fetch_all(&platform.db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(SiteSummary {
                id: r.id,
                url: platform.site_url(&r.slug),
                name: r.name,
                slug: r.slug,
                template: r.template,
                desired_state: DesiredState::stored(&r.desired_state)?,
                status: SiteStatus::stored(&r.status)?,
                status_reason: r.status_reason,
                waiting_for: r.waiting_for,
                suspended: r.suspended_at.map(|_| {
                    suspension_words(
                        r.suspended_reason
                            .as_deref()
                            .unwrap_or("no reason recorded"),
                    )
                }),
                created_at: r.created_at,
            })
        })
        .collect()
}

/// The organization's sites, newest first (deleted ones are gone).
pub async fn list(platform: &Platform, by: &Membership) -> Result<Vec<SiteSummary>> {
    by.require(Action::ViewSites)?;
    live_sites(platform, by.organization_id, None).await
}

/// One site of the caller's organization; another organization's site is `NotFound`.
pub async fn get(platform: &Platform, by: &Membership, site_id: Uuid) -> Result<SiteSummary> {
    by.require(Action::ViewSites)?;
    live_sites(platform, by.organization_id, Some(site_id))
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)
}

/// One recorded step of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: DeploymentStep,
    pub status: StepStatus,
    pub detail: Option<String>,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs.
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: Uuid,
    pub generation: i64,
    pub reason: DeploymentReason,
    pub status: DeploymentStatus,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub duration_ms: Option<i64>,
    pub steps: Vec<StepRecord>,
}

/// The site's deployments with their steps, newest first: the latest `limit`, or with
/// `before` (a deployment of this site) the `limit` before it. A `before` that is not one
/// of this site's deployments reads as nothing before it.
pub async fn deployments(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Deployment>> {
    by.require(Action::ViewSites)?;
    let rows = sqlx::query!(
        r#"SELECT d.id, d.generation, d.reason, d.status, d.error, d.created_at,
                  (EXTRACT(EPOCH FROM (d.finished_at - d.started_at)) * 1000)::bigint AS duration_ms
             FROM deployments d JOIN sites s ON s.id = d.site_id
            WHERE d.site_id = $1 AND s.organization_id = $2
              AND ($4::uuid IS NULL
                   OR (d.created_at, d.id) < (SELECT created_at, id FROM deployments
                                               WHERE id = $4 AND site_id = $1))
            ORDER BY d.created_at DESC, d.id DESC LIMIT $3"#,
        site_id,
        by.organization_id,
        limit,
        before
    )
    .fetch_all(&platform.db)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let steps = sqlx::query!(
        r#"SELECT deployment_id, step, status, detail, started_at,
                  (EXTRACT(EPOCH FROM (finished_at - started_at)) * 1000)::bigint AS duration_ms
             FROM deployment_steps WHERE deployment_id = ANY($1) ORDER BY id"#,
        &ids
    )
    .fetch_all(&platform.db)
    .await?;
    let steps = steps
        .into_iter()
        .map(|s| {
            Ok((
                s.deployment_id,
                StepRecord {
                    step: DeploymentStep::stored(&s.step)?,
                    status: StepStatus::stored(&s.status)?,
                    detail: s.detail,
                    started_at: s.started_at,
                    duration_ms: s.duration_ms,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|d| {
            Ok(Deployment {
                steps: steps
                    .iter()
                    .filter(|(deployment, _)| *deployment == d.id)
                    .map(|(_, step)| step.clone())
                    .collect(),
                id: d.id,
                generation: d.generation,
                reason: DeploymentReason::stored(&d.reason)?,
                status: DeploymentStatus::stored(&d.status)?,
                error: d.error,
                created_at: d.created_at,
                duration_ms: d.duration_ms,
            })
        })
        .collect()
}

/// What a site's owner uses to talk to the app itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// `Authorization: Bearer <token>` for the app's `/api/posts`.
    pub api_token: String,
    /// HMAC-SHA256 key of the app's `/api/sync-content` webhook.
    pub webhook_secret: String,
}

/// The site's API token and webhook secret, unsealed (admins and owners only).
pub async fn credentials(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
) -> Result<Credentials> {
    by.require(Action::ManageSites)?;
    let row = sqlx::query!(
        "SELECT api_token_sealed, webhook_secret_sealed FROM sites
          WHERE id = $1 AND organization_id = $2 AND status <> 'deleted'",
        site_id,
        by.organization_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let key = platform
        .master_key
        .as_ref()
        .ok_or_else(|| Error::Internal("no master key configured".to_owned()))?;
    let open = |what: &str, sealed: &[u8]| {
        key.open_string(&seal_context(site_id, what), sealed)
            .map_err(|e| Error::Internal(e.to_string()))
    };
    Ok(Credentials {
        api_token: open("api_token", &row.api_token_sealed)?,
        webhook_secret: open("webhook_secret", &row.webhook_secret_sealed)?,
    })
}

/// What a user can ask of an existing site besides deleting it ([`delete`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteAction {
    Restart,
    Stop,
    Start,
}

impl SiteAction {
    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "restart" => Ok(SiteAction::Restart),
            "stop" => Ok(SiteAction::Stop),
            "start" => Ok(SiteAction::Start),
            _ => Err(Error::invalid("action", "Unknown action.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SiteAction::Restart => "restart",
            SiteAction::Stop => "stop",
            SiteAction::Start => "start",
        }
    }

    fn reason(self) -> DeploymentReason {
        match self {
            SiteAction::Restart => DeploymentReason::Restart,
            SiteAction::Stop => DeploymentReason::Stop,
            SiteAction::Start => DeploymentReason::Start,
        }
    }
}

/// Records `action` for the site: a new generation with its desired state and a pending
/// deployment. Needs an editor.
pub async fn request(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    action: SiteAction,
) -> Result<()> {
    by.require(Action::DeploySite)?;
    let mut tx = platform.db.begin().await?;
    let site = lock_live_site(&mut tx, by, site_id).await?;
    let desired = match (action, site.desired_state) {
        (_, DesiredState::Deleted) => {
            return Err(Error::Conflict("This site is being deleted.".to_owned()));
        }
        (SiteAction::Restart, DesiredState::Stopped) => {
            return Err(Error::Conflict(
                "This site is stopped. Start it instead.".to_owned(),
            ));
        }
        (SiteAction::Restart | SiteAction::Start, _) => DesiredState::Running,
        (SiteAction::Stop, _) => DesiredState::Stopped,
    };
    change_desired_state(&mut tx, by, &site, desired, action.reason()).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the site with its container, volume, schema and role. Needs an admin, and the
/// site's slug typed again (`confirm`): a deletion cannot be undone.
pub async fn delete(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    confirm: &str,
) -> Result<()> {
    by.require(Action::ManageSites)?;
    let mut tx = platform.db.begin().await?;
    let site = lock_live_site(&mut tx, by, site_id).await?;
    if confirm.trim() != site.slug {
        return Err(Error::invalid(
            "confirm",
            format!(
                "Type {} to confirm that this site and its data go away.",
                site.slug
            ),
        ));
    }
    if site.desired_state == DesiredState::Deleted {
        return Err(Error::Conflict("This site is being deleted.".to_owned()));
    }
    change_desired_state(
        &mut tx,
        by,
        &site,
        DesiredState::Deleted,
        DeploymentReason::Delete,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Gives the site a new display name (admins and owners). Its slug, and so its address,
/// stays.
pub async fn rename(
    platform: &Platform,
    by: &Membership,
    site_id: Uuid,
    raw: &str,
) -> Result<SiteName> {
    by.require(Action::ManageSites)?;
    let name = SiteName::parse(raw)?;
    let mut tx = platform.db.begin().await?;
    let site = lock_live_site(&mut tx, by, site_id).await?;
    if site.desired_state == DesiredState::Deleted {
        return Err(Error::Conflict("This site is being deleted.".to_owned()));
    }
    let from = sqlx::query_scalar!(
        "UPDATE sites s SET name = $2 FROM sites old
          WHERE s.id = $1 AND old.id = s.id RETURNING old.name",
        site.id,
        name.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    if from != name.as_str() {
        audit::record(
            &mut *tx,
            audit::Entry::new("site.renamed", Actor::User(by.user_id))
                .organization(by.organization_id)
                .subject(format!("site:{}", site.slug))
                .details(
                    serde_json::json!({ "site_id": site.id, "from": from, "to": name.as_str() }),
                ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(name)
}

/// A live site of the caller's organization, locked for an action.
struct LockedSite {
    id: Uuid,
    slug: String,
    desired_state: DesiredState,
    status: SiteStatus,
}

async fn lock_live_site(
    tx: &mut sqlx::PgConnection,
    by: &Membership,
    site_id: Uuid,
) -> Result<LockedSite> {
    let site = sqlx::query!(
        "SELECT id, slug, desired_state, status FROM sites
          WHERE id = $1 AND organization_id = $2 AND status <> 'deleted' FOR NO KEY UPDATE",
        site_id,
        by.organization_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(LockedSite {
        id: site.id,
        slug: site.slug,
        desired_state: DesiredState::stored(&site.desired_state)?,
        status: SiteStatus::stored(&site.status)?,
    })
}

/// A new generation with `desired`, its pending deployment and the audit entry.
async fn change_desired_state(
    tx: &mut sqlx::PgConnection,
    by: &Membership,
    site: &LockedSite,
    desired: DesiredState,
    reason: DeploymentReason,
) -> Result<()> {
    let generation = sqlx::query_scalar!(
        "UPDATE sites SET desired_state = $2, generation = generation + 1, updated_at = now(),
                          failures = 0, next_attempt_at = now()
          WHERE id = $1 RETURNING generation",
        site.id,
        desired.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    insert_deployment(&mut *tx, site.id, generation, reason, Some(by.user_id)).await?;
    audit::record(
        &mut *tx,
        audit::Entry::new(reason.audit_action(), Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("site:{}", site.slug))
            .details(serde_json::json!({ "site_id": site.id, "status": site.status.as_str() })),
    )
    .await?;
    Ok(())
}

/// After an organization's plan changed: each of its live sites gets a new generation
/// (reason `plan`), and the reconciler applies the new limits to the running containers.
pub async fn apply_plan(platform: &Platform, organization_id: Uuid) -> Result<u64> {
    let mut tx = platform.db.begin().await?;
    let sites = sqlx::query!(
        "UPDATE sites SET generation = generation + 1, updated_at = now(), next_attempt_at = now()
          WHERE organization_id = $1 AND desired_state <> 'deleted' AND status <> 'deleted'
          RETURNING id, generation",
        organization_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for site in &sites {
        insert_deployment(
            &mut tx,
            site.id,
            site.generation,
            DeploymentReason::Plan,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(sites.len() as u64)
}

/// Asks for every live site of the organization to be deleted (billing: the grace period
/// after a cancellation is over). Returns their slugs.
pub(crate) async fn delete_all(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    reason: DeploymentReason,
) -> Result<Vec<String>> {
    let sites = sqlx::query!(
        "UPDATE sites SET desired_state = 'deleted', generation = generation + 1, updated_at = now(),
                          failures = 0, next_attempt_at = now()
          WHERE organization_id = $1 AND status <> 'deleted' AND desired_state <> 'deleted'
          RETURNING id, slug, generation",
        organization_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for site in &sites {
        insert_deployment(tx, site.id, site.generation, reason, None).await?;
        audit::record(
            &mut *tx,
            audit::Entry::new("site.delete", Actor::System)
                .organization(organization_id)
                .subject(format!("site:{}", site.slug))
                .details(serde_json::json!({ "site_id": site.id, "reason": reason.as_str() })),
        )
        .await?;
    }
    Ok(sites.into_iter().map(|s| s.slug).collect())
}

/// How an operator's suspension is recorded in `sites.suspended_reason` (billing's own start
/// with `billing:`; each side lifts only its own).
pub(crate) const OPERATOR_PREFIX: &str = "operator: ";

/// What a customer reads about their site's suspension, from its recorded reason.
pub fn suspension_words(recorded: &str) -> String {
    if let Some(reason) = recorded.strip_prefix(OPERATOR_PREFIX) {
        format!("Suspended by the operators of this service: {reason}")
    } else if let Some(reason) = recorded.strip_prefix("billing: ") {
        format!("Suspended by billing: {reason}. See the Billing page.")
    } else {
        // Older free-text notes are for operators, not customers.
        "Suspended by the operators of this service.".to_owned()
    }
}

/// Who suspends or resumes a site, and the reason the audit log keeps.
#[derive(Debug, Clone, Copy)]
pub struct SuspendedBy<'a> {
    pub actor: Actor,
    pub reason: &'a str,
}

/// Suspends a site: visitors get the suspended page (the proxy answers 503 with
/// `Retry-After`), its container and data are kept. `reason` is for operators and the audit
/// log, never shown to visitors. Returns whether the site was running and is now suspended.
pub async fn suspend(platform: &Platform, site_id: Uuid, reason: &str) -> Result<bool> {
    let by = SuspendedBy {
        actor: Actor::System,
        reason,
    };
    suspend_as(platform, site_id, reason, false, by).await
}

/// Lifts a suspension, whoever made it; the site serves again within a second. Returns
/// whether it was suspended.
pub async fn resume(platform: &Platform, site_id: Uuid) -> Result<bool> {
    let by = SuspendedBy {
        actor: Actor::System,
        reason: "",
    };
    resume_as(platform, site_id, Owner::Anyone, by).await
}

/// Whose suspensions a resumption (or a take-over) may touch, by the recorded reason's
/// prefix (`billing:` for billing's; operators' and older free-text notes otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Anyone,
    Billing,
    NotBilling,
}

impl Owner {
    /// (must start with, must not start with), '' for no condition.
    fn prefixes(self) -> (&'static str, &'static str) {
        match self {
            Owner::Anyone => ("", ""),
            Owner::Billing => (BILLING_PREFIX, ""),
            Owner::NotBilling => ("", BILLING_PREFIX),
        }
    }
}

/// How billing's suspensions are recorded (`billing: payment failed`, ...).
pub(crate) const BILLING_PREFIX: &str = "billing:";

/// Suspends the site with `recorded` as its `suspended_reason` (one atomic update: of
/// several at once, one does), audited as `by`; with `over_billing`, a suspension of
/// billing's becomes this one (so paying does not lift it). Whether this call suspended it.
pub(crate) async fn suspend_as(
    platform: &Platform,
    site_id: Uuid,
    recorded: &str,
    over_billing: bool,
    by: SuspendedBy<'_>,
) -> Result<bool> {
    let mut tx = platform.db.begin().await?;
    let site = sqlx::query!(
        "UPDATE sites SET suspended_at = coalesce(suspended_at, now()), suspended_reason = $2,
                updated_at = now()
          WHERE id = $1 AND status <> 'deleted'
            AND (suspended_at IS NULL
                 OR ($3 AND starts_with(coalesce(suspended_reason, ''), $4)))
          RETURNING organization_id, slug",
        site_id,
        recorded,
        over_billing,
        BILLING_PREFIX
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(site) = site else {
        return Ok(false);
    };
    audit_suspension(
        &mut tx,
        "site.suspend",
        site_id,
        site.organization_id,
        &site.slug,
        by,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Lifts a suspension of `owner`, audited as `by`. Whether this call lifted it.
pub(crate) async fn resume_as(
    platform: &Platform,
    site_id: Uuid,
    owner: Owner,
    by: SuspendedBy<'_>,
) -> Result<bool> {
    let (must, must_not) = owner.prefixes();
    let mut tx = platform.db.begin().await?;
    let site = sqlx::query!(
        "UPDATE sites SET suspended_at = NULL, suspended_reason = NULL,
                suspended_with_organization = false, updated_at = now()
          WHERE id = $1 AND suspended_at IS NOT NULL AND status <> 'deleted'
            AND ($2 = '' OR starts_with(coalesce(suspended_reason, ''), $2))
            AND ($3 = '' OR NOT starts_with(coalesce(suspended_reason, ''), $3))
          RETURNING organization_id, slug",
        site_id,
        must,
        must_not
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(site) = site else {
        return Ok(false);
    };
    audit_suspension(
        &mut tx,
        "site.resume",
        site_id,
        site.organization_id,
        &site.slug,
        by,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn audit_suspension(
    tx: &mut sqlx::PgConnection,
    action: &'static str,
    site_id: Uuid,
    organization_id: Uuid,
    slug: &str,
    by: SuspendedBy<'_>,
) -> Result<()> {
    let mut details = serde_json::json!({ "site_id": site_id });
    if !by.reason.is_empty() {
        details["reason"] = by.reason.into();
    }
    if matches!(by.actor, Actor::Operator(_)) {
        details["by_operator"] = true.into();
    }
    audit::record(
        &mut *tx,
        audit::Entry::new(action, by.actor)
            .organization(organization_id)
            .subject(format!("site:{slug}"))
            .details(details),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_read_who_suspended_and_why() {
        assert_eq!(
            suspension_words("operator: phishing page reported"),
            "Suspended by the operators of this service: phishing page reported"
        );
        assert_eq!(
            suspension_words(crate::billing::SUSPENDED_PAYMENT),
            "Suspended by billing: payment failed. See the Billing page."
        );
    }

    #[test]
    fn slugs_follow_the_rules() {
        for good in ["abc", "my-site", "a1-b2-c3", &"x".repeat(40)] {
            assert_eq!(SiteSlug::parse(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("ab", "3 to 40"),
            (&"x".repeat(41), "3 to 40"),
            ("-abc", "hyphen"),
            ("abc-", "hyphen"),
            ("My-Site", "lowercase"),
            ("a_b_c", "lowercase"),
            ("abc;rm -rf /", "lowercase"),
            ("../etc", "lowercase"),
            ("abc\ndef", "lowercase"),
            ("abc\0def", "lowercase"),
            ("www", "reserved"),
            ("admin", "reserved"),
            ("dashboard", "reserved"),
        ] {
            let error = SiteSlug::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(SiteName::parse("  My blog ").unwrap().as_str(), "My blog");
        assert!(SiteName::parse("   ").is_err());
        assert!(SiteName::parse(&"n".repeat(81)).is_err());
        assert!(SiteName::parse("a\0b").is_err());
        assert!(SiteName::parse("line\nbreak").is_err());
        // Shell and path characters are just text.
        assert_eq!(
            SiteName::parse("$(reboot); ../../etc").unwrap().as_str(),
            "$(reboot); ../../etc"
        );
    }
}
