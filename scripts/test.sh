#!/usr/bin/env bash
# Everything `make test` checks, in order, stopping at the first failure.
# Expects scripts/setup.sh and scripts/postgres.sh to have run (the Makefile does that).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

step "cargo fmt --check, leptosfmt --check (view! markup)"
cargo fmt --all -- --check
leptosfmt --check app/src

step "no import cycle between the modules of platform, app and server"
for crate in platform app server; do
  python3 scripts/module_cycles.py "$crate/src"
  python3 scripts/module_cycles.py "$crate/src" --depth 2
done

step "no unused dependency (cargo machete)"
cargo machete

step "cargo clippy (server side: app[ssr], server, platform, end2end)"
cargo clippy --all-targets -- -D warnings

step "cargo clippy (browser side: app[hydrate], frontend, for wasm32)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings

step "cargo leptos build (WASM bundle, CSS and the slipway binary the browser tests run)"
cargo leptos build

step "the hosted app: static site binary and its image (real Docker engine)"
scripts/site-image.sh

step "unit and integration tests (real PostgreSQL at $DATABASE_URL, real Docker engine)"
cargo test --workspace --exclude frontend --exclude end2end

step "browser tests (headless Chromium through chromedriver)"
# Same package set as above, so cargo reuses that build instead of resolving features anew.
cargo test --workspace --exclude frontend --test journeys --test accounts_journey --test sites_journey --test billing_journey --test newcomer_journey -- --test-threads=1
