//! CSV exports of the operator's lists (the "Export CSV" link of each list page): every row
//! the list's search and filters match, in its order. Operators only; a signed-in
//! customer gets 403, nobody signed in 401.

use std::collections::HashMap;

use app::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::admin::Operator;
use platform::admin::jobs::{self, JobFilter};
use platform::admin::lists::{self, OrgFilter};
use platform::admin::users::{self, UserFilter};

/// `/admin/organizations.csv?q=&plan=&billing=&sort=`
pub async fn organizations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).map_or("", String::as_str);
    let platform = &state.platform;
    export(&state, &headers, "organizations", |operator| async move {
        let filter = OrgFilter::parse(
            platform,
            param("q"),
            param("plan"),
            param("billing"),
            param("sort"),
        )?;
        lists::organizations_csv(platform, &operator, &filter).await
    })
    .await
}

/// `/admin/users.csv?q=&state=`
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).map_or("", String::as_str);
    let platform = &state.platform;
    export(&state, &headers, "users", |operator| async move {
        let filter = UserFilter::parse(param("q"), param("state"))?;
        users::users_csv(platform, &operator, &filter).await
    })
    .await
}

/// `/admin/jobs.csv?q=&state=`
pub async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).map_or("", String::as_str);
    let platform = &state.platform;
    export(&state, &headers, "jobs", |operator| async move {
        let filter = JobFilter::parse(param("q"), param("state"))?;
        jobs::jobs_csv(platform, &operator, &filter).await
    })
    .await
}

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
