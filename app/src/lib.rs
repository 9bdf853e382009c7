//! Slipway's user interface: pages rendered on the server, hydrated in the browser, and the
//! typed server functions they call. Server functions stay thin: they take the
//! [`state::AppState`] from context and call `platform`. No SQL here.

pub mod account;
pub mod billing;
pub mod dev;
pub mod domains;
pub mod error;
pub mod form_flash;
pub mod format;
pub mod health;
pub mod help;
pub mod operator;
pub mod overview;
pub mod pages;
pub mod plans;
pub mod profile;
#[cfg(feature = "ssr")]
pub mod request;
#[cfg(feature = "ssr")]
pub mod session;
pub mod sites;
#[cfg(feature = "ssr")]
pub mod state;
pub mod usage;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use pages::admin::{AdminPage, OrganizationsPage};
use pages::admin_audit::AuditPage;
use pages::admin_incidents::IncidentsPage;
use pages::admin_jobs::JobsPage;
use pages::admin_organization::OrganizationPage;
use pages::admin_site::AdminSitePage;
use pages::admin_sites::AdminSitesPage;
use pages::admin_subscriptions::SubscriptionsPage;
use pages::admin_users::{UserPage, UsersPage};
use pages::auth::{AcceptInvitationPage, LoginPage, LogoutPage, ResetPage, SignUpPage, VerifyPage};
use pages::billing::BillingPage;
use pages::dashboard::DashboardLayout;
use pages::dev_mail::DevMailPage;
use pages::help::HelpPage;
use pages::overview::OverviewPage;
use pages::profile::AccountPage;
use pages::settings::SettingsPage;
use pages::sites::{NewSitePage, SitePage, SitesPage};
use pages::team::TeamPage;
use pages::usage::UsagePage;
use pages::{landing::LandingPage, not_found::NotFound, pricing::PricingPage};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    request::set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
                {form_flash::meta()}
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    form_flash::provide();
    // Effects run only in the browser, after hydration: the attribute tells a test (and a
    // curious developer) that the WASM bundle took over the server-rendered page.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Stylesheet id="leptos" href="/pkg/slipway.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Slipway".to_owned() } else { format!("{page} · Slipway") }
        } />
        <Router>
            <div id="app" data-hydrated=move || hydrated.get().to_string()>
                // Pages wait for their data before the first byte (SsrMode::Async on every
                // route, nested ones included), so they are complete without JavaScript and
                // can still answer with a redirect or an error status.
                <Routes fallback=NotFound>
                    <Route path=path!("") view=LandingPage ssr=SsrMode::Async />
                    <Route path=path!("pricing") view=PricingPage ssr=SsrMode::Async />
                    <Route path=path!("help") view=HelpPage ssr=SsrMode::Async />
                    <Route path=path!("signup") view=SignUpPage ssr=SsrMode::Async />
                    <Route path=path!("login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=path!("logout") view=LogoutPage ssr=SsrMode::Async />
                    <Route path=path!("verify") view=VerifyPage ssr=SsrMode::Async />
                    <Route path=path!("reset") view=ResetPage ssr=SsrMode::Async />
                    <Route
                        path=path!("invitations/accept")
                        view=AcceptInvitationPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("admin") view=AdminPage ssr=SsrMode::Async />
                    <Route
                        path=path!("admin/organizations")
                        view=OrganizationsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("admin/organizations/:slug")
                        view=OrganizationPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("admin/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("admin/users/:id") view=UserPage ssr=SsrMode::Async />
                    <Route path=path!("admin/sites") view=AdminSitesPage ssr=SsrMode::Async />
                    <Route path=path!("admin/sites/:id") view=AdminSitePage ssr=SsrMode::Async />
                    <Route
                        path=path!("admin/subscriptions")
                        view=SubscriptionsPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("admin/incidents") view=IncidentsPage ssr=SsrMode::Async />
                    <Route path=path!("admin/jobs") view=JobsPage ssr=SsrMode::Async />
                    <Route path=path!("admin/audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("dev/mail") view=DevMailPage ssr=SsrMode::Async />
                    <ParentRoute path=path!("dashboard") view=DashboardLayout ssr=SsrMode::Async>
                        <Route path=path!("") view=OverviewPage ssr=SsrMode::Async />
                        <Route path=path!("sites") view=SitesPage ssr=SsrMode::Async />
                        <Route path=path!("sites/new") view=NewSitePage ssr=SsrMode::Async />
                        <Route path=path!("sites/:id") view=SitePage ssr=SsrMode::Async />
                        <Route path=path!("team") view=TeamPage ssr=SsrMode::Async />
                        <Route path=path!("billing") view=BillingPage ssr=SsrMode::Async />
                        <Route path=path!("usage") view=UsagePage ssr=SsrMode::Async />
                        <Route path=path!("settings") view=SettingsPage ssr=SsrMode::Async />
                        <Route path=path!("account") view=AccountPage ssr=SsrMode::Async />
                    </ParentRoute>
                </Routes>
            </div>
        </Router>
    }
}
