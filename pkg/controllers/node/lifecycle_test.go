package node

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// NotReady nodes stay announced to the resolver under their lifecycle key
// after initialization, for the lifecycle controller's fresh lookups to
// ride along together; a node that turns Ready or is deleted is withdrawn.
func TestNotReadyNodesAnnouncedForLifecycle(t *testing.T) {
	sim := startSim(t, world)
	cloud := newEC2(t, sim)
	kube := fake.NewClientset()
	names := []string{"n1", "n3", "ip-10-0-1-12.ec2.internal"}
	for i, name := range names {
		p := ""
		if i < 2 {
			p = pid([]string{"i-0a000000000000001", "i-0a000000000000003"}[i])
		}
		if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, p, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runController(t, kube, cloud, Options{Mode: ModeAssign})
	for _, name := range names {
		waitInitialized(t, kube, name)
	}
	expectations := func() int { return cloud.StateSizes()["expectations"] }
	waitFor(t, "one expectation per NotReady node", func() bool { return expectations() == len(names) })

	n := getNode(t, kube, "n1")
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := kube.CoreV1().Nodes().UpdateStatus(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Ready node withdrawn", func() bool { return expectations() == len(names)-1 })
	if err := kube.CoreV1().Nodes().Delete(t.Context(), "n3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted node withdrawn", func() bool { return expectations() == len(names)-2 })
}
