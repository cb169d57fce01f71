#!/bin/sh
# Entrypoint of the corebank image: runs one service's entry point.
#   SERVICE=account docker-entrypoint.sh            -> node services/account/dist/main.js
#   SERVICE=account docker-entrypoint.sh migrate    -> node services/account/dist/migrate.js
# Further arguments are passed to the script.
set -eu

app="$(cd "$(dirname "$0")/.." && pwd)"
entry="${1:-main}"
if [ "$#" -gt 0 ]; then shift; fi

available() {
  for d in "$app"/services/*/dist/main.js; do
    [ -f "$d" ] || continue
    d="${d%/dist/main.js}"
    printf ' %s' "${d##*/}"
  done
}

case "${SERVICE:-}" in
  '')
    echo "docker-entrypoint: SERVICE is not set; set it to one of:$(available)" >&2
    exit 64
    ;;
  *[!a-z0-9]*)
    echo "docker-entrypoint: SERVICE=\"$SERVICE\" is not a service name; use one of:$(available)" >&2
    exit 64
    ;;
esac
case "$entry" in
  *[!a-z0-9-]*)
    echo "docker-entrypoint: \"$entry\" is not an entry point name (main, migrate)" >&2
    exit 64
    ;;
esac

script="$app/services/$SERVICE/dist/$entry.js"
if [ ! -f "$script" ]; then
  if [ -d "$app/services/$SERVICE/dist" ]; then
    echo "docker-entrypoint: service \"$SERVICE\" has no entry point \"$entry\" ($script is missing)" >&2
  else
    echo "docker-entrypoint: SERVICE=\"$SERVICE\" is not in this image; services:$(available)" >&2
  fi
  exit 64
fi

cd "$app"
exec node --enable-source-maps "$script" "$@"
