//! Server functions for accounts, organizations, team, API keys and the audit log, and the
//! views they return. Each is thin: session from context, one `platform` call, errors
//! mapped to [`AppError`]. Endpoints are named so that tests (and curious users) can find
//! them under `/api/...`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::{
    clear_cookie, client_ip, current_session, require_membership, require_session, sign_in_as,
};
#[cfg(feature = "ssr")]
use crate::state::app_state;

/// An organization the user can switch to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationChoice {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// What the UI may offer the user in the organization they work in. The server checks
/// again on every call; this only hides what would be refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub manage_team: bool,
    pub manage_api_keys: bool,
    pub view_audit_log: bool,
}

/// The signed-in user, for the dashboard frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub is_operator: bool,
    pub organizations: Vec<OrganizationChoice>,
    pub active: Option<OrganizationChoice>,
    pub permissions: Permissions,
}

#[cfg(feature = "ssr")]
fn permissions(role: platform::tenancy::Role) -> Permissions {
    use platform::tenancy::{Action, authorize};
    Permissions {
        manage_team: authorize(role, Action::InviteMember),
        manage_api_keys: authorize(role, Action::ManageApiKeys),
        view_audit_log: authorize(role, Action::ViewAuditLog),
    }
}

/// The signed-in user, or `None`.
#[server(endpoint = "account/me")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    let state = app_state()?;
    let Some(session) = current_session(&state).await? else {
        return Ok(None);
    };
    let organizations =
        platform::tenancy::organizations::list_for_user(&state.platform, session.user_id).await?;
    let active = session
        .active_organization_id
        .and_then(|id| organizations.iter().find(|org| org.id == id))
        .or_else(|| organizations.first());
    let choice = |org: &platform::tenancy::organizations::OrganizationSummary| OrganizationChoice {
        id: org.id.to_string(),
        name: org.name.clone(),
        role: org.role.to_string(),
    };
    Ok(Some(Me {
        name: session.name,
        email: session.email,
        email_verified: session.email_verified,
        is_operator: session.is_operator,
        active: active.map(choice),
        permissions: active.map(|org| permissions(org.role)).unwrap_or_default(),
        organizations: organizations.iter().map(choice).collect(),
    }))
}

#[server(endpoint = "account/sign-up")]
pub async fn sign_up(
    name: String,
    email: String,
    password: String,
    organization: String,
) -> Result<(), AppError> {
    use platform::identity::signup;
    use platform::identity::users::{NewPassword, PersonName};
    use platform::kernel::Email;
    use platform::tenancy::organizations::OrganizationName;
    let state = app_state()?;
    let mut check = platform::kernel::error::FormCheck::default();
    let name = check.field(PersonName::parse(&name));
    let email = check.field(Email::parse(&email));
    let password = check.field(NewPassword::parse(&password));
    let organization = check.field(OrganizationName::parse(&organization));
    let input = check.finish(|| {
        Some(signup::SignUp {
            name: name?,
            email: email?,
            password: password?,
            organization: organization?,
        })
    })?;
    let signed_up = signup::sign_up(&state.platform, input, client_ip()).await?;
    sign_in_as(&state, signed_up.user_id).await?;
    leptos_axum::redirect("/dashboard");
    Ok(())
}

#[server(endpoint = "account/sign-in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let state = app_state()?;
    let user_id =
        platform::identity::sessions::sign_in(&state.platform, &email, &password, client_ip())
            .await?;
    sign_in_as(&state, user_id).await?;
    leptos_axum::redirect("/dashboard");
    Ok(())
}

