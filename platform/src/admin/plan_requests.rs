//! The operators' side of plan requests (local billing mode): the open requests, and each
//! approved or declined. The rules live in `billing::requests`; only operators reach them.

use uuid::Uuid;

use super::Operator;
use crate::Platform;
use crate::billing::requests::{self, Decision, PlanRequest};
use crate::kernel::Result;

/// Every open request, oldest first: the operators' queue.
pub async fn pending(platform: &Platform, _by: &Operator) -> Result<Vec<PlanRequest>> {
    requests::pending(platform).await
}

/// Approves (the plan changes in the same transaction) or declines a request, with a note
/// the customer reads; see [`requests::decide`].
pub async fn decide(
    platform: &Platform,
    by: &Operator,
    id: Uuid,
    decision: Decision,
    note: &str,
) -> Result<PlanRequest> {
    requests::decide(platform, by.user_id, by.actor(), id, decision, note).await
}
