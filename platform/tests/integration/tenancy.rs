//! Organizations, roles, invitations and API keys against the real database: the
//! permission matrix, tenant isolation and the rules on owners and limits.

use platform::catalog::plans::{Catalog, default_plans};
use platform::identity::sessions;
use platform::identity::signup;
use platform::identity::signup::SignUp;
use platform::identity::users::{NewPassword, PersonName};
use platform::infra::mail;
use platform::kernel::Email;
use platform::tenancy;
use platform::tenancy::api_keys::{self, AuthFailure, KeyError, Scope};
use platform::tenancy::audit;
use platform::tenancy::members;
use platform::tenancy::organizations::OrganizationName;
use platform::tenancy::{Action, Membership, Role, authorize};
use platform::{Error, Platform};
use sqlx::PgPool;
use uuid::Uuid;

fn platform(pool: PgPool) -> Platform {
    Platform::new(
        pool,
        Catalog::new(default_plans()).expect("valid catalog"),
        "https://hosting.test/".parse().expect("valid URL"),
    )
}

async fn user(p: &Platform, email: &str, organization: &str) -> (Uuid, Uuid) {
    let signed_up = signup::sign_up(
        p,
        SignUp {
            email: Email::parse(email).unwrap(),
            name: PersonName::parse("Someone").unwrap(),
            password: NewPassword::parse("correct horse battery").unwrap(),
            organization: OrganizationName::parse(organization).unwrap(),
        },
        None,
    )
    .await
    .expect("sign-up");
    (signed_up.user_id, signed_up.organization_id)
}

async fn set_plan(pool: &PgPool, organization_id: Uuid, plan: &str) {
    sqlx::query("UPDATE organizations SET plan_id = $2 WHERE id = $1")
        .bind(organization_id)
        .bind(plan)
        .execute(pool)
        .await
        .unwrap();
}

async fn add_member(pool: &PgPool, organization_id: Uuid, user_id: Uuid, role: Role) {
    sqlx::query(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)",
    )
    .bind(organization_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(pool)
    .await
    .unwrap();
}

fn allowed<T>(result: &platform::Result<T>) -> bool {
    match result {
        Ok(_) => true,
        Err(Error::Forbidden) => false,
        Err(other) => panic!("neither allowed nor forbidden: {other:?}"),
    }
}

/// Every role against every action that exists so far, through the real functions.
#[sqlx::test(migrations = "../migrations")]
async fn permission_matrix_against_the_database(pool: PgPool) {
    let p = platform(pool.clone());
    for role in Role::ALL {
        let (owner, organization_id) =
            user(&p, &format!("owner-{role}@example.com"), "Matrix").await;
        set_plan(&pool, organization_id, "business").await;
        let (actor, _) = user(&p, &format!("actor-{role}@example.com"), "Own").await;
        if role != Role::Owner {
            add_member(&pool, organization_id, actor, role).await;
        }
        let actor = if role == Role::Owner { owner } else { actor };
        let (target, _) = user(&p, &format!("target-{role}@example.com"), "Other").await;
        add_member(&pool, organization_id, target, Role::Viewer).await;
        let (heir, _) = user(&p, &format!("heir-{role}@example.com"), "Heir's").await;
        add_member(&pool, organization_id, heir, Role::Viewer).await;
        let me = tenancy::membership(&p, organization_id, actor)
            .await
            .unwrap();
        assert_eq!(me.role, role);

        let checks: Vec<(Action, bool)> = vec![
            (
                Action::ViewMembers,
                allowed(&members::members(&p, &me).await),
            ),
            (
                Action::InviteMember,
                allowed(
                    &members::invite(
                        &p,
                        &me,
                        &Email::parse(&format!("new-{role}@example.com")).unwrap(),
                        Role::Viewer,
                        None,
                    )
                    .await,
                ),
            ),
            (
                Action::ChangeRole,
                allowed(&members::change_role(&p, &me, target, Role::Editor, None).await),
            ),
            (
                Action::ManageApiKeys,
                allowed(&api_keys::create(&p, &me, "ci", &[Scope::Read], None).await),
            ),
            (
                Action::ViewAuditLog,
                allowed(&audit::recent(&p, &me, 10).await),
            ),
            (
                Action::RemoveMember,
                allowed(&members::remove_member(&p, &me, target, None).await),
            ),
            (
                Action::RenameOrganization,
                allowed(&platform::tenancy::organizations::rename(&p, &me, "Renamed", None).await),
            ),
            // Last: an owner who hands the organization on is an admin afterwards.
            (
                Action::TransferOwnership,
                allowed(&members::transfer_ownership(&p, &me, heir, None).await),
            ),
        ];
        for (action, was_allowed) in checks {
            assert_eq!(was_allowed, authorize(role, action), "{role} {action:?}");
        }
    }
}

