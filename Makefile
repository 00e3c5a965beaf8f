# Kompetensnav. `make run` starts everything, `make test` tests everything.
SHELL := /bin/bash
BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)

# Every package of every module in go.work.
PKGS := github.com/kompetensnav/kompetensnav/...
MODULES := $(shell sed -n 's|^[[:space:]]*\./||p' go.work)

# Pinned tool and proto versions (make tools / make generate install them).
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPC_GATEWAY_VERSION       := v2.33.0
PROTOVALIDATE_VERSION      := v1.2.2
GOOGLE_PROTO_FILES_VERSION := 6.0.1
export PROTOVALIDATE_VERSION GRPC_GATEWAY_VERSION GOOGLE_PROTO_FILES_VERSION
# Operations tools (make chart-check installs them into .bin/).
HELM_VERSION               := v3.19.0
KUBECONFORM_VERSION        := v0.7.0

.PHONY: run demo test bench fuzz redis-server tools generate proto-deps lint check-generated check-deps breaking ci build \
	test-cluster ops-tools chart-check dockerfile-check images

run: ## Run the whole platform (embedded store unless KN_REDIS is set).
	go run ./cmd/kompetensnav

demo: ## Run it with the demo dataset.
	go run ./cmd/kompetensnav -demo

test: redis-server ## Every test of every module, with the race detector, against a real redis-server.
	go test -race -count=1 $(PKGS)

test-cluster: redis-server ## The storage and end-to-end tests on Redis Cluster and on Sentinel, and the failover test (figures printed).
	scripts/test-cluster.sh

bench: redis-server ## Benchmarks (not run by test).
	go test -run '^$$' -bench . -benchmem -timeout 60m $(BENCHFLAGS) $(PKGS)

build: ## Binaries into .bin/.
	go build -o $(BIN)/ ./cmd/kompetensnav ./gateway/cmd/gateway ./services/councils/cmd/councils ./services/access/cmd/access ./services/companies/cmd/companies ./services/procurement/cmd/procurement ./services/skills/cmd/skills ./services/enrolment/cmd/enrolment

# Each fuzz target (go test -fuzz runs one at a time) for FUZZTIME; seeds
# are in each package's testdata/fuzz, and a failing input found is written
# there too (commit it with the fix).
FUZZTIME ?= 10s
FUZZ_TARGETS := ./services/platform/sweden:FuzzParseOrganisationNumber \
	./services/platform/sweden:FuzzParsePersonalIdentityNumber \
	./services/platform/sweden:FuzzParseSNICode \
	./services/platform/sweden:FuzzLooksLikePersonalIdentityNumber \
	./services/platform/sweden:FuzzIsMunicipality \
	./services/platform/auth:FuzzParseBearer \
	./services/platform/auth:FuzzParseAPIKey \
	./services/platform/auth:FuzzOIDCToken \
	./services/platform/listing:FuzzPageToken \
	./services/platform/listing:FuzzFilter

fuzz: ## Run every fuzz target for FUZZTIME (default 10s) each.
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

redis-server:
	@scripts/ensure-redis.sh

ops-tools: $(BIN)/.helm-$(HELM_VERSION) $(BIN)/.kubeconform-$(KUBECONFORM_VERSION)

$(BIN)/.helm-$(HELM_VERSION):
	GOBIN=$(BIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@
$(BIN)/.kubeconform-$(KUBECONFORM_VERSION):
	GOBIN=$(BIN) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	@touch $@

chart-check: ops-tools ## helm lint, helm template (default, production-like, Sentinel), kubeconform, every binary deployed.
	scripts/chart-check.sh

dockerfile-check: ## Lint the Dockerfile and check the image policy (no Docker engine needed).
	scripts/dockerfile-check.sh

# One image per binary the chart deploys, plus the all-in-one; needs a
# Docker engine (IMAGE_PREFIX, IMAGE_TAG to name them).
IMAGE_PREFIX ?= ghcr.io/kompetensnav
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/kompetensnav/Chart.yaml)
images: ## Build every image (docker build; needs an engine).
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make images needs a Docker engine (docker info fails here)"; exit 1; }
	@set -e; for dir in cmd/kompetensnav gateway/cmd/gateway $$(ls -d services/*/cmd/*); do \
		name=$$(basename $$dir); echo "== $(IMAGE_PREFIX)/$$name:$(IMAGE_TAG)"; \
		docker build --build-arg CMD=$$dir -t $(IMAGE_PREFIX)/$$name:$(IMAGE_TAG) .; \
	done

tools: $(BIN)/.buf-$(BUF_VERSION) $(BIN)/.go-$(PROTOC_GEN_GO_VERSION) $(BIN)/.go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) $(BIN)/.gw-$(GRPC_GATEWAY_VERSION)

$(BIN)/.buf-$(BUF_VERSION):
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(BIN)/.go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(BIN)/.go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(BIN)/.gw-$(GRPC_GATEWAY_VERSION):
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION) \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@

proto-deps: ## Fetch third-party protos into build/proto-deps.
	scripts/fetch-proto-deps.sh

generate: tools proto-deps ## Regenerate gen/ from proto/.
	rm -rf gen/kompetensnav gen/openapi/*.json
	buf generate

lint: tools proto-deps ## buf lint, gofmt, go vet.
	buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

check-generated: generate ## Fails if gen/ is not what the protos generate.
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		echo "generated code is stale: run make generate and commit gen/"; git status --short -- gen; git diff --stat -- gen; exit 1; fi

check-deps: ## Fails unless every module is tidy and all agree on dependency versions.
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done
	go work sync
	@if [ -n "$$(git status --porcelain -- '*go.mod' '*go.sum')" ]; then \
		echo "go.mod/go.sum not tidy or versions not aligned across modules: run make check-deps and commit"; \
		git status --short -- '*go.mod' '*go.sum'; exit 1; fi

breaking: tools proto-deps ## buf breaking against main, or AGAINST=<git ref> (run before merging API changes).
	scripts/buf-breaking.sh $(or $(AGAINST),main)

ci: lint check-generated check-deps test
