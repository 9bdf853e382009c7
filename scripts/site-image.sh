#!/usr/bin/env bash
# Builds the hosted app (`site/`) as a static binary and packages it as the local image
# `slipway-site:latest` (FROM scratch, through Slipway's own bollard build: nothing is
# pulled, no registry is needed). `make dev` and `make test` run it.
set -euo pipefail
cd "$(dirname "$0")/.."

# --target keeps +crt-static off build scripts and proc-macros.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release -p site --target x86_64-unknown-linux-gnu
binary=target/x86_64-unknown-linux-gnu/release/site
# A scratch image has no libc: the binary must need no shared library.
if readelf -d "$binary" | grep -q NEEDED; then
  echo "$binary is not statically linked" >&2
  exit 1
fi

# Package it with the slipway binary (built by `cargo leptos build`, or now).
if [ -x target/debug/slipway ]; then
  target/debug/slipway site-image --binary "$binary"
else
  cargo run -q -p server --bin slipway -- site-image --binary "$binary"
fi
# Earlier builds of the image, now untagged.
docker image prune -f --filter label=slipway.managed=true >/dev/null
