//! The operators' side of the business: the people who run the installation act on any
//! organization's sites, each action with a reason, recorded in the audit log with the
//! operator as its actor and shown to the customer where it concerns them.
//!
//! Every entry point takes an [`Operator`], which only [`Operator::verify`] makes: the
//! user's operator flag is read from the database each time, so a flag taken away takes
//! effect at once.

use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Error, Result};
use crate::sites::{self, OPERATOR_PREFIX, Owner, SuspendedBy, suspension_words};
use crate::tenancy::audit::Actor;

/// A user checked to be a platform operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub user_id: Uuid,
    pub email: String,
}

impl Operator {
    /// The user, if they are an operator now; `Forbidden` otherwise (or if there is no such
    /// user).
    pub async fn verify(platform: &Platform, user_id: Uuid) -> Result<Self> {
        let row = sqlx::query!(
            "SELECT email, is_operator FROM users WHERE id = $1",
            user_id
        )
        .fetch_optional(&platform.db)
        .await?;
        match row {
            Some(row) if row.is_operator => Ok(Self {
                user_id,
                email: row.email,
            }),
            _ => Err(Error::Forbidden),
        }
    }

    /// This operator acting for `reason`, as the audit log records it.
    fn acting<'a>(&self, reason: &'a Reason) -> SuspendedBy<'a> {
        SuspendedBy {
            actor: Actor::User(self.user_id),
            reason: reason.as_str(),
        }
    }

    /// The operator with this email (the command line names its operator).
    pub async fn by_email(platform: &Platform, email: &str) -> Result<Self> {
        let user_id = sqlx::query_scalar!(
            "SELECT id FROM users WHERE email = $1",
            email.trim().to_lowercase()
        )
        .fetch_optional(&platform.db)
        .await?
        .ok_or(Error::Forbidden)?;
        Self::verify(platform, user_id).await
    }
}

/// Why an operator acts: required, and shown to the customer where it concerns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self> {
        let reason = raw.trim();
        let length = reason.chars().count();
        if !(3..=500).contains(&length) || reason.chars().any(char::is_control) {
            return Err(Error::invalid(
                "reason",
                "Say why, in a few words (3 to 500 characters, one line).",
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A live site of any organization, by slug.
pub async fn site_by_slug(platform: &Platform, _by: &Operator, slug: &str) -> Result<Uuid> {
    sqlx::query_scalar!(
        "SELECT id FROM sites WHERE slug = $1 AND status <> 'deleted'",
        slug.trim()
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)
}

/// Suspends any organization's site: visitors get the suspended page (503), its container
/// and data are kept, and its members see `reason` on the site's page. A suspension of
/// billing's becomes the operator's (paying does not lift it). One atomic update: of
/// operators suspending at once, one does; the others are told it already is.
pub async fn suspend_site(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let recorded = format!("{OPERATOR_PREFIX}{}", reason.as_str());
    if !sites::suspend_as(platform, site_id, &recorded, true, by.acting(reason)).await? {
        return Err(refusal(platform, site_id, "suspended").await?);
    }
    tracing::info!(site = %site_id, operator = %by.email, "site suspended by an operator");
    Ok(())
}

/// Lifts a suspension that is not billing's (billing lifts its own when the organization
/// pays), then has billing judge the organization again: a site of an organization that
/// does not pay is suspended again, by billing.
pub async fn resume_site(
    platform: &Platform,
    by: &Operator,
    site_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    if !sites::resume_as(platform, site_id, Owner::NotBilling, by.acting(reason)).await? {
        return Err(refusal(platform, site_id, "resumed").await?);
    }
    tracing::info!(site = %site_id, operator = %by.email, "site resumed by an operator");
    let organization_id =
        sqlx::query_scalar!("SELECT organization_id FROM sites WHERE id = $1", site_id)
            .fetch_one(&platform.db)
            .await?;
    crate::billing::dunning::enforce(platform, organization_id).await?;
    Ok(())
}

/// Why a suspension or resumption changed nothing, read after the fact.
async fn refusal(platform: &Platform, site_id: Uuid, wanted: &str) -> Result<Error> {
    let site = sqlx::query!(
        "SELECT status, suspended_reason FROM sites WHERE id = $1",
        site_id
    )
    .fetch_optional(&platform.db)
    .await?;
    Ok(match site {
        None => Error::NotFound,
        Some(site) if site.status == "deleted" => Error::NotFound,
        Some(site) => match (wanted, site.suspended_reason) {
            ("suspended", Some(reason)) => Error::invalid(
                "site",
                format!(
                    "This site is already suspended ({}).",
                    suspension_words(&reason)
                ),
            ),
            (_, Some(reason)) => Error::invalid(
                "site",
                format!(
                    "Only billing lifts this suspension ({}): it ends when the organization pays.",
                    suspension_words(&reason)
                ),
            ),
            _ => Error::invalid("site", "This site is not suspended."),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_a_few_words_on_one_line() {
        assert_eq!(
            Reason::parse("  abuse report 42 ").unwrap().as_str(),
            "abuse report 42"
        );
        for bad in ["", "  ", "no", "two\nlines", &"x".repeat(501)] {
            assert!(Reason::parse(bad).is_err(), "{bad:?}");
        }
    }
}
