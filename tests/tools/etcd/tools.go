//go:build tools

// Package etcd pins the etcd server the test world builds. It is its own
// module because k8s.io/kubernetes v1.37 requires etcd v3.7 libraries, and the
// test world runs the etcd v3.6 server.
package etcd

import _ "go.etcd.io/etcd/server/v3"
