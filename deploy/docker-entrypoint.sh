#!/bin/sh
# Entrypoint of the corebank image: runs one service's command (services/kit/src/command.ts).
#   SERVICE=account docker-entrypoint.sh            -> node services/account/dist/command.js serve
#   SERVICE=account docker-entrypoint.sh migrate    -> node services/account/dist/command.js migrate
#   SERVICE=account docker-entrypoint.sh relay      -> node services/account/dist/command.js relay
# The command itself refuses anything else, with the list of commands.
set -eu

app="$(cd "$(dirname "$0")/.." && pwd)"
command="${1:-serve}"
if [ "$#" -gt 0 ]; then shift; fi

# Every workspace but the kit (the shared runtime: its dist/command.js is the code behind the
# services' commands, not a service).
available() {
  for d in "$app"/services/*/dist/command.js; do
    [ -f "$d" ] || continue
    d="${d%/dist/command.js}"
    [ "${d##*/}" = kit ] && continue
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

script="$app/services/$SERVICE/dist/command.js"
if [ "$SERVICE" = kit ] || [ ! -f "$script" ]; then
  echo "docker-entrypoint: SERVICE=\"$SERVICE\" is not in this image; services:$(available)" >&2
  exit 64
fi

cd "$app"
exec node --enable-source-maps "$script" "$command" "$@"
