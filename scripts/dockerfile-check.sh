#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (there is none here, so no
# image is built: make images does that where an engine exists):
#  - two npm linters, dockerfilelint and dockerfile-utils (the parser behind
#    the Docker language server), installed into build/dockerfile-lint;
#  - the image policy the chart relies on, read from the Dockerfile itself:
#    a static build (CGO_ENABLED=0, -trimpath), a distroless or scratch final
#    stage (no shell), a non-root USER, every binary buildable with CMD.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=build/dockerfile-lint
DOCKERFILELINT_VERSION=1.8.0
DOCKERFILE_UTILS_VERSION=0.16.3
if [ ! -x "$DIR/node_modules/.bin/dockerfilelint" ] || [ ! -f "$DIR/.v-$DOCKERFILELINT_VERSION-$DOCKERFILE_UTILS_VERSION" ]; then
  mkdir -p "$DIR"
  (cd "$DIR" && npm install --no-audit --no-fund --silent --no-save \
    "dockerfilelint@$DOCKERFILELINT_VERSION" "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >/dev/null)
  touch "$DIR/.v-$DOCKERFILELINT_VERSION-$DOCKERFILE_UTILS_VERSION"
fi
fail=0
echo "== dockerfilelint"
"$DIR/node_modules/.bin/dockerfilelint" Dockerfile || fail=1
echo "== dockerfile-utils lint"
out=$("$DIR/node_modules/.bin/dockerfile-utils" lint Dockerfile 2>&1) || fail=1
if [ -n "$out" ]; then echo "$out"; fail=1; else echo "  no problems"; fi

echo "== image policy"
check() { # description, extended regex that must match
  if grep -Eq "$2" Dockerfile; then echo "  ok: $1"; else echo "  FAIL: $1"; fail=1; fi
}
check "static build (CGO_ENABLED=0)" 'CGO_ENABLED=0'
check "paths trimmed (-trimpath)" 'go build .*-trimpath'
check "binary chosen by ARG CMD" '^ARG CMD='
last_from=$(grep -E '^FROM ' Dockerfile | tail -n 1)
if echo "$last_from" | grep -Eq '^FROM (gcr\.io/distroless/static[^ ]*|scratch)( |$)'; then
  echo "  ok: final stage has no shell ($last_from)"
else
  echo "  FAIL: final stage must be distroless static or scratch, is: $last_from"; fail=1
fi
user=$(awk '/^FROM /{u=""} /^USER /{u=$2} END{print u}' Dockerfile)
case "$user" in
  ""|root|0|0:*|root:*) echo "  FAIL: the final stage must set a non-root USER (is: '${user:-none}')"; fail=1 ;;
  *) echo "  ok: runs as $user" ;;
esac
for dir in cmd/kompetensnav gateway/cmd/gateway services/*/cmd/*; do
  [ -f "$dir/main.go" ] || { echo "  FAIL: $dir has no main.go to build"; fail=1; }
done
[ "$fail" = 0 ] && echo "dockerfile check passed" || { echo "dockerfile check FAILED"; exit 1; }
