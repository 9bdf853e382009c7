//! A site's environment settings against the real database: who may read and change them,
//! what is refused, secrets that are sealed and never shown, a deployment only when
//! something changed, and the same form sent at once applied once.

use std::collections::BTreeMap;

use platform::sites::settings::{self, SettingView};
use platform::tenancy::{Membership, Role, audit};
use platform::{Error, Platform};
use sqlx::PgPool;
use test_support::{at_once, member, owner, owner_of_another, site, test_platform};
use uuid::Uuid;

fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn find<'a>(views: &'a [SettingView], key: &str) -> &'a SettingView {
    views.iter().find(|view| view.key == key).unwrap()
}

async fn nothing_set(p: &Platform, by: &Membership, site_id: Uuid) -> bool {
    settings::list(p, by, site_id)
        .await
        .unwrap()
        .iter()
        .all(|v| !v.is_set)
}

/// The reasons of the site's deployments, newest first.
async fn reasons(p: &Platform, site_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT reason FROM deployments WHERE site_id = $1 ORDER BY generation DESC")
        .bind(site_id)
        .fetch_all(&p.db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn admins_set_a_sites_settings_and_secrets_are_never_shown(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let admin = member(&p, &owner, Role::Admin).await;
    let editor = member(&p, &owner, Role::Editor).await;
    let viewer = member(&p, &owner, Role::Viewer).await;
    let site_id = site(&p, &owner, "harbour").await;

    // Every member reads what the template offers; nothing is set yet.
    let views = settings::list(&p, &viewer, site_id).await.unwrap();
    let keys: Vec<&str> = views.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(keys, ["SITE_TAGLINE", "SITE_PASSWORD"]);
    assert!(views.iter().all(|v| !v.is_set && v.value.is_none()));

    // Editors and viewers change nothing.
    let values = form(&[
        ("SITE_TAGLINE", "Notes from the sea"),
        ("SITE_PASSWORD", "correct horse"),
    ]);
    for who in [&editor, &viewer] {
        assert!(matches!(
            settings::save(&p, who, site_id, &values, &[]).await,
            Err(Error::Forbidden)
        ));
    }

    let changed = settings::save(&p, &admin, site_id, &values, &[])
        .await
        .unwrap();
    assert_eq!(changed, ["SITE_TAGLINE", "SITE_PASSWORD"]);
    let views = settings::list(&p, &viewer, site_id).await.unwrap();
    let tagline = find(&views, "SITE_TAGLINE");
    assert_eq!(tagline.value.as_deref(), Some("Notes from the sea"));
    let password = find(&views, "SITE_PASSWORD");
    assert!(password.secret && password.is_set);
    assert_eq!(password.value, None, "a secret is never shown again");
    // Stored sealed: the database holds no trace of it.
    let (plain, sealed): (Option<String>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT value, value_sealed FROM site_settings WHERE site_id = $1 AND key = 'SITE_PASSWORD'",
    )
    .bind(site_id)
    .fetch_one(&p.db)
    .await
    .unwrap();
    assert_eq!(plain, None);
    let sealed = sealed.unwrap();
    assert!(
        !sealed
            .windows(b"correct horse".len())
            .any(|w| w == b"correct horse")
    );
    assert_eq!(reasons(&p, site_id).await, ["settings", "create"]);

    // The same form again changes nothing and deploys nothing; an empty secret field
    // keeps the secret, an empty plain one unsets its setting.
    assert!(
        settings::save(&p, &admin, site_id, &values, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(reasons(&p, site_id).await.len(), 2);
    let changed = settings::save(
        &p,
        &owner,
        site_id,
        &form(&[("SITE_TAGLINE", "  "), ("SITE_PASSWORD", "")]),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(changed, ["SITE_TAGLINE"]);
    let views = settings::list(&p, &owner, site_id).await.unwrap();
    assert!(!find(&views, "SITE_TAGLINE").is_set);
    assert!(find(&views, "SITE_PASSWORD").is_set);
    // A secret is removed on purpose only.
    let changed = settings::save(
        &p,
        &owner,
        site_id,
        &BTreeMap::new(),
        &["SITE_PASSWORD".to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(changed, ["SITE_PASSWORD"]);
    assert!(nothing_set(&p, &owner, site_id).await);

    // Every mistake at once, each at its setting; nothing is saved.
    let refused = settings::save(
        &p,
        &admin,
        site_id,
        &form(&[("SITE_TAGLINE", "two\nlines"), ("SITE_PASSWORD", "short")]),
        &[],
    )
    .await;
    match refused {
        Err(Error::InvalidFields(fields)) => {
            let keys: Vec<&str> = fields.iter().map(|(key, _)| key.as_ref()).collect();
            assert_eq!(keys, ["SITE_TAGLINE", "SITE_PASSWORD"]);
            assert!(fields[1].1.contains("at least 8"), "{fields:?}");
        }
        other => panic!("{other:?}"),
    }
    // Only what the template offers: no way to set another variable of the container.
    let refused = settings::save(
        &p,
        &admin,
        site_id,
        &form(&[("DATABASE_URL", "postgres://elsewhere")]),
        &[],
    )
    .await;
    assert!(
        matches!(&refused, Err(Error::Invalid { field, .. }) if field == "DATABASE_URL"),
        "{refused:?}"
    );
    assert!(nothing_set(&p, &owner, site_id).await);

    // Another organization cannot even find the site.
    let outsider = owner_of_another(&p).await;
    assert!(matches!(
        settings::list(&p, &outsider, site_id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        settings::save(&p, &outsider, site_id, &values, &[]).await,
        Err(Error::NotFound)
    ));

    // The audit log says what changed, in words, never a secret's value.
    let log = audit::recent(&p, &owner, 20).await.unwrap();
    assert!(
        log.iter().any(|line| line.event == "Site settings changed"),
        "{log:?}"
    );
    let raw: Vec<String> = sqlx::query_scalar(
        "SELECT details::text FROM audit_log WHERE action = 'site.settings' AND organization_id = $1",
    )
    .bind(owner.organization_id)
    .fetch_all(&p.db)
    .await
    .unwrap();
    assert_eq!(raw.len(), 3, "{raw:?}");
    assert!(raw.iter().all(|details| !details.contains("correct horse")));
    assert!(raw[0].contains("SITE_PASSWORD") || raw[2].contains("SITE_PASSWORD"));
}

/// The same settings sent at once (a double click, two tabs): saved once, one deployment.
#[sqlx::test(migrations = "../migrations")]
async fn the_same_settings_sent_at_once_deploy_once(pool: PgPool) {
    let p = test_platform(pool);
    let owner = owner(&p).await;
    test_support::set_plan(&p, &owner, "pro").await;
    let site_id = site(&p, &owner, "twice").await;
    for round in 0..5 {
        let values = form(&[("SITE_TAGLINE", &format!("Round {round}"))]);
        let outcomes = at_once(6, |_| {
            let (p, owner, values) = (p.clone(), owner, values.clone());
            async move { settings::save(&p, &owner, site_id, &values, &[]).await }
        })
        .await;
        let changed: Vec<_> = outcomes
            .iter()
            .map(|outcome| outcome.as_ref().unwrap().len())
            .collect();
        assert_eq!(
            changed.iter().filter(|&&n| n == 1).count(),
            1,
            "round {round}: exactly one save changed something: {changed:?}"
        );
        assert_eq!(
            reasons(&p, site_id).await.len(),
            round + 2,
            "round {round}: one deployment per change"
        );
    }
}
