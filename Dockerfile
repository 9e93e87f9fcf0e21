# syntax=docker/dockerfile:1
# One static, non-root image for every component: keyward manager,
# keyward verifier.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/keyward .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyward /keyward
USER 65532:65532
ENTRYPOINT ["/keyward"]
