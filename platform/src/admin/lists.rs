//! The operator's lists, starting with every organization: searched by part of a member's
//! email, the organization's name or slug, a site's slug, a custom domain or a Stripe id;
//! filtered by plan and billing state; sorted; paged by keyset (a page link names the last
//! row seen, so organizations added meanwhile never shift a page; in the revenue order, one
//! whose revenue changes between two pages can move across them); exported as CSV with the
//! same search, filters and order, in one query.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Operator;
use crate::Platform;
use crate::billing::revenue::{LIVE, Live, Query};
use crate::kernel::{Error, Result};

/// Rows per page.
pub const PAGE: i64 = 50;

/// The longest search an operator may type.
const SEARCH_MAX: usize = 200;

/// What the operator typed in the search box: matched anywhere in the searched texts,
/// ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// `None` for an empty search.
    pub fn parse(raw: &str) -> Result<Option<Self>> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > SEARCH_MAX || text.chars().any(char::is_control) {
            return Err(Error::invalid(
                "q",
                format!("Search for at most {SEARCH_MAX} characters on one line."),
            ));
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `LIKE` pattern: the text anywhere, its wildcards taken literally. (The query
    /// lowercases it with the database's `lower`, as it does the searched texts, so both
    /// sides fold case by the same rules.)
    pub(super) fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// The orders of the operator lists (each list offers some of them). Every order ends on
/// the row's id, so no two rows tie and a page link names the last row seen exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Sort {
    /// Newest first: by when the row was made (an incident: opened; a job or an audit
    /// entry: its id, which grows with time).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// A to Z by the list's name (an organization's name, a site's slug, an email).
    Name,
    /// Highest monthly revenue first.
    Revenue,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Name => "name",
            Sort::Revenue => "revenue",
        }
    }

    /// From a list's `sort` parameter: empty is newest first; else one of `offered`.
    pub fn parse(raw: &str, offered: &[Sort]) -> Result<Self> {
        match raw.trim() {
            "" => Ok(Sort::default()),
            raw => offered
                .iter()
                .copied()
                .find(|sort| sort.as_str() == raw)
                .ok_or_else(|| {
                    let names: Vec<&str> = offered.iter().map(|s| s.as_str()).collect();
                    let words = match names.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            format!("{} or {last}", rest.join(", "))
                        }
                        _ => names.concat(),
                    };
                    Error::invalid("sort", format!("Sort by {words}."))
                }),
        }
    }

    /// `<` and `DESC` for the orders that go down, `>` and `ASC` for those that go up.
    fn direction(self) -> (&'static str, &'static str) {
        match self {
            Sort::Newest | Sort::Revenue => ("<", "DESC"),
            Sort::Oldest | Sort::Name => (">", "ASC"),
        }
    }

    /// The condition "after the cursor" and the `ORDER BY` clause of a list whose rows
    /// `keys` describes. `$key` is the cursor's key as [`Sort::bound`] gives it (NULL on
    /// the first page), `$id` its row id. An order along an index (its columns, then the
    /// id) reads a page from the cursor on, whatever the page's depth.
    pub(super) fn clauses(self, keys: &Keys, key: u8, id: u8) -> (String, String) {
        let (column, cast) = match self {
            Sort::Newest | Sort::Oldest => (keys.made, "timestamptz"),
            Sort::Name => (keys.name, "text"),
            Sort::Revenue => (keys.revenue, "bigint"),
        };
        debug_assert!(
            !column.is_empty(),
            "{self:?} is not one of this list's orders"
        );
        let (after, order) = self.direction();
        let row = keys.id;
        (
            format!(
                "(${key}::text IS NULL OR ({column}, {row}) {after} (${key}::text::{cast}, ${id}))"
            ),
            format!("ORDER BY {column} {order}, {row} {order}"),
        )
    }

    /// [`Sort::clauses`] of a list ordered by an id that grows with time (`column`, a
    /// `bigint`; `$after` the cursor, that of the last row seen).
    pub(super) fn by_id(self, column: &str, after: u8) -> (String, String) {
        let (cmp, order) = self.direction();
        (
            format!("(${after}::bigint IS NULL OR {column} {cmp} ${after})"),
            format!("ORDER BY {column} {order}"),
        )
    }

    /// The cursor just after a row: its key in this order (`made` as microseconds since
    /// 1970, the name exactly as the database compares it, or the revenue in cents), named
    /// after the order (`oldest:1764…`), and its id.
    pub(super) fn cursor(self, made: DateTime<Utc>, name: &str, cents: i64, id: Uuid) -> Cursor {
        let key = match self {
            Sort::Newest | Sort::Oldest => made.timestamp_micros().to_string(),
            Sort::Name => name.to_owned(),
            Sort::Revenue => cents.to_string(),
        };
        Cursor {
            key: format!("{}:{key}", self.as_str()),
            id,
        }
    }

    /// The cursor's key and id as [`Sort::clauses`] binds them (both NULL on the first
    /// page).
    pub(super) fn after(self, cursor: Option<&Cursor>) -> Result<(Option<String>, Option<Uuid>)> {
        match cursor {
            None => Ok((None, None)),
            Some(cursor) => Ok((Some(self.bound(cursor)?), Some(cursor.id))),
        }
    }

    /// A page link's cursor key as [`Sort::clauses`] binds it, checked here: a stale or
    /// altered link, or one made in another order, is the operator's error (4xx), never
    /// the database's.
    fn bound(self, cursor: &Cursor) -> Result<String> {
        let key = cursor
            .key
            .strip_prefix(self.as_str())
            .and_then(|key| key.strip_prefix(':'))
            .ok_or_else(stale)?;
        match self {
            Sort::Newest | Sort::Oldest => {
                let micros: i64 = key.parse().map_err(|_| stale())?;
                DateTime::<Utc>::from_timestamp_micros(micros)
                    // Rows were made after 1970 and before 10000 (PostgreSQL would refuse
                    // some times outside, an error that is the link's, not ours).
                    .filter(|at| (1970..10_000).contains(&at.year()))
                    .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
                    .ok_or_else(stale)
            }
            Sort::Name if key.chars().any(char::is_control) => Err(stale()),
            Sort::Name => Ok(key.to_owned()),
            Sort::Revenue => key
                .parse::<i64>()
                .map(|cents| cents.to_string())
                .map_err(|_| stale()),
        }
    }
}

