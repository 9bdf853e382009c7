//! CSV exports of the operator's lists (the "Export CSV" link of each list page): every row
//! the list's search and filters match, in its order. Operators only; a signed-in
//! customer gets 403, nobody signed in 401.

use std::collections::HashMap;

use app::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::admin::Operator;
use platform::admin::fleet::{self, SiteFilter};
use platform::admin::incidents::{self, IncidentFilter};
use platform::admin::jobs::{self, JobFilter};
use platform::admin::lists::{self, OrgFilter, Sort};
use platform::admin::log::{self, LogFilter};
use platform::admin::subscriptions::{self, SubscriptionFilter};
use platform::admin::users::{self, UserFilter};

/// An export handler: `name.csv`, made by `$make` from the request's operator, the
/// platform and the list's query parameters (`$param("q")`; a missing one is empty).
macro_rules! list_export {
    ($(#[$doc:meta])* $handler:ident, $name:literal,
     |$platform:ident, $operator:ident, $param:ident| $make:expr) => {
        $(#[$doc])*
        pub async fn $handler(
            State(state): State<AppState>,
            headers: HeaderMap,
            Query(query): Query<HashMap<String, String>>,
        ) -> Response {
            let $param = |name: &str| query.get(name).map_or("", String::as_str);
            let $platform = &state.platform;
            export(&state, &headers, $name, |$operator| async move { $make }).await
        }
    };
}

list_export!(
    /// `/admin/organizations.csv?q=&plan=&billing=&sort=`
    organizations,
    "organizations",
    |platform, operator, param| {
        let filter = OrgFilter::parse(
            platform,
            param("q"),
            param("plan"),
            param("billing"),
            param("sort"),
        )?;
        lists::organizations_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/users.csv?q=&state=&sort=`
    users,
    "users",
    |platform, operator, param| {
        let mut filter = UserFilter::parse(param("q"), param("state"))?;
        filter.sort = Sort::parse(param("sort"), &users::USER_SORTS)?;
        users::users_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/jobs.csv?q=&state=&sort=`
    jobs,
    "jobs",
    |platform, operator, param| {
        let mut filter = JobFilter::parse(param("q"), param("state"))?;
        filter.sort = Sort::parse(param("sort"), &jobs::JOB_SORTS)?;
        jobs::jobs_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/sites.csv?q=&state=&plan=&sort=`
    sites,
    "sites",
    |platform, operator, param| {
        let mut filter = SiteFilter::parse(platform, param("q"), param("state"), param("plan"))?;
        filter.sort = Sort::parse(param("sort"), &fleet::SITE_SORTS)?;
        fleet::sites_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/subscriptions.csv?q=&status=&plan=&interval=&sort=`
    subscriptions,
    "subscriptions",
    |platform, operator, param| {
        let mut filter = SubscriptionFilter::parse(
            platform,
            param("q"),
            param("status"),
            param("plan"),
            param("interval"),
        )?;
        filter.sort = Sort::parse(param("sort"), &subscriptions::SUBSCRIPTION_SORTS)?;
        subscriptions::subscriptions_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/incidents.csv?q=&state=&kind=&sort=`
    incidents,
    "incidents",
    |platform, operator, param| {
        let mut filter = IncidentFilter::parse(param("q"), param("state"), param("kind"))?;
        filter.sort = Sort::parse(param("sort"), &incidents::INCIDENT_SORTS)?;
        incidents::incidents_csv(platform, &operator, &filter).await
    }
);

list_export!(
    /// `/admin/audit.csv?q=&action=&sort=`
    audit,
    "operator-audit-log",
    |platform, operator, param| {
        let mut filter = LogFilter::parse(param("q"), param("action"))?;
        filter.sort = Sort::parse(param("sort"), &log::LOG_SORTS)?;
        log::entries_csv(platform, &operator, &filter).await
    }
);

/// The export `name.csv` that `make` writes for the request's operator, or the answer
/// that refuses the request.
async fn export<F, Made>(state: &AppState, headers: &HeaderMap, name: &str, make: F) -> Response
where
    F: FnOnce(Operator) -> Made,
    Made: Future<Output = platform::kernel::Result<String>>,
{
    match operator_of(state, headers).await {
        Ok(operator) => csv(name, make(operator).await),
        Err(refused) => refused.into_response(),
    }
}

/// The export `name.csv`, or why there is none (a query that does not parse: 400).
fn csv(name: &str, made: platform::kernel::Result<String>) -> Response {
    match made {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                // Customers' emails and Stripe ids: kept by no cache on the way.
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}.csv\""),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(platform::kernel::Error::Invalid { message, .. }) => {
            (StatusCode::BAD_REQUEST, message).into_response()
        }
        Err(error) => {
            tracing::error!(%error, export = name, "exporting a list");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The request's signed-in operator, or the answer that refuses it.
async fn operator_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Operator, (StatusCode, &'static str)> {
    let refused = |status: StatusCode, message: &'static str| (status, message);
    let Some(token) = app::session::cookie_in(headers, app::session::COOKIE) else {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "sign in as an operator to export this list",
        ));
    };
    let session = match platform::identity::sessions::session(&state.platform, &token).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "sign in as an operator to export this list",
            ));
        }
        Err(error) => {
            tracing::error!(%error, "reading a session");
            return Err(refused(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
        }
    };
    match Operator::verify(&state.platform, session.user_id).await {
        Ok(operator) => Ok(operator),
        Err(platform::kernel::Error::Forbidden) => Err(refused(
            StatusCode::FORBIDDEN,
            "this export is for platform operators",
        )),
        Err(error) => {
            tracing::error!(%error, "checking an operator");
            Err(refused(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
        }
    }
}
