//! Plan requests in local billing mode: an owner asks for a plan, an operator approves (the
//! plan changes with the decision) or declines, the requester is mailed; one request is
//! open per organization however many arrive at once, and one decision wins.

use platform::Platform;
use platform::admin::{Operator, plan_requests};
use platform::billing::BillingSettings;
use platform::billing::requests::{self, Decision, RequestStatus};
use platform::kernel::{Email, Error};
use platform::tenancy::{Membership, Role};
use sqlx::PgPool;

async fn operator(platform: &Platform) -> Operator {
    let user = test_support::owner(platform).await;
    test_support::make_operator(platform, user.user_id).await;
    Operator::verify(platform, user.user_id).await.unwrap()
}

async fn plan_of(pool: &PgPool, member: &Membership) -> String {
    sqlx::query_scalar("SELECT plan_id FROM organizations WHERE id = $1")
        .bind(member.organization_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn requester_email(pool: &PgPool, member: &Membership) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(member.user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn an_owner_asks_for_a_plan_and_an_approval_changes_it_and_mails_them(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone()).with_billing(BillingSettings {
        contact_email: Some(Email::parse("ops@hosting.test").unwrap()),
        ..BillingSettings::default()
    });
    let owner = test_support::owner(&platform).await;
    let op = operator(&platform).await;

    // Refused plainly: a plan that does not exist, the plan it is on, a viewer.
    let refused = requests::request(&platform, &owner, "platinum", "").await;
    assert!(
        matches!(refused, Err(Error::Invalid { ref field, .. }) if field == "plan"),
        "{refused:?}"
    );
    let refused = requests::request(&platform, &owner, "free", "").await;
    assert!(
        matches!(refused, Err(Error::Invalid { ref field, .. }) if field == "plan"),
        "{refused:?}"
    );
    let viewer = Membership {
        role: Role::Viewer,
        ..owner
    };
    assert!(matches!(
        requests::request(&platform, &viewer, "pro", "").await,
        Err(Error::Forbidden)
    ));
    let refused = requests::request(&platform, &owner, "pro", "x\u{7}").await;
    assert!(
        matches!(
            refused,
            Err(Error::Invalid { ref field, .. }) if field == "message"
        ),
        "{refused:?}"
    );

    let asked = requests::request(&platform, &owner, "pro", "  We launch next week.  ")
        .await
        .unwrap();
    assert_eq!(asked.status, RequestStatus::Pending);
    assert_eq!(asked.message, "We launch next week.");
    // The operators' contact address hears of it.
    let (subject, body) = platform::infra::mail::latest_to(&pool, "ops@hosting.test")
        .await
        .unwrap()
        .expect("the operators are mailed");
    assert_eq!(subject, "Acme asks for the Pro plan");
    assert!(body.contains("We launch next week."), "{body}");
    // A second request while one is open is refused, and says why.
    let again = requests::request(&platform, &owner, "business", "").await;
    assert!(
        matches!(&again, Err(Error::Conflict(m)) if m.contains("already waiting")),
        "{again:?}"
    );

    let queue = plan_requests::pending(&platform, &op).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].plan_id, "pro");
    let decided = plan_requests::decide(
        &platform,
        &op,
        asked.id,
        Decision::Approve,
        "Welcome aboard",
    )
    .await
    .unwrap();
    assert_eq!(decided.status, RequestStatus::Approved);
    assert_eq!(plan_of(&pool, &owner).await, "pro");
    let email = requester_email(&pool, &owner).await;
    let (subject, body) = platform::infra::mail::latest_to(&pool, &email)
        .await
        .unwrap()
        .expect("the requester is mailed");
    assert_eq!(subject, "Acme is on the Pro plan");
    assert!(body.contains("Welcome aboard"), "{body}");
    assert!(
        plan_requests::pending(&platform, &op)
            .await
            .unwrap()
            .is_empty()
    );
    // Decided once: a second decision is refused, and the plan stays.
    let twice = plan_requests::decide(&platform, &op, asked.id, Decision::Decline, "").await;
    assert!(matches!(twice, Err(Error::Conflict(_))), "{twice:?}");
    assert_eq!(plan_of(&pool, &owner).await, "pro");
    let latest = requests::latest(&platform, &owner).await.unwrap().unwrap();
    assert_eq!(
        (latest.status, latest.note.as_str()),
        (RequestStatus::Approved, "Welcome aboard")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_declined_request_leaves_the_plan_and_the_customer_may_withdraw_and_ask_again(
    pool: PgPool,
) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner(&platform).await;
    let op = operator(&platform).await;
    let asked = requests::request(&platform, &owner, "business", "")
        .await
        .unwrap();
    plan_requests::decide(
        &platform,
        &op,
        asked.id,
        Decision::Decline,
        "Business needs a contract first",
    )
    .await
    .unwrap();
    assert_eq!(plan_of(&pool, &owner).await, "free");
    let email = requester_email(&pool, &owner).await;
    let (subject, body) = platform::infra::mail::latest_to(&pool, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(subject, "Your request for the Business plan");
    assert!(
        body.contains("declined") && body.contains("contract first"),
        "{body}"
    );
    // Asked again, then taken back: nothing left to decide, and withdrawing twice says so.
    let again = requests::request(&platform, &owner, "pro", "")
        .await
        .unwrap();
    requests::withdraw(&platform, &owner).await.unwrap();
    assert!(matches!(
        requests::withdraw(&platform, &owner).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        plan_requests::decide(&platform, &op, again.id, Decision::Approve, "").await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(plan_of(&pool, &owner).await, "free");
}

#[sqlx::test(migrations = "../migrations")]
async fn requests_are_each_organizations_own(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let alpha = test_support::owner(&platform).await;
    let beta = test_support::owner(&platform).await;
    requests::request(&platform, &alpha, "pro", "alpha's secret plans")
        .await
        .unwrap();
    // Beta reads nothing of Alpha's request and cannot withdraw it.
    assert_eq!(requests::latest(&platform, &beta).await.unwrap(), None);
    assert!(matches!(
        requests::withdraw(&platform, &beta).await,
        Err(Error::Conflict(_))
    ));
    let alphas = requests::latest(&platform, &alpha).await.unwrap().unwrap();
    assert_eq!(alphas.status, RequestStatus::Pending);
    // Beta may ask for its own meanwhile.
    requests::request(&platform, &beta, "pro", "")
        .await
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn requests_and_decisions_at_once_make_one_request_and_one_decision(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let op = operator(&platform).await;
    for round in 0..5 {
        let owner = test_support::owner(&platform).await;
        let results = test_support::at_once(8, |i| {
            let platform = platform.clone();
            let plan = if i % 2 == 0 { "pro" } else { "starter" };
            async move { requests::request(&platform, &owner, plan, "").await }
        })
        .await;
        let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "round {round}: {results:?}");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, Error::Conflict(_))),
            "round {round}: {results:?}"
        );
        // Approve and decline at once: one wins, and the plan agrees with it.
        let (id, plan) = (made[0].id, made[0].plan_id.clone());
        let decisions = test_support::at_once(6, |i| {
            let (platform, op) = (platform.clone(), op.clone());
            let decision = if i % 2 == 0 {
                Decision::Approve
            } else {
                Decision::Decline
            };
            async move { plan_requests::decide(&platform, &op, id, decision, "").await }
        })
        .await;
        let won: Vec<_> = decisions.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {decisions:?}");
        let expected = if won[0].status == RequestStatus::Approved {
            plan
        } else {
            "free".to_owned()
        };
        assert_eq!(plan_of(&pool, &owner).await, expected, "round {round}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_plan_too_small_for_the_organization_is_refused_before_anyone_approves_it(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    test_support::site(&platform, &owner, "first-site").await;
    test_support::site(&platform, &owner, "second-site").await;
    // Starter holds one site: approving it would suspend one of the two.
    let refused = requests::request(&platform, &owner, "starter", "").await;
    assert!(
        matches!(&refused, Err(Error::LimitReached(m)) if m.contains("site")),
        "{refused:?}"
    );
    assert_eq!(requests::latest(&platform, &owner).await.unwrap(), None);
}
