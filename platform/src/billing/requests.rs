//! Plan requests, in local billing mode: without Stripe nobody can pay at a checkout, so a
//! customer asks for a plan (with a message) and an operator approves or declines it. An
//! approval changes the plan in the same transaction as the decision; the customer is
//! mailed either way, and the operators' contact address when a request arrives.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::local::{after_change, change_plan, ensure_local, known_plan};
use crate::Platform;
use crate::infra::mail::{self, Message};
use crate::kernel::{Email, Error, Result};
use crate::tenancy::audit::{self, Actor};
use crate::tenancy::{Action, Membership};

crate::text_enum! {
    /// Where a request is (`plan_requests.status`).
    pub enum RequestStatus {
        Pending => "pending",
        Approved => "approved",
        Declined => "declined",
        /// The customer took it back.
        Withdrawn => "withdrawn",
    }
}

/// What an operator decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline,
}

/// A request as both sides read it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PlanRequest {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_slug: String,
    /// The plan the organization is on now.
    pub current_plan_id: String,
    pub plan_id: String,
    pub message: String,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    /// Who asked (gone if the account was deleted).
    pub requested_by: Option<String>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl TryFrom<String> for RequestStatus {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        RequestStatus::stored(&raw)
    }
}

const SELECT: &str = "SELECT r.id, r.organization_id, o.name AS organization_name,
        o.slug AS organization_slug, o.plan_id AS current_plan_id, r.plan_id, r.message,
        r.status, u.email AS requested_by, r.note, r.created_at, r.decided_at
   FROM plan_requests r
   JOIN organizations o ON o.id = r.organization_id
   LEFT JOIN users u ON u.id = r.requested_by";

/// The most a message may say.
const MESSAGE_CHARS: usize = 2000;
/// The most an operator's note may say.
const NOTE_CHARS: usize = 500;

/// Trimmed `raw`, refused when longer than `max` characters or holding control characters
/// other than line breaks and tabs.
fn words(raw: &str, field: &'static str, max: usize) -> Result<String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("Keep it under {max} characters."),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(
            field,
            "Remove the control characters from the text.",
        ));
    }
    Ok(text.to_owned())
}

/// The owner asks for `plan_id`, with a message for the operators. One request may be open
/// at a time: a second is refused (the unique index decides, so two at once make one).
pub async fn request(
    platform: &Platform,
    by: &Membership,
    plan_id: &str,
    message: &str,
) -> Result<PlanRequest> {
    by.require(Action::ManageBilling)?;
    if !platform.billing.is_local() {
        return Err(Error::Conflict(
            "Plans on this server are bought at checkout: choose one on the Billing page."
                .to_owned(),
        ));
    }
    let plan = platform
        .plan(plan_id.trim())
        .ok_or_else(|| Error::invalid("plan", "Choose one of the plans."))?;
    let message = words(message, "message", MESSAGE_CHARS)?;
    let mut tx = platform.db.begin().await?;
    let current: String = sqlx::query_scalar("SELECT plan_id FROM organizations WHERE id = $1")
        .bind(by.organization_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound)?;
    refuse_too_small(&mut tx, plan, by.organization_id).await?;
    if current == plan.id.as_str() {
        return Err(Error::invalid(
            "plan",
            format!("Your organization is already on the {} plan.", plan.name),
        ));
    }
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO plan_requests (organization_id, requested_by, plan_id, message)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (organization_id) WHERE status = 'pending' DO NOTHING
         RETURNING id",
    )
    .bind(by.organization_id)
    .bind(by.user_id)
    .bind(plan.id.as_str())
    .bind(&message)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Err(Error::Conflict(
            "A plan request is already waiting for the operators: withdraw it to ask for another."
                .to_owned(),
        ));
    };
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.plan_requested", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("plan:{}", plan.id))
            .details(serde_json::json!({ "request": id })),
    )
    .await?;
    let request = one(&mut tx, id).await?;
    if let Some(contact) = &platform.billing.contact_email {
        let link = platform
            .public_url
            .join("admin")
            .map_or_else(|_| String::new(), |u| u.to_string());
        mail::send(
            &mut tx,
            &Message {
                to: contact.clone(),
                subject: format!(
                    "{} asks for the {} plan",
                    request.organization_name, plan.name
                ),
                body: format!(
                    "{} ({}) asks to move from the {} plan to the {} plan.\n\n{}\n\nApprove or decline it in the operator panel: {link}\n",
                    request.organization_name,
                    request.requested_by.as_deref().unwrap_or("a member"),
                    request.current_plan_id,
                    plan.name,
                    if message.is_empty() { "(no message)" } else { &message },
                ),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(request)
}

/// Refuses a plan that cannot hold the organization's sites and members now (approving it
/// would suspend sites), as checkout does.
async fn refuse_too_small(
    tx: &mut sqlx::PgConnection,
    plan: &crate::catalog::plans::Plan,
    organization_id: Uuid,
) -> Result<()> {
    let (sites, members): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sites
                  WHERE organization_id = $1 AND desired_state <> 'deleted'),
                (SELECT count(*) FROM organization_members WHERE organization_id = $1)",
    )
    .bind(organization_id)
    .fetch_one(&mut *tx)
    .await?;
    match super::shortfall(plan, sites, members) {
        Some(shortfall) => Err(Error::LimitReached(shortfall.refusal(plan))),
        None => Ok(()),
    }
}

