#!/usr/bin/env bash
# buf breaking against a git ref (default: main). The protos import
# third-party files that are fetched, not committed, so the ref is checked
# out into a temporary worktree, and given the same deps.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-main}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git worktree add --detach "$tmp/tree" "$ref" >/dev/null
if [ ! -d "$tmp/tree/proto" ]; then
  echo "$ref has no proto/: nothing to compare against"
  exit 0
fi
mkdir -p "$tmp/tree/build"
cp -r build/proto-deps "$tmp/tree/build/"
buf breaking --against "$tmp/tree"
echo "no breaking changes against $ref"
