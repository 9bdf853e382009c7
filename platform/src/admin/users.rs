//! Every user account, for operators: the list (searched by part of an email or a name,
//! filtered by operators, disabled or unverified accounts, newest or oldest first or by
//! email, keyset pages, CSV),
//! one account whole (its organizations, sessions and sign-in history), and what operators
//! do to an account, each with a reason in the audit log: disable it (it is signed out
//! everywhere and its sign-ins are refused), enable it again, mail a fresh verification
//! link.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::lists::{Cursor, Keys, Page, Search, Sort, csv_line, one_of, page};
use super::{Operator, Reason};
use crate::Platform;
use crate::kernel::{Error, Result};
use crate::tenancy::audit;

/// The account states an operator filters by.
pub const USER_STATES: [&str; 3] = ["operator", "disabled", "unverified"];

/// Which accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub search: Option<Search>,
    /// One of [`USER_STATES`].
    pub state: Option<&'static str>,
    /// One of [`USER_SORTS`].
    pub sort: Sort,
}

/// The user list's orders: newest or oldest first, or by email.
pub const USER_SORTS: [Sort; 3] = [Sort::Newest, Sort::Oldest, Sort::Name];

impl UserFilter {
    /// From the list's query parameters (`q`, `state`; empty means any).
    pub fn parse(search: &str, state: &str) -> Result<Self> {
        Ok(Self {
            search: Search::parse(search)?,
            state: one_of(
                state,
                &USER_STATES,
                "state",
                "Choose operators, disabled or unverified.",
            )?,
            sort: Sort::default(),
        })
    }
}

/// One account as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub verified: bool,
    pub is_operator: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Organizations the user is a member of.
    pub organizations: i64,
    /// The last request of any of the user's sessions, or the last sign-in.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// `$1` the search pattern, `$2` the state, `$3`/`$4` the cursor, `$5` the row limit (NULL:
/// every row), `$6` one account's id (NULL: any). In `sort`'s order, along
/// `users_created_idx` or `users_email_order_idx`.
fn users_sql(sort: Sort) -> String {
    let keys = Keys {
        made: "u.created_at",
        name: "u.email",
        revenue: "",
        id: "u.id",
    };
    let (after, order) = sort.clauses(&keys, 3, 4);
    format!(
        "
    SELECT u.id, u.email, u.name, u.created_at, u.email_verified_at IS NOT NULL AS verified,
           u.is_operator, u.disabled_at, u.disabled_reason,
           (SELECT count(*) FROM organization_members m WHERE m.user_id = u.id) AS organizations,
           -- Sessions end (sign-out, reset, disabling): the last sign-in counts too.
           greatest((SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id),
                    (SELECT a.created_at FROM audit_log a
                      WHERE a.actor_user_id = u.id AND a.action = 'user.signed_in'
                      ORDER BY a.id DESC LIMIT 1)) AS last_seen_at
      FROM users u
     WHERE ($1::text IS NULL OR u.email LIKE lower($1) OR lower(u.name) LIKE lower($1))
       AND CASE $2::text
             WHEN 'operator' THEN u.is_operator
             WHEN 'disabled' THEN u.disabled_at IS NOT NULL
             WHEN 'unverified' THEN u.email_verified_at IS NULL
             ELSE true
           END
       AND {after}
       AND ($6::uuid IS NULL OR u.id = $6)
     {order}
     LIMIT $5::bigint"
    )
}

fn users_query<'q>(
    sql: &'q str,
    filter: &UserFilter,
    after: (Option<String>, Option<Uuid>),
    limit: Option<i64>,
    user_id: Option<Uuid>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, UserRow, sqlx::postgres::PgArguments> {
    sqlx::query_as(sql)
        .bind(filter.search.as_ref().map(Search::pattern))
        .bind(filter.state)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .bind(user_id)
}

/// Accounts matching `filter`, in its order, from just after `after`: at most `limit`.
pub async fn users(
    platform: &Platform,
    _: &Operator,
    filter: &UserFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<UserRow>> {
    let after = filter.sort.after(after)?;
    let limit = limit.clamp(1, 1000);
    let sql = users_sql(filter.sort);
    let rows = users_query(&sql, filter, after, Some(limit + 1), None)
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, limit, |row| {
        filter.sort.cursor(row.created_at, &row.email, 0, row.id)
    }))
}