#[server(endpoint = "account/sign-out")]
pub async fn sign_out() -> Result<(), AppError> {
    let state = app_state()?;
    if let Some(token) = crate::session::session_token() {
        platform::identity::sessions::end_session(&state.platform, &token).await?;
    }
    clear_cookie()?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(endpoint = "account/sign-out-everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    platform::identity::sessions::end_all_sessions(&state.platform, session.user_id, client_ip())
        .await?;
    clear_cookie()?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(endpoint = "account/verify-email")]
pub async fn verify_email(token: String) -> Result<(), AppError> {
    let state = app_state()?;
    platform::identity::tokens::verify_email(&state.platform, &token).await?;
    leptos_axum::redirect("/dashboard");
    Ok(())
}

#[server(endpoint = "account/resend-verification")]
pub async fn resend_verification() -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    platform::identity::tokens::resend_verification(&state.platform, session.user_id).await?;
    Ok(())
}

#[server(endpoint = "account/request-reset")]
pub async fn request_password_reset(email: String) -> Result<(), AppError> {
    let state = app_state()?;
    // The same answer whether or not the address has an account.
    platform::identity::tokens::request_password_reset(&state.platform, &email, client_ip())
        .await?;
    Ok(())
}

#[server(endpoint = "account/reset-password")]
pub async fn reset_password(token: String, password: String) -> Result<(), AppError> {
    let state = app_state()?;
    let password = platform::identity::users::NewPassword::parse(&password)?;
    let user_id =
        platform::identity::tokens::reset_password(&state.platform, &token, &password, client_ip())
            .await?;
    sign_in_as(&state, user_id).await?;
    leptos_axum::redirect("/dashboard");
    Ok(())
}

#[cfg(feature = "ssr")]
fn parse_id(raw: &str, field: &str) -> Result<uuid::Uuid, AppError> {
    raw.parse().map_err(|_| AppError::Invalid {
        field: field.to_owned(),
        message: "This identifier is not valid.".into(),
    })
}

#[server(endpoint = "organizations/switch")]
pub async fn switch_organization(organization_id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    let organization_id = parse_id(&organization_id, "organization_id")?;
    let token = crate::session::session_token().ok_or(AppError::SignInRequired)?;
    platform::identity::sessions::switch_organization(
        &state.platform,
        &token,
        session.user_id,
        organization_id,
    )
    .await?;
    // The query makes the URL new, so the dashboard reloads its data for this organization.
    leptos_axum::redirect(&format!("/dashboard?organization={organization_id}"));
    Ok(())
}

#[server(endpoint = "organizations/create")]
pub async fn create_organization(name: String) -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    let name = platform::tenancy::organizations::OrganizationName::parse(&name)?;
    let id = platform::tenancy::organizations::create(
        &state.platform,
        session.user_id,
        &name,
        client_ip(),
    )
    .await?;
    let token = crate::session::session_token().ok_or(AppError::SignInRequired)?;
    platform::identity::sessions::switch_organization(&state.platform, &token, session.user_id, id)
        .await?;
    leptos_axum::redirect(&format!("/dashboard/settings?organization={id}"));
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub is_me: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
    /// Whether this member may revoke and resend it (owners and admins, for roles they may
    /// grant).
    pub can_manage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    pub organization: String,
    pub my_role: String,
    pub can_manage: bool,
    /// Roles this member may grant (never above their own).
    pub grantable_roles: Vec<String>,
    pub members: Vec<MemberView>,
    pub invitations: Vec<InvitationView>,
    /// Not the organization's only owner (who cannot leave it).
    pub can_leave: bool,
    /// An owner, who may hand ownership to another member.
    pub can_transfer: bool,
}

