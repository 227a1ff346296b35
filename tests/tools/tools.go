//go:build tools

// Package tools pins the third-party binaries the test world builds:
// kube-apiserver and kubectl from k8s.io/kubernetes, and the host-local CNI
// IPAM plugin. `make tools` builds them into _output/bin.
package tools

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
