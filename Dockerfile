# aws-ipv6-ccm image: a static Go binary on distroless, at upstream's path /bin/aws-cloud-controller-manager.
# Build (needs a Docker engine): docker build --build-arg VERSION=$(git describe --tags --always) -t <image> .
# hack/check-dockerfile.sh runs this file's build step without Docker (part of make test).
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=v0.0.0-dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${VERSION}" -o /bin/aws-cloud-controller-manager ./cmd/aws-cloud-controller-manager

FROM ${RUNTIME_IMAGE}
COPY --from=builder /bin/aws-cloud-controller-manager /bin/aws-cloud-controller-manager
USER 65532:65532
ENTRYPOINT ["/bin/aws-cloud-controller-manager"]
