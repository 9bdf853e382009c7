//! A newcomer's first minutes on a development server (`make dev`): the start-up message
//! names a demo operator and its password; signing in with them reaches a dashboard whose
//! organization can create sites; mail never leaves the machine and is read on the local
//! mail page, links and all.

use anyhow::{Context, Result, ensure};
use end2end::{Harness, JavaScript};

const DEMO: &str = "demo@slipway.localhost";

#[tokio::test]
async fn the_demo_operator_signs_in_creates_sites_and_reads_mail_locally() -> Result<()> {
    let mut h = Harness::start("newcomer_journey", JavaScript::Enabled).await?;
    let welcome = h.server_output()?;
    ensure!(
        welcome.contains(&format!("Open {}/login", h.url(""))),
        "{welcome}"
    );
    let password = welcome
        .split("with the password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .context("the welcome prints the demo password")?
        .to_owned();

    // The first page the welcome points at.
    h.visit("/login").await?;
    h.wait_hydrated().await?;
    ensure!(
        !h.texts("[data-dev-mode]").await?.is_empty(),
        "the development bar shows"
    );
    h.screenshot("first-page").await?;
    h.submit("login", &[("email", DEMO), ("password", &password)])
        .await?;
    h.wait_for_texts("main h1", &["Overview"]).await?;
    h.screenshot("demo-dashboard").await?;

    // The demo organization is on the largest plan: a site can be created at once.
    h.visit("/dashboard/sites").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing("main", "Business plan").await?;
    h.visit("/dashboard/sites/new").await?;
    h.wait_hydrated().await?;
    ensure!(
        !h.texts(r#"form[data-form="create-site"]"#)
            .await?
            .is_empty(),
        "the new-site form is there"
    );

    // A password reset is mailed... to the local mail page.
    h.visit("/logout").await?;
    h.visit("/reset").await?;
    h.wait_hydrated().await?;
    h.submit("request-reset", &[("email", DEMO)]).await?;
    h.wait_for_text_containing("main", "If an account").await?;
    h.visit("/dev/mail").await?;
    h.wait_hydrated().await?;
    h.wait_for_text_containing("[data-mail] h2", "Reset your password")
        .await?;
    h.screenshot("dev-mail").await?;
    let errors = h.console_errors().await?;
    ensure!(errors.is_empty(), "console errors: {errors:#?}");
    h.click(r#"[data-mail] a[href*="/reset?token="]"#).await?;
    h.wait_for_texts(r#"form[data-form="reset"] button"#, &["Set new password"])
        .await?;
    ensure!(h.path().await?.starts_with("/reset?token="));
    h.finish().await
}

#[tokio::test]
async fn without_javascript_the_mail_page_shows_mail_and_its_links() -> Result<()> {
    let mut h = Harness::start("newcomer_no_js", JavaScript::Disabled).await?;
    h.visit("/reset").await?;
    h.submit("request-reset", &[("email", DEMO)]).await?;
    h.visit("/dev/mail").await?;
    let subjects = h.texts("[data-mail] h2").await?;
    ensure!(
        subjects.iter().any(|s| s == "Reset your password"),
        "{subjects:?}"
    );
    ensure!(!h.texts("[data-dev-mode]").await?.is_empty());
    h.screenshot("dev-mail-no-js").await?;
    h.click(r#"[data-mail] a[href*="/reset?token="]"#).await?;
    ensure!(h.path().await?.starts_with("/reset?token="));
    h.finish().await
}
