package node

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/aws/smithy-go"
)

// TestRefusedBeforeMutation: everything that can refuse a node is checked
// before any mutating EC2 call, so a bare instance whose node cannot be
// initialized costs no address and no prefix.
func TestRefusedBeforeMutation(t *testing.T) {
	const bare = "i-0a000000000000002" // in us-east-1a, no IPv6 yet
	cases := []struct {
		name, providerID, provided, reason, inMessage string
	}{
		{"foreign node IP", pid(bare), "10.9.9.9", ReasonNodeIPNotFound, "10.9.9.9"},
		{"IPv6 node IP not on the instance", pid(bare), "2600:1f18:4000:a901::99", ReasonNodeIPNotFound, "2600:1f18:4000:a901::99"},
		{"providerID zone differs", "aws:///us-east-1b/" + bare, "", ReasonProviderIDZoneMismatch, "us-east-1b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, world)
			var ann map[string]string
			if tc.provided != "" {
				ann = map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: tc.provided}
			}
			kube := fake.NewClientset(kubeletNode("n", tc.providerID, ann))
			before := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": tc.reason})
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
			ev := waitEvent(t, kube, "n", tc.reason)
			if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, tc.inMessage) {
				t.Errorf("event %s %q, want a Warning naming %s", ev.Type, ev.Message, tc.inMessage)
			}
			if tc.reason == ReasonProviderIDZoneMismatch && !strings.Contains(ev.Message, simInstance(t, sim, bare).Zone) {
				t.Errorf("event %q does not name the instance's zone", ev.Message)
			}
			if got := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": tc.reason}); got <= before {
				t.Errorf("sync_errors_total{reason=%s} did not grow", tc.reason)
			}
			n := getNode(t, kube, "n")
			if !hasCloudTaint(n) || n.Spec.PodCIDR != "" || n.Spec.ProviderID != tc.providerID {
				t.Errorf("node written: taints %v podCIDR %q providerID %q", n.Spec.Taints, n.Spec.PodCIDR, n.Spec.ProviderID)
			}
			if m := sim.MutatingCalls(); m != 0 {
				t.Errorf("mutating EC2 calls = %d, want 0", m)
			}
			eni := eniState(t, sim, primaryENIID(t, simInstance(t, sim, bare)))
			if len(eni.addrs)+len(eni.prefixes) != 0 {
				t.Errorf("ENI got %v %v", eni.addrs, eni.prefixes)
			}
		})
	}
}

// TestStateBackToFloor: once nodes are initialized and the informer shows
// it, and once failing nodes are deleted, no per-node entry is left.
func TestStateBackToFloor(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(
		kubeletNode("bare", pid("i-0a000000000000002"), nil),
		kubeletNode("pre", pid("i-0a000000000000001"), nil),
		kubeletNode("noipv6", pid("i-0a000000000000005"), nil), // keeps failing
	)
	factoryCtl := runControllerWith(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
	waitInitialized(t, kube, "bare")
	waitInitialized(t, kube, "pre")
	waitEvent(t, kube, "noipv6", ReasonIPv6AssignmentFailed)
	waitFor(t, "memo and done hold only the failing node", func() bool {
		s := factoryCtl.StateSizes()
		return s["done"] == 0 && s["memo"] <= 1 && s["gone"] == 0
	})
	if err := kube.CoreV1().Nodes().Delete(t.Context(), "noipv6", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "state back to its floor", func() bool {
		s := factoryCtl.StateSizes()
		return s["done"]+s["memo"]+s["gone"] == 0
	})
}

// TestMultiplePrefixesCounts: the MultiplePrefixes Warning counts in
// sync_errors_total like every Warning.
func TestMultiplePrefixesCounts(t *testing.T) {
	sim := startSim(t, world)
	before := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonMultiplePrefixes})
	kube := fake.NewClientset(kubeletNode("two", pid("i-0a000000000000004"), nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
	waitInitialized(t, kube, "two")
	waitEvent(t, kube, "two", ReasonMultiplePrefixes)
	if got := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonMultiplePrefixes}); got <= before {
		t.Errorf("sync_errors_total{reason=MultiplePrefixes} = %v, did not grow from %v", got, before)
	}
}

// TestFailureReportedOnce: helpers only build failures; the worker's report
// turns each into exactly one Warning event and one metric increment, with
// the AWS code in the message, and a plain error into neither.
func TestFailureReportedOnce(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset()
	c, _ := newIdleController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
	node := kubeletNode("n", "", nil)
	cause := &fakeAPIError{code: "UnauthorizedOperation"}
	err := failure(ReasonIPv6AssignmentFailed, cause, "assign to %s", "eni-1")
	if ev := recorded(c); len(ev) != 0 {
		t.Fatalf("failure() recorded %v", ev)
	}
	before := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonIPv6AssignmentFailed})
	c.report(node, err)
	ev := recorded(c)
	if len(ev) != 1 || !strings.Contains(ev[0], "Warning "+ReasonIPv6AssignmentFailed+" UnauthorizedOperation: assign to eni-1") {
		t.Errorf("events %v", ev)
	}
	if got := metricSum(t, "cloudprovider_aws_node_sync_errors_total", map[string]string{"reason": ReasonIPv6AssignmentFailed}); got != before+1 {
		t.Errorf("metric %v, want %v", got, before+1)
	}
	// A message that already names the code inside gets it in front, once.
	ne := failure(ReasonDescribeFailed, cause, "describe instance: %s", "UnauthorizedOperation: denied").(*nodeError)
	if ne.msg != "UnauthorizedOperation: describe instance: denied" {
		t.Errorf("message %q, want the code first, once", ne.msg)
	}
	c.report(node, errStillChoosing)
	if ev := recorded(c); len(ev) != 0 {
		t.Errorf("a plain error made events %v", ev)
	}
}

// fakeAPIError is a smithy API error with a code.
type fakeAPIError struct{ code string }

func (e *fakeAPIError) Error() string                 { return "api error " + e.code }
func (e *fakeAPIError) ErrorCode() string             { return e.code }
func (e *fakeAPIError) ErrorMessage() string          { return "" }
func (e *fakeAPIError) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }
