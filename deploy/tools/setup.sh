#!/usr/bin/env bash
# `npm run setup` (and .ci/run): installs everything corebank needs on a fresh Debian machine:
# PostgreSQL, nats-server and openssl from Debian's packages, npm dependencies, and (with go install, at
# pinned versions) the chart tools and grpcurl. Safe to run again: what is there is kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

need_apt=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql postgresql-contrib)
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || need_apt+=(nats-server)
# The TLS tests make a throwaway certificate authority with the openssl CLI.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: please install ${need_apt[*]} (apt-get install, as root)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The tests and the launcher start their own servers; the distribution's cluster is not used.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for c in /etc/postgresql/*/main; do [[ -d $c ]] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true; done
  fi
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # npm ci needs every platform's optional binaries in the lock; some npm set-ups record only
  # this machine's, so fall back to an install that still honours the lock's versions.
  npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund
fi

bash deploy/tools/install-chart-tools.sh
bash loadtest/install-k6.sh

# grpcurl for calling the bank by hand (README); CI does not need it.
if [[ "${CI:-}" != "true" ]] && ! [[ -x .local/bin/grpcurl ]] && command -v go >/dev/null 2>&1; then
  echo "setup: building grpcurl (go install)"
  GOBIN="$root/.local/bin" CGO_ENABLED=0 go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
fi
echo "setup: done"
