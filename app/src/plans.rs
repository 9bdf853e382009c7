//! The plan catalog as the pricing pages see it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A plan ready to show: prices stay numbers (the interval toggle picks one in the
/// browser), everything else is already words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub monthly_cents: u64,
    pub yearly_cents: u64,
    pub featured: bool,
    pub highlights: Vec<String>,
}

#[cfg(feature = "ssr")]
impl From<&platform::catalog::plans::Plan> for PlanView {
    fn from(plan: &platform::catalog::plans::Plan) -> Self {
        Self {
            id: plan.id.to_string(),
            name: plan.name.clone(),
            description: plan.description.clone(),
            monthly_cents: plan.monthly_cents.0,
            yearly_cents: plan.yearly_cents.0,
            featured: plan.featured,
            highlights: plan.highlights(),
        }
    }
}

/// Every plan of the configured catalog, in display order.
#[server]
pub async fn list_plans() -> Result<Vec<PlanView>, AppError> {
    let state = crate::state::app_state()?;
    Ok(state
        .platform
        .catalog
        .plans()
        .iter()
        .map(PlanView::from)
        .collect())
}
