//! Server functions for a site's custom domains: list, add, verify (DNS TXT), remove.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainView {
    pub id: String,
    pub domain: String,
    pub verified: bool,
    pub checked: Option<String>,
    pub error: Option<String>,
    pub txt_name: String,
    pub txt_value: String,
    pub cname_target: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainsView {
    pub domains: Vec<DomainView>,
    pub can_manage: bool,
}

#[cfg(feature = "ssr")]
fn site_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

#[cfg(feature = "ssr")]
fn to_view(d: platform::sites::domains::Domain) -> DomainView {
    DomainView {
        id: d.id.to_string(),
        verified: d.verified_at.is_some(),
        checked: d
            .last_checked_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        error: d.last_error,
        txt_name: d.txt_name,
        txt_value: d.txt_value,
        cname_target: d.cname_target,
        url: d.url,
        domain: d.domain,
    }
}

#[server(endpoint = "domains/list")]
pub async fn list_domains(site: String) -> Result<DomainsView, AppError> {
    use platform::tenancy::{Action, authorize};
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let domains = platform::sites::domains::list(&state.platform, &me, site_id(&site)?).await?;
    Ok(DomainsView {
        domains: domains.into_iter().map(to_view).collect(),
        can_manage: authorize(me.role, Action::ManageSites),
    })
}

#[server(endpoint = "domains/add")]
pub async fn add_domain(site: String, domain: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let id = site_id(&site)?;
    platform::sites::domains::add(&state.platform, &me, id, &domain).await?;
    leptos_axum::redirect(&format!("/dashboard/sites/{id}"));
    Ok(())
}

/// Checks the domain's TXT record now; the page shows what was found.
#[server(endpoint = "domains/verify")]
pub async fn verify_domain(site: String, domain_id: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let id = site_id(&site)?;
    let domain_id = site_id(&domain_id)?;
    platform::sites::domains::verify(&state.platform, &me, domain_id, &state.platform.dns).await?;
    leptos_axum::redirect(&format!("/dashboard/sites/{id}"));
    Ok(())
}

#[server(endpoint = "domains/remove")]
pub async fn remove_domain(site: String, domain_id: String) -> Result<(), AppError> {
    let state = crate::state::app_state()?;
    let (_, me) = crate::session::require_membership(&state).await?;
    let id = site_id(&site)?;
    platform::sites::domains::remove(&state.platform, &me, site_id(&domain_id)?).await?;
    leptos_axum::redirect(&format!("/dashboard/sites/{id}"));
    Ok(())
}