#[server(endpoint = "team/view")]
pub async fn team() -> Result<TeamView, AppError> {
    use platform::tenancy;
    use platform::tenancy::Role;
    use platform::tenancy::members;
    use platform::tenancy::organizations;
    let state = app_state()?;
    let (session, me) = require_membership(&state).await?;
    let members = members::members(&state.platform, &me).await?;
    let invitations = members::pending_invitations(&state.platform, &me).await?;
    let overview = organizations::overview(&state.platform, me.organization_id).await?;
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let can_leave = me.role != Role::Owner || owners > 1;
    Ok(TeamView {
        can_leave,
        can_transfer: tenancy::authorize(me.role, tenancy::Action::TransferOwnership),
        organization: overview.name,
        my_role: me.role.to_string(),
        can_manage: permissions(me.role).manage_team,
        grantable_roles: Role::ALL
            .into_iter()
            .filter(|role| tenancy::may_grant(me.role, *role))
            .map(|role| role.to_string())
            .collect(),
        members: members
            .into_iter()
            .map(|member| MemberView {
                is_me: member.user_id == session.user_id,
                user_id: member.user_id.to_string(),
                name: member.name,
                email: member.email,
                role: member.role.to_string(),
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|invitation| InvitationView {
                id: invitation.id.to_string(),
                can_manage: tenancy::may_grant(me.role, invitation.role),
                email: invitation.email,
                role: invitation.role.to_string(),
                expires: invitation.expires_at.format("%Y-%m-%d").to_string(),
            })
            .collect(),
    })
}

#[server(endpoint = "team/invite")]
pub async fn invite_member(email: String, role: String) -> Result<String, AppError> {
    use platform::tenancy::Role;
    use platform::tenancy::members;
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let email = platform::kernel::Email::parse(&email)?;
    let role = Role::parse(&role)?;
    members::invite(&state.platform, &me, &email, role, client_ip()).await?;
    Ok(email.to_string())
}

#[server(endpoint = "team/invitations/revoke")]
pub async fn revoke_invitation(invitation_id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let invitation_id = parse_id(&invitation_id, "invitation_id")?;
    platform::tenancy::members::revoke_invitation(&state.platform, &me, invitation_id, client_ip())
        .await?;
    Ok(())
}

/// Sends the invitation again (a new link; the old one stops working). Returns the address.
#[server(endpoint = "team/invitations/resend")]
pub async fn resend_invitation(invitation_id: String) -> Result<String, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let invitation_id = parse_id(&invitation_id, "invitation_id")?;
    let (invitation, _) = platform::tenancy::members::resend_invitation(
        &state.platform,
        &me,
        invitation_id,
        client_ip(),
    )
    .await?;
    Ok(invitation.email)
}

#[server(endpoint = "team/change-role")]
pub async fn change_member_role(user_id: String, role: String) -> Result<(), AppError> {
    use platform::tenancy::Role;
    use platform::tenancy::members;
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let user_id = parse_id(&user_id, "user_id")?;
    members::change_role(
        &state.platform,
        &me,
        user_id,
        Role::parse(&role)?,
        client_ip(),
    )
    .await?;
    Ok(())
}

#[server(endpoint = "team/remove")]
pub async fn remove_member(user_id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let user_id = parse_id(&user_id, "user_id")?;
    platform::tenancy::members::remove_member(&state.platform, &me, user_id, client_ip()).await?;
    Ok(())
}

/// Hands the caller's ownership to another member: they become an owner, the caller an
/// admin.
#[server(endpoint = "team/transfer-ownership")]
pub async fn transfer_ownership(user_id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let user_id = parse_id(&user_id, "member")?;
    platform::tenancy::members::transfer_ownership(&state.platform, &me, user_id, client_ip())
        .await?;
    Ok(())
}

#[server(endpoint = "team/leave")]
pub async fn leave_organization() -> Result<(), AppError> {
    let state = app_state()?;
    let (session, me) = require_membership(&state).await?;
    platform::tenancy::members::remove_member(&state.platform, &me, session.user_id, client_ip())
        .await?;
    leptos_axum::redirect(&format!("/dashboard?left={}", me.organization_id));
    Ok(())
}

/// Where an invitation link leads, for someone not signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreviewView {
    pub organization: String,
    pub email: String,
    pub role: String,
    pub account_exists: bool,
}

#[server(endpoint = "invitations/preview")]
pub async fn invitation_preview(token: String) -> Result<InvitationPreviewView, AppError> {
    let state = app_state()?;
    let preview = platform::tenancy::members::preview_invitation(&state.platform, &token).await?;
    Ok(InvitationPreviewView {
        organization: preview.organization,
        email: preview.email,
        role: preview.role.to_string(),
        account_exists: preview.account_exists,
    })
}

