//! What customers change themselves, against the real database: their organization's and
//! their sites' names, handing ownership on, their own name, password, email address and
//! signed-in browsers, and paging through a site's deployments.

use platform::deletion;
use platform::identity::{account, sessions};
use platform::infra::mail;
use platform::sites;
use platform::tenancy::{self, Role, audit, members, organizations};
use platform::{Error, Platform};
use sqlx::PgPool;
use test_support::{PASSWORD, at_once, member, owner, owner_of_another, site, test_platform};
use uuid::Uuid;

/// A session of `user_id` from Safari on an iPhone; its cookie token.
async fn signed_in_on_a_phone(p: &Platform, user_id: Uuid) -> String {
    sessions::create_session(
        p,
        user_id,
        None,
        Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
    )
    .await
    .unwrap()
}

async fn email_of(p: &Platform, user_id: Uuid) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&p.db)
        .await
        .unwrap()
}

async fn roles(p: &Platform, organization_id: Uuid) -> Vec<(Uuid, String)> {
    sqlx::query_as(
        "SELECT user_id, role FROM organization_members WHERE organization_id = $1 ORDER BY user_id",
    )
    .bind(organization_id)
    .fetch_all(&p.db)
    .await
    .unwrap()
}

fn invalid_field<T: std::fmt::Debug>(result: platform::Result<T>) -> (String, String) {
    match result {
        Err(Error::Invalid { field, message }) => (field.into_owned(), message),
        other => panic!("expected a refused value, got {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn admins_rename_the_organization_and_its_sites_and_nobody_else_can(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let admin = member(&p, &owner, Role::Admin).await;
    let editor = member(&p, &owner, Role::Editor).await;
    let site_id = site(&p, &owner, "journal").await;

    let renamed = organizations::rename(&p, &admin, "  Acme Publishing ", None)
        .await
        .unwrap();
    assert_eq!(renamed.as_str(), "Acme Publishing");
    let overview = organizations::overview(&p, owner.organization_id)
        .await
        .unwrap();
    assert_eq!(overview.name, "Acme Publishing");
    assert_eq!(overview.slug, "acme", "the slug, and the addresses, stay");
    assert!(matches!(
        organizations::rename(&p, &editor, "Editors' Org", None).await,
        Err(Error::Forbidden)
    ));
    let (field, _) = invalid_field(organizations::rename(&p, &admin, "   ", None).await);
    assert_eq!(field, "organization");

    let renamed = sites::rename(&p, &admin, site_id, "The Blog")
        .await
        .unwrap();
    assert_eq!(renamed.as_str(), "The Blog");
    let site = sites::get(&p, &owner, site_id).await.unwrap();
    assert_eq!(
        (site.name.as_str(), site.slug.as_str()),
        ("The Blog", "journal")
    );
    assert!(matches!(
        sites::rename(&p, &editor, site_id, "Mine").await,
        Err(Error::Forbidden)
    ));
    let (field, _) = invalid_field(sites::rename(&p, &admin, site_id, "").await);
    assert_eq!(field, "name");
    // Another organization's admin cannot even find the site.
    let outsider = owner_of_another(&p).await;
    assert!(matches!(
        sites::rename(&p, &outsider, site_id, "Taken over").await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        sites::get(&p, &owner, site_id).await.unwrap().name,
        "The Blog"
    );

    // Both are in the audit log, in words, with the admin who did it.
    let log = audit::recent(&p, &owner, 20).await.unwrap();
    let events: Vec<&str> = log.iter().map(|line| line.event.as_str()).collect();
    assert!(events.contains(&"Organization renamed"), "{events:?}");
    assert!(events.contains(&"Site renamed"), "{events:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_owner_hands_the_organization_on_and_is_then_an_admin(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let heir = member(&p, &owner, Role::Editor).await;
    let admin = member(&p, &owner, Role::Admin).await;

    // Only owners hand ownership on; not to themselves, not to a stranger.
    assert!(matches!(
        members::transfer_ownership(&p, &admin, heir.user_id, None).await,
        Err(Error::Forbidden)
    ));
    let (field, _) =
        invalid_field(members::transfer_ownership(&p, &owner, owner.user_id, None).await);
    assert_eq!(field, "member");
    let stranger = owner_of_another(&p).await;
    let (field, message) =
        invalid_field(members::transfer_ownership(&p, &owner, stranger.user_id, None).await);
    assert_eq!(field, "member");
    assert!(message.contains("not a member"), "{message}");
    // Handing it to an owner would only demote the caller.
    let co_owner = member(&p, &owner, Role::Owner).await;
    let (field, message) =
        invalid_field(members::transfer_ownership(&p, &owner, co_owner.user_id, None).await);
    assert_eq!(field, "member");
    assert!(message.contains("owner already"), "{message}");

    members::transfer_ownership(&p, &owner, heir.user_id, None)
        .await
        .unwrap();
    let now = |user_id| tenancy::membership(&p, owner.organization_id, user_id);
    assert_eq!(now(heir.user_id).await.unwrap().role, Role::Owner);
    assert_eq!(now(owner.user_id).await.unwrap().role, Role::Admin);
    // The old membership (an owner's) no longer passes: the role is read again.
    assert!(matches!(
        members::transfer_ownership(&p, &owner, admin.user_id, None).await,
        Err(Error::Forbidden)
    ));
    let heir = now(heir.user_id).await.unwrap();
    let log = audit::recent(&p, &heir, 5).await.unwrap();
    assert_eq!(log[0].event, "Ownership handed on");
}

/// One owner hands ownership to two people at the same moment, again and again: exactly
/// one transfer wins each time, and the organization always ends with exactly one owner.
/// Two owners handing it to each other at once never deadlock and leave an owner.
#[sqlx::test(migrations = "../migrations")]
async fn competing_transfers_leave_exactly_one_new_owner(pool: PgPool) {
    let p = test_platform(pool);
    for round in 0..5 {
        let owner = owner(&p).await;
        test_support::set_plan(&p, &owner, "pro").await;
        let heirs = [
            member(&p, &owner, Role::Admin).await,
            member(&p, &owner, Role::Viewer).await,
        ];
        let results = at_once(2, |i| {
            let (p, owner, heir) = (p.clone(), owner, heirs[i]);
            async move { members::transfer_ownership(&p, &owner, heir.user_id, None).await }
        })
        .await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(Error::Forbidden))),
            "{results:?}"
        );
        let owners: Vec<_> = roles(&p, owner.organization_id)
            .await
            .into_iter()
            .filter(|(_, role)| role == "owner")
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: {owners:?}");

        // A second owner demotes the first while the first hands the organization on: one
        // after the other, whichever comes first (no deadlock, no error but a refusal),
        // and an owner is left.
        let second = member(&p, &owner, Role::Owner).await;
        let first = tenancy::membership(&p, owner.organization_id, owners[0].0)
            .await
            .unwrap();
        let heir = member(&p, &owner, Role::Editor).await;
        let raced = at_once(2, |i| {
            let p = p.clone();
            async move {
                if i == 0 {
                    members::transfer_ownership(&p, &first, heir.user_id, None).await
                } else {
                    members::change_role(&p, &second, first.user_id, Role::Viewer, None).await
                }
            }
        })
        .await;
        assert!(
            raced
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(Error::Forbidden))),
            "round {round}: {raced:?}"
        );
        assert!(raced[1].is_ok(), "the demotion goes through either way");
        let owners = roles(&p, owner.organization_id)
            .await
            .into_iter()
            .filter(|(_, role)| role == "owner")
            .count();
        assert!(owners >= 1, "round {round}: no owner left");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_password_changes_only_with_the_current_one_and_signs_out_the_other_browsers(
    pool: PgPool,
) {
    let p = test_platform(pool);
    let me = owner(&p).await;
    let email = email_of(&p, me.user_id).await;
    let here = sessions::create_session(&p, me.user_id, None, Some("Firefox/121.0 (X11; Linux)"))
        .await
        .unwrap();
    let phone = signed_in_on_a_phone(&p, me.user_id).await;

    let (field, _) = invalid_field(
        account::change_password(
            &p,
            me.user_id,
            &here,
            "wrong guess",
            "a new long password",
            None,
        )
        .await,
    );
    assert_eq!(field, "current_password");
    let (field, _) = invalid_field(
        account::change_password(&p, me.user_id, &here, PASSWORD, "short", None).await,
    );
    assert_eq!(field, "new_password");
    // Both mistakes at once, each at its field.
    match account::change_password(&p, me.user_id, &here, "wrong guess", "short", None).await {
        Err(Error::InvalidFields(fields)) => {
            let named: Vec<&str> = fields.iter().map(|(field, _)| field.as_ref()).collect();
            assert_eq!(named, ["new_password", "current_password"]);
        }
        other => panic!("both fields refused at once, not {other:?}"),
    }
    match account::request_email_change(&p, me.user_id, "wrong guess", "not an address", None).await
    {
        Err(Error::InvalidFields(fields)) => {
            let named: Vec<&str> = fields.iter().map(|(field, _)| field.as_ref()).collect();
            assert_eq!(named, ["new_email", "current_password"]);
        }
        other => panic!("both fields refused at once, not {other:?}"),
    }
    assert!(sessions::session(&p, &phone).await.unwrap().is_some());

    let ended =
        account::change_password(&p, me.user_id, &here, PASSWORD, "a new long password", None)
            .await
            .unwrap();
    assert_eq!(ended, 1);
    assert!(sessions::session(&p, &here).await.unwrap().is_some());
    assert!(sessions::session(&p, &phone).await.unwrap().is_none());
    assert!(matches!(
        sessions::sign_in(&p, &email, PASSWORD, None).await,
        Err(Error::InvalidCredentials)
    ));
    sessions::sign_in(&p, &email, "a new long password", None)
        .await
        .unwrap();
}

/// Guessing the current password from a stolen session is throttled like sign-in.
#[sqlx::test(migrations = "../migrations")]
async fn guessing_the_current_password_is_throttled(pool: PgPool) {
    let p = test_platform(pool);
    let me = owner(&p).await;
    let here = sessions::create_session(&p, me.user_id, None, None)
        .await
        .unwrap();
    let results = at_once(8, |i| {
        let (p, here) = (p.clone(), here.clone());
        async move {
            account::change_password(
                &p,
                me.user_id,
                &here,
                &format!("guess number {i}"),
                "a new long password",
                None,
            )
            .await
        }
    })
    .await;
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Invalid { .. })))
        .count();
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Throttled { .. })))
        .count();
    assert_eq!(
        (checked, throttled),
        (sessions::MAX_FAILURES_PER_ACCOUNT as usize, 3),
        "{results:?}"
    );
    // Even the right password waits now.
    assert!(matches!(
        account::change_password(&p, me.user_id, &here, PASSWORD, "a new long password", None)
            .await,
        Err(Error::Throttled { .. })
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn browsers_are_listed_in_words_and_ended_one_by_one(pool: PgPool) {
    let p = test_platform(pool);
    let me = owner(&p).await;
    let here = sessions::create_session(
        &p,
        me.user_id,
        "192.0.2.7".parse().ok(),
        Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"),
    )
    .await
    .unwrap();
    let phone = signed_in_on_a_phone(&p, me.user_id).await;
    let listed = account::sessions(&p, me.user_id, &here).await.unwrap();
    assert_eq!(listed.len(), 2);
    let this = listed.iter().find(|s| s.current).expect("this browser");
    assert_eq!(this.device, "Chrome on Linux");
    assert_eq!(this.ip.as_deref(), Some("192.0.2.7"));
    let other = listed.iter().find(|s| !s.current).expect("the phone");
    assert_eq!(other.device, "Safari on iOS");

    // Someone else cannot end it, whatever handle they send.
    let stranger = owner(&p).await;
    assert!(matches!(
        account::end_session(&p, stranger.user_id, &other.handle, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        account::end_session(&p, me.user_id, "not hex", None).await,
        Err(Error::NotFound)
    ));
    account::end_session(&p, me.user_id, &other.handle, None)
        .await
        .unwrap();
    assert!(sessions::session(&p, &phone).await.unwrap().is_none());
    assert!(sessions::session(&p, &here).await.unwrap().is_some());
    assert_eq!(
        account::sessions(&p, me.user_id, &here)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The token in the last mail to `to`.
async fn mailed_token(p: &Platform, to: &str) -> String {
    let (_, body) = mail::latest_to(&p.db, to).await.unwrap().expect("a mail");
    body.split("token=")
        .nth(1)
        .and_then(|rest| rest.split(['&', '\n', ' ']).next())
        .expect("a link with a token")
        .to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_email_address_is_used_once_confirmed_from_the_mail_sent_to_it(pool: PgPool) {
    let p = test_platform(pool);
    let me = owner(&p).await;
    let old = email_of(&p, me.user_id).await;
    let taken = email_of(&p, owner(&p).await.user_id).await;

    let (field, _) = invalid_field(
        account::request_email_change(&p, me.user_id, "wrong", "new@example.com", None).await,
    );
    assert_eq!(field, "current_password");
    let (field, _) = invalid_field(
        account::request_email_change(&p, me.user_id, PASSWORD, "not an address", None).await,
    );
    assert_eq!(field, "new_email");
    let (field, message) =
        invalid_field(account::request_email_change(&p, me.user_id, PASSWORD, &taken, None).await);
    assert_eq!(field, "new_email");
    assert!(message.contains("Another account"), "{message}");

    account::request_email_change(&p, me.user_id, PASSWORD, " New@Example.com ", None)
        .await
        .unwrap();
    // Nothing changes until the link is opened.
    assert_eq!(email_of(&p, me.user_id).await, old);
    let token = mailed_token(&p, "new@example.com").await;
    let changed = account::confirm_email_change(&p, &token).await.unwrap();
    assert_eq!(changed.as_str(), "new@example.com");
    assert_eq!(email_of(&p, me.user_id).await, "new@example.com");
    let (subject, body) = mail::latest_to(&p.db, &old).await.unwrap().unwrap();
    assert_eq!(subject, "Your Slipway address changed");
    assert!(body.contains("new@example.com"));
    assert!(matches!(
        account::confirm_email_change(&p, &token).await,
        Err(Error::TokenUsed)
    ));
    // The new address signs in; the sign-up's verification link, mailed to the old address,
    // does not open an email change.
    sessions::sign_in(&p, "new@example.com", PASSWORD, None)
        .await
        .unwrap();
    let verification: String = sqlx::query_scalar(
        "SELECT body_text FROM mail_outbox WHERE to_address = $1 AND subject = 'Verify your email address'",
    )
    .bind(&old)
    .fetch_one(&p.db)
    .await
    .unwrap();
    let verification = verification
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(matches!(
        account::confirm_email_change(&p, &verification).await,
        Err(Error::TokenInvalid)
    ));

    // Only the latest request counts: a link mailed to a mistyped address stops working
    // once the right one is asked for, and a password change ends the right one too.
    account::request_email_change(&p, me.user_id, PASSWORD, "typo@exmaple.com", None)
        .await
        .unwrap();
    let mistyped = mailed_token(&p, "typo@exmaple.com").await;
    account::request_email_change(&p, me.user_id, PASSWORD, "right@example.com", None)
        .await
        .unwrap();
    let right = mailed_token(&p, "right@example.com").await;
    assert!(matches!(
        account::confirm_email_change(&p, &mistyped).await,
        Err(Error::TokenUsed)
    ));
    let here = sessions::create_session(&p, me.user_id, None, None)
        .await
        .unwrap();
    account::change_password(
        &p,
        me.user_id,
        &here,
        PASSWORD,
        "another long password",
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        account::confirm_email_change(&p, &right).await,
        Err(Error::TokenUsed)
    ));
    assert_eq!(email_of(&p, me.user_id).await, "new@example.com");
}

/// Each email change mails an address the caller chose: a few an hour per address, then
/// refused, so the form cannot flood someone's inbox.
#[sqlx::test(migrations = "../migrations")]
async fn email_change_mails_to_one_address_are_limited(pool: PgPool) {
    let p = test_platform(pool);
    let me = owner(&p).await;
    let results = at_once(6, |_| {
        let p = p.clone();
        async move {
            account::request_email_change(&p, me.user_id, PASSWORD, "victim@example.com", None)
                .await
        }
    })
    .await;
    let sent = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Throttled { .. })))
        .count();
    assert_eq!((sent, refused), (3, 3), "{results:?}");
    let mails: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_outbox WHERE to_address = 'victim@example.com'",
    )
    .fetch_one(&p.db)
    .await
    .unwrap();
    assert_eq!(mails, 3);
}

/// Two people asked for the same new address; both open their links at once, again and
/// again: exactly one gets it, the other is told plainly.
#[sqlx::test(migrations = "../migrations")]
async fn two_accounts_cannot_both_take_one_address(pool: PgPool) {
    let p = test_platform(pool);
    for round in 0..5 {
        let wanted = format!("wanted-{round}@example.com");
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let someone = owner(&p).await;
            account::request_email_change(&p, someone.user_id, PASSWORD, &wanted, None)
                .await
                .unwrap();
            tokens.push(mailed_token(&p, &wanted).await);
        }
        let results = at_once(2, |i| {
            let (p, token) = (p.clone(), tokens[i].clone());
            async move { account::confirm_email_change(&p, &token).await }
        })
        .await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Conflict(m)) if m.contains("Another account"))),
            "{results:?}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_sites_deployments_are_read_a_page_at_a_time_without_gaps_or_repeats(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let site_id = site(&p, &owner, "busy").await;
    // Eleven restarts after the first deployment; pairs share a timestamp, so the order
    // must not rest on the time alone.
    let base = chrono::Utc::now();
    for n in 0..11 {
        sqlx::query(
            "INSERT INTO deployments (id, site_id, generation, reason, created_at)
             VALUES (gen_random_uuid(), $1, $2, 'restart', $4 + make_interval(secs => $3))",
        )
        .bind(site_id)
        .bind(n + 2)
        .bind(f64::from(n / 2 + 1))
        .bind(base)
        .execute(&p.db)
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = Vec::new();
    loop {
        let page = sites::deployments(&p, &owner, site_id, before, 5)
            .await
            .unwrap();
        pages.push(page.len());
        seen.extend(page.iter().map(|d| (d.created_at, d.id, d.generation)));
        match page.last() {
            Some(last) if page.len() == 5 => before = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(pages, [5, 5, 2]);
    let mut generations: Vec<i64> = seen.iter().map(|(_, _, g)| *g).collect();
    assert!(
        seen.windows(2).all(|w| (w[0].0, w[0].1) > (w[1].0, w[1].1)),
        "newest first"
    );
    generations.sort_unstable();
    assert_eq!(
        generations,
        (1..=12).collect::<Vec<_>>(),
        "each exactly once"
    );

    let ties = seen.windows(2).filter(|w| w[0].0 == w[1].0).count();
    assert!(ties >= 5, "the order was tested on equal times: {ties}");

    // Another organization's member reads nothing, with or without a cursor; a cursor from
    // another site reads as nothing before it.
    let outsider = owner_of_another(&p).await;
    let cursor = Some(seen[4].1);
    for before in [None, cursor] {
        assert!(
            sites::deployments(&p, &outsider, site_id, before, 5)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let other_site = site(&p, &owner, "quiet").await;
    assert!(
        sites::deployments(&p, &owner, other_site, cursor, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn deleted_at(p: &Platform, organization_id: Uuid) -> Option<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT deleted_at FROM organizations WHERE id = $1")
        .bind(organization_id)
        .fetch_one(&p.db)
        .await
        .unwrap()
}

async fn member_count(p: &Platform, organization_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM organization_members WHERE organization_id = $1")
        .bind(organization_id)
        .fetch_one(&p.db)
        .await
        .unwrap()
}

async fn subscribe(p: &Platform, organization_id: Uuid, status: &str) {
    sqlx::query(
        "INSERT INTO billing_accounts (organization_id, stripe_customer_id, stripe_subscription_id, plan_id, status)
         VALUES ($1, 'cus_' || md5($1::text), 'sub_' || md5($1::text), 'pro', $2)
         ON CONFLICT (organization_id) DO UPDATE SET status = $2",
    )
    .bind(organization_id)
    .bind(status)
    .execute(&p.db)
    .await
    .unwrap();
}

fn conflict<T: std::fmt::Debug>(result: platform::Result<T>) -> String {
    match result {
        Err(Error::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_an_organization_takes_its_sites_and_its_members_access_with_it(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let admin = member(&p, &owner, Role::Admin).await;
    let site_id = site(&p, &owner, "journal").await;
    let invitee = test_support::owner_with_email(&p, "later@example.com").await;
    let (_, invitation) = members::invite(
        &p,
        &owner,
        &platform::kernel::Email::parse("later@example.com").unwrap(),
        Role::Editor,
        None,
    )
    .await
    .unwrap();
    let slug: String = sqlx::query_scalar("SELECT slug FROM organizations WHERE id = $1")
        .bind(owner.organization_id)
        .fetch_one(&p.db)
        .await
        .unwrap();

    assert!(matches!(
        deletion::delete_organization(&p, &admin, &slug, None).await,
        Err(Error::Forbidden)
    ));
    let (field, message) =
        invalid_field(deletion::delete_organization(&p, &owner, "journal", None).await);
    assert_eq!(field, "confirm");
    assert!(message.contains(&slug), "{message}");
    subscribe(&p, owner.organization_id, "active").await;
    // An open checkout could still start a subscription: it is waited for.
    sqlx::query(
        "INSERT INTO checkout_sessions (id, organization_id, plan_id, billing_interval, url, expires_at)
         VALUES ('cs_open', $1, 'pro', 'monthly', 'https://checkout.test/cs_open', now() + interval '1 hour')",
    )
    .bind(owner.organization_id)
    .execute(&p.db)
    .await
    .unwrap();
    let refused = conflict(deletion::delete_organization(&p, &owner, &slug, None).await);
    assert!(refused.contains("checkout open"), "{refused}");
    assert!(deleted_at(&p, owner.organization_id).await.is_none());
    sqlx::query("UPDATE checkout_sessions SET completed_at = now() WHERE id = 'cs_open'")
        .execute(&p.db)
        .await
        .unwrap();
    let sites_deleted = deletion::delete_organization(&p, &owner, &slug, None)
        .await
        .unwrap();
    assert_eq!(sites_deleted, ["journal"]);
    assert!(deleted_at(&p, owner.organization_id).await.is_some());
    // The live subscription is canceled in Stripe by a job of the same transaction
    // (server/tests/integration/billing.rs follows it through the Stripe test server).
    let cancellations: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload FROM jobs WHERE kind = 'stripe_cancel_subscription'")
            .fetch_all(&p.db)
            .await
            .unwrap();
    let subscription: String = sqlx::query_scalar(
        "SELECT stripe_subscription_id FROM billing_accounts WHERE organization_id = $1",
    )
    .bind(owner.organization_id)
    .fetch_one(&p.db)
    .await
    .unwrap();
    assert_eq!(cancellations.len(), 1, "{cancellations:?}");
    assert_eq!(cancellations[0]["subscription_id"], subscription.as_str());
    assert_eq!(member_count(&p, owner.organization_id).await, 0);
    let desired: String = sqlx::query_scalar("SELECT desired_state FROM sites WHERE id = $1")
        .bind(site_id)
        .fetch_one(&p.db)
        .await
        .unwrap();
    assert_eq!(desired, "deleted", "the reconciler removes the site");
    // Nobody reaches it any more, not even with a membership read before the deletion.
    assert!(
        tenancy::membership(&p, owner.organization_id, admin.user_id)
            .await
            .is_err()
    );
    assert!(matches!(
        sites::create(
            &p,
            &owner,
            &sites::NewSite {
                name: "Again".into(),
                slug: "again".into(),
                template: String::new(),
            }
        )
        .await,
        Err(Error::NotFound)
    ));
    let refused =
        conflict(members::accept_invitation(&p, &invitation, invitee.user_id, None).await);
    assert!(refused.contains("has been deleted"), "{refused}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE organization_id = $1 AND action = 'organization.deleted'",
    )
    .bind(owner.organization_id)
    .fetch_one(&p.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_an_account_takes_what_it_owns_alone_and_never_strands_a_team(pool: PgPool) {
    let p = test_platform(pool);
    let ada = owner(&p).await; // her own organization, alone, with a site
    test_support::set_plan(&p, &ada, "pro").await;
    site(&p, &ada, "notes").await;
    let team = owner_of_another(&p).await; // a team she owns with Bob
    let ada_in_team = {
        sqlx::query(
            "UPDATE organization_members SET user_id = $2 WHERE organization_id = $1 AND user_id = $3",
        )
        .bind(team.organization_id)
        .bind(ada.user_id)
        .bind(team.user_id)
        .execute(&p.db)
        .await
        .unwrap();
        tenancy::membership(&p, team.organization_id, ada.user_id)
            .await
            .unwrap()
    };
    let bob = member(&p, &ada_in_team, Role::Editor).await;
    let carol = owner(&p).await; // Carol's organization, where Ada is an admin
    let ada_at_carol = {
        sqlx::query(
            "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, 'admin')",
        )
        .bind(carol.organization_id)
        .bind(ada.user_id)
        .execute(&p.db)
        .await
        .unwrap();
        ada.user_id
    };
    let phone = signed_in_on_a_phone(&p, ada.user_id).await;

    let (field, _) = invalid_field(deletion::delete_account(&p, ada.user_id, "not it", None).await);
    assert_eq!(field, "password");
    let refused = conflict(deletion::delete_account(&p, ada.user_id, PASSWORD, None).await);
    assert!(refused.contains("Team page"), "{refused}");
    assert!(
        deleted_at(&p, ada.organization_id).await.is_none(),
        "nothing was deleted"
    );

    members::transfer_ownership(&p, &ada_in_team, bob.user_id, None)
        .await
        .unwrap();
    let deleted = deletion::delete_account(&p, ada.user_id, PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(
        deleted.len(),
        1,
        "only the organization she owned alone: {deleted:?}"
    );
    assert!(deleted_at(&p, ada.organization_id).await.is_some());
    assert!(deleted_at(&p, team.organization_id).await.is_none());
    assert_eq!(
        roles(&p, team.organization_id).await,
        [(bob.user_id, "owner".to_owned())]
    );
    assert_eq!(member_count(&p, carol.organization_id).await, 1);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE id = $1")
        .bind(ada_at_carol)
        .fetch_one(&p.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    assert!(sessions::session(&p, &phone).await.unwrap().is_none());
    // The audit log keeps what happened, without who: no actor, no address.
    let kept: Vec<(Option<Uuid>, Option<String>)> = sqlx::query_as(
        "SELECT actor_user_id, host(ip) FROM audit_log WHERE action = 'organization.deleted'",
    )
    .fetch_all(&p.db)
    .await
    .unwrap();
    assert_eq!(kept, [(None, None)]);

    // An account takes no subscription with it: its organization is deleted first (which
    // cancels it), or it is canceled.
    let dan = owner(&p).await;
    subscribe(&p, dan.organization_id, "past_due").await;
    let refused = conflict(deletion::delete_account(&p, dan.user_id, PASSWORD, None).await);
    assert!(refused.contains("has a subscription"), "{refused}");
    assert!(refused.contains("Settings page"), "{refused}");
}

#[sqlx::test(migrations = "../migrations")]
async fn two_owners_deleting_their_accounts_at_once_leave_the_team_an_owner(pool: PgPool) {
    let p = test_platform(pool);
    for round in 0..5 {
        let first = owner(&p).await;
        let second = member(&p, &first, Role::Owner).await;
        let third = member(&p, &first, Role::Viewer).await;
        let results = at_once(2, |i| {
            let (p, user) = (p.clone(), [first.user_id, second.user_id][i]);
            async move { deletion::delete_account(&p, user, PASSWORD, None).await }
        })
        .await;
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(done, 1, "round {round}: {results:?}");
        for result in results.into_iter().filter(Result::is_err) {
            assert!(conflict(result).contains("only owner"), "round {round}");
        }
        let left = roles(&p, first.organization_id).await;
        assert_eq!(left.len(), 2, "round {round}: {left:?}");
        assert!(
            left.iter()
                .any(|(user, role)| *user != third.user_id && role == "owner")
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_account_deleted_while_ownership_is_handed_to_it_never_leaves_a_team_without_owner(
    pool: PgPool,
) {
    let p = test_platform(pool);
    for round in 0..5 {
        let giver = owner(&p).await;
        let taker = member(&p, &giver, Role::Admin).await;
        let (transfer, deletion) = tokio::join!(
            {
                let p = p.clone();
                async move { members::transfer_ownership(&p, &giver, taker.user_id, None).await }
            },
            {
                let p = p.clone();
                async move { deletion::delete_account(&p, taker.user_id, PASSWORD, None).await }
            }
        );
        let owners: Vec<_> = roles(&p, giver.organization_id)
            .await
            .into_iter()
            .filter(|(_, role)| role == "owner")
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: {transfer:?} {deletion:?}");
        match (&transfer, &deletion) {
            // Handed on first: the new owner cannot leave the giver behind without one.
            (Ok(()), Err(Error::Conflict(_))) => assert_eq!(owners[0].0, taker.user_id),
            // Deleted first: there is nobody to hand it to.
            (Err(_), Ok(_)) => assert_eq!(owners[0].0, giver.user_id),
            other => panic!("round {round}: {other:?}"),
        }
    }
}

/// Every change of a team's members takes the organization's row first, so changes that
/// cross (two owners demoting or removing each other, an owner deleting their account while
/// another demotes them) wait for each other instead of deadlocking: each ends done or
/// refused in words, never in an internal error, and the team keeps an owner.
#[sqlx::test(migrations = "../migrations")]
async fn crossing_changes_of_owners_never_deadlock(pool: PgPool) {
    let p = test_platform(pool);
    for round in 0..12 {
        let first = owner(&p).await;
        let second = member(&p, &first, Role::Owner).await;
        member(&p, &first, Role::Viewer).await;
        let results = at_once(2, |i| {
            let p = p.clone();
            async move {
                match (round % 3, i) {
                    (0, 0) => {
                        members::change_role(&p, &first, second.user_id, Role::Admin, None).await
                    }
                    (0, _) => {
                        members::change_role(&p, &second, first.user_id, Role::Admin, None).await
                    }
                    (1, 0) => {
                        members::change_role(&p, &first, second.user_id, Role::Editor, None).await
                    }
                    (1, _) => members::remove_member(&p, &second, first.user_id, None).await,
                    (_, 0) => {
                        members::change_role(&p, &second, first.user_id, Role::Admin, None).await
                    }
                    (_, _) => deletion::delete_account(&p, first.user_id, PASSWORD, None)
                        .await
                        .map(|_| ()),
                }
            }
        })
        .await;
        for outcome in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(
                    outcome,
                    Error::Conflict(_) | Error::NotFound | Error::Forbidden
                ),
                "round {round}: {results:?}"
            );
        }
        let owners = roles(&p, first.organization_id)
            .await
            .into_iter()
            .filter(|(_, role)| role == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}: {results:?}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_invitation_accepted_while_its_organization_goes_never_lands_in_a_deleted_one(
    pool: PgPool,
) {
    let p = test_platform(pool);
    for round in 0..5 {
        let alone = owner(&p).await;
        test_support::set_plan(&p, &alone, "pro").await;
        let email = format!("joiner-{round}@example.com");
        let joiner = test_support::owner_with_email(&p, &email).await;
        let (_, token) = members::invite(
            &p,
            &alone,
            &platform::kernel::Email::parse(&email).unwrap(),
            Role::Editor,
            None,
        )
        .await
        .unwrap();
        let (deletion, acceptance) = tokio::join!(
            {
                let p = p.clone();
                async move { deletion::delete_account(&p, alone.user_id, PASSWORD, None).await }
            },
            {
                let p = p.clone();
                async move { members::accept_invitation(&p, &token, joiner.user_id, None).await }
            }
        );
        let gone = deleted_at(&p, alone.organization_id).await.is_some();
        match (&deletion, &acceptance) {
            (Ok(_), Err(Error::Conflict(_))) => assert!(gone, "round {round}"),
            (Err(Error::Conflict(_)), Ok(_)) => {
                assert!(!gone, "round {round}");
                assert_eq!(member_count(&p, alone.organization_id).await, 2);
            }
            other => panic!("round {round}: {other:?}"),
        }
        if gone {
            assert_eq!(
                member_count(&p, alone.organization_id).await,
                0,
                "round {round}"
            );
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_sites_form_answers_every_mistake_at_once(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    let form = |name: &str, slug: &str, template: &str| platform::sites::NewSite {
        name: name.to_owned(),
        slug: slug.to_owned(),
        template: template.to_owned(),
    };
    match platform::sites::create(&p, &owner, &form(" ", "admin", "no-such-app")).await {
        Err(Error::InvalidFields(fields)) => {
            let named: Vec<&str> = fields.iter().map(|(field, _)| field.as_ref()).collect();
            assert_eq!(named, ["name", "slug", "template"], "{fields:?}");
            assert!(fields[1].1.contains("reserved"), "{fields:?}");
        }
        other => panic!("expected every field's refusal, got {other:?}"),
    }
    // One mistake is one field's refusal, as before.
    let (field, _) =
        invalid_field(platform::sites::create(&p, &owner, &form("Docs", "Bad Slug!", "")).await);
    assert_eq!(field, "slug");
}

/// A request that read its caller's membership just before the caller was demoted (or
/// removed) acts with the role they have now: the check is made under the organization's
/// lock, after the change that went first.
#[sqlx::test(migrations = "../migrations")]
async fn a_member_demoted_a_moment_ago_acts_with_the_new_role(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let admin = member(&p, &owner, Role::Admin).await;
    let editor = member(&p, &owner, Role::Editor).await;
    members::change_role(&p, &owner, admin.user_id, Role::Viewer, None)
        .await
        .unwrap();
    // `admin` still says Admin, as read by a request that began before the change.
    assert!(matches!(
        members::remove_member(&p, &admin, editor.user_id, None).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        members::change_role(&p, &admin, editor.user_id, Role::Viewer, None).await,
        Err(Error::Forbidden)
    ));
    members::remove_member(&p, &owner, admin.user_id, None)
        .await
        .unwrap();
    assert!(matches!(
        members::change_role(&p, &admin, editor.user_id, Role::Viewer, None).await,
        Err(Error::Forbidden)
    ));
    let editor_now = tenancy::membership(&p, owner.organization_id, editor.user_id)
        .await
        .unwrap();
    assert_eq!(editor_now.role, Role::Editor, "nothing changed");
}