/// The organization's latest request, whatever became of it (the billing page shows it).
pub async fn latest(platform: &Platform, by: &Membership) -> Result<Option<PlanRequest>> {
    by.require(Action::ViewOrganization)?;
    let sql = format!("{SELECT} WHERE r.organization_id = $1 ORDER BY r.created_at DESC LIMIT 1");
    Ok(sqlx::query_as::<_, PlanRequest>(&sql)
        .bind(by.organization_id)
        .fetch_optional(&platform.db)
        .await?)
}

/// The owner takes the open request back.
pub async fn withdraw(platform: &Platform, by: &Membership) -> Result<()> {
    by.require(Action::ManageBilling)?;
    let mut tx = platform.db.begin().await?;
    let withdrawn: Option<String> = sqlx::query_scalar(
        "UPDATE plan_requests SET status = 'withdrawn', decided_at = now()
          WHERE organization_id = $1 AND status = 'pending'
          RETURNING plan_id",
    )
    .bind(by.organization_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(plan_id) = withdrawn else {
        return Err(Error::Conflict(
            "There is no open plan request to withdraw.".to_owned(),
        ));
    };
    audit::record(
        &mut *tx,
        audit::Entry::new("billing.plan_request_withdrawn", Actor::User(by.user_id))
            .organization(by.organization_id)
            .subject(format!("plan:{plan_id}")),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every open request, oldest first: the operators' queue.
/// (Operators call it through `admin::plan_requests`, which checks they are.)
pub(crate) async fn pending(platform: &Platform) -> Result<Vec<PlanRequest>> {
    let sql = format!("{SELECT} WHERE r.status = 'pending' ORDER BY r.created_at, r.id LIMIT 200");
    Ok(sqlx::query_as::<_, PlanRequest>(&sql)
        .fetch_all(&platform.db)
        .await?)
}

/// An operator approves (the plan changes in the same transaction) or declines an open
/// request, with a note the customer reads; the requester is mailed. A request decided
/// already, or withdrawn, is refused: of two operators deciding at once, one decides.
pub(crate) async fn decide(
    platform: &Platform,
    operator: Uuid,
    by: Actor,
    id: Uuid,
    decision: Decision,
    note: &str,
) -> Result<PlanRequest> {
    ensure_local(platform)?;
    let note = words(note, "note", NOTE_CHARS)?;
    let status = match decision {
        Decision::Approve => RequestStatus::Approved,
        Decision::Decline => RequestStatus::Declined,
    };
    let mut tx = platform.db.begin().await?;
    // The organization first, then the request: the order deleting an organization takes
    // (it cascades to its requests), so the two never wait on each other.
    let organization: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT o.id, o.plan_id FROM organizations o
           JOIN plan_requests r ON r.organization_id = o.id
          WHERE r.id = $1
            FOR UPDATE OF o",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((organization_id, from)) = organization else {
        return Err(Error::NotFound);
    };
    // The claim: only a pending request moves, so the first decision is the only one.
    let claimed: Option<String> = sqlx::query_scalar(
        "UPDATE plan_requests SET status = $2, note = $3, decided_by = $4, decided_at = now()
          WHERE id = $1 AND status = 'pending'
          RETURNING plan_id",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(&note)
    .bind(operator)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(plan_id) = claimed else {
        return Err(Error::Conflict(
            "This request was already decided or withdrawn; reload to see it.".to_owned(),
        ));
    };
    let (changed, plan_name) = match decision {
        Decision::Approve => {
            // The plan must still exist and still hold what the organization has now.
            let plan = known_plan(platform, &plan_id)?;
            refuse_too_small(&mut tx, plan, organization_id).await?;
            let reason = if note.is_empty() {
                "plan request approved".to_owned()
            } else {
                format!("plan request approved: {note}")
            };
            let changed =
                change_plan(&mut tx, organization_id, &from, plan, by, Some(&reason)).await?;
            (changed, plan.name.clone())
        }
        // A plan since removed from the catalog can still be declined.
        Decision::Decline => (
            false,
            platform
                .plan(&plan_id)
                .map_or_else(|| plan_id.clone(), |plan| plan.name.clone()),
        ),
    };
    audit::record(
        &mut *tx,
        audit::Entry::new(
            match decision {
                Decision::Approve => "billing.plan_request_approved",
                Decision::Decline => "billing.plan_request_declined",
            },
            by,
        )
        .organization(organization_id)
        .subject(format!("plan:{plan_id}"))
        .details(
            serde_json::json!({ "request": id, "reason": (!note.is_empty()).then_some(&note) }),
        ),
    )
    .await?;
    let request = one(&mut tx, id).await?;
    if let Some(to) = request
        .requested_by
        .as_deref()
        .and_then(|email| Email::parse(email).ok())
    {
        mail::send(&mut tx, &decision_mail(platform, &request, &plan_name, to)).await?;
    }
    tx.commit().await?;
    after_change(platform, organization_id, changed).await?;
    Ok(request)
}

/// The mail telling the requester what was decided.
fn decision_mail(platform: &Platform, request: &PlanRequest, plan: &str, to: Email) -> Message {
    let billing = platform
        .public_url
        .join("dashboard/billing")
        .map_or_else(|_| String::new(), |u| u.to_string());
    let note = if request.note.is_empty() {
        String::new()
    } else {
        format!("\n\nThe operators wrote: {}", request.note)
    };
    let (subject, body) = if request.status == RequestStatus::Approved {
        (
            format!("{} is on the {plan} plan", request.organization_name),
            format!(
                "Your request was approved: {} is on the {plan} plan now, with its limits.{note}\n\nSee it on your billing page: {billing}\n",
                request.organization_name
            ),
        )
    } else {
        (
            format!("Your request for the {plan} plan"),
            format!(
                "Your request to move {} to the {plan} plan was declined; it stays on its current plan.{note}\n\nYou can ask again from your billing page: {billing}\n",
                request.organization_name
            ),
        )
    };
    Message { to, subject, body }
}

async fn one(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<PlanRequest> {
    let sql = format!("{SELECT} WHERE r.id = $1");
    Ok(sqlx::query_as::<_, PlanRequest>(&sql)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?)
}