/// Every account matching `filter` as CSV, in its order, in one query.
pub async fn users_csv(platform: &Platform, _: &Operator, filter: &UserFilter) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "email",
        "name",
        "verified",
        "operator",
        "disabled_at",
        "organizations",
        "last_seen_at",
        "created_at",
    ]);
    let time = |at: Option<DateTime<Utc>>| at.map(|at| at.to_rfc3339()).unwrap_or_default();
    let sql = users_sql(filter.sort);
    let mut rows = users_query(&sql, filter, (None, None), None, None).fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.email,
            &row.name,
            &row.verified.to_string(),
            &row.is_operator.to_string(),
            &time(row.disabled_at),
            &row.organizations.to_string(),
            &time(row.last_seen_at),
            &row.created_at.to_rfc3339(),
        ]));
    }
    Ok(csv)
}

/// An organization the user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOrganization {
    pub name: String,
    pub slug: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

/// A signed-in browser of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An event of the account: a sign-in, a failed one, a reset, an operator's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub at: DateTime<Utc>,
    pub action: String,
    /// Who acted, when it was someone else (an operator).
    pub actor: Option<String>,
    pub ip: Option<String>,
    pub reason: Option<String>,
}

/// Events of an account shown, newest first.
pub const HISTORY: i64 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub user: UserRow,
    pub organizations: Vec<UserOrganization>,
    /// Live ones, most recently used first.
    pub sessions: Vec<UserSession>,
    pub history: Vec<AccountEvent>,
}

