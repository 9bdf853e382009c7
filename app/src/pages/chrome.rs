//! The frame around public pages: header with navigation, footer.

use leptos::prelude::*;

/// Header, the page's content, and a footer kept at the bottom of short pages.
#[component]
pub fn PublicPage(children: Children) -> impl IntoView {
    view! {
        <div class="flex min-h-screen flex-col">
            <super::dev_mail::DevModeBar />
            <PublicHeader />
            <main class="flex-1">{children()}</main>
            <PublicFooter />
        </div>
    }
}

#[component]
fn PublicHeader() -> impl IntoView {
    view! {
        <header class="border-b border-slate-200 bg-white">
            <nav
                aria-label="Main"
                class="mx-auto flex max-w-6xl items-center justify-between gap-4 px-4 py-4 sm:px-6"
            >
                <HomeLink class="flex items-center gap-2 text-lg font-bold text-slate-900" />
                <div class="flex items-center gap-1 text-sm font-medium sm:gap-4">
                    <a
                        href="/pricing"
                        class="rounded-md px-2 py-2 text-slate-700 hover:bg-slate-100 sm:px-3"
                    >
                        "Pricing"
                    </a>
                    <a
                        href="/help"
                        class="rounded-md px-2 py-2 text-slate-700 hover:bg-slate-100 sm:px-3"
                    >
                        "Help"
                    </a>
                    <a
                        href="/dashboard"
                        class="rounded-md bg-slate-900 px-2 py-2 text-white hover:bg-slate-700 sm:px-3"
                    >
                        "Dashboard"
                    </a>
                </div>
            </nav>
        </header>
    }
}

#[component]
fn PublicFooter() -> impl IntoView {
    view! {
        <footer class="mt-24 border-t border-slate-200 bg-white">
            <div class="mx-auto max-w-6xl px-4 py-8 text-sm text-slate-500 sm:px-6">
                "Slipway · open-source managed hosting"
            </div>
        </footer>
    }
}

/// The logo and name, linking home.
#[component]
pub fn HomeLink(class: &'static str) -> impl IntoView {
    view! {
        <a href="/" class=class>
            <span
                aria-hidden="true"
                class="inline-flex h-8 w-8 items-center justify-center rounded-lg bg-indigo-600 text-white"
            >
                "S"
            </span>
            "Slipway"
        </a>
    }
}

/// A page-level message for a failed load, with the user-safe text of the error.
#[component]
pub fn LoadError(message: String) -> impl IntoView {
    view! {
        <div role="alert" class="rounded-lg border border-red-200 bg-red-50 p-4 text-red-800">
            {message}
        </div>
    }
}
