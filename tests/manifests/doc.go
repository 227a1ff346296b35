// Package manifests holds the tests that prove the shipped install artifacts (plain manifests,
// Helm chart, kOps addon, IAM policy) decode with the Kubernetes API types and agree with
// each other. It is its own module so Helm's dependencies stay out of the product's go.mod.
package manifests
