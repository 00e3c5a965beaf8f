#!/usr/bin/env bash
# Fetches the third-party protos the API imports into build/proto-deps, from
# the registries that publish them (they are never copied into the repo):
#   google/api, google/type             npm package google-proto-files
#     (google/type/money and google/api/httpbody: procurement's values and OCDS export)
#   buf/validate                        Go module github.com/bufbuild/protovalidate
#   protoc-gen-openapiv2/options        Go module github.com/grpc-ecosystem/grpc-gateway/v2
set -euo pipefail
cd "$(dirname "$0")/.."

GOOGLE_PROTO_FILES_VERSION=${GOOGLE_PROTO_FILES_VERSION:-6.0.1}
PROTOVALIDATE_VERSION=${PROTOVALIDATE_VERSION:-v1.2.2}
GRPC_GATEWAY_VERSION=${GRPC_GATEWAY_VERSION:-v2.33.0}

out=build/proto-deps
npm_dir=.cache/npm
rm -rf "$out"
mkdir -p "$out/google/api" "$out/google/type" "$out/buf/validate" "$out/protoc-gen-openapiv2/options" "$npm_dir"

if [ ! -f "$npm_dir/node_modules/google-proto-files/package.json" ] ||
   ! grep -q "\"version\": \"$GOOGLE_PROTO_FILES_VERSION\"" "$npm_dir/node_modules/google-proto-files/package.json"; then
  npm install --silent --no-audit --no-fund --no-save --prefix "$npm_dir" "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null
fi
gpf="$npm_dir/node_modules/google-proto-files"
# Only the files the API imports (and what they import): the whole tree pulls
# in protos with imports that are not published in the same package.
for f in annotations http field_behavior resource client launch_stage; do
  cp "$gpf/google/api/$f.proto" "$out/google/api/"
done
cp "$gpf/google/type/date.proto" "$out/google/type/"
cp "$gpf/google/type/money.proto" "$out/google/type/"
cp "$gpf/google/api/httpbody.proto" "$out/google/api/"

moddir() { (cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'); }
pv=$(moddir "github.com/bufbuild/protovalidate@$PROTOVALIDATE_VERSION")
cp "$pv/proto/protovalidate/buf/validate/validate.proto" "$out/buf/validate/"
gw=$(moddir "github.com/grpc-ecosystem/grpc-gateway/v2@$GRPC_GATEWAY_VERSION")
cp "$gw/protoc-gen-openapiv2/options/annotations.proto" "$gw/protoc-gen-openapiv2/options/openapiv2.proto" "$out/protoc-gen-openapiv2/options/"
chmod -R u+w "$out"
echo "proto deps in $out"