/// The columns a list's orders sort by, as its query names them ("" for an order the
/// list does not offer).
pub(super) struct Keys {
    /// When the row was made.
    pub made: &'static str,
    /// The A-to-Z text.
    pub name: &'static str,
    /// Monthly revenue in cents.
    pub revenue: &'static str,
    /// The row's id, last in every order.
    pub id: &'static str,
}

/// The organization list's orders.
pub const ORG_SORTS: [Sort; 4] = [Sort::Newest, Sort::Oldest, Sort::Name, Sort::Revenue];

/// Billing states an operator filters by: Stripe's subscription status, or `none` for an
/// organization that never subscribed (every organization in local billing mode).
pub const BILLING_STATES: [&str; 9] = [
    "none",
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "paused",
    "canceled",
    "incomplete",
    "incomplete_expired",
];

/// Which organizations, in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgFilter {
    pub search: Option<Search>,
    pub plan: Option<String>,
    pub billing: Option<String>,
    pub sort: Sort,
}

impl OrgFilter {
    /// From the list's query parameters (`q`, `plan`, `billing`, `sort`; empty means any).
    pub fn parse(
        platform: &Platform,
        search: &str,
        plan: &str,
        billing: &str,
        sort: &str,
    ) -> Result<Self> {
        let plan = match plan.trim() {
            "" => None,
            id if platform.catalog.plans().iter().any(|p| p.id.as_str() == id) => {
                Some(id.to_owned())
            }
            _ => return Err(Error::invalid("plan", "No such plan.")),
        };
        let billing = match billing.trim() {
            "" => None,
            state if BILLING_STATES.contains(&state) => Some(state.to_owned()),
            _ => return Err(Error::invalid("billing", "No such billing state.")),
        };
        let sort = Sort::parse(sort, &ORG_SORTS)?;
        Ok(Self {
            search: Search::parse(search)?,
            plan,
            billing,
            sort,
        })
    }
}

