# syntax=docker/dockerfile:1
# patjanitor container image: a static binary on distroless, non-root, and
# friendly to a read-only root filesystem (all state lives on the
# /var/lib/patjanitor volume). No HEALTHCHECK: Kubernetes probes /healthz and
# /readyz instead (deploy/kubernetes).
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t patjanitor:v0.1.0 .
#
# A test (deploy/dockerfile_test.go) runs this file's `go build` line, so a
# change to it is checked without a Docker engine.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that the download layer is cached across source changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/patjanitor/patjanitor/internal/buildinfo.Version=${VERSION} -X github.com/patjanitor/patjanitor/internal/buildinfo.Commit=${COMMIT}" -o /out/patjanitor ./cmd/patjanitor

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/patjanitor /usr/local/bin/patjanitor
# The distroless "nonroot" user; the Kubernetes manifests and the tests rely on
# this number.
USER 65532:65532
VOLUME /var/lib/patjanitor
EXPOSE 9874
ENTRYPOINT ["/usr/local/bin/patjanitor"]
CMD ["serve", "--config", "/etc/patjanitor/policies.yaml", "--state-dir", "/var/lib/patjanitor", "--web.listen-address", ":9874"]
