# syntax=docker/dockerfile:1
# One image per binary: docker build --build-arg CMD=services/councils/cmd/councils -t kompetensnav/councils .
# (make images builds every binary the chart deploys, and the all-in-one.)
#
# Static build (no cgo, paths trimmed), on distroless: no shell, no
# package manager, a non-root user (65532, as the chart runs it).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# The workspace as a whole (go.work names every module); the module and
# build caches are BuildKit cache mounts, kept between builds.
COPY . .
ARG CMD=cmd/kompetensnav
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/app ./${CMD}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
