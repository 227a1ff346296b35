# aws-ipv6-ccm. Quick start: `make demo`, `make test`. `make help` lists targets.
SHELL := /bin/bash
GO ?= go
OUT := $(CURDIR)/_output
BIN := $(OUT)/bin
TEST_TOOLS := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/host-local
TOOLS := $(TEST_TOOLS) $(BIN)/kubectl
CCM := $(BIN)/aws-cloud-controller-manager
# component-base panics at start-up unless the version is semver (vX.Y.Z...): untagged
# builds are v0.0.0-<commit>[-dirty].
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || \
	echo v0.0.0-$$(git rev-parse --short HEAD 2>/dev/null || echo dev)$$(git diff --quiet HEAD 2>/dev/null || echo -dirty))
LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(VERSION)
# One build configuration for every step (static, -trimpath), so the binaries, the tools,
# go vet and go test share one build cache: a cold `make test` compiles the Kubernetes
# libraries once, not once per configuration.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath $(filter-out -trimpath,$(GOFLAGS))

.PHONY: help build test test-race demo bench tools lint image fuzz clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: $(CCM) ## build the CCM and ec2sim binaries into _output/bin

$(CCM): FORCE
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/aws-cloud-controller-manager ./tests/ec2sim/cmd/ec2sim

tools: $(TOOLS) ## build kube-apiserver, etcd, host-local, kubectl (first time ~6 min after make build)

$(BIN)/kube-apiserver $(BIN)/kubectl: tests/tools/go.mod tests/tools/go.sum
	@mkdir -p $(BIN)
	@echo ">> building $(@F) from k8s.io/kubernetes (tests/tools); the first build takes ~4 minutes on 2 cores after make build"
	cd tests/tools && $(GO) build -o $(BIN)/ k8s.io/kubernetes/cmd/$(@F)

$(BIN)/host-local: tests/tools/go.mod tests/tools/go.sum
	@mkdir -p $(BIN)
	@echo ">> building host-local CNI plugin (tests/tools)"
	cd tests/tools && $(GO) build -o $(BIN)/ github.com/containernetworking/plugins/plugins/ipam/host-local

$(BIN)/etcd: tests/tools/etcd/go.mod tests/tools/etcd/go.sum
	@mkdir -p $(BIN)
	@echo ">> building etcd from go.etcd.io/etcd/server/v3 (tests/tools/etcd)"
	cd tests/tools/etcd && $(GO) build -o $(BIN)/etcd go.etcd.io/etcd/server/v3

test: build $(TEST_TOOLS) ## run every test: vet, unit, e2e (real kube-apiserver + etcd + ec2sim), manifests, Dockerfile
	@echo ">> go vet"
	$(GO) vet ./...
	@echo ">> unit and end-to-end tests"
	AWS_IPV6_CCM_E2E=1 $(GO) test -count=1 -timeout 20m ./...
	@echo ">> manifests, Helm chart, kOps addon, IAM policy (tests/manifests)"
	cd tests/manifests && $(GO) vet ./... && $(GO) test -count=1 ./...
	@echo ">> metrics-server picks the IPv6 address (tests/metricsserver)"
	cd tests/metricsserver && $(GO) vet ./... && $(GO) test -count=1 ./...
	@echo ">> benchmark module's own tests (tests/bench; the benchmark itself is make bench)"
	cd tests/bench && $(GO) test -count=1 ./...
	@echo ">> Dockerfile build stage"
	hack/check-dockerfile.sh

test-race: build $(TEST_TOOLS) ## the unit and end-to-end tests under the race detector (needs cgo; compiles everything again)
	AWS_IPV6_CCM_E2E=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

demo: build tools ## start a local world (kube-apiserver, etcd, ec2sim, the CCM), print the nodes it initialized; KEEP=1 keeps it running
	@echo ">> building the demo (tests/e2e/cmd/demo)"
	@$(GO) build -o $(BIN)/demo ./tests/e2e/cmd/demo
	@$(BIN)/demo $(if $(filter 1 true yes,$(KEEP)),-keep)

bench: build tools ## scale benchmark, N nodes (default 1000; make bench N=5000): docs/benchmarks.md
	cd tests/bench && $(GO) run . -n $(or $(N),1000)

lint: ## gofmt and go vet in every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	for m in tests/manifests tests/metricsserver tests/bench; do (cd $$m && $(GO) vet ./...) || exit 1; done

FUZZTIME ?= 30s
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/providerid
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./pkg/cloud
	$(GO) test -run '^$$' -fuzz '^FuzzParseForm$$' -fuzztime $(FUZZTIME) ./tests/ec2sim
	$(GO) test -run '^$$' -fuzz '^FuzzGlobMatch$$' -fuzztime $(FUZZTIME) ./tests/ec2sim
	$(GO) test -run '^$$' -fuzz '^FuzzWorldInvariants$$' -fuzztime $(FUZZTIME) ./tests/ec2sim
	$(GO) test -run '^$$' -fuzz '^FuzzCandidates$$' -fuzztime $(FUZZTIME) ./pkg/ipv6alloc

IMAGE ?= ghcr.io/aws-ipv6-ccm/aws-cloud-controller-manager:$(VERSION)
image: ## build the container image (needs a Docker engine; IMAGE=... to rename)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

clean: ## remove _output (including the built tools)
	rm -rf $(OUT)

FORCE:
