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
	ccm := startCCM(t, w, harness.CCMOptions{ExtraArgs: []string{"--node-monitor-period=1s"}})

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

	if err := w.Sim.SetInstanceState(terminated, "terminated"); err != nil {
		t.Fatal(err)
	}
	if err := w.Sim.SetInstanceState(stopped, "stopped"); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := w.Admin.CoreV1().Nodes().Get(ctx, name[terminated], metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("node %s of terminated instance %s was not deleted: %v", name[terminated], terminated, err)
	}
	waitNodes(ctx, t, w, []string{name[stopped]}, 90*time.Second, func(n *corev1.Node) bool { return hasTaint(n, shutdownTaint) })
	t.Logf("terminated node deleted and stopped node tainted within %s", time.Since(changed).Round(100*time.Millisecond))
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
