//! Server functions of the operators' queue of plan requests (local billing mode): the open
//! ones, oldest first, each approved or declined with a note the customer reads.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One open request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequestRow {
    pub id: String,
    pub organization: String,
    pub organization_slug: String,
    pub current_plan: String,
    pub plan: String,
    pub requested_by: String,
    pub message: String,
    pub created: String,
}

/// The open plan requests, oldest first: operators only.
#[server(endpoint = "admin/plan_requests")]
pub async fn admin_plan_requests() -> Result<Vec<PlanRequestRow>, AppError> {
    let (state, operator) = super::operator().await?;
    let p = &state.platform;
    let name = |id: &str| {
        p.plan(id)
            .map_or_else(|| id.to_owned(), |plan| plan.name.clone())
    };
    Ok(platform::admin::plan_requests::pending(p, &operator)
        .await?
        .into_iter()
        .map(|r| PlanRequestRow {
            id: r.id.to_string(),
            current_plan: name(&r.current_plan_id),
            plan: name(&r.plan_id),
            organization: r.organization_name,
            organization_slug: r.organization_slug,
            requested_by: r
                .requested_by
                .unwrap_or_else(|| "a deleted account".to_owned()),
            message: r.message,
            created: r.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}

/// Approves (the plan changes at once) or declines a plan request, with an optional note
/// the customer reads: operators only.
#[server(endpoint = "admin/decide_plan_request")]
pub async fn admin_decide_plan_request(
    #[server(default)] request: String,
    #[server(default)] decision: String,
    #[server(default)] note: String,
) -> Result<(), AppError> {
    use platform::admin::plan_requests::decide;
    use platform::billing::requests::Decision;
    let (state, operator) = super::operator().await?;
    let id = super::chosen(&request, "request", "a request")?;
    let decision = match decision.as_str() {
        "approve" => Decision::Approve,
        "decline" => Decision::Decline,
        _ => {
            return Err(AppError::Invalid {
                field: "decision".into(),
                message: "Approve or decline the request.".into(),
            });
        }
    };
    decide(&state.platform, &operator, id, decision, &note).await?;
    Ok(())
}
