# keyward — build, generate, test.
#
# Tools are pinned below and built into bin/ (git-ignored) on first use; the
# local control plane (kube-apiserver, etcd) is built from the Go module proxy
# by hack/controlplane.sh and cached under bin/k8s/.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBEBUILDER_ASSETS ?= $(shell hack/controlplane.sh --print-dir)
export KUBEBUILDER_ASSETS

# Test flags: `make test GOTESTFLAGS=-v` or `make test TESTS=./verifier/...`.
TESTS ?= ./...
GOTESTFLAGS ?=
TEST_TIMEOUT ?= 40m

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook configurations into config/.
	$(CONTROLLER_GEN) crd paths="./api/..." output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=keyward-manager paths="{./controllers/...,./webhook/...}" output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths="./webhook/..." output:webhook:artifacts:config=config/webhook
	go run ./hack/webhookconditions config/webhook/manifests.yaml
	# The chart renders the same files (test/chart checks the copies).
	cp config/crd/bases/*.yaml charts/keyward/files/crds/
	cp config/rbac/role.yaml config/rbac/keyward_*_role.yaml config/rbac/responder_role.yaml charts/keyward/files/rbac/
	cp config/webhook/manifests.yaml charts/keyward/files/webhook/
	cp config/grafana/keyward-dashboard.json charts/keyward/files/

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files -co --exclude-standard '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: dupl
dupl: $(GOLANGCI_LINT) ## Count dupl's findings at 100 tokens over the whole tree, tests included.
	hack/dupl.sh $(GOLANGCI_LINT)

.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail when generated files (CRDs, RBAC, webhook configurations, deepcopy) or formatting differ from what is committed.
	hack/verify-generated.sh "$(CONTROLLER_GEN)"

.PHONY: controlplane
controlplane: ## Build the local control plane binaries (kube-apiserver, kube-controller-manager, etcd) into bin/k8s/, once.
	hack/controlplane.sh

.PHONY: nginx
nginx: ## Provide an nginx with auth_request for the end-to-end tests (system's, else Debian's under bin/nginx/), once.
	hack/nginx.sh >/dev/null

.PHONY: traefik
traefik: ## Build Traefik from the Go module proxy for the end-to-end tests and benchmarks into bin/traefik/, once.
	hack/traefik.sh

.PHONY: gitleaks
gitleaks: ## Build gitleaks from the Go module proxy into bin/gitleaks/, once, for the test of the secret-scanning rule.
	hack/gitleaks.sh >/dev/null

.PHONY: helm
helm: ## Build Helm from the Go module proxy into bin/helm/, once, for the chart's tests (test/chart) and `helm install`.
	hack/helm.sh

.PHONY: test
test: controlplane nginx traefik gitleaks helm verify vet ## Run every test: unit, envtest integration and end to end.
	go test -race -timeout $(TEST_TIMEOUT) -count=1 $(GOTESTFLAGS) $(TESTS)

.PHONY: test-unit
test-unit: ## Run only the tests that need no control plane.
	go test -race -short -count=1 $(GOTESTFLAGS) $(TESTS)

# Fuzz targets: package and function. `make fuzz FUZZTIME=5m` for a long run;
# FUZZTIME=300000x bounds each by executions instead (what CI does: with
# go1.26 a duration can end in a spurious "context deadline exceeded",
# go.dev/issue/75804). The targets in FUZZ_SLOW run for FUZZTIME_SLOW
# instead (set it too for a long run): FuzzNginx* sends every input through
# a real nginx, about 500 a second on two cores, and FuzzDecodeSecretPage
# compares with client-go's generated decoder (instrumented too) and finds
# new inputs often, each minimized before the run goes on (a CI run of it
# at 300000x was stopped after 5 minutes and 7,000 executions). FUZZMINIMIZE bounds each minimization (go's default: 60s).
FUZZ_TARGETS ?= ./internal/keys:FuzzParse ./internal/record:FuzzDecode \
	./internal/match:FuzzNormalizePath ./internal/match:FuzzCredential \
	./internal/match:FuzzClientAddr ./internal/match:FuzzCompileRule ./verifier:FuzzDecodeSecretPage \
	./verifier:FuzzNginxJudgedPath
FUZZTIME ?= 30s
FUZZ_SLOW ?= FuzzNginxJudgedPath FuzzDecodeSecretPage
FUZZTIME_SLOW ?= 20000x
FUZZMINIMIZE ?= 10s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (seed corpora in testdata/fuzz).
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; ft=$(FUZZTIME); \
		case " $(FUZZ_SLOW) " in *" $$fn "*) ft=$(FUZZTIME_SLOW);; esac; \
		echo "fuzz: $$fn in $$pkg for $$ft"; \
		go test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$$ft -fuzzminimizetime=$(FUZZMINIMIZE) -parallel=1 $$pkg || exit 1; \
	done

.PHONY: dev
dev: controlplane build ## Run the operator, webhooks and verifier against a local control plane, samples applied. Ctrl-C stops it all.
	$(LOCALBIN)/keyward dev --dir $(LOCALBIN)/dev --verifier-listen 127.0.0.1:18080

##@ Benchmarks

# Extra flags for test/bench: `make bench BENCHFLAGS="-only V1,V2"`.
BENCHFLAGS ?=

.PHONY: bench
bench: controlplane nginx traefik ## Measure the verifier and the controllers against their floors (issue 8) and write BENCHMARKS.md; figures, not pass/fail.
	go build -o $(LOCALBIN)/bench/bench ./test/bench
	$(LOCALBIN)/bench/bench -out BENCHMARKS.md $(BENCHFLAGS)

##@ Build

.PHONY: build
build: ## Build the keyward binary into bin/keyward and the kubectl plugin into bin/kubectl-keyward.
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/keyward .
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/kubectl-keyward ./cmd/kubectl-keyward

IMG ?= ghcr.io/keyward/keyward:latest

.PHONY: build-installer
build-installer: manifests ## Write the cluster install to dist/install.yaml.
	mkdir -p dist
	kubectl kustomize config/default > dist/install.yaml

.PHONY: deploy
deploy: manifests ## Install keyward into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/default

.PHONY: undeploy
undeploy: ## Remove keyward from the cluster of the current kubeconfig (keys stop working).
	kubectl delete --ignore-not-found -k config/default

# The image's name in the tarballs; the tag defaults to `git describe --tags
# --always --dirty`, the creation time to the commit's (or SOURCE_DATE_EPOCH).
IMAGE_REPO ?= ghcr.io/keyward/keyward
IMAGE_TAG ?=

.PHONY: image
image: ## Build the OCI image without a Docker engine, linux/amd64 and linux/arm64: dist/image/ (OCI layout), dist/keyward-image-<arch>.tar (docker load, kind load image-archive).
	go run ./hack/image -out dist -repository $(IMAGE_REPO) -version "$(IMAGE_TAG)"

.PHONY: docker-build
docker-build: ## Build the image with a Docker engine (the Dockerfile); make image needs none.
	docker build -t $(IMG) .

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(GOLANGCI_LINT): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $@
