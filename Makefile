# aws-ipv6-ccm. Quick start: `make demo`, `make test`. `make help` lists targets.
SHELL := /bin/bash
GO ?= go
OUT := $(CURDIR)/_output
BIN := $(OUT)/bin
TOOLS := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/host-local $(BIN)/kubectl
CCM := $(BIN)/aws-cloud-controller-manager
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(VERSION)

.PHONY: help build test unit e2e demo bench tools lint image fuzz clean

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: $(CCM) ## build the CCM and ec2sim binaries into _output/bin

$(CCM): FORCE
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/aws-cloud-controller-manager ./tests/ec2sim/cmd/ec2sim

tools: $(TOOLS) ## build kube-apiserver, etcd, host-local, kubectl (first time ~12 min)

$(BIN)/kube-apiserver $(BIN)/kubectl: tests/tools/go.mod tests/tools/go.sum
	@mkdir -p $(BIN)
	@echo ">> building $(@F) from k8s.io/kubernetes (tests/tools); the first build takes ~10 minutes on 2 cores"
	cd tests/tools && $(GO) build -trimpath -o $(BIN)/ k8s.io/kubernetes/cmd/$(@F)

$(BIN)/host-local: tests/tools/go.mod tests/tools/go.sum
	@mkdir -p $(BIN)
	@echo ">> building host-local CNI plugin (tests/tools)"
	cd tests/tools && $(GO) build -trimpath -o $(BIN)/ github.com/containernetworking/plugins/plugins/ipam/host-local

$(BIN)/etcd: tests/tools/etcd/go.mod tests/tools/etcd/go.sum
	@mkdir -p $(BIN)
	@echo ">> building etcd from go.etcd.io/etcd/server/v3 (tests/tools/etcd)"
	cd tests/tools/etcd && $(GO) build -trimpath -o $(BIN)/etcd go.etcd.io/etcd/server/v3

FORCE:
