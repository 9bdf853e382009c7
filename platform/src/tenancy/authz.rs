//! The authorization vocabulary: roles, actions, the one permission function that decides
//! every action, and a member's checked membership.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Platform;
use crate::kernel::{Error, Result};

/// A member's role, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            _ => Err(Error::invalid(
                "role",
                "Choose one of owner, admin, editor or viewer.",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a member may try to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewOrganization,
    ViewMembers,
    ViewSites,
    /// Read a site's container output (it may carry what the app prints about its users).
    ViewLogs,
    EditSiteContent,
    DeploySite,
    ManageSites,
    InviteMember,
    ChangeRole,
    RemoveMember,
    ManageApiKeys,
    ViewAuditLog,
    ManageBilling,
    /// Change the organization's display name.
    RenameOrganization,
    /// Hand the owner's role to another member (the owner becomes an admin).
    TransferOwnership,
    DeleteOrganization,
}

impl Action {
    pub const ALL: [Action; 16] = [
        Action::ViewOrganization,
        Action::ViewMembers,
        Action::ViewSites,
        Action::ViewLogs,
        Action::EditSiteContent,
        Action::DeploySite,
        Action::ManageSites,
        Action::InviteMember,
        Action::ChangeRole,
        Action::RemoveMember,
        Action::ManageApiKeys,
        Action::ViewAuditLog,
        Action::ManageBilling,
        Action::RenameOrganization,
        Action::TransferOwnership,
        Action::DeleteOrganization,
    ];
}

/// The one permission function: may a member with `role` do `action`?
///
/// viewer: read-only (not logs). editor: + logs, site content and deploys. admin: + sites, team, API keys,
/// audit log, the organization's name. owner: + billing, handing on ownership and deleting the
/// organization.
pub fn authorize(role: Role, action: Action) -> bool {
    let least = match action {
        Action::ViewOrganization | Action::ViewMembers | Action::ViewSites => Role::Viewer,
        Action::ViewLogs | Action::EditSiteContent | Action::DeploySite => Role::Editor,
        Action::ManageSites
        | Action::InviteMember
        | Action::ChangeRole
        | Action::RemoveMember
        | Action::ManageApiKeys
        | Action::ViewAuditLog
        | Action::RenameOrganization => Role::Admin,
        Action::ManageBilling | Action::TransferOwnership | Action::DeleteOrganization => {
            Role::Owner
        }
    };
    role >= least
}

/// Whether `actor` may give someone the role `granted`: never above their own, so only
/// owners make owners.
pub fn may_grant(actor: Role, granted: Role) -> bool {
    authorize(actor, Action::ChangeRole) && granted <= actor
}

/// Who reads a page about an organization: its customers get plain words without the
/// platform's internals (role names, container ids, bookkeeping events); operators get
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Customer,
    Operator,
}

/// The caller's membership, checked: the only way to act on an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
}

impl Membership {
    /// Refuses unless the member's role allows `action`.
    pub fn require(&self, action: Action) -> Result<()> {
        if authorize(self.role, action) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// Loads `user_id`'s membership of `organization_id`; not a member -> `NotFound` (an outsider
/// learns nothing about the organization).
pub async fn membership(
    platform: &Platform,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Membership> {
    let role = sqlx::query_scalar!(
        "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        organization_id,
        user_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    Ok(Membership {
        organization_id,
        user_id,
        role: Role::parse(&role)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permission matrix, written out: every role x every action.
    #[test]
    fn permission_matrix() {
        use Action::*;
        let expected: [(Action, [bool; 4]); 16] = [
            //                        owner  admin  editor viewer
            (ViewOrganization, [true, true, true, true]),
            (ViewMembers, [true, true, true, true]),
            (ViewSites, [true, true, true, true]),
            (ViewLogs, [true, true, true, false]),
            (EditSiteContent, [true, true, true, false]),
            (DeploySite, [true, true, true, false]),
            (ManageSites, [true, true, false, false]),
            (InviteMember, [true, true, false, false]),
            (ChangeRole, [true, true, false, false]),
            (RemoveMember, [true, true, false, false]),
            (ManageApiKeys, [true, true, false, false]),
            (ViewAuditLog, [true, true, false, false]),
            (ManageBilling, [true, false, false, false]),
            (RenameOrganization, [true, true, false, false]),
            (TransferOwnership, [true, false, false, false]),
            (DeleteOrganization, [true, false, false, false]),
        ];
        assert_eq!(expected.len(), Action::ALL.len());
        for (action, allowed) in expected {
            for (role, allowed) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(authorize(role, action), allowed, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn only_owners_make_owners() {
        assert!(may_grant(Role::Owner, Role::Owner));
        assert!(!may_grant(Role::Admin, Role::Owner));
        assert!(may_grant(Role::Admin, Role::Admin));
        assert!(may_grant(Role::Admin, Role::Viewer));
        assert!(!may_grant(Role::Editor, Role::Viewer));
        assert!(!may_grant(Role::Viewer, Role::Viewer));
    }
}
