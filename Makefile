# The two commands of the README: `make dev` and `make test`. Both install what is missing
# first (scripts/setup.sh) and start the project-local PostgreSQL (scripts/postgres.sh).

SHELL := /bin/bash
.DEFAULT_GOAL := help

export DEV_PG_PORT ?= 55432
export DATABASE_URL ?= postgres://slipway@127.0.0.1:$(DEV_PG_PORT)/slipway
export SLIPWAY_DATABASE__URL ?= $(DATABASE_URL)
export PATH := $(CURDIR)/.tools/tailwind/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: help setup db db-stop dev test release bundle-size clean-db sqlx-prepare site-image bench-proxy

# The key that seals sites' secrets in development: made once, kept in .data/ (git-ignored).
MASTER_KEY_FILE := .data/master.key

help:
	@echo "make dev      install what is missing, start PostgreSQL, serve http://127.0.0.1:3000 with live reload"
	@echo "make test     the same set-up, then fmt, clippy, unit, integration and browser tests"
	@echo "make release  cargo leptos build --release (installs wasm-opt when missing)"
	@echo "make bundle-size  a release build, then the raw, gzip and brotli size of each file the browser loads"
	@echo "make site-image  build the hosted app (site/) and its image slipway-site:latest"
	@echo "make bench-proxy  wrk: a site directly, through Slipway's proxy, through nginx; route lookups"
	@echo "make db-stop  stop the project-local PostgreSQL"
	@echo "make sqlx-prepare  refresh .sqlx/ (query metadata for offline builds) after changing SQL"

setup:
	@scripts/setup.sh

db: setup
	@scripts/postgres.sh start

# Development mode: mail on the local mail page, a demo operator made at the first start;
# once it listens, the server prints where to go and what to do first.
dev: db site-image
	@mkdir -p .data && [ -s $(MASTER_KEY_FILE) ] || (head -c 32 /dev/urandom | base64 > $(MASTER_KEY_FILE))
	@echo "==> building and starting Slipway; it prints where to go once it listens"
	SLIPWAY_MODE=development SLIPWAY_PROVISION__MASTER_KEY=$$(cat $(MASTER_KEY_FILE)) cargo leptos watch

site-image: setup
	@scripts/site-image.sh

test: db
	@scripts/test.sh

bench-proxy: db site-image
	@scripts/bench-proxy.sh

release: setup
	@scripts/setup.sh --release
	cargo leptos build --release

bundle-size: release
	@python3 scripts/bundle-size.py target/site/pkg

db-stop:
	@scripts/postgres.sh stop

clean-db: db-stop
	rm -rf .data/postgres

# Re-expands every `sqlx::query!` against a scratch database with all migrations applied
# and stores the metadata in .sqlx/ (committed; builds use it offline).
sqlx-prepare: db
	@scripts/sqlx-prepare.sh
