#!/usr/bin/env bash
# Installs the tools the chart tests need (helm, kubeconform) with `go install`, at pinned
# versions, into .local/bin of the repository (ignored by git). Idempotent: a tool already
# there at the pinned version is kept. Only the Go module proxy is needed, no GitHub.
#
#   bash deploy/tools/install-chart-tools.sh          install what is missing
#   bash deploy/tools/install-chart-tools.sh --print  print the bin folder and exit
set -euo pipefail

HELM_VERSION=v3.21.4
KUBECONFORM_VERSION=v0.8.0
# Kubernetes minor version of helm's client-go (k8s.io/client-go v0.36.x in helm v3.21.4's go.mod).
HELM_K8S_MINOR=36

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${CHART_TOOLS_BIN:-$root/.local/bin}"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-chart-tools: 'go' is not on PATH; install Go >= 1.26 first" >&2
  exit 1
fi

mkdir -p "$bin"
export GOBIN="$bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export CGO_ENABLED=0

have_version() { # tool, version, command printing the version
  local tool="$1" want="$2"
  shift 2
  [[ -x "$bin/$tool" ]] && "$@" 2>/dev/null | grep -qF -- "${want#v}"
}

if have_version helm "$HELM_VERSION" "$bin/helm" version --template '{{.Version}}'; then
  echo "helm $HELM_VERSION already in $bin"
else
  echo "installing helm $HELM_VERSION into $bin (go install; a few minutes on 2 cores)"
  start=$SECONDS
  # Helm's Makefile sets its version and the default Kubernetes version (that of its client-go,
  # for `helm template` and `helm lint`) with ldflags; set them the same way.
  pkg=helm.sh/helm/v3
  go install -trimpath -ldflags "-s -w -X $pkg/internal/version.version=$HELM_VERSION \
    -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR" \
    "$pkg/cmd/helm@$HELM_VERSION"
  echo "helm installed in $((SECONDS - start))s"
fi

if have_version kubeconform "$KUBECONFORM_VERSION" "$bin/kubeconform" -v; then
  echo "kubeconform $KUBECONFORM_VERSION already in $bin"
else
  echo "installing kubeconform $KUBECONFORM_VERSION into $bin"
  start=$SECONDS
  go install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  echo "kubeconform installed in $((SECONDS - start))s"
fi

echo "chart tools are in $bin:"
"$bin/helm" version --short
echo "kubeconform $("$bin/kubeconform" -v)"
