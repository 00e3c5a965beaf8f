#!/usr/bin/env bash
# make test-cluster: the tests of every service package (storage over gRPC,
# the platform's store, events and listing), of the all-in-one (end-to-end
# over REST and its commands) on a 3-master Redis Cluster and on a primary +
# replica behind three Sentinels (testkit, KN_TEST_REDIS; the embedded-store
# halves of testkit.Backends are skipped there), and the Sentinel failover
# test with its figures. The three runs wait mostly on Redis topologies
# forming and failing over, so they run side by side.
set -uo pipefail
cd "$(dirname "$0")/.."
PKGS=${CLUSTER_PKGS:-github.com/kompetensnav/kompetensnav/services/... ./cmd/kompetensnav/...}
LOGS=build/test-cluster
mkdir -p "$LOGS"
# shellcheck disable=SC2086
KN_TEST_REDIS=cluster go test -race -count=1 $PKGS > "$LOGS/cluster.log" 2>&1 & cluster=$!
# shellcheck disable=SC2086
KN_TEST_REDIS=sentinel go test -race -count=1 -skip '^TestSentinelFailover$' $PKGS > "$LOGS/sentinel.log" 2>&1 & sentinel=$!
KN_TEST_REDIS=sentinel go test -race -count=1 -v -run '^TestSentinelFailover$' ./cmd/kompetensnav/internal/app/ > "$LOGS/failover.log" 2>&1 & failover=$!
fail=0
for run in cluster sentinel failover; do
  wait "${!run}" || fail=1
done
for run in cluster sentinel; do
  echo "== Redis $run"
  cat "$LOGS/$run.log"
done
echo "== Sentinel failover"
if [ "$fail" = 0 ]; then
  grep -E 'FAILOVER|^(--- |ok|PASS)' "$LOGS/failover.log"
else
  cat "$LOGS/failover.log"
  echo "test-cluster FAILED"
  exit 1
fi