/// Someone invited without an account: creates it with the invited address, joins the
/// organization, signs in, and lands in it (no organization of their own is asked for).
#[server(endpoint = "invitations/sign-up")]
pub async fn sign_up_invited(
    #[server(default)] token: String,
    #[server(default)] name: String,
    #[server(default)] password: String,
) -> Result<(), AppError> {
    use platform::identity::users::{NewPassword, PersonName};
    let state = app_state()?;
    let mut check = platform::kernel::error::FormCheck::default();
    let name = check.field(PersonName::parse(&name));
    let password = check.field(NewPassword::parse(&password));
    let (name, password) = check.finish(|| Some((name?, password?)))?;
    let signed_up = platform::identity::signup::sign_up_invited(
        &state.platform,
        &token,
        name,
        password,
        client_ip(),
    )
    .await?;
    sign_in_as(&state, signed_up.user_id).await?;
    leptos_axum::redirect(&format!(
        "/dashboard?organization={}",
        signed_up.organization_id
    ));
    Ok(())
}

#[server(endpoint = "invitations/accept")]
pub async fn accept_invitation(token: String) -> Result<(), AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    let organization_id = platform::tenancy::members::accept_invitation(
        &state.platform,
        &token,
        session.user_id,
        client_ip(),
    )
    .await?;
    let cookie = crate::session::session_token().ok_or(AppError::SignInRequired)?;
    platform::identity::sessions::switch_organization(
        &state.platform,
        &cookie,
        session.user_id,
        organization_id,
    )
    .await?;
    leptos_axum::redirect(&format!("/dashboard/team?organization={organization_id}"));
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub at: String,
    /// What happened, in plain words.
    pub event: String,
    /// The action's code, for operators only (customers read `event`).
    pub action: Option<String>,
    pub actor: String,
    pub subject: String,
    pub ip: String,
    /// Why, where the actor gave a reason.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub member_count: i64,
    pub my_role: String,
    /// Admins and owners may rename the organization.
    pub can_rename: bool,
    /// Owners may delete it.
    pub can_delete: bool,
    /// `None` when the role may not manage keys.
    pub api_keys: Option<Vec<ApiKeyView>>,
    /// `None` when the role may not read the audit log.
    pub audit_log: Option<Vec<AuditView>>,
    /// A key created by a plain form post (no JavaScript), shown once on this render.
    pub new_key: Option<String>,
}

/// An audit log entry as the audit tables show it.
#[cfg(feature = "ssr")]
pub(crate) fn audit_view(
    line: platform::tenancy::audit::LogLine,
    reader: platform::tenancy::audit::Reader,
) -> AuditView {
    use platform::tenancy::audit::Reader;
    AuditView {
        at: line.at.format("%Y-%m-%d %H:%M UTC").to_string(),
        event: line.event,
        action: (reader == Reader::Operator).then_some(line.action),
        // Nobody signed in acted: Slipway itself (billing, the reconciler), or a visitor.
        actor: line.actor.unwrap_or_else(|| "Slipway".into()),
        subject: line.subject.unwrap_or_default(),
        ip: line.ip.unwrap_or_default(),
        reason: line.reason.unwrap_or_default(),
    }
}

/// Hands a key created without JavaScript to the settings page it redirects to.
#[cfg(feature = "ssr")]
const NEW_KEY_COOKIE: &str = "slipway_new_key";
#[cfg(feature = "ssr")]
const SETTINGS_PATH: &str = "/dashboard/settings";

