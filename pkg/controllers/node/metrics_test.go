package node

import (
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

// metricSum sums the counters (and histogram sample counts) of name in the
// legacy registry whose labels include labels.
func metricSum(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			if testutil.LabelsMatch(m, labels) {
				total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
		return total
	}
	return 0
}

// describeOps counts the DescribeInstances operations the EC2 clients made,
// whatever their result. Unlike ec2sim's count of HTTP attempts, it does not
// include the SDK's rare re-send of a describe whose reply it failed to read
// on loopback.
func describeOps(t *testing.T) float64 {
	return metricSum(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "DescribeInstances"})
}

// TestMetricsAndConflictRetry initializes a bare node whose first spec patch
// conflicts, and checks the retry, the event and the metric series.
func TestMetricsAndConflictRetry(t *testing.T) {
	registerMetrics()
	read := func(name string, labels map[string]string) float64 { return metricSum(t, name, labels) }
	const (
		assigns = "cloudprovider_aws_node_ipv6_assignments_total"
		writes  = "cloudprovider_aws_node_api_writes_total"
		inits   = "cloudprovider_aws_node_initialized_total"
		latency = "cloudprovider_aws_node_initialization_latency_seconds"
		errs    = "cloudprovider_aws_node_sync_errors_total"
	)
	before := map[string]float64{
		"addr":     read(assigns, map[string]string{"kind": "address", "outcome": "success"}),
		"prefix":   read(assigns, map[string]string{"kind": "prefix", "outcome": "success"}),
		"intent":   read(writes, map[string]string{"kind": "intent"}),
		"status":   read(writes, map[string]string{"kind": "status"}),
		"spec":     read(writes, map[string]string{"kind": "spec"}),
		"init":     read(inits, nil),
		"latency":  read(latency, nil),
		"conflict": read(errs, map[string]string{"reason": ReasonAPIConflict}),
	}

	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n2", pid("i-0a000000000000002"), nil))
	var conflicted atomic.Bool
	kube.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if !conflicted.Load() && a.GetSubresource() == "" && strings.Contains(string(p.GetPatch()), `"taints"`) {
			conflicted.Store(true)
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "n2", nil)
		}
		return false, nil, nil
	})
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Workers: 1})
	n := waitInitialized(t, kube, "n2")
	eni := eniState(t, sim, "eni-0a000000000000002")
	if len(eni.prefixes) != 1 || len(eni.addrs) != 1 {
		t.Fatalf("ENI %+v, want one address and one prefix", eni)
	}
	checkInitialized(t, n, eni.prefixes[0], eni.addrs[0])
	waitEvent(t, kube, "n2", ReasonAPIConflict)

	after := map[string]float64{
		"addr":     read(assigns, map[string]string{"kind": "address", "outcome": "success"}),
		"prefix":   read(assigns, map[string]string{"kind": "prefix", "outcome": "success"}),
		"intent":   read(writes, map[string]string{"kind": "intent"}),
		"status":   read(writes, map[string]string{"kind": "status"}),
		"spec":     read(writes, map[string]string{"kind": "spec"}),
		"init":     read(inits, nil),
		"latency":  read(latency, nil),
		"conflict": read(errs, map[string]string{"reason": ReasonAPIConflict}),
	}
	// Exactly one status write: the retry after the conflict does not write
	// again what this process wrote, even before the informer shows it.
	for k, want := range map[string]float64{"status": 1, "addr": 1, "prefix": 1, "intent": 1, "spec": 1, "init": 1, "latency": 1, "conflict": 1} {
		if got := after[k] - before[k]; got != want {
			t.Errorf("%s: metric grew by %v, want %v", k, got, want)
		}
	}
}
