# syntax=docker/dockerfile:1
# One static, non-root image for every component: keyward manager,
# keyward verifier.
#
# `make image` (hack/image) supersedes this file: it builds the same image
# without a Docker engine, for linux/amd64 and linux/arm64, reproducibly, and
# a test checks it. This Dockerfile is kept for those who build with Docker;
# it builds the binary with the same flags (the CA roots are embedded in it,
# golang.org/x/crypto/x509roots/fallback) on distroless's nonroot user.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS= \
    go build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" -o /out/keyward .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyward /keyward
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/keyward"]