/// Where a page starts: just after this row in the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    key: String,
    id: Uuid,
}

impl Cursor {
    /// As a page link carries it.
    pub fn encode(&self) -> String {
        format!("{}~{}", self.key, self.id)
    }

    pub fn decode(raw: &str) -> Result<Self> {
        let (key, id) = raw.rsplit_once('~').ok_or_else(stale)?;
        let id = id.parse().map_err(|_| stale())?;
        Ok(Self {
            key: key.to_owned(),
            id,
        })
    }
}

/// One organization as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrgRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan_id: String,
    /// Stripe's subscription status; `None` without a subscription.
    pub billing_status: Option<String>,
    /// What it counts for in monthly revenue now (see `docs/metrics.md`).
    pub mrr_cents: i64,
    pub stripe_customer_id: Option<String>,
    pub owner_email: Option<String>,
    pub members: i64,
    /// Sites not deleted.
    pub sites: i64,
    pub suspended_sites: i64,
    pub created_at: DateTime<Utc>,
    /// The name as the name order compares it (`lower(name)` in the database).
    #[serde(skip)]
    pub name_key: String,
}

/// A page of a list, and the cursor of the next one if there is more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C = Cursor> {
    pub rows: Vec<T>,
    pub next: Option<C>,
}

/// Organizations matching `filter`, in its order, from just after `after`: at most `limit`.
pub async fn organizations(
    platform: &Platform,
    _: &Operator,
    filter: &OrgFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page<OrgRow>> {
    let query = OrgQuery::new(platform, filter, after, Some(limit))?;
    let sql = organizations_sql(filter.sort);
    let rows: Vec<OrgRow> = query
        .bind(sqlx::query_as(&sql))
        .fetch_all(&platform.db)
        .await?;
    Ok(page(rows, query.limit.unwrap_or(limit), |row| {
        filter
            .sort
            .cursor(row.created_at, &row.name_key, row.mrr_cents, row.id)
    }))
}

/// The plan PostgreSQL runs for the first page of `filter` (`EXPLAIN ANALYZE`), for the
/// benchmark.
pub async fn explain_organizations(
    platform: &Platform,
    _: &Operator,
    filter: &OrgFilter,
) -> Result<String> {
    let query = OrgQuery::new(platform, filter, None, Some(PAGE))?;
    let sql = format!(
        "EXPLAIN (ANALYZE, BUFFERS) {}",
        organizations_sql(filter.sort)
    );
    let lines: Vec<(String,)> = query
        .bind(sqlx::query_as(&sql))
        .fetch_all(&platform.db)
        .await?;
    Ok(plan_text(lines))
}

/// The lines of an `EXPLAIN` as one text.
pub(super) fn plan_text(lines: Vec<(String,)>) -> String {
    lines
        .into_iter()
        .map(|(line,)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The organization list's parameters, bound in [`organizations_sql`]'s order.
struct OrgQuery<'a> {
    live: Live,
    filter: &'a OrgFilter,
    /// The cursor's key as bound, and its id.
    after: (Option<String>, Option<Uuid>),
    /// Rows per page; `None`: every row.
    limit: Option<i64>,
}

impl<'a> OrgQuery<'a> {
    fn new(
        platform: &Platform,
        filter: &'a OrgFilter,
        after: Option<&Cursor>,
        limit: Option<i64>,
    ) -> Result<Self> {
        Ok(Self {
            live: Live::new(platform, Utc::now()),
            filter,
            after: filter.sort.after(after)?,
            limit: limit.map(|limit| limit.clamp(1, 1000)),
        })
    }

    /// Binds `$1` to `$11` (one row more than a page: whether there is a next one; no
    /// limit for an export).
    fn bind<'q, O>(&'q self, query: Query<'q, O>) -> Query<'q, O> {
        self.live
            .bind(query)
            .bind(self.filter.search.as_ref().map(Search::pattern))
            .bind(self.filter.plan.as_deref())
            .bind(self.filter.billing.as_deref())
            .bind(self.after.0.as_deref())
            .bind(self.after.1)
            .bind(self.limit.map(|limit| limit + 1))
    }
}

/// The organizations a search pattern (`$6`) finds: a union of index lookups (trigram
/// indexes, `LIKE '%part%'`), one per searched text.
pub(super) const MATCHED: &str = "
    SELECT id FROM organizations WHERE lower(name) LIKE lower($6) OR slug LIKE lower($6)
    UNION SELECT m.organization_id FROM users u
            JOIN organization_members m ON m.user_id = u.id
           WHERE u.email LIKE lower($6)
    UNION SELECT organization_id FROM sites WHERE slug LIKE lower($6) AND status <> 'deleted'
    UNION SELECT organization_id FROM site_domains WHERE domain LIKE lower($6)
    UNION SELECT organization_id FROM billing_accounts
           WHERE lower(stripe_customer_id) LIKE lower($6)
              OR lower(stripe_subscription_id) LIKE lower($6)";

/// The search is [`MATCHED`]; then the page is read in `sort`'s order from after the
/// cursor.
/// `$1`-`$5`: [`LIVE`]'s (what counts as revenue); `$6` the search pattern, `$7` the plan,
/// `$8` the billing state, `$9`/`$10` the cursor, `$11` the row limit.
fn organizations_sql(sort: Sort) -> String {
    let keys = Keys {
        made: "o.created_at",
        name: "o.name_key",
        revenue: "o.mrr_cents",
        id: "o.id",
    };
    let (after, order) = sort.clauses(&keys, 9, 10);
    format!(
        "WITH live AS ({LIVE}),
        matched AS ({MATCHED}),
        listed AS (
            SELECT o.id, o.name, lower(o.name) AS name_key, o.slug, o.plan_id, o.created_at,
                   b.status AS billing_status, b.stripe_customer_id,
                   coalesce(l.mrr_cents, 0)::bigint AS mrr_cents
              FROM organizations o
              LEFT JOIN billing_accounts b ON b.organization_id = o.id
              LEFT JOIN live l ON l.organization_id = o.id
             WHERE ($6::text IS NULL OR o.id IN (SELECT id FROM matched))
               AND ($7::text IS NULL OR o.plan_id = $7)
               AND ($8::text IS NULL OR coalesce(b.status, 'none') = $8)
        )
        SELECT o.*,
               (SELECT u.email FROM organization_members m JOIN users u ON u.id = m.user_id
                 WHERE m.organization_id = o.id AND m.role = 'owner'
                 ORDER BY m.created_at LIMIT 1) AS owner_email,
               (SELECT count(*) FROM organization_members m
                 WHERE m.organization_id = o.id) AS members,
               (SELECT count(*) FROM sites s
                 WHERE s.organization_id = o.id AND s.status <> 'deleted') AS sites,
               (SELECT count(*) FROM sites s
                 WHERE s.organization_id = o.id AND s.status <> 'deleted'
                   AND s.suspended_at IS NOT NULL) AS suspended_sites
          FROM listed o
         WHERE {after}
         {order}
         LIMIT $11::bigint"
    )
}

/// Where a page of a list in its key's order starts (`after` in its links): none for the
/// first page.
pub fn parse_cursor(raw: &str) -> Result<Option<Cursor>> {
    match raw.trim() {
        "" => Ok(None),
        raw => Cursor::decode(raw).map(Some),
    }
}

/// Where a page of a list by id starts: just after this id in the list's order.
pub fn parse_after_id(raw: &str) -> Result<Option<i64>> {
    match raw.trim() {
        "" => Ok(None),
        raw => raw.parse().map(Some).map_err(|_| stale()),
    }
}

/// A filter's value: empty means any; else one of `known`, or `refusal` about `field`.
pub(super) fn one_of(
    raw: &str,
    known: &[&'static str],
    field: &'static str,
    refusal: &str,
) -> Result<Option<&'static str>> {
    match raw.trim() {
        "" => Ok(None),
        value => known
            .iter()
            .find(|k| **k == value)
            .map(|k| Some(*k))
            .ok_or_else(|| Error::invalid(field, refusal)),
    }
}

pub(super) fn stale() -> Error {
    Error::invalid(
        "after",
        "This page link is no longer valid: start again from the first page.",
    )
}

/// The first `limit` of `rows` (fetched one more than a page), and the next page's cursor
/// if there was one more.
pub(super) fn page<T, C>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor) } else { None };
    Page { rows, next }
}

