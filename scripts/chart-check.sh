#!/usr/bin/env bash
# Checks the Helm chart: helm lint; helm template with the default values,
# a production-like file (external Redis Cluster, TLS, existingSecret) and
# the in-chart Redis with Sentinel; every rendered manifest validated
# against the Kubernetes schemas (kubeconform -strict); every service
# binary (services/*/cmd/*, gateway/cmd/gateway) deployed by the chart; and
# every KN_* setting the chart gives a binary (or the all-in-one's
# rotate-pii-key Job) one it reads (tools/chartenv).
#
# The schemas come from the Kubernetes OpenAPI document in the
# k8s.io/kubernetes Go module (fetched through the Go module proxy like any
# module), turned into kubeconform's per-kind files by tools/kubeschemas.
# If that module cannot be had, the validation is skipped, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/.bin}
HELM=$BIN/helm
KUBECONFORM=$BIN/kubeconform
K8S_VERSION=${K8S_VERSION:-1.34.2}
CHART=charts/kompetensnav
OUT=build/chart
mkdir -p "$OUT"

fail=0

echo "== helm lint"
"$HELM" lint --strict --kube-version "$K8S_VERSION" "$CHART"
for f in "$CHART"/ci/*-values.yaml; do
  "$HELM" lint --strict --kube-version "$K8S_VERSION" "$CHART" -f "$f" >/dev/null
done

echo "== helm template"
declare -A rendered
rendered[default]=$OUT/default.yaml
"$HELM" template kn "$CHART" --kube-version "$K8S_VERSION" > "$OUT/default.yaml"
for f in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$f" -values.yaml)
  rendered[$name]=$OUT/$name.yaml
  "$HELM" template kn "$CHART" --kube-version "$K8S_VERSION" -f "$f" > "$OUT/$name.yaml"
done
for name in "${!rendered[@]}"; do
  echo "  $name: $(grep -c '^kind:' "${rendered[$name]}") manifests"
done

echo "== NOTES.txt renders (helm template leaves it out: rendered here in a copy of the chart)"
notes=build/chart/notes-chart
rm -rf "$notes" && cp -r "$CHART" "$notes"
{ echo '{{- define "kn.notes" -}}'; cat "$CHART/templates/NOTES.txt"; echo '{{- end -}}'
  echo 'apiVersion: v1'; echo 'kind: ConfigMap'; echo 'metadata: {name: notes}'
  echo 'data: {notes: {{ include "kn.notes" . | quote }}}'; } > "$notes/templates/notes-check.yaml"
"$HELM" template kn "$notes" --kube-version "$K8S_VERSION" --show-only templates/notes-check.yaml >/dev/null
for f in "$CHART"/ci/*-values.yaml; do
  "$HELM" template kn "$notes" --kube-version "$K8S_VERSION" -f "$f" --show-only templates/notes-check.yaml >/dev/null
done
echo "  ok"

echo "== values the schema must refuse"
for bad in "redis.mode=memory" "services.councils.peers[0]=nosuch" "common.logLevel=loud" "secrets.bootstrapKey=short"; do
  if "$HELM" template kn "$CHART" --kube-version "$K8S_VERSION" --set "$bad" >/dev/null 2>&1; then
    echo "  FAIL: --set $bad was accepted"; fail=1
  else
    echo "  refused: --set $bad"
  fi
done

echo "== kubeconform (Kubernetes $K8S_VERSION schemas, strict)"
schemas=build/kube-schemas/v$K8S_VERSION-standalone-strict
if [ ! -f "$schemas/deployment-apps-v1.json" ]; then
  if dir=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') && [ -f "$dir/api/openapi-spec/swagger.json" ]; then
    (cd tools/kubeschemas && GOWORK=off go run . -swagger "$dir/api/openapi-spec/swagger.json" -out "$OLDPWD/$schemas")
  else
    echo "  SKIPPED: the Kubernetes OpenAPI document (Go module k8s.io/kubernetes@v$K8S_VERSION) could not be downloaded,"
    echo "  so the rendered manifests were NOT validated against the Kubernetes schemas."
    schemas=""
  fi
fi
if [ -n "$schemas" ]; then
  location="$PWD/build/kube-schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
  for name in "${!rendered[@]}"; do
    echo "  $name:"
    "$KUBECONFORM" -strict -summary -kubernetes-version "$K8S_VERSION" -schema-location "$location" "${rendered[$name]}" || fail=1
  done
  # The validation must be able to fail: a misspelt field and a wrong
  # type in a copy of the default render are refused.
  if sed 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/; s/revisionHistoryLimit: 5/revisionHistoryLimit: five/' "$OUT/default.yaml" |
     "$KUBECONFORM" -strict -kubernetes-version "$K8S_VERSION" -schema-location "$location" - >/dev/null 2>&1; then
    echo "  FAIL: kubeconform accepted a manifest with a misspelt field"; fail=1
  else
    echo "  control: a misspelt field and a wrong type are refused"
  fi
fi

echo "== every service binary has a chart block"
binaries=$(ls -d services/*/cmd/*/ gateway/cmd/gateway/ 2>/dev/null | sed 's|/$||')
for dir in $binaries; do
  bin=$(basename "$dir")
  if [ "$bin" = gateway ]; then block="gateway"; else block="services.$bin"; fi
  # A Deployment running the binary's image, in the default render.
  if grep -Eq "^[[:space:]]+image: \"?[^\"]*/$bin:[^\"]*\"?$" "$OUT/default.yaml"; then
    echo "  $dir: deployed ($block)"
  else
    echo "  FAIL: $dir has no Deployment in the chart: add a block $block to $CHART/values.yaml (peers, consumed streams, secrets)"
    fail=1
  fi
done

echo "== every setting the chart gives a binary is one it reads"
# (A binary ignores KN_* variables it has no flag for: a misspelt or renamed
# one would be silently without effect.)
mkdir -p build/bin
# shellcheck disable=SC2046
go build -o build/bin/ ./cmd/kompetensnav ./gateway/cmd/gateway $(ls -d services/*/cmd/*/ | sed 's|^|./|; s|/$||')
for name in "${!rendered[@]}"; do
  echo "  $name:"
  (cd tools/chartenv && go run . -manifests "$OLDPWD/${rendered[$name]}" -bin "$OLDPWD/build/bin") | sed 's/^/  /' || fail=1
done

if [ "$fail" != 0 ]; then
  echo "chart check FAILED"
  exit 1
fi
echo "chart check passed"