/// A member of A, holding A's membership and A's key, reaches nothing of B.
#[sqlx::test(migrations = "../migrations")]
async fn nothing_crosses_from_one_organization_to_another(pool: PgPool) {
    let p = platform(pool.clone());
    let (alice, org_a) = user(&p, "alice@example.com", "Alpha").await;
    let (bob, org_b) = user(&p, "bob@example.com", "Beta").await;
    set_plan(&pool, org_b, "pro").await;
    let bob_in_b = tenancy::membership(&p, org_b, bob).await.unwrap();
    let (b_key, _) = api_keys::create(&p, &bob_in_b, "deploy", &[Scope::Write], None)
        .await
        .unwrap();
    members::invite(
        &p,
        &bob_in_b,
        &Email::parse("carol@example.com").unwrap(),
        Role::Editor,
        None,
    )
    .await
    .unwrap();

    // Alice is not a member of B: no membership, hence no way to call anything on B.
    assert!(matches!(
        tenancy::membership(&p, org_b, alice).await,
        Err(Error::NotFound)
    ));

    // With her A membership she cannot touch B's members or keys by id either.
    let alice_in_a = tenancy::membership(&p, org_a, alice).await.unwrap();
    assert!(matches!(
        members::change_role(&p, &alice_in_a, bob, Role::Viewer, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        members::remove_member(&p, &alice_in_a, bob, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        api_keys::revoke(&p, &alice_in_a, b_key.id, None).await,
        Err(Error::NotFound)
    ));
    // A forged membership (the type is public) is what the server never builds; lists are
    // scoped by the membership's organization, so A's lists show only A.
    let members = members::members(&p, &alice_in_a).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        [alice]
    );
    assert!(api_keys::list(&p, &alice_in_a).await.unwrap().is_empty());
    assert!(
        members::pending_invitations(&p, &alice_in_a)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        audit::recent(&p, &alice_in_a, 50)
            .await
            .unwrap()
            .iter()
            .all(|line| line.actor.as_deref() != Some("bob@example.com"))
    );

    // B is unchanged.
    let b_members = members::members(&p, &bob_in_b).await.unwrap();
    assert_eq!(b_members.len(), 1);
    assert_eq!(b_members[0].role, Role::Owner);
    assert!(
        api_keys::list(&p, &bob_in_b).await.unwrap()[0]
            .revoked_at
            .is_none()
    );
    assert_eq!(
        members::pending_invitations(&p, &bob_in_b)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn invitations_respect_the_member_limit_and_the_invited_address(pool: PgPool) {
    let p = platform(pool.clone());
    let (owner, organization_id) = user(&p, "owner@example.com", "Limits").await;
    let me = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    let email = |s: &str| Email::parse(s).unwrap();

    // Free allows one member: the owner.
    let error = members::invite(&p, &me, &email("a@example.com"), Role::Viewer, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::LimitReached(_)), "{error:?}");
    assert!(error.to_string().contains("Upgrade your plan"), "{error}");
    assert!(
        members::pending_invitations(&p, &me)
            .await
            .unwrap()
            .is_empty(),
        "nothing changed"
    );

    // Pro allows three, pending invitations included.
    set_plan(&pool, organization_id, "pro").await;
    let (_, token_a) = members::invite(&p, &me, &email("a@example.com"), Role::Viewer, None)
        .await
        .unwrap();
    members::invite(&p, &me, &email("b@example.com"), Role::Editor, None)
        .await
        .unwrap();
    let error = members::invite(&p, &me, &email("c@example.com"), Role::Viewer, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::LimitReached(_)));
    let error = members::invite(&p, &me, &email("b@example.com"), Role::Viewer, None)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        Error::LimitReached(_) | Error::Invalid { .. }
    ));

    // The link goes to the invited address, from the public URL.
    let (_, body) = mail::latest_to(&p.db, "b@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        body.contains("https://hosting.test/invitations/accept?token="),
        "{body}"
    );

    // Accepting needs the invited address.
    let (stranger, _) = user(&p, "stranger@example.com", "Elsewhere").await;
    let error = members::accept_invitation(&p, &token_a, stranger, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)));
    let (a, _) = user(&p, "a@example.com", "A's own").await;
    assert_eq!(
        members::accept_invitation(&p, &token_a, a, None)
            .await
            .unwrap(),
        organization_id
    );
    assert_eq!(
        tenancy::membership(&p, organization_id, a)
            .await
            .unwrap()
            .role,
        Role::Viewer
    );
    assert!(matches!(
        members::accept_invitation(&p, &token_a, a, None).await,
        Err(Error::TokenUsed)
    ));

    // An expired invitation is refused.
    sqlx::query(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE accepted_at IS NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (b, _) = user(&p, "b@example.com", "B's own").await;
    let (_, body) = mail::latest_to(&p.db, "b@example.com")
        .await
        .unwrap()
        .unwrap();
    let _ = body;
    let token_b: String = {
        // Take the invitation token from the invitation mail (the newest mail to b is the
        // verification mail of b's own sign-up, so look the mail up by subject).
        let body: String = sqlx::query_scalar(
            "SELECT body_text FROM mail_outbox WHERE to_address = 'b@example.com' AND subject LIKE 'You are invited%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        body.split("token=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(matches!(
        members::accept_invitation(&p, &token_b, b, None).await,
        Err(Error::TokenExpired)
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn owners_are_protected(pool: PgPool) {
    let p = platform(pool.clone());
    let (owner, organization_id) = user(&p, "owner@example.com", "Owners").await;
    set_plan(&pool, organization_id, "business").await;
    let (admin, _) = user(&p, "admin@example.com", "Admin's").await;
    add_member(&pool, organization_id, admin, Role::Admin).await;
    let as_owner = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    let as_admin = tenancy::membership(&p, organization_id, admin)
        .await
        .unwrap();

    // The last owner can neither leave nor be demoted.
    let error = members::remove_member(&p, &as_owner, owner, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)));
    assert!(error.to_string().contains("at least one owner"));
    assert!(matches!(
        members::change_role(&p, &as_owner, owner, Role::Admin, None).await,
        Err(Error::Conflict(_))
    ));
    // An admin cannot make owners, nor act on an owner.
    assert!(matches!(
        members::change_role(&p, &as_admin, admin, Role::Owner, None).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        members::invite(
            &p,
            &as_admin,
            &Email::parse("x@example.com").unwrap(),
            Role::Owner,
            None
        )
        .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        members::remove_member(&p, &as_admin, owner, None).await,
        Err(Error::Forbidden)
    ));
    // With a second owner, the first may step down; anyone may leave.
    members::change_role(&p, &as_owner, admin, Role::Owner, None)
        .await
        .unwrap();
    members::change_role(&p, &as_owner, owner, Role::Viewer, None)
        .await
        .unwrap();
    let as_viewer = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    members::remove_member(&p, &as_viewer, owner, None)
        .await
        .unwrap();
    assert!(matches!(
        tenancy::membership(&p, organization_id, owner).await,
        Err(Error::NotFound)
    ));
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE organization_id = $1 ORDER BY id")
            .bind(organization_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        actions.ends_with(&[
            "member.role_changed".to_owned(),
            "member.role_changed".to_owned(),
            "member.left".to_owned()
        ]),
        "{actions:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn api_keys_authenticate_until_revoked(pool: PgPool) {
    let p = platform(pool.clone());
    let (owner, organization_id) = user(&p, "owner@example.com", "Keys").await;
    let me: Membership = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    // API access is a Pro feature: a Free organization cannot make a key.
    match api_keys::create(&p, &me, "too early", &[Scope::Read], None).await {
        Err(Error::LimitReached(message)) => assert_eq!(
            message,
            "API access is not part of your plan. Upgrade to Pro or Business to use the API."
        ),
        other => panic!("a Free organization made a key: {other:?}"),
    }
    set_plan(&pool, organization_id, "pro").await;
    let (key, secret) = api_keys::create(&p, &me, "  CI deploys ", &[Scope::Read], None)
        .await
        .unwrap();
    assert_eq!(key.name, "CI deploys");
    assert!(secret.starts_with(&format!("sk_live_{}_", key.prefix)));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM api_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, secret.as_bytes());

    let auth = api_keys::authenticate(&p, &secret).await.unwrap();
    assert_eq!(auth.organization_id, organization_id);
    assert!(auth.require(Scope::Read).is_ok());
    assert!(
        matches!(auth.require(Scope::Write), Err(Error::Forbidden)),
        "a read key cannot write"
    );
    assert!(
        api_keys::list(&p, &me).await.unwrap()[0]
            .last_used_at
            .is_some()
    );
    // After a downgrade the key still exists but the API refuses it, saying why.
    set_plan(&pool, organization_id, "free").await;
    match api_keys::authenticate(&p, &secret).await {
        Err(AuthFailure::Plan(Error::LimitReached(message))) => {
            assert!(message.contains("Upgrade to Pro or Business"), "{message}")
        }
        other => panic!("a Free organization's key was accepted: {other:?}"),
    }
    set_plan(&pool, organization_id, "pro").await;

    let last = if secret.ends_with('x') { 'y' } else { 'x' };
    let tampered = format!("{}{last}", &secret[..secret.len() - 1]);
    assert!(matches!(
        api_keys::authenticate(&p, &tampered).await,
        Err(AuthFailure::Key(KeyError::Unknown))
    ));
    assert!(matches!(
        api_keys::authenticate(&p, "Bearer nonsense").await,
        Err(AuthFailure::Key(KeyError::Malformed))
    ));
    api_keys::revoke(&p, &me, key.id, None).await.unwrap();
    assert!(matches!(
        api_keys::authenticate(&p, &secret).await,
        Err(AuthFailure::Key(KeyError::Revoked))
    ));

    for (name, scopes) in [
        ("", vec![Scope::Read]),
        (&*"x".repeat(61), vec![Scope::Read]),
        ("ok", vec![]),
    ] {
        let error = api_keys::create(&p, &me, name, &scopes, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Invalid { .. }),
            "{name:?} {scopes:?}"
        );
    }
    let log = audit::recent(&p, &me, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(&actions[..2], ["api_key.revoked", "api_key.created"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_audit_log_shows_members_sign_ins_to_their_organizations_only(pool: PgPool) {
    let p = platform(pool.clone());
    let (alice, org_a) = user(&p, "alice@example.com", "Alpha").await;
    let (bob, org_b) = user(&p, "bob@example.com", "Beta").await;
    let ip = Some("198.51.100.7".parse().unwrap());
    sessions::sign_in(&p, "alice@example.com", "correct horse battery", ip)
        .await
        .unwrap();
    assert!(
        sessions::sign_in(&p, "alice@example.com", "wrong password", ip)
            .await
            .is_err()
    );

    let as_alice = tenancy::membership(&p, org_a, alice).await.unwrap();
    let log = audit::recent(&p, &as_alice, 10).await.unwrap();
    let entries: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|l| (l.action.as_str(), l.ip.as_deref()))
        .take(2)
        .collect();
    assert_eq!(
        entries,
        [
            ("user.sign_in_failed", Some("198.51.100.7")),
            ("user.signed_in", Some("198.51.100.7"))
        ]
    );
    let as_bob = tenancy::membership(&p, org_b, bob).await.unwrap();
    let bobs: Vec<String> = audit::recent(&p, &as_bob, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.action)
        .collect();
    assert!(
        !bobs
            .iter()
            .any(|a| a == "user.signed_in" || a == "user.sign_in_failed"),
        "{bobs:?}"
    );
}

/// Fires `n` copies of `attempt` at once and returns how many succeeded; the others must
/// have been refused by the plan's limit.
async fn successes_at_once<F, Fut, T>(n: usize, attempt: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    let mut ok = 0;
    for result in test_support::at_once(n, attempt).await {
        match result {
            Ok(_) => ok += 1,
            Err(Error::LimitReached(_)) => {}
            Err(other) => panic!("refused for another reason: {other:?}"),
        }
    }
    ok
}

#[sqlx::test(migrations = "../migrations")]
async fn parallel_invitations_and_api_keys_stop_exactly_at_the_limit(pool: PgPool) {
    let p = platform(pool.clone());
    for round in 0..20 {
        // Pro: 3 members, the owner is one, so room for two invitations.
        let (owner, organization_id) =
            user(&p, &format!("owner{round}@example.com"), "Limits").await;
        set_plan(&pool, organization_id, "pro").await;
        let me = tenancy::membership(&p, organization_id, owner)
            .await
            .unwrap();
        let invited = successes_at_once(16, |i| {
            let p = p.clone();
            async move {
                let email = Email::parse(&format!("guest{i}@example.com")).unwrap();
                members::invite(&p, &me, &email, Role::Viewer, None).await
            }
        })
        .await;
        assert_eq!(invited, 2, "round {round}");
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM invitations WHERE organization_id = $1 AND revoked_at IS NULL",
        )
        .bind(organization_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(open, 2, "round {round}");

        let made = successes_at_once(api_keys::MAX_ACTIVE_KEYS as usize + 6, |i| {
            let p = p.clone();
            async move { api_keys::create(&p, &me, &format!("key {i}"), &[Scope::Read], None).await }
        })
        .await;
        assert_eq!(made as i64, api_keys::MAX_ACTIVE_KEYS, "round {round}");
    }
}

/// The token of the newest invitation mailed to `email`.
async fn invitation_token(p: &Platform, email: &str) -> String {
    let (_, body) = mail::latest_to(&p.db, email).await.unwrap().unwrap();
    body.split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an invitation link")
        .to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn an_invitation_is_void_once_its_inviter_can_no_longer_grant_its_role(pool: PgPool) {
    let p = platform(pool.clone());
    let (owner, organization_id) = user(&p, "owner@example.com", "Void").await;
    set_plan(&pool, organization_id, "business").await;
    let owner = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    for (case, demote_to) in [("removed", None), ("demoted", Some(Role::Editor))] {
        let (admin, _) = user(&p, &format!("admin-{case}@example.com"), "Own").await;
        add_member(&pool, organization_id, admin, Role::Admin).await;
        let admin_membership = tenancy::membership(&p, organization_id, admin)
            .await
            .unwrap();
        let guest = format!("guest-{case}@example.com");
        members::invite(
            &p,
            &admin_membership,
            &Email::parse(&guest).unwrap(),
            Role::Admin,
            None,
        )
        .await
        .unwrap();
        let token = invitation_token(&p, &guest).await;
        match demote_to {
            None => members::remove_member(&p, &owner, admin, None)
                .await
                .unwrap(),
            Some(role) => members::change_role(&p, &owner, admin, role, None)
                .await
                .unwrap(),
        }
        // Gone from the pending list, and the link grants nothing.
        let pending = members::pending_invitations(&p, &owner).await.unwrap();
        assert!(
            pending.iter().all(|i| i.email != guest),
            "{case}: {pending:?}"
        );
        let (guest_id, _) = user(&p, &guest, "Guest's own").await;
        let error = members::accept_invitation(&p, &token, guest_id, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::TokenInvalid | Error::Conflict(_)),
            "{case}: {error:?}"
        );
        assert!(
            tenancy::membership(&p, organization_id, guest_id)
                .await
                .is_err(),
            "{case}: the guest got in"
        );
    }

    // Even an invitation left open (its inviter's role changed outside these functions)
    // is checked against the inviter's role when it is accepted.
    let (admin, _) = user(&p, "admin-direct@example.com", "Own").await;
    add_member(&pool, organization_id, admin, Role::Admin).await;
    let admin_membership = tenancy::membership(&p, organization_id, admin)
        .await
        .unwrap();
    members::invite(
        &p,
        &admin_membership,
        &Email::parse("guest-direct@example.com").unwrap(),
        Role::Admin,
        None,
    )
    .await
    .unwrap();
    let token = invitation_token(&p, "guest-direct@example.com").await;
    sqlx::query("UPDATE organization_members SET role = 'viewer' WHERE user_id = $1")
        .bind(admin)
        .execute(&pool)
        .await
        .unwrap();
    let (guest_id, _) = user(&p, "guest-direct@example.com", "Guest's own").await;
    match members::accept_invitation(&p, &token, guest_id, None).await {
        Err(Error::Conflict(message)) => {
            assert!(
                message.contains("can no longer grant this role"),
                "{message}"
            )
        }
        other => panic!("accepted: {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn owners_and_admins_revoke_and_resend_pending_invitations(pool: PgPool) {
    let p = platform(pool.clone());
    let (owner, organization_id) = user(&p, "owner@example.com", "Invites").await;
    set_plan(&pool, organization_id, "business").await;
    let owner = tenancy::membership(&p, organization_id, owner)
        .await
        .unwrap();
    let invite = |email: &'static str, role: Role| {
        let p = p.clone();
        async move {
            members::invite(&p, &owner, &Email::parse(email).unwrap(), role, None)
                .await
                .unwrap()
                .0
        }
    };
    let revoked = invite("gone@example.com", Role::Editor).await;
    let resent = invite("again@example.com", Role::Editor).await;
    let for_owner = invite("boss@example.com", Role::Owner).await;
    let old_token = invitation_token(&p, "again@example.com").await;
    let revoked_token = invitation_token(&p, "gone@example.com").await;

    // A viewer may look but not act; an admin may not touch an owner's invitation; another
    // organization does not see them at all.
    let (viewer, _) = user(&p, "viewer@example.com", "Own").await;
    add_member(&pool, organization_id, viewer, Role::Viewer).await;
    let viewer = tenancy::membership(&p, organization_id, viewer)
        .await
        .unwrap();
    assert!(matches!(
        members::revoke_invitation(&p, &viewer, revoked.id, None).await,
        Err(Error::Forbidden)
    ));
    let (admin, _) = user(&p, "admin@example.com", "Own").await;
    add_member(&pool, organization_id, admin, Role::Admin).await;
    let admin = tenancy::membership(&p, organization_id, admin)
        .await
        .unwrap();
    assert!(matches!(
        members::revoke_invitation(&p, &admin, for_owner.id, None).await,
        Err(Error::Forbidden)
    ));
    let (stranger, stranger_org) = user(&p, "stranger@example.com", "Elsewhere").await;
    let stranger = tenancy::membership(&p, stranger_org, stranger)
        .await
        .unwrap();
    assert!(matches!(
        members::revoke_invitation(&p, &stranger, revoked.id, None).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        members::resend_invitation(&p, &stranger, resent.id, None).await,
        Err(Error::NotFound)
    ));

    members::revoke_invitation(&p, &admin, revoked.id, None)
        .await
        .unwrap();
    let (gone, _) = user(&p, "gone@example.com", "Own").await;
    assert!(matches!(
        members::accept_invitation(&p, &revoked_token, gone, None).await,
        Err(Error::TokenInvalid)
    ));
    assert!(matches!(
        members::revoke_invitation(&p, &admin, revoked.id, None).await,
        Err(Error::NotFound)
    ));

    let (again, new_token) = members::resend_invitation(&p, &admin, resent.id, None)
        .await
        .unwrap();
    assert_eq!(again.email, "again@example.com");
    assert_eq!(invitation_token(&p, "again@example.com").await, new_token);
    let (again_user, _) = user(&p, "again@example.com", "Own").await;
    assert!(matches!(
        members::accept_invitation(&p, &old_token, again_user, None).await,
        Err(Error::TokenInvalid)
    ));
    members::accept_invitation(&p, &new_token, again_user, None)
        .await
        .unwrap();
    let pending: Vec<String> = members::pending_invitations(&p, &owner)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.email)
        .collect();
    assert_eq!(pending, ["boss@example.com"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn customers_read_the_audit_log_in_plain_words_without_the_platforms_bookkeeping(
    pool: PgPool,
) {
    let p = platform(pool.clone());
    let (alice, org) = user(&p, "alice@example.com", "Alpha").await;
    let entries = [
        audit::Entry::new("member.role_changed", audit::Actor::User(alice))
            .organization(org)
            .subject_user(alice),
        audit::Entry::new("billing.drift_repaired", audit::Actor::System)
            .organization(org)
            .subject("site:blog".into()),
        audit::Entry::new("billing.plan_changed", audit::Actor::System)
            .organization(org)
            .subject("plan:pro".into()),
    ];
    for entry in entries {
        audit::record(&pool, entry).await.unwrap();
    }
    let me = tenancy::membership(&p, org, alice).await.unwrap();
    let read = |reader| {
        let p = p.clone();
        async move {
            audit::recent_for(&p, &me, 3, reader)
                .await
                .unwrap()
                .into_iter()
                .map(|l| (l.event, l.actor.unwrap_or_default(), l.subject))
                .collect::<Vec<_>>()
        }
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        read(audit::Reader::Customer).await[..2],
        [
            ("Plan changed".into(), String::new(), some("pro plan")),
            (
                "Role changed".into(),
                "alice@example.com".into(),
                some("alice@example.com")
            ),
        ]
    );
    // Operators also read the bookkeeping, under its code, and the subject as recorded.
    assert_eq!(
        read(audit::Reader::Operator).await[1],
        (
            "billing.drift_repaired".into(),
            String::new(),
            some("site:blog")
        )
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn someone_invited_signs_up_from_the_link_and_joins_without_an_organization_of_their_own(
    pool: PgPool,
) {
    use platform::identity::signup::sign_up_invited;
    let p = platform(pool.clone());
    let (alice, org) = user(&p, "alice@example.com", "Alpha").await;
    sqlx::query("UPDATE organizations SET plan_id = 'pro' WHERE id = $1")
        .bind(org)
        .execute(&pool)
        .await
        .unwrap();
    let me = tenancy::membership(&p, org, alice).await.unwrap();
    let carol = Email::parse("carol@example.com").unwrap();
    let (_, token) = members::invite(&p, &me, &carol, Role::Editor, None)
        .await
        .unwrap();
    let preview = members::preview_invitation(&p, &token).await.unwrap();
    assert_eq!(
        (
            preview.organization.as_str(),
            preview.email.as_str(),
            preview.role
        ),
        ("Alpha", "carol@example.com", Role::Editor)
    );
    assert!(!preview.account_exists);
    let name = || PersonName::parse("Carol").unwrap();
    let password = || NewPassword::parse("correct horse battery").unwrap();

    // Two submissions of the form at once (a double click): one account, one membership.
    let results = test_support::at_once(4, |_| {
        let (p, token) = (p.clone(), token.clone());
        async move { sign_up_invited(&p, &token, name(), password(), None).await }
    })
    .await;
    let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(made.len(), 1, "{results:?}");
    assert_eq!(made[0].organization_id, org);
    let joined = tenancy::membership(&p, org, made[0].user_id).await.unwrap();
    assert_eq!(joined.role, Role::Editor);
    let (organizations, verified): (i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM organization_members WHERE user_id = u.id),
                u.email_verified_at IS NOT NULL
           FROM users u WHERE u.email = 'carol@example.com'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (organizations, verified),
        (1, true),
        "no organization of her own"
    );
    // The link is used now; an invitation to an existing account asks to sign in.
    assert!(matches!(
        members::preview_invitation(&p, &token).await,
        Err(Error::TokenUsed)
    ));
    user(&p, "bob@example.com", "Beta").await;
    let (_, token) = members::invite(
        &p,
        &me,
        &Email::parse("bob@example.com").unwrap(),
        Role::Viewer,
        None,
    )
    .await
    .unwrap();
    assert!(
        members::preview_invitation(&p, &token)
            .await
            .unwrap()
            .account_exists
    );
    let refused = sign_up_invited(&p, &token, name(), password(), None).await;
    assert!(
        matches!(&refused, Err(Error::Conflict(m)) if m.contains("sign in")),
        "{refused:?}"
    );
    assert!(matches!(
        sign_up_invited(&p, "no-such-token", name(), password(), None).await,
        Err(Error::TokenInvalid)
    ));
}
