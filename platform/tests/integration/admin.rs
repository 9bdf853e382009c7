//! Operators acting on any organization's site: only operators may, each action needs a
//! reason, is recorded with the operator as actor, and the customer sees why; an operator's
//! suspension and billing's are each lifted only by their own side.

use platform::admin::{self, Operator, Reason};
use platform::kernel::Error;
use platform::tenancy::Membership;
use platform::{Platform, sites};
use sqlx::PgPool;
use uuid::Uuid;

async fn operator(platform: &Platform) -> Operator {
    let user = test_support::owner(platform).await;
    test_support::make_operator(platform, user.user_id).await;
    Operator::verify(platform, user.user_id).await.unwrap()
}

async fn suspended(platform: &Platform, owner: &Membership, site: Uuid) -> Option<String> {
    sites::get(platform, owner, site).await.unwrap().suspended
}

/// The site's audit entries of `action`: (actor, reason).
async fn audited(pool: &PgPool, site: Uuid, action: &str) -> Vec<(Option<Uuid>, String)> {
    sqlx::query_as(
        "SELECT actor_user_id, coalesce(details ->> 'reason', '') FROM audit_log
          WHERE action = $1 AND details ->> 'site_id' = $2::text ORDER BY id",
    )
    .bind(action)
    .bind(site)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn an_operator_suspends_and_resumes_a_site_with_a_reason_its_members_see(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "reported-site").await;
    let op = operator(&platform).await;

    // Not an operator (even the site's owner), or no such user: refused.
    assert!(matches!(
        Operator::verify(&platform, owner.user_id).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        Operator::verify(&platform, Uuid::new_v4()).await,
        Err(Error::Forbidden)
    ));
    // A reason is required.
    assert!(matches!(
        Reason::parse("  "),
        Err(Error::Invalid { ref field, .. }) if field == "reason"
    ));

    let reason = Reason::parse("phishing page reported (ticket 812)").unwrap();
    admin::suspend_site(&platform, &op, site, &reason)
        .await
        .unwrap();
    assert_eq!(
        suspended(&platform, &owner, site).await.as_deref(),
        Some("Suspended by the operators of this service: phishing page reported (ticket 812)")
    );
    assert_eq!(
        audited(&pool, site, "site.suspend").await,
        vec![(Some(op.user_id), reason.as_str().to_owned())]
    );
    // The organization's own audit log shows it in plain words, signed by support (the
    // operator's own address is not the customer's business); operators read who it was.
    let log = platform::tenancy::audit::recent(&platform, &owner, 10)
        .await
        .unwrap();
    assert!(
        log.iter().any(|l| l.event == "Site suspended"
            && l.actor.as_deref() == Some("Slipway support")
            && l.subject.as_deref() == Some("site reported-site")),
        "{log:?}"
    );
    let log = platform::tenancy::audit::recent_for(
        &platform,
        &owner,
        10,
        platform::tenancy::audit::Reader::Operator,
    )
    .await
    .unwrap();
    assert!(
        log.iter()
            .any(|l| l.action == "site.suspend" && l.actor.as_deref() == Some(op.email.as_str())),
        "{log:?}"
    );

    // Twice: said plainly, nothing recorded twice.
    let again = admin::suspend_site(&platform, &op, site, &reason)
        .await
        .unwrap_err();
    assert!(
        again
            .to_string()
            .starts_with("This site is already suspended"),
        "{again}"
    );
    assert_eq!(audited(&pool, site, "site.suspend").await.len(), 1);

    // Billing's enforcement (the organization is in good standing) leaves it suspended.
    platform::billing::dunning::enforce(&platform, owner.organization_id)
        .await
        .unwrap();
    assert!(suspended(&platform, &owner, site).await.is_some());

    let lifted = Reason::parse("page removed by the customer").unwrap();
    admin::resume_site(&platform, &op, site, &lifted)
        .await
        .unwrap();
    assert_eq!(suspended(&platform, &owner, site).await, None);
    assert_eq!(
        audited(&pool, site, "site.resume").await,
        vec![(Some(op.user_id), lifted.as_str().to_owned())]
    );
    let not_suspended = admin::resume_site(&platform, &op, site, &lifted)
        .await
        .unwrap_err();
    assert_eq!(not_suspended.to_string(), "This site is not suspended.");

    // A suspension for an unpaid bill is billing's to lift, not an operator's.
    sites::suspend(&platform, site, platform::billing::SUSPENDED_PAYMENT)
        .await
        .unwrap();
    let refused = admin::resume_site(&platform, &op, site, &lifted)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("Only billing lifts this suspension"),
        "{refused}"
    );
    assert_eq!(
        suspended(&platform, &owner, site).await.as_deref(),
        Some("Suspended by billing: payment failed. See the Billing page.")
    );
    // An operator suspending a site billing suspended takes the suspension over: paying
    // (billing's enforcement in good standing) no longer lifts it.
    admin::suspend_site(&platform, &op, site, &reason)
        .await
        .unwrap();
    platform::billing::dunning::enforce(&platform, owner.organization_id)
        .await
        .unwrap();
    assert!(
        suspended(&platform, &owner, site)
            .await
            .is_some_and(|words| words.starts_with("Suspended by the operators")),
    );
    // Resumed by the operator while the organization does not pay: billing suspends it
    // again at once, for that.
    sqlx::query(
        "INSERT INTO billing_accounts (organization_id, stripe_customer_id, status, failed_payments)
         VALUES ($1, 'cus_test_unpaid', 'past_due', 99)",
    )
    .bind(owner.organization_id)
    .execute(&pool)
    .await
    .unwrap();
    admin::resume_site(&platform, &op, site, &lifted)
        .await
        .unwrap();
    assert_eq!(
        suspended(&platform, &owner, site).await.as_deref(),
        Some("Suspended by billing: payment failed. See the Billing page.")
    );
    sqlx::query("DELETE FROM billing_accounts WHERE organization_id = $1")
        .bind(owner.organization_id)
        .execute(&pool)
        .await
        .unwrap();
    platform::billing::dunning::enforce(&platform, owner.organization_id)
        .await
        .unwrap();
    assert_eq!(suspended(&platform, &owner, site).await, None, "paid again");

    // An older free-text suspension: members read no internal note; operators may lift it.
    sites::suspend(&platform, site, "abuse report #12 (internal)")
        .await
        .unwrap();
    assert_eq!(
        suspended(&platform, &owner, site).await.as_deref(),
        Some("Suspended by the operators of this service.")
    );
    admin::resume_site(&platform, &op, site, &lifted)
        .await
        .unwrap();
    assert_eq!(suspended(&platform, &owner, site).await, None);

    // Unknown and deleted sites do not exist.
    assert!(matches!(
        admin::suspend_site(&platform, &op, Uuid::new_v4(), &reason).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        admin::site_by_slug(&platform, &op, "no-such-site").await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        admin::site_by_slug(&platform, &op, "reported-site")
            .await
            .unwrap(),
        site
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn operators_suspending_one_site_at_once_suspend_it_once(pool: PgPool) {
    let platform = test_support::test_platform(pool.clone());
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site = test_support::site(&platform, &owner, "contested-site").await;
    let operators = [operator(&platform).await, operator(&platform).await];
    let reason = Reason::parse("abuse report").unwrap();
    for round in 0..10 {
        let outcomes = test_support::at_once(8, |i| {
            let (platform, op, reason) =
                (platform.clone(), operators[i % 2].clone(), reason.clone());
            async move { admin::suspend_site(&platform, &op, site, &reason).await }
        })
        .await;
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .filter_map(|o| o.as_ref().err())
                .all(|e| matches!(e, Error::Invalid { field, .. } if field == "site")),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(audited(&pool, site, "site.suspend").await.len(), round + 1);
        let resumed = test_support::at_once(8, |i| {
            let (platform, op, reason) =
                (platform.clone(), operators[i % 2].clone(), reason.clone());
            async move { admin::resume_site(&platform, &op, site, &reason).await }
        })
        .await;
        assert_eq!(
            resumed.iter().filter(|o| o.is_ok()).count(),
            1,
            "round {round}"
        );
    }
}
