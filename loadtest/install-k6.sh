#!/usr/bin/env bash
# Builds k6 (the load generator of the benchmarks) with `go install`, at a pinned version, into
# .local/bin of the repository (ignored by git). Idempotent: a k6 already there at the pinned
# version is kept. Needs only Go and the Go module proxy (no prebuilt download, no GitHub).
# Takes a few minutes on 2 cores.
#
#   bash loadtest/install-k6.sh          install k6 if missing
#   bash loadtest/install-k6.sh --print  print the path k6 is (or would be) installed at
set -euo pipefail

K6_VERSION=v1.8.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${K6_BIN_DIR:-$root/.local/bin}"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin/k6"
  exit 0
fi

if [[ -x "$bin/k6" ]] && "$bin/k6" version 2>/dev/null | grep -qF -- "${K6_VERSION}"; then
  echo "k6 $K6_VERSION already in $bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-k6: 'go' is not on PATH; install Go >= 1.24 first" >&2
  exit 1
fi

mkdir -p "$bin"
export GOBIN="$bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

echo "installing k6 $K6_VERSION into $bin (go install; a few minutes on 2 cores)"
start=$SECONDS
go install -trimpath -ldflags "-s -w" "go.k6.io/k6@$K6_VERSION"
echo "k6 installed in $((SECONDS - start))s: $("$bin/k6" version | head -1)"