#[server(endpoint = "settings/view")]
pub async fn settings() -> Result<SettingsView, AppError> {
    use platform::tenancy::{api_keys, audit, organizations};
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let overview = organizations::overview(&state.platform, me.organization_id).await?;
    let allowed = permissions(me.role);
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let api_keys = if allowed.manage_api_keys {
        Some(
            api_keys::list(&state.platform, &me)
                .await?
                .into_iter()
                .map(|key| ApiKeyView {
                    id: key.id.to_string(),
                    name: key.name,
                    prefix: key.prefix,
                    scopes: key
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    created: time(key.created_at),
                    last_used: key.last_used_at.map(time),
                    revoked: key.revoked_at.is_some(),
                })
                .collect(),
        )
    } else {
        None
    };
    let audit_log = if allowed.view_audit_log {
        Some(
            audit::recent(&state.platform, &me, 100)
                .await?
                .into_iter()
                .map(|line| audit_view(line, platform::tenancy::audit::Reader::Customer))
                .collect(),
        )
    } else {
        None
    };
    // Shown once: the cookie is removed by this very response.
    let new_key =
        crate::session::cookie_value(NEW_KEY_COOKIE).filter(|key| key.starts_with("sk_live_"));
    if new_key.is_some() {
        crate::session::set_page_cookie(NEW_KEY_COOKIE, "", SETTINGS_PATH, 0)?;
    }
    Ok(SettingsView {
        new_key,
        name: overview.name,
        slug: overview.slug,
        plan: overview.plan_name,
        member_count: overview.member_count,
        my_role: me.role.to_string(),
        can_rename: platform::tenancy::authorize(
            me.role,
            platform::tenancy::Action::RenameOrganization,
        ),
        can_delete: platform::tenancy::authorize(
            me.role,
            platform::tenancy::Action::DeleteOrganization,
        ),
        api_keys,
        audit_log,
    })
}

/// Gives the organization a new name; its slug stays.
#[server(endpoint = "settings/rename")]
pub async fn rename_organization(name: String) -> Result<String, AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let name =
        platform::tenancy::organizations::rename(&state.platform, &me, &name, client_ip()).await?;
    // A new URL each time: the frame (the organization switcher) and the page reload with
    // the new name.
    leptos_axum::redirect(&format!(
        "/dashboard/settings?renamed={}",
        chrono::Utc::now().timestamp_millis()
    ));
    Ok(name.as_str().to_owned())
}

/// Deletes the organization (owners; `confirm` is its slug). Its members land on their
/// next organization (or on creating one).
#[server(endpoint = "settings/delete")]
pub async fn delete_organization(#[server(default)] confirm: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    platform::deletion::delete_organization(&state.platform, &me, &confirm, client_ip()).await?;
    leptos_axum::redirect("/dashboard?organization_deleted=1");
    Ok(())
}

/// Creates a key and returns it in full: the only time it is shown.
#[server(endpoint = "settings/api-keys/create")]
pub async fn create_api_key(
    name: String,
    read: Option<String>,
    write: Option<String>,
) -> Result<String, AppError> {
    use platform::tenancy::api_keys::{self, Scope};
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let mut scopes = Vec::new();
    if read.is_some() {
        scopes.push(Scope::Read);
    }
    if write.is_some() {
        scopes.push(Scope::Write);
    }
    let (_, secret) = api_keys::create(&state.platform, &me, &name, &scopes, client_ip()).await?;
    if crate::request::is_plain_form_post() {
        // The answer is a redirect back to the page: the page shows the key from here.
        crate::session::set_page_cookie(NEW_KEY_COOKIE, &secret, SETTINGS_PATH, 120)?;
    }
    Ok(secret)
}

#[server(endpoint = "settings/api-keys/revoke")]
pub async fn revoke_api_key(key_id: String) -> Result<(), AppError> {
    let state = app_state()?;
    let (_, me) = require_membership(&state).await?;
    let key_id = parse_id(&key_id, "key_id")?;
    platform::tenancy::api_keys::revoke(&state.platform, &me, key_id, client_ip()).await?;
    Ok(())
}

/// Succeeds for platform operators only.
#[server(endpoint = "admin/check")]
pub async fn operator_check() -> Result<String, AppError> {
    let state = app_state()?;
    let session = require_session(&state).await?;
    if session.is_operator {
        Ok(session.email)
    } else {
        crate::request::set_status(axum::http::StatusCode::FORBIDDEN);
        Err(AppError::Forbidden(
            "This area is for platform operators.".into(),
        ))
    }
}
