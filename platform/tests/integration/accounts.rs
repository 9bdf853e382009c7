//! Accounts against the real database: sign-up, verification, sign-in and its throttle,
//! sessions, password reset.

use platform::catalog::plans::{Catalog, default_plans};
use platform::identity::sessions;
use platform::identity::signup;
use platform::identity::signup::SignUp;
use platform::identity::tokens;
use platform::identity::users::{NewPassword, PersonName};
use platform::infra::mail;
use platform::kernel::Email;
use platform::tenancy::organizations::OrganizationName;
use platform::{Error, Platform};
use sqlx::PgPool;

const PASSWORD: &str = "correct horse battery";

fn platform(pool: PgPool) -> Platform {
    Platform::new(
        pool,
        Catalog::new(default_plans()).expect("valid catalog"),
        "https://hosting.test/".parse().expect("valid URL"),
    )
}

fn sign_up_input(email: &str) -> SignUp {
    SignUp {
        email: Email::parse(email).expect("valid email"),
        name: PersonName::parse("Ada Lovelace").expect("valid name"),
        password: NewPassword::parse(PASSWORD).expect("valid password"),
        organization: OrganizationName::parse("Analytical Engines").expect("valid name"),
    }
}

/// The token in the newest mailed link to `email` that contains `path`.
async fn mailed_token(platform: &Platform, email: &str, path: &str) -> String {
    let (_, body) = mail::latest_to(&platform.db, email)
        .await
        .expect("outbox readable")
        .expect("a mail was sent");
    let link = body
        .split_whitespace()
        .find(|word| word.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in {body}"));
    assert!(
        link.starts_with("https://hosting.test/"),
        "built from public_url: {link}"
    );
    link.split("token=")
        .nth(1)
        .expect("token in link")
        .to_owned()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_up_creates_owner_organization_and_verification_mail(pool: PgPool) {
    let p = platform(pool.clone());
    let signed_up = signup::sign_up(&p, sign_up_input("Ada@Example.com"), None)
        .await
        .expect("sign-up succeeds");
    let role: String = sqlx::query_scalar(
        "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(signed_up.organization_id)
    .bind(signed_up.user_id)
    .fetch_one(&pool)
    .await
    .expect("membership");
    assert_eq!(role, "owner");
    let (slug, plan): (String, String) =
        sqlx::query_as("SELECT slug, plan_id FROM organizations WHERE id = $1")
            .bind(signed_up.organization_id)
            .fetch_one(&pool)
            .await
            .expect("organization");
    assert_eq!(
        (slug.as_str(), plan.as_str()),
        ("analytical-engines", "free")
    );

    let token = mailed_token(&p, "ada@example.com", "/verify?token=").await;
    let session_token = sessions::create_session(&p, signed_up.user_id, None, None)
        .await
        .expect("session");
    let before = sessions::session(&p, &session_token)
        .await
        .unwrap()
        .unwrap();
    assert!(!before.email_verified);
    assert_eq!(
        before.active_organization_id,
        Some(signed_up.organization_id)
    );

    assert_eq!(
        tokens::verify_email(&p, &token).await.unwrap(),
        signed_up.user_id
    );
    let after = sessions::session(&p, &session_token)
        .await
        .unwrap()
        .unwrap();
    assert!(after.email_verified);
    // Opened again: the address is confirmed, and the answer says so.
    let again = tokens::verify_email(&p, &token).await.unwrap_err();
    assert!(matches!(again, Error::EmailAlreadyConfirmed), "{again:?}");
    assert_eq!(
        again.to_string(),
        "This address is already confirmed: there is nothing more to do."
    );
    // Once the address is unconfirmed again (as a changed address will be), the old link
    // is only used: it confirms nothing.
    sqlx::query("UPDATE users SET email_verified_at = NULL WHERE id = $1")
        .bind(signed_up.user_id)
        .execute(&p.db)
        .await
        .unwrap();
    assert!(matches!(
        tokens::verify_email(&p, &token).await,
        Err(Error::TokenUsed)
    ));
    assert!(matches!(
        tokens::verify_email(&p, "not-a-token").await,
        Err(Error::TokenInvalid)
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn duplicate_sign_up_is_refused_and_changes_nothing(pool: PgPool) {
    let p = platform(pool.clone());
    signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    let tables = [
        "users",
        "organizations",
        "organization_members",
        "mail_outbox",
        "user_tokens",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(count(&pool, table).await);
    }
    let error = signup::sign_up(&p, sign_up_input(" ADA@example.com "), None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::EmailTaken), "{error:?}");
    assert!(error.to_string().contains("already exists"));
    for (table, before) in tables.into_iter().zip(before) {
        assert_eq!(count(&pool, table).await, before, "{table} changed");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn sign_in_does_not_reveal_which_part_was_wrong(pool: PgPool) {
    let p = platform(pool.clone());
    let user = signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    assert_eq!(
        sessions::sign_in(&p, "ADA@example.com", PASSWORD, None)
            .await
            .unwrap(),
        user.user_id
    );
    let wrong_password = sessions::sign_in(&p, "ada@example.com", "nope nope nope", None)
        .await
        .unwrap_err();
    let unknown_email = sessions::sign_in(&p, "bob@example.com", PASSWORD, None)
        .await
        .unwrap_err();
    let malformed = sessions::sign_in(&p, "not an email", PASSWORD, None)
        .await
        .unwrap_err();
    for error in [&wrong_password, &unknown_email, &malformed] {
        assert!(matches!(error, Error::InvalidCredentials), "{error:?}");
        assert_eq!(error.to_string(), "Email or password is incorrect.");
    }
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'user.sign_in_failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(failed, 3, "failed sign-ins are audited");
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_sign_ins_are_throttled_per_account_and_per_ip(pool: PgPool) {
    let p = platform(pool.clone());
    signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    for _ in 0..sessions::MAX_FAILURES_PER_ACCOUNT {
        let error = sessions::sign_in(&p, "ada@example.com", "wrong password", None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidCredentials));
    }
    // Now even the right password waits: the throttle does not tell a guess apart.
    let error = sessions::sign_in(&p, "ada@example.com", PASSWORD, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "Too many failed sign-ins. Try again in 15 minutes."
    );

    let ip = Some("203.0.113.9".parse().unwrap());
    for n in 0..sessions::MAX_FAILURES_PER_IP {
        let _ = sessions::sign_in(&p, &format!("guess{n}@example.com"), "x", ip).await;
    }
    signup::sign_up(&p, sign_up_input("bob@example.com"), None)
        .await
        .unwrap();
    let error = sessions::sign_in(&p, "bob@example.com", PASSWORD, ip)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Throttled { .. }),
        "one IP guessing many accounts"
    );
    assert!(
        sessions::sign_in(&p, "bob@example.com", PASSWORD, None)
            .await
            .is_ok()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn sessions_expire_end_and_end_everywhere(pool: PgPool) {
    let p = platform(pool.clone());
    let user = signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    let first = sessions::create_session(&p, user.user_id, None, Some("test"))
        .await
        .unwrap();
    let second = sessions::create_session(&p, user.user_id, None, None)
        .await
        .unwrap();
    assert_ne!(first, second, "a new session id at each sign-in");
    let session = sessions::session(&p, &first).await.unwrap().expect("live");
    assert_eq!(session.email, "ada@example.com");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT id_hash FROM sessions LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, first.as_bytes(), "only a hash is stored");

    sessions::end_session(&p, &first).await.unwrap();
    assert!(sessions::session(&p, &first).await.unwrap().is_none());
    assert!(sessions::session(&p, &second).await.unwrap().is_some());

    let third = sessions::create_session(&p, user.user_id, None, None)
        .await
        .unwrap();
    assert_eq!(
        sessions::end_all_sessions(&p, user.user_id, None)
            .await
            .unwrap(),
        2
    );
    assert!(sessions::session(&p, &second).await.unwrap().is_none());
    assert!(sessions::session(&p, &third).await.unwrap().is_none());

    let expiring = sessions::create_session(&p, user.user_id, None, None)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        sessions::session(&p, &expiring).await.unwrap().is_none(),
        "expired"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_operators_session_ends_twelve_hours_after_sign_in_however_active(pool: PgPool) {
    let p = platform(pool.clone());
    let customer = signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    let operator = signup::sign_up(&p, sign_up_input("ops@example.com"), None)
        .await
        .unwrap();
    test_support::make_operator(&p, operator.user_id).await;
    let signed_in = async |user: uuid::Uuid, hours_ago: i32| {
        let token = sessions::create_session(&p, user, None, None)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE sessions SET created_at = now() - make_interval(hours => $2)
              WHERE user_id = $1 AND created_at > now() - interval '1 minute'",
        )
        .bind(user)
        .bind(hours_ago)
        .execute(&pool)
        .await
        .unwrap();
        token
    };
    // Used a moment ago or not, an operator's session of 13 hours is over; 11 hours is not,
    // and its expiry never slides past the 12th hour.
    let old = signed_in(operator.user_id, 13).await;
    assert!(sessions::session(&p, &old).await.unwrap().is_none());
    let recent = signed_in(operator.user_id, 11).await;
    let live = sessions::session(&p, &recent).await.unwrap().expect("live");
    let left = live.expires_at - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::hours(1) && left > chrono::Duration::minutes(55),
        "{left:?}"
    );
    // A customer's session of 13 hours lives on (it slides for 14 days of inactivity).
    let customer_old = signed_in(customer.user_id, 13).await;
    assert!(
        sessions::session(&p, &customer_old)
            .await
            .unwrap()
            .is_some()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn password_reset_is_single_use_expiring_and_signs_out(pool: PgPool) {
    let p = platform(pool.clone());
    let user = signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    let session = sessions::create_session(&p, user.user_id, None, None)
        .await
        .unwrap();

    let mails_before = count(&pool, "mail_outbox").await;
    tokens::request_password_reset(&p, "nobody@example.com", None)
        .await
        .unwrap();
    tokens::request_password_reset(&p, "not an email", None)
        .await
        .unwrap();
    assert_eq!(
        count(&pool, "mail_outbox").await,
        mails_before,
        "no mail to strangers"
    );

    tokens::request_password_reset(&p, "ada@example.com", None)
        .await
        .unwrap();
    let token = mailed_token(&p, "ada@example.com", "/reset?token=").await;
    let new_password = NewPassword::parse("a brand new passphrase").unwrap();
    tokens::reset_password(&p, &token, &new_password, None)
        .await
        .unwrap();
    assert!(
        sessions::session(&p, &session).await.unwrap().is_none(),
        "signed out"
    );
    assert!(
        sessions::sign_in(&p, "ada@example.com", "a brand new passphrase", None)
            .await
            .is_ok()
    );
    assert!(
        sessions::sign_in(&p, "ada@example.com", PASSWORD, None)
            .await
            .is_err()
    );
    assert!(matches!(
        tokens::reset_password(&p, &token, &new_password, None).await,
        Err(Error::TokenUsed)
    ));

    tokens::request_password_reset(&p, "ada@example.com", None)
        .await
        .unwrap();
    let late = mailed_token(&p, "ada@example.com", "/reset?token=").await;
    sqlx::query(
        "UPDATE user_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    let error = tokens::reset_password(&p, &late, &new_password, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TokenExpired));
    assert_eq!(
        error.to_string(),
        "This link has expired. Request a new one."
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn parallel_wrong_passwords_from_many_addresses_are_checked_at_most_the_limit(pool: PgPool) {
    let p = platform(pool.clone());
    signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    for round in 0..20 {
        sqlx::query("DELETE FROM sign_in_failures")
            .execute(&pool)
            .await
            .unwrap();
        let results = test_support::at_once(12, |i| {
            let p = p.clone();
            let ip = Some(format!("198.51.100.{}", i + 1).parse().unwrap());
            async move { sessions::sign_in(&p, "ada@example.com", "wrong guess", ip).await }
        })
        .await;
        let checked = results
            .iter()
            .filter(|r| matches!(r, Err(Error::InvalidCredentials)))
            .count();
        let throttled = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Throttled { .. })))
            .count();
        assert_eq!(
            (checked, throttled),
            (sessions::MAX_FAILURES_PER_ACCOUNT as usize, 12 - 5),
            "round {round}: {results:?}"
        );
        // The right password now waits too.
        assert!(matches!(
            sessions::sign_in(&p, "ada@example.com", PASSWORD, None).await,
            Err(Error::Throttled { .. })
        ));
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn password_reset_requests_are_limited_per_address_and_per_ip_even_at_once(pool: PgPool) {
    let p = platform(pool.clone());
    signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    let resets = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM mail_outbox WHERE subject = 'Reset your password'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    for round in 0..20 {
        sqlx::query("DELETE FROM password_reset_requests")
            .execute(&pool)
            .await
            .unwrap();
        // Eight requests for one address from eight addresses: three mails at most.
        let before = resets(pool.clone()).await;
        let results = test_support::at_once(8, |i| {
            let p = p.clone();
            let ip = Some(format!("198.51.100.{}", i + 1).parse().unwrap());
            async move { tokens::request_password_reset(&p, "ada@example.com", ip).await }
        })
        .await;
        let sent = resets(pool.clone()).await - before;
        assert_eq!(
            sent,
            tokens::MAX_RESET_REQUESTS_PER_ADDRESS,
            "round {round}: {results:?}"
        );
        let refused: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(refused.len(), 8 - 3, "round {round}");
        assert!(
            refused
                .iter()
                .all(|m| m == "Too many password reset requests. Try again in 60 minutes."),
            "{refused:?}"
        );
        // One IP asking for many addresses (known or not: the answer is the same).
        let ip = Some("203.0.113.7".parse().unwrap());
        let results = test_support::at_once(14, |i| {
            let p = p.clone();
            async move {
                tokens::request_password_reset(&p, &format!("someone{i}@example.com"), ip).await
            }
        })
        .await;
        let allowed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            allowed as i64,
            tokens::MAX_RESET_REQUESTS_PER_IP,
            "round {round}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_password_reset_voids_every_other_reset_link(pool: PgPool) {
    let p = platform(pool.clone());
    signup::sign_up(&p, sign_up_input("ada@example.com"), None)
        .await
        .unwrap();
    tokens::request_password_reset(&p, "ada@example.com", None)
        .await
        .unwrap();
    let first = mailed_token(&p, "ada@example.com", "/reset?token=").await;
    tokens::request_password_reset(&p, "ada@example.com", None)
        .await
        .unwrap();
    let second = mailed_token(&p, "ada@example.com", "/reset?token=").await;
    assert_ne!(first, second);
    let password = NewPassword::parse("a brand new passphrase").unwrap();
    tokens::reset_password(&p, &second, &password, None)
        .await
        .unwrap();
    let error = tokens::reset_password(
        &p,
        &first,
        &NewPassword::parse("an attacker's pick").unwrap(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::TokenUsed), "{error:?}");
    assert!(
        sessions::sign_in(&p, "ada@example.com", "a brand new passphrase", None)
            .await
            .is_ok()
    );
}
