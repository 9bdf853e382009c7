//! What exists only in development mode (`make dev`): a demo operator with an organization
//! on the catalog's largest plan, so a newcomer can create sites at once. Production mode
//! refuses it.

use uuid::Uuid;

use crate::Platform;
use crate::config::Mode;
use crate::identity::users::{NewPassword, hash_password};
use crate::kernel::secrets::random_alphanumeric;
use crate::kernel::{Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::organizations::{OrganizationName, create_in};

/// The demo operator's address.
pub const DEMO_EMAIL: &str = "demo@slipway.localhost";
const DEMO_NAME: &str = "Demo Operator";
const DEMO_ORGANIZATION: &str = "Demo Hosting";

/// The demo account, as the start-up message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub email: String,
    /// Only when it was created just now: it is printed once and never stored in clear.
    pub password: Option<String>,
    pub organization_id: Uuid,
    pub plan_name: String,
}

/// Creates the demo operator and organization unless they exist. Exactly one of several
/// concurrent calls creates them (the address is unique; only the call that inserted it
/// goes on).
pub async fn ensure_demo_account(platform: &Platform) -> Result<DemoAccount> {
    if platform.mode != Mode::Development {
        return Err(Error::Conflict(
            "The demo account exists only in development mode.".to_owned(),
        ));
    }
    // The largest plan: the catalog lists plans from the smallest up.
    let plan = platform
        .catalog
        .plans()
        .last()
        .ok_or_else(|| Error::Internal("the catalog has no plans".to_owned()))?;
    let password = random_alphanumeric(20);
    let hash = hash_password(&NewPassword::parse(&password)?).await?;
    let mut tx = platform.db.begin().await?;
    let created = sqlx::query_scalar!(
        "INSERT INTO users (email, name, password_hash, email_verified_at, is_operator)
         VALUES ($1, $2, $3, now(), true)
         ON CONFLICT ON CONSTRAINT users_email_key DO NOTHING RETURNING id",
        DEMO_EMAIL,
        DEMO_NAME,
        hash
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user_id) = created else {
        tx.rollback().await?;
        let existing = sqlx::query!(
            r#"SELECT m.organization_id, o.plan_id
                 FROM users u
                 JOIN organization_members m ON m.user_id = u.id
                 JOIN organizations o ON o.id = m.organization_id
                WHERE u.email = $1 ORDER BY m.created_at LIMIT 1"#,
            DEMO_EMAIL
        )
        .fetch_optional(&platform.db)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{DEMO_EMAIL} exists but has no organization")))?;
        return Ok(DemoAccount {
            email: DEMO_EMAIL.to_owned(),
            password: None,
            organization_id: existing.organization_id,
            plan_name: platform
                .plan(&existing.plan_id)
                .map_or(existing.plan_id.clone(), |p| p.name.clone()),
        });
    };
    let organization_id = create_in(
        &mut tx,
        &OrganizationName::parse(DEMO_ORGANIZATION)?,
        user_id,
        &plan.id,
    )
    .await?;
    audit::record(
        &mut *tx,
        audit::Entry::new("operator.granted", Actor::System)
            .subject_user(user_id)
            .organization(organization_id)
            .details(serde_json::json!({ "demo": true })),
    )
    .await?;
    tx.commit().await?;
    Ok(DemoAccount {
        email: DEMO_EMAIL.to_owned(),
        password: Some(password),
        organization_id,
        plan_name: plan.name.clone(),
    })
}
