package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

const uninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// newWorld starts a world for one test and stops it when the test ends.
// The e2e tests need the binaries `make build tools` builds; `make test`
// builds them and sets AWS_IPV6_CCM_E2E=1. Without it they are skipped.
func newWorld(t *testing.T, sc *ec2sim.Scenario, throttling bool) *harness.World {
	t.Helper()
	requireE2E(t)
	w, err := harness.Start(t.Context(), harness.Options{Scenario: sc, Throttling: throttling, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// requireE2E skips an e2e test unless AWS_IPV6_CCM_E2E is set; under CI
// (CI=true) a missing variable fails the test instead, so CI never passes
// by skipping.
func requireE2E(t *testing.T) {
	t.Helper()
	if os.Getenv("AWS_IPV6_CCM_E2E") != "" {
		return
	}
	if ciMode() {
		t.Fatal("CI=true but AWS_IPV6_CCM_E2E is not set: e2e tests must run in CI (`make test` sets it)")
	}
	t.Skip("e2e tests run under `make test` (set AWS_IPV6_CCM_E2E=1 after `make build tools`)")
}

// ciMode reports whether CI=true (or 1) is set.
func ciMode() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

func demoScenario(t *testing.T) *ec2sim.Scenario {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ec2sim.LoadScenario(filepath.Join(root, "tests", "ec2sim", "testdata", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func startCCM(t *testing.T, w *harness.World, o harness.CCMOptions) *harness.CCM {
	t.Helper()
	c, err := w.StartCCM(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", c.Name, tail(c.Log(), 6000))
		}
	})
	return c
}

// noForbidden fails the test if the CCM was refused anything by RBAC.
func noForbidden(t *testing.T, cs ...*harness.CCM) {
	t.Helper()
	for _, c := range cs {
		for _, line := range strings.Split(c.Log(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("%s log has an RBAC refusal: %s", c.Name, line)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func instanceByID(w *harness.World, id string) ec2sim.InstanceState {
	for _, in := range w.Sim.State().Instances {
		if in.ID == id {
			return in
		}
	}
	return ec2sim.InstanceState{}
}

func primaryENI(in ec2sim.InstanceState) ec2sim.ENIState {
	for _, e := range in.ENIs {
		if e.DeviceIndex == 0 && e.NetworkCardIndex == 0 {
			return e
		}
	}
	return ec2sim.ENIState{}
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// waitNodes waits until done holds for every named node.
func waitNodes(ctx context.Context, t *testing.T, w *harness.World, names []string, timeout time.Duration, done func(*corev1.Node) bool) map[string]*corev1.Node {
	t.Helper()
	got := map[string]*corev1.Node{}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		byName := map[string]*corev1.Node{}
		for i := range list.Items {
			byName[list.Items[i].Name] = &list.Items[i]
		}
		for _, n := range names {
			if byName[n] == nil || !done(byName[n]) {
				return false, nil
			}
			got[n] = byName[n]
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("nodes %v did not converge: %v", names, err)
	}
	return got
}

func initialized(n *corev1.Node) bool { return !hasTaint(n, uninitializedTaint) }

// warningEvent waits for a Warning event on the node whose message contains substr.
func warningEvent(ctx context.Context, t *testing.T, w *harness.World, node, substr string) corev1.Event {
	t.Helper()
	var found corev1.Event
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		evs, err := w.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + node})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, substr) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no Warning event on node %s containing %q: %v", node, substr, err)
	}
	return found
}
