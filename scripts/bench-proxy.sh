#!/usr/bin/env bash
# The proxy benchmark (server/benches/proxy.rs): installs wrk and nginx from Debian when
# missing, then runs it against the development cluster. Figures go to standard output.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The package starts a system nginx on port 80; the benchmark runs its own.
  sudo_if_needed systemctl disable --now nginx >/dev/null 2>&1 || sudo_if_needed pkill -x nginx || true
fi
cargo bench -p server --bench proxy