/// Every organization matching `filter`, as CSV (a header line, then one line per
/// organization, in the list's order): one query, so one moment's view of them.
pub async fn organizations_csv(
    platform: &Platform,
    _: &Operator,
    filter: &OrgFilter,
) -> Result<String> {
    let mut csv = csv_line(&[
        "id",
        "name",
        "slug",
        "plan",
        "billing_status",
        "mrr_cents",
        "stripe_customer_id",
        "owner_email",
        "members",
        "sites",
        "suspended_sites",
        "created_at",
    ]);
    let query = OrgQuery::new(platform, filter, None, None)?;
    let sql = organizations_sql(filter.sort);
    let mut rows = query
        .bind(sqlx::query_as::<_, OrgRow>(&sql))
        .fetch(&platform.db);
    while let Some(row) = rows.try_next().await? {
        csv.push_str(&csv_line(&[
            &row.id.to_string(),
            &row.name,
            &row.slug,
            &row.plan_id,
            row.billing_status.as_deref().unwrap_or("none"),
            &row.mrr_cents.to_string(),
            row.stripe_customer_id.as_deref().unwrap_or(""),
            row.owner_email.as_deref().unwrap_or(""),
            &row.members.to_string(),
            &row.sites.to_string(),
            &row.suspended_sites.to_string(),
            &row.created_at.to_rfc3339(),
        ]));
    }
    Ok(csv)
}

