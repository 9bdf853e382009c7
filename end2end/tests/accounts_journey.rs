//! The accounts journey in Chromium: sign up, verify by the mailed link, create an
//! organization, invite, accept in a second browser, and the viewer's limits.

use std::time::Duration;

use anyhow::{Result, ensure};
use end2end::{Harness, JavaScript, submit_in};
use fantoccini::Locator;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

async fn sign_up(h: &Harness, name: &str, email: &str, organization: &str) -> Result<()> {
    h.submit(
        "signup",
        &[
            ("name", name),
            ("email", email),
            ("password", PASSWORD),
            ("organization", organization),
        ],
    )
    .await
}

#[tokio::test]
async fn sign_up_verify_invite_accept_and_the_viewer_is_read_only() -> Result<()> {
    let mut h = Harness::start("accounts_journey", JavaScript::Enabled).await?;

    // Sign up; field errors first, then success.
    h.visit("/signup").await?;
    h.wait_hydrated().await?;
    h.submit(
        "signup",
        &[
            ("name", "Ada"),
            ("email", "ada@example"),
            ("password", "short"),
            ("organization", "Analytical"),
        ],
    )
    .await?;
    h.wait_for_texts(
        r#"[data-field-error="email"]"#,
        &["Enter an email address like name@example.com."],
    )
    .await?;
    h.screenshot("signup-errors").await?;
    sign_up(&h, "Ada Lovelace", "ada@example.com", "Analytical Engines").await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    ensure!(
        !h.texts("[data-unverified]").await?.is_empty(),
        "asks to verify"
    );
    h.screenshot("dashboard-unverified").await?;

    // Verify through the link in the outbox.
    let verify = h.mailed_link("ada@example.com", "/verify?token=").await?;
    h.visit(&verify).await?;
    h.wait_hydrated().await?;
    h.submit("verify", &[]).await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    ensure!(h.texts("[data-unverified]").await?.is_empty(), "verified");
    // The same link again: the address is confirmed, and the page says so.
    h.visit(&verify).await?;
    h.wait_hydrated().await?;
    h.submit("verify", &[]).await?;
    h.wait_for_text_containing("[data-form-error]", "already confirmed")
        .await?;
    h.screenshot("verify-again").await?;

    // A second organization, then the member limit of its free plan, then an upgrade.
    h.visit("/dashboard/settings").await?;
    h.wait_hydrated().await?;
    h.submit("create-organization", &[("name", "Difference Engines")])
        .await?;
    h.wait_for_texts(
        "[data-organization] dd:nth-of-type(1)",
        &["Difference Engines"],
    )
    .await?;
    h.screenshot("settings-new-organization").await?;
    h.visit("/dashboard/team").await?;
    h.wait_hydrated().await?;
    h.submit(
        "invite",
        &[("email", "bob@example.com"), ("role", "viewer")],
    )
    .await?;
    h.wait_for_text_containing("[data-form-error]", "Upgrade your plan")
        .await?;
    h.screenshot("team-limit").await?;
    // Local billing: the operator assigns a plan (issue 6 adds the command for it).
    h.sql("UPDATE organizations SET plan_id = 'pro' WHERE name = 'Difference Engines'")
        .await?;
    h.visit("/dashboard/team").await?;
    h.wait_hydrated().await?;
    h.submit(
        "invite",
        &[("email", "bob@example.com"), ("role", "viewer")],
    )
    .await?;
    h.wait_for_texts("[data-notice]", &["Invitation sent to bob@example.com."])
        .await?;
    h.wait_for_text_containing("[data-invitations] li", "bob@example.com as viewer")
        .await?;
    // Sent: the form is empty again, ready for the next person.
    let typed = h
        .browser
        .execute(
            r#"return document.querySelector('form[data-form="invite"] [name="email"]').value;"#,
            vec![],
        )
        .await?;
    ensure!(typed == "", "the invite form still holds {typed}");
    h.screenshot("team-invited").await?;

    // Pending invitations are managed: one revoked, Bob's sent again (the new link is the
    // one he will use; the old one stops working).
    h.submit(
        "invite",
        &[("email", "carol@example.com"), ("role", "editor")],
    )
    .await?;
    h.wait_for_text_containing("[data-invitations] li", "carol@example.com as editor")
        .await?;
    h.click(r#"[data-invitation="carol@example.com"] form[data-form="revoke-invitation"] button"#)
        .await?;
    let mut waited = 0;
    while h
        .texts("[data-invitations] li")
        .await?
        .iter()
        .any(|i| i.contains("carol@"))
    {
        ensure!(waited < 50, "the revoked invitation stays listed");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_link = h
        .mailed_link("bob@example.com", "/invitations/accept?token=")
        .await?;
    h.click(r#"[data-invitation="bob@example.com"] form[data-form="resend-invitation"] button"#)
        .await?;
    h.wait_for_text_containing("[data-notice]", "sent again with a new link")
        .await?;
    h.screenshot("team-invitations").await?;
    ensure!(
        h.mailed_link("bob@example.com", "/invitations/accept?token=")
            .await?
            != first_link,
        "a new link was mailed"
    );

    // Bob, in a browser of his own and without an account: the link asks only for his name
    // and a password (the invited address; no organization of his own), and he lands in
    // the inviting organization.
    let bob = h.second_browser().await?;
    let accept = h
        .mailed_link("bob@example.com", "/invitations/accept?token=")
        .await?;
    bob.goto(&h.url(&accept)).await?;
    bob.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(r#"#app[data-hydrated="true"]"#))
        .await?;
    let intro = bob
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-invitation-for]"))
        .await?
        .text()
        .await?;
    ensure!(
        intro.contains("join Difference Engines as viewer") && intro.contains("bob@example.com"),
        "{intro}"
    );
    std::fs::write(
        h.screenshot_path("invited-sign-up"),
        bob.screenshot().await?,
    )?;
    submit_in(
        &bob,
        "invited-sign-up",
        &[("name", "Bob"), ("password", PASSWORD)],
    )
    .await?;
    bob.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-checklist]"))
        .await?;
    let organizations = bob
        .execute(
            "return Array.from(document.querySelectorAll('#organization-switcher option'))
                .map(o => o.textContent.trim());",
            vec![],
        )
        .await?;
    ensure!(
        organizations == json!(["Difference Engines (viewer)"]),
        "only the inviting organization: {organizations}"
    );
    bob.goto(&h.url("/dashboard/team")).await?;
    bob.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(r#"[data-members]"#))
        .await?;
    let page = bob.source().await?;
    ensure!(
        page.contains("Difference Engines · your role: viewer"),
        "bob joined as viewer"
    );
    ensure!(
        !page.contains(r#"data-form="invite""#),
        "no invite form for a viewer"
    );
    ensure!(
        !page.contains(r#"data-form="remove-member""#),
        "no remove buttons"
    );
    ensure!(
        !page.contains(r#"data-form="change-role""#),
        "no role controls"
    );
    ensure!(page.contains(r#"data-form="leave""#), "a viewer may leave");
    std::fs::write(h.screenshot_path("viewer-team"), bob.screenshot().await?)?;

    // A direct call from Bob's browser (his cookie, our origin) is refused by the server.
    let result = bob
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const body = new URLSearchParams({ email: "eve@example.com", role: "viewer" });
               fetch("/api/team/invite", { method: "POST", body })
                 .then(async r => done([r.status, await r.text()]));"#,
            vec![],
        )
        .await?;
    ensure!(result[0] == json!(403), "status: {result}");
    ensure!(
        result[1]
            .as_str()
            .unwrap_or_default()
            .contains("Your role does not allow this.")
    );
    h.visit("/dashboard/team").await?;
    h.wait_hydrated().await?;
    let invitations = h.texts("[data-invitations] li").await?;
    ensure!(
        !invitations.iter().any(|i| i.contains("eve@")),
        "nothing changed: {invitations:?}"
    );
    let members = h.texts("[data-member] [data-role]").await?;
    ensure!(members == ["owner", "viewer"], "{members:?}");
    // The only owner is not offered "Leave" (the server would refuse it), but told why.
    ensure!(
        h.texts(r#"form[data-form="leave"]"#).await?.is_empty(),
        "no leave form for the only owner"
    );
    h.wait_for_text_containing("[data-leave-blocked]", "only owner")
        .await?;
    h.screenshot("owner-team").await?;

    // The owner's audit log shows what happened.
    h.visit("/dashboard/settings").await?;
    h.wait_hydrated().await?;
    // In plain words: events, people by their address, no codes or ids.
    let events = h.texts("[data-audit] [data-event]").await?;
    for event in ["Member joined", "Member invited", "Organization created"] {
        ensure!(
            events.iter().any(|a| a == event),
            "{event} missing from {events:?}"
        );
    }
    let log = h.texts("[data-audit] tbody").await?.join("\n");
    ensure!(
        !log.contains("member.") && !log.contains("user:"),
        "codes or ids in the customer's audit log: {log}"
    );
    ensure!(
        log.contains("bob@example.com"),
        "the invited member by address: {log}"
    );
    h.screenshot("settings-audit").await?;

    self_service(&mut h).await?;
    bob.close().await?;
    h.finish().await
}

/// What Ada changes herself: the organization's name, her own name, password and address
/// (confirmed from the mail to the new one), and at last she hands the organization to Bob.
async fn self_service(h: &mut Harness) -> Result<()> {
    h.submit("rename-organization", &[("name", " ")]).await?;
    h.wait_for_text_containing(
        r#"form[data-form="rename-organization"] [data-field-error="name"]"#,
        "Enter a name",
    )
    .await?;
    h.submit("rename-organization", &[("name", "Engines & Co")])
        .await?;
    h.wait_for_text_containing("[data-organization]", "Engines & Co")
        .await?;
    h.wait_for_text_containing("[data-audit] [data-event]", "Organization renamed")
        .await?;

    // Her account: from the address at the top of every dashboard page.
    h.click("[data-user-email]").await?;
    h.wait_for_path("/dashboard/account").await?;
    h.wait_hydrated().await?;
    h.submit("account-name", &[("name", "Augusta Ada King")])
        .await?;
    h.wait_for_text_containing(
        r#"form[data-form="account-name"] [data-done]"#,
        "Augusta Ada King",
    )
    .await?;
    let password = r#"form[data-form="account-password"]"#;
    h.submit(
        "account-password",
        &[
            ("current_password", "not the password"),
            ("new_password", "a brand new password"),
        ],
    )
    .await?;
    h.wait_for_texts(
        &format!(r#"{password} [data-field-error="current_password"]"#),
        &["That is not your current password."],
    )
    .await?;
    h.submit(
        "account-password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
        ],
    )
    .await?;
    h.wait_for_text_containing(&format!("{password} [data-done]"), "Password changed")
        .await?;
    let browsers = h.texts("[data-sessions] [data-session]").await?;
    ensure!(
        browsers.len() == 1 && browsers[0].contains("This browser"),
        "{browsers:?}"
    );
    h.submit(
        "account-email",
        &[
            ("new_email", "countess@example.com"),
            ("password", "a brand new password"),
        ],
    )
    .await?;
    h.wait_for_text_containing(
        r#"form[data-form="account-email"] [data-done]"#,
        "We sent a link to countess@example.com",
    )
    .await?;
    h.screenshot("account").await?;
    let confirm = h
        .mailed_link("countess@example.com", "/verify?token=")
        .await?;
    h.visit(&confirm).await?;
    h.wait_hydrated().await?;
    h.submit("confirm-email-change", &[]).await?;
    h.wait_for_text_containing("[data-notice]", "changed and confirmed")
        .await?;
    h.wait_for_texts("[data-account-email]", &["countess@example.com"])
        .await?;
    h.wait_for_texts("[data-user-email]", &["countess@example.com"])
        .await?;

    // Ownership handed on: asked first; then Bob owns it and she is an admin.
    h.visit("/dashboard/team").await?;
    h.wait_hydrated().await?;
    h.confirm_in_dialog("transfer-ownership", "becomes an owner and you an admin")
        .await?;
    h.wait_for_texts("[data-member] [data-role]", &["admin", "owner"])
        .await?;
    h.screenshot("team-after-transfer").await?;
    Ok(())
}

#[tokio::test]
async fn accounts_work_without_javascript() -> Result<()> {
    let mut h = Harness::start("accounts_no_js", JavaScript::Disabled).await?;
    h.visit("/signup").await?;
    h.submit(
        "signup",
        &[
            ("name", ""),
            ("email", "grace@example.com"),
            ("password", PASSWORD),
            ("organization", "Navy"),
        ],
    )
    .await?;
    h.wait_for_texts(r#"[data-field-error="name"]"#, &["Enter your name."])
        .await?;
    h.assert_field_error("signup", "name", "Enter your name.")
        .await?;
    // Refused without JavaScript, the form comes back as it was sent (the password
    // excepted), at its own clean address.
    h.assert_form_kept(
        "/signup",
        "signup",
        &[
            ("name", ""),
            ("email", "grace@example.com"),
            ("password", ""),
            ("organization", "Navy"),
        ],
    )
    .await?;
    h.screenshot("signup-error").await?;
    // The refusal shows once: the same page opened again is a fresh form.
    h.visit("/signup").await?;
    ensure!(
        h.texts("[data-field-error]").await?.is_empty(),
        "a refusal is shown once"
    );
    h.assert_form_kept("/signup", "signup", &[("email", "")])
        .await?;
    sign_up(&h, "Grace Hopper", "grace@example.com", "Navy").await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;

    // Local billing without JavaScript: a plan request refused (her organization was moved
    // to Pro behind the page's back) keeps its message; the next one is sent.
    h.visit("/dashboard/billing?plan=pro").await?;
    h.sql("UPDATE organizations SET plan_id = 'pro' WHERE name = 'Navy'")
        .await?;
    h.submit("request-plan", &[("message", "We launch on Monday.")])
        .await?;
    h.wait_for_text_containing("[data-form-error]", "already on the Pro plan")
        .await?;
    h.assert_form_kept(
        "/dashboard/billing?plan=pro",
        "request-plan",
        &[("message", "We launch on Monday.")],
    )
    .await?;
    h.screenshot("billing-request-refused").await?;
    h.sql("UPDATE organizations SET plan_id = 'free' WHERE name = 'Navy'")
        .await?;
    h.visit("/dashboard/billing?plan=pro").await?;
    h.submit("request-plan", &[("message", "We launch on Monday.")])
        .await?;
    h.wait_for_text_containing("[data-plan-request=pending]", "You asked for the Pro plan")
        .await?;
    h.screenshot("billing-request-sent").await?;

    h.visit("/dashboard/settings").await?;
    // API access is a Pro feature: the free plan says so, then the operator upgrades.
    h.submit("create-key", &[("name", "deploys")]).await?;
    h.wait_for_text_containing("[data-form-error]", "API access is not part of your plan")
        .await?;
    h.screenshot("settings-no-api").await?;
    h.sql("UPDATE organizations SET plan_id = 'pro' WHERE name = 'Navy'")
        .await?;
    h.visit("/dashboard/settings").await?;
    h.submit("create-key", &[("name", "deploys")]).await?;
    h.wait_for_texts("main h1", &["Settings"]).await?;
    h.screenshot("settings").await?;
    let shown = h.texts("[data-new-key]").await?;
    ensure!(
        shown.len() == 1 && shown[0].starts_with("sk_live_"),
        "the new key is shown once, without JavaScript too: {shown:?}"
    );
    h.visit("/dashboard/settings").await?;
    ensure!(h.texts("[data-new-key]").await?.is_empty(), "and only once");
    let keys = h.texts("[data-keys] tbody tr").await?;
    ensure!(keys.len() == 1 && keys[0].contains("deploys"), "{keys:?}");

    // Her account without JavaScript: a new name is kept.
    h.visit("/dashboard/account").await?;
    h.submit("account-name", &[("name", "Rear Admiral Hopper")])
        .await?;
    let mut name = json!(null);
    for _ in 0..50 {
        name = h
            .browser
            .execute(
                r#"return document.querySelector('form[data-form="account-name"] input[name=name]')?.value;"#,
                vec![],
            )
            .await?;
        if name == json!("Rear Admiral Hopper") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(name == json!("Rear Admiral Hopper"), "{name}");
    ensure!(
        h.path().await?.starts_with("/dashboard/account"),
        "back on the account page"
    );
    h.screenshot("account").await?;

    h.visit("/logout").await?;
    h.submit("logout", &[]).await?;
    h.wait_for_path("/").await?;
    h.visit("/dashboard").await?;
    ensure!(h.path().await? == "/login", "signed out");
    h.submit(
        "login",
        &[
            ("email", "grace@example.com"),
            ("password", "wrong password!"),
        ],
    )
    .await?;
    h.wait_for_texts("[data-form-error]", &["Email or password is incorrect."])
        .await?;
    h.assert_form_kept(
        "/login",
        "login",
        &[("email", "grace@example.com"), ("password", "")],
    )
    .await?;
    h.submit(
        "login",
        &[("email", "grace@example.com"), ("password", PASSWORD)],
    )
    .await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    h.screenshot("signed-in").await?;

    // Removed from her only organization, she is offered to start one, without
    // JavaScript too.
    h.sql(
        "DELETE FROM organization_members WHERE user_id = (SELECT id FROM users WHERE email = 'grace@example.com')",
    )
    .await?;
    h.visit("/dashboard/sites").await?;
    h.wait_for_texts("main h1", &["Create an organization"])
        .await?;
    h.screenshot("no-organization").await?;
    h.submit("create-organization", &[("name", "Fresh Start")])
        .await?;
    h.wait_for_texts("main h1", &["Settings"]).await?;
    h.visit("/dashboard/sites").await?;
    h.wait_for_texts("main h1", &["Sites"]).await?;

    // She deletes the organization (its slug typed), then her account (her password): a
    // plain form post each, and she is signed out for good.
    let slug = h
        .query_strings("SELECT slug FROM organizations WHERE name = 'Fresh Start'")
        .await?
        .remove(0);
    h.visit("/dashboard/settings").await?;
    h.click("[data-delete-organization] summary").await?;
    h.submit("delete-organization", &[("confirm", "fresh")])
        .await?;
    // Refused, the form is open again with its error and what to type.
    h.wait_for_text_containing(
        r#"[data-delete-organization][open] [data-field-error="confirm"]"#,
        &slug,
    )
    .await?;
    h.submit("delete-organization", &[("confirm", &slug)])
        .await?;
    h.wait_for_texts("main h1", &["Create an organization"])
        .await?;
    h.visit("/dashboard/account").await?;
    h.click("[data-delete-account] summary").await?;
    h.submit("account-delete", &[("password", "not my password")])
        .await?;
    h.wait_for_texts(
        r#"[data-delete-account][open] [data-field-error="password"]"#,
        &["That is not your current password."],
    )
    .await?;
    h.submit("account-delete", &[("password", PASSWORD)])
        .await?;
    h.wait_for_text_containing("[data-notice]", "Your account is deleted")
        .await?;
    h.screenshot("account-deleted").await?;
    ensure!(
        h.query_strings("SELECT email FROM users WHERE email = 'grace@example.com'")
            .await?
            .is_empty(),
        "the account is gone"
    );
    h.visit("/dashboard").await?;
    h.wait_for_path("/login").await?;
    h.finish().await
}
