package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

const shutdownTaint = "node.cloudprovider.kubernetes.io/shutdown"

const (
	// monitorPeriod is the default of --node-monitor-period, which the
	// shipped manifests leave alone.
	monitorPeriod = 5 * time.Second
	// lifecycleBound is how soon after EC2 shows an instance terminated
	// (stopped) its Node must be deleted (tainted): one monitor period, plus
	// one batched describe that starts after the lookup, with room to spare.
	lifecycleBound = 10 * time.Second
)

// TestLifecycle checks the framework's cloud-node-lifecycle controller, run
// by our binary through InstanceExists and InstanceShutdown: the Node of a
// terminated instance is deleted, the Node of a stopped instance gets the
// shutdown taint (and keeps existing), a running instance's Node is left
// alone, and the taint goes once the instance runs and the Node is Ready
// again. The lifecycle controller only looks at Nodes whose Ready condition
// is not True; these Nodes have none, as when kubelet stopped reporting.
func TestLifecycle(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	// The shipped DaemonSet leaves --node-monitor-period at its default,
	// 5 s, and so does this test: the promptness bound below is the one
	// users get.
	ccm := startCCM(t, w, harness.CCMOptions{})

	const (
		running    = "i-0a0000000000000c1"
		terminated = "i-0b0000000000000b1"
		stopped    = "i-0b0000000000000b2"
	)
	name := map[string]string{}
	for _, id := range []string{running, terminated, stopped} {
		in := instanceByID(w, id)
		spec := harness.NodeSpec{Name: in.PrivateDNSName}
		if id != terminated {
			spec.ProviderID = providerid.Format(in.Zone, id)
		}
		if _, err := w.CreateNode(ctx, spec); err != nil {
			t.Fatal(err)
		}
		name[id] = spec.Name
	}
	waitNodes(ctx, t, w, []string{name[running], name[terminated], name[stopped]}, 2*time.Minute, initialized)
	// Let the lifecycle controller look every instance up at least once more
	// (its period is 5 s), so the CCM holds each instance's running state in
	// its cache when EC2 changes it: the lookups of NotReady nodes must not be
	// answered from that cache.
	time.Sleep(monitorPeriod + time.Second)

	if err := w.Sim.SetInstanceState(terminated, "terminated"); err != nil {
		t.Fatal(err)
	}
	terminatedAt := time.Now()
	if err := w.Sim.SetInstanceState(stopped, "stopped"); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := w.Admin.CoreV1().Nodes().Get(ctx, name[terminated], metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("node %s of terminated instance %s was not deleted: %v", name[terminated], terminated, err)
	}
	deleted := time.Since(terminatedAt)
	waitNodes(ctx, t, w, []string{name[stopped]}, 90*time.Second, func(n *corev1.Node) bool { return hasTaint(n, shutdownTaint) })
	tainted := time.Since(stoppedAt)
	t.Logf("terminated node deleted %s after the termination; stopped node tainted %s after the stop",
		deleted.Round(100*time.Millisecond), tainted.Round(100*time.Millisecond))
	if deleted > lifecycleBound {
		t.Errorf("node of terminated instance deleted %s after EC2 showed it terminated, want within %s", deleted.Round(100*time.Millisecond), lifecycleBound)
	}
	if tainted > lifecycleBound {
		t.Errorf("node of stopped instance tainted %s after EC2 showed it stopped, want within %s", tainted.Round(100*time.Millisecond), lifecycleBound)
	}
	for _, id := range []string{running, stopped} {
		n, err := w.Admin.CoreV1().Nodes().Get(ctx, name[id], metav1.GetOptions{})
		if err != nil {
			t.Fatalf("node %s of %s instance %s: %v", name[id], instanceByID(w, id).State, id, err)
		}
		if id == running && hasTaint(n, shutdownTaint) {
			t.Errorf("node %s of running instance %s got the shutdown taint", n.Name, id)
		}
	}

	// The instance runs again and kubelet reports Ready: the taint goes.
	if err := w.Sim.SetInstanceState(stopped, "running"); err != nil {
		t.Fatal(err)
	}
	setReady(ctx, t, w, name[stopped])
	waitNodes(ctx, t, w, []string{name[stopped]}, 90*time.Second, func(n *corev1.Node) bool { return !hasTaint(n, shutdownTaint) })

	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(ccm.Log(), 4000))
	}
	noForbidden(t, ccm)
}

// setReady sets the node's Ready condition to True, as kubelet reports it.
func setReady(ctx context.Context, t *testing.T, w *harness.World, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := w.Admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		_, err = w.Admin.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set node %s Ready: %v", name, err)
	}
}
