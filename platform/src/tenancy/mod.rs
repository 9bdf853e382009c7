//! Tenancy: organizations, their members and roles, the authorization vocabulary every
//! context checks actions with, API keys and the audit log.

pub mod api_keys;
pub mod audit;
pub mod authz;
pub mod members;
pub mod organizations;

pub use authz::{Action, Membership, Reader, Role, authorize, may_grant, membership};
