# The two commands of the README: `make dev` and `make test`. Both install what is missing
# first (scripts/setup.sh) and start the project-local PostgreSQL (scripts/postgres.sh).

SHELL := /bin/bash
.DEFAULT_GOAL := help

export DEV_PG_PORT ?= 55432
export DATABASE_URL ?= postgres://slipway@127.0.0.1:$(DEV_PG_PORT)/slipway
export SLIPWAY_DATABASE__URL ?= $(DATABASE_URL)
export PATH := $(CURDIR)/.tools/tailwind/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: help setup db db-stop dev test release clean-db sqlx-prepare

help:
	@echo "make dev      install what is missing, start PostgreSQL, serve http://127.0.0.1:3000 with live reload"
	@echo "make test     the same set-up, then fmt, clippy, unit, integration and browser tests"
	@echo "make release  cargo leptos build --release (installs wasm-opt when missing)"
	@echo "make db-stop  stop the project-local PostgreSQL"
	@echo "make sqlx-prepare  refresh .sqlx/ (query metadata for offline builds) after changing SQL"

setup:
	@scripts/setup.sh

db: setup
	@scripts/postgres.sh start

dev: db
	cargo leptos watch

test: db
	@scripts/test.sh

release: setup
	@scripts/setup.sh --release
	cargo leptos build --release

db-stop:
	@scripts/postgres.sh stop

clean-db: db-stop
	rm -rf .data/postgres

# Re-expands every `sqlx::query!` against a scratch database with all migrations applied
# and stores the metadata in .sqlx/ (committed; builds use it offline).
sqlx-prepare: db
	@scripts/sqlx-prepare.sh
