#!/usr/bin/env bash
# The storage tests start their own redis-server; make sure there is one.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing redis-server (the tests start their own instances)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  exit 0
fi
echo "redis-server is not installed: storage tests will be skipped (sudo apt-get install redis-server)" >&2
