//! Development mode's start-up: the demo account, and the message `make dev` ends with.

use std::net::SocketAddr;

use platform::development::{DemoAccount, ensure_demo_account};
use platform::{Config, Platform};

/// What the developer is told once the server listens.
#[derive(Debug)]
pub struct Welcome {
    demo: DemoAccount,
    public_url: String,
    site_url: String,
    proxy: Option<SocketAddr>,
}

/// Makes sure the demo account exists (development mode only).
pub async fn prepare(
    platform: &Platform,
    config: &Config,
    proxy: Option<&crate::RunningProxy>,
) -> anyhow::Result<Welcome> {
    let demo = ensure_demo_account(platform).await?;
    Ok(Welcome {
        demo,
        public_url: platform.link(""),
        site_url: config.provision.site_url.clone(),
        proxy: proxy.map(|p| p.http),
    })
}

impl Welcome {
    /// The lines printed last at start-up (stdout, so they stand out of the log).
    pub fn lines(&self, listening: SocketAddr) -> Vec<String> {
        let url = &self.public_url;
        let mut lines = vec![
            String::new(),
            format!("  Slipway is running in development mode on {listening}."),
            String::new(),
            format!("  1. Open {url}/login"),
        ];
        match &self.demo.password {
            Some(password) => lines.push(format!(
                "     Sign in as {} with the password {password}  (shown this once)",
                self.demo.email
            )),
            None => lines.push(format!(
                "     Sign in as {} (its password was printed at the first start; to set a new\n     one, ask for a reset link on {url}/reset and open it from the mail page)",
                self.demo.email
            )),
        }
        lines.push(format!(
            "     It is an operator, and its organization is on the {} plan: it can create sites.",
            self.demo.plan_name
        ));
        lines.push(format!(
            "  2. Create a site under Sites; it is served at {}",
            self.site_url.replace("{slug}", "<slug>")
        ));
        if self.proxy.is_none() {
            lines.push("     (proxy.enabled is false: this process serves no sites)".to_owned());
        }
        lines.push(format!(
            "  3. Mail (sign-up verification, invitations, resets) is not sent: read it at {url}/dev/mail"
        ));
        lines.push(
            "  Billing runs in local mode: `slipway admin set-plan --org SLUG --plan ID` (Stripe: docs/billing.md)".to_owned(),
        );
        lines.push(String::new());
        lines
    }

    pub fn print(&self, listening: SocketAddr) {
        println!("{}", self.lines(listening).join("\n"));
    }
}
