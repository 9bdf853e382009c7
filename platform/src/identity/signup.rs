//! Sign-up: a user, their first organization (as its owner) and a verification mail, all or
//! nothing.

use std::net::IpAddr;

use uuid::Uuid;

use super::tokens::send_verification_in;
use super::users::{NewPassword, PersonName, hash_password};
use crate::Platform;
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::organizations::{self, OrganizationName};

/// What sign-up creates.
#[derive(Debug, Clone)]
pub struct SignUp {
    pub email: Email,
    pub name: PersonName,
    pub password: NewPassword,
    pub organization: OrganizationName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedUp {
    pub user_id: Uuid,
    pub organization_id: Uuid,
}

/// Someone invited who has no account yet: creates it with the invited address (confirmed:
/// they followed the mailed link), and joins the inviting organization with the invited
/// role, with no organization of their own. All or nothing.
#[tracing::instrument(skip_all)]
pub async fn sign_up_invited(
    platform: &Platform,
    token: &str,
    name: PersonName,
    password: NewPassword,
    ip: Option<IpAddr>,
) -> Result<SignedUp> {
    let preview = crate::tenancy::members::preview_invitation(platform, token).await?;
    let email = Email::parse(&preview.email)?;
    let password_hash = hash_password(&password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = sqlx::query_scalar!(
        "INSERT INTO users (email, name, password_hash, email_verified_at)
         VALUES ($1, $2, $3, now()) RETURNING id",
        email.as_str(),
        name.as_str(),
        password_hash,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| match e.constraint() {
        Some("users_email_key") => Error::Conflict(format!(
            "An account with {email} exists: sign in to accept the invitation."
        )),
        _ => e,
    })?;
    // Checked again under the invitation's lock: used, withdrawn or expired meanwhile, or its
    // inviter no longer allowed to grant the role, and nothing is created.
    let organization_id = crate::tenancy::members::accept_in(&mut tx, token, user_id, ip).await?;
    record_sign_up(&mut tx, user_id, organization_id, ip).await?;
    tx.commit().await?;
    Ok(SignedUp {
        user_id,
        organization_id,
    })
}

async fn record_sign_up(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    ip: Option<IpAddr>,
) -> Result<()> {
    audit::record(
        &mut *tx,
        audit::Entry::new("user.signed_up", Actor::User(user_id))
            .organization(organization_id)
            .ip(ip),
    )
    .await
}

/// Creates the user, their first organization (as its owner), and mails a verification
/// link. All or nothing.
#[tracing::instrument(skip_all)]
pub async fn sign_up(platform: &Platform, input: SignUp, ip: Option<IpAddr>) -> Result<SignedUp> {
    let password_hash = hash_password(&input.password).await?;
    let mut tx = platform.db.begin().await?;
    let user_id = sqlx::query_scalar!(
        "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
        input.email.as_str(),
        input.name.as_str(),
        password_hash,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| match e.constraint() {
        Some("users_email_key") => Error::EmailTaken,
        _ => e,
    })?;
    let organization_id = organizations::create_in(
        &mut tx,
        &input.organization,
        user_id,
        platform.default_plan(),
    )
    .await?;
    record_sign_up(&mut tx, user_id, organization_id, ip).await?;
    send_verification_in(&mut tx, platform, user_id, &input.email).await?;
    tx.commit().await?;
    Ok(SignedUp {
        user_id,
        organization_id,
    })
}