/// One CSV line (RFC 4180: a field with a comma, quote or line break is quoted, quotes
/// doubled). A field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return first) gets a leading `'`: customer-typed names are data, not formulas.
pub(super) fn csv_line(fields: &[&str]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let guarded;
        let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            guarded = format!("'{field}");
            guarded.as_str()
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_match_their_text_literally() {
        let search = Search::parse("  50%_off\\x ").unwrap().unwrap();
        assert_eq!(search.as_str(), "50%_off\\x");
        assert_eq!(search.pattern(), "%50\\%\\_off\\\\x%");
        assert_eq!(Search::parse("   ").unwrap(), None);
        assert!(Search::parse(&"a".repeat(201)).is_err());
        assert!(Search::parse("a\nb").is_err());
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_disarms_formulas() {
        assert_eq!(csv_line(&["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            csv_line(&["Acme, Inc.", "say \"hi\"", "two\nlines"]),
            "\"Acme, Inc.\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(
            csv_line(&["=HYPERLINK(\"x\")", "-1", "@me"]),
            "\"'=HYPERLINK(\"\"x\"\")\",'-1,'@me\r\n"
        );
    }

    #[test]
    fn cursors_survive_names_with_the_separator() {
        let id = Uuid::new_v4();
        let cursor = Cursor {
            key: "tilde~name".into(),
            id,
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::decode("no separator").is_err());
        assert!(Cursor::decode("x~not-a-uuid").is_err());
    }
}