/// One account, whole.
pub async fn user(platform: &Platform, _: &Operator, user_id: Uuid) -> Result<UserDetail> {
    let sql = users_sql(Sort::default());
    let user = users_query(
        &sql,
        &UserFilter::default(),
        (None, None),
        Some(1),
        Some(user_id),
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    let organizations = sqlx::query!(
        "SELECT o.name, o.slug, m.role, m.created_at
           FROM organization_members m JOIN organizations o ON o.id = m.organization_id
          WHERE m.user_id = $1 ORDER BY m.created_at",
        user_id
    )
    .fetch_all(&platform.db)
    .await?
    .into_iter()
    .map(|r| UserOrganization {
        name: r.name,
        slug: r.slug,
        role: r.role,
        joined_at: r.created_at,
    })
    .collect();
    let sessions = sqlx::query!(
        r#"SELECT created_at, last_seen_at, expires_at, host(ip) AS ip, user_agent
             FROM sessions WHERE user_id = $1 AND expires_at > now()
            ORDER BY last_seen_at DESC LIMIT 50"#,
        user_id
    )
    .fetch_all(&platform.db)
    .await?
    .into_iter()
    .map(|r| UserSession {
        created_at: r.created_at,
        last_seen_at: r.last_seen_at,
        expires_at: r.expires_at,
        ip: r.ip,
        user_agent: r.user_agent,
    })
    .collect();
    // The account's own events (`user.*`: signed up, signed in, reset) and those about it
    // (failed sign-ins, an operator's actions), each side along its index.
    let history = sqlx::query!(
        r#"SELECT a.created_at AS "created_at!", a.action AS "action!", host(a.ip) AS ip,
                  coalesce(a.details->>'reason', a.details->>'note') AS reason,
                  CASE WHEN a.actor_user_id <> $1 THEN u.email END AS actor
             FROM (SELECT * FROM (SELECT * FROM audit_log
                                   WHERE actor_user_id = $1 AND action LIKE 'user.%'
                                     AND (subject IS NULL OR subject = $2)
                                   ORDER BY id DESC LIMIT $3) mine
                   UNION
                   SELECT * FROM (SELECT * FROM audit_log
                                   -- (the partial index's condition, for the planner)
                                   WHERE subject = $2 AND subject LIKE 'user:%'
                                   ORDER BY id DESC LIMIT $3) about) a
             LEFT JOIN users u ON u.id = a.actor_user_id
            ORDER BY a.id DESC LIMIT $3"#,
        user_id,
        format!("user:{user_id}"),
        HISTORY
    )
    .fetch_all(&platform.db)
    .await?
    .into_iter()
    .map(|r| AccountEvent {
        at: r.created_at,
        action: r.action,
        actor: r.actor,
        ip: r.ip,
        reason: r.reason,
    })
    .collect();
    Ok(UserDetail {
        user,
        organizations,
        sessions,
        history,
    })
}

/// The account with this email.
pub async fn user_by_email(platform: &Platform, _: &Operator, email: &str) -> Result<Uuid> {
    if email.chars().any(char::is_control) {
        return Err(Error::NotFound);
    }
    sqlx::query_scalar!(
        "SELECT id FROM users WHERE email = $1",
        email.trim().to_lowercase()
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)
}

/// Records an operator's action on an account: its organizations' audit logs show it with
/// their members' account events, with the reason; a `private` reason (a note for
/// operators) is kept where only operators read it.
async fn audit_action(
    executor: impl sqlx::PgExecutor<'_>,
    action: &'static str,
    by: &Operator,
    user_id: Uuid,
    reason: &Reason,
    details: serde_json::Value,
    private: bool,
) -> Result<()> {
    let mut details = details;
    details[if private { "note" } else { "reason" }] = reason.as_str().into();
    details["by_operator"] = true.into();
    audit::record(
        executor,
        audit::Entry::new(action, by.actor())
            .subject_user(user_id)
            .details(details),
    )
    .await
}

/// Disables an account: every session of it ends at once (the next request of each is
/// signed out), its sign-ins are refused with `reason`'s notice, its API keys (which are
/// its organizations') keep working. One atomic update: of operators disabling at once,
/// one does, the others are told it already is. Operators cannot disable themselves.
/// Returns how many sessions ended.
pub async fn disable_user(
    platform: &Platform,
    by: &Operator,
    user_id: Uuid,
    reason: &Reason,
) -> Result<u64> {
    if user_id == by.user_id {
        return Err(Error::Conflict(
            "You cannot disable your own account.".into(),
        ));
    }
    let mut tx = platform.db.begin().await?;
    let disabled = sqlx::query_scalar!(
        "UPDATE users SET disabled_at = now(), disabled_reason = $2
          WHERE id = $1 AND disabled_at IS NULL RETURNING id",
        user_id,
        reason.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if disabled.is_none() {
        return Err(refusal(&mut tx, user_id, "This account is already disabled.").await?);
    }
    let ended = sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    audit_action(
        &mut *tx,
        "user.disabled",
        by,
        user_id,
        reason,
        serde_json::json!({ "sessions_ended": ended }),
        false,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user = %user_id, operator = %by.email, sessions = ended, "account disabled");
    Ok(ended)
}

/// Enables a disabled account again: it may sign in.
pub async fn enable_user(
    platform: &Platform,
    by: &Operator,
    user_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let mut tx = platform.db.begin().await?;
    let enabled = sqlx::query_scalar!(
        "UPDATE users SET disabled_at = NULL, disabled_reason = NULL
          WHERE id = $1 AND disabled_at IS NOT NULL RETURNING id",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if enabled.is_none() {
        return Err(refusal(&mut tx, user_id, "This account is not disabled.").await?);
    }
    // A session started in the instant it was disabled stays ended.
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    audit_action(
        &mut *tx,
        "user.enabled",
        by,
        user_id,
        reason,
        serde_json::json!({}),
        false,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user = %user_id, operator = %by.email, "account enabled");
    Ok(())
}

/// Mails a fresh verification link to an account whose address is not verified yet (not
/// to a disabled one: it could not use it).
pub async fn resend_verification(
    platform: &Platform,
    by: &Operator,
    user_id: Uuid,
    reason: &Reason,
) -> Result<()> {
    let disabled = sqlx::query_scalar!(
        r#"SELECT disabled_at IS NOT NULL AS "disabled!" FROM users WHERE id = $1"#,
        user_id
    )
    .fetch_optional(&platform.db)
    .await?
    .ok_or(Error::NotFound)?;
    if disabled {
        return Err(Error::Conflict(
            "This account is disabled: enable it first.".into(),
        ));
    }
    crate::identity::tokens::resend_verification(platform, user_id)
        .await
        .map_err(|error| match error {
            Error::Conflict(_) => Error::Conflict("This address is already verified.".into()),
            other => other,
        })?;
    audit_action(
        &platform.db,
        "user.verification_resent",
        by,
        user_id,
        reason,
        serde_json::json!({}),
        true,
    )
    .await
}

/// `NotFound` if there is no such account, else the conflict `message`. Read in the
/// action's transaction: a second connection while it holds one could wait for a pool that
/// operators acting at once have emptied.
async fn refusal(conn: &mut sqlx::PgConnection, user_id: Uuid, message: &str) -> Result<Error> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS "exists!""#,
        user_id
    )
    .fetch_one(conn)
    .await?;
    Ok(if exists {
        Error::Conflict(message.to_owned())
    } else {
        Error::NotFound
    })
}
