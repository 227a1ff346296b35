package node

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestRecycledPrivateDNSName: a private DNS name comes back with its IPv4
// address. A node of a terminated instance is deleted, and a new instance
// gets the same name within the instance cache's TTL; the new Node, named
// by that name, must be initialized with the new instance, not with the
// cached terminated one.
func TestRecycledPrivateDNSName(t *testing.T) {
	sim := startSim(t, world)
	const name = "ip-10-0-1-12.ec2.internal" // i-0a000000000000002, bare
	kube := fake.NewClientset(kubeletNode(name, "", nil))
	cloud := newEC2(t, sim)
	runController(t, kube, cloud, Options{Mode: ModeAssign})
	first := waitInitialized(t, kube, name)
	if first.Spec.ProviderID != pid("i-0a000000000000002") {
		t.Fatalf("first node providerID %q", first.Spec.ProviderID)
	}
	// Any lookup (the lifecycle controller's, a refresh) caches the old
	// instance under the name, as running.
	if inst, err := cloud.InstanceByPrivateDNSName(t.Context(), name); err != nil || inst.ID != "i-0a000000000000002" {
		t.Fatalf("lookup by name: %v, %v", inst, err)
	}
	if err := kube.CoreV1().Nodes().Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState("i-0a000000000000002", "terminated"); err != nil {
		t.Fatal(err)
	}
	id, err := sim.AddInstance(ec2sim.Instance{Subnet: "subnet-0a000000000000001", PrivateDNSName: name})
	if err != nil {
		t.Fatal(err)
	}
	// kubelet registers the new Node after its instance started.
	if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, "", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := waitInitialized(t, kube, name)
	if second.Spec.ProviderID != pid(id) {
		t.Errorf("recycled name resolved to %q, want the new instance %s", second.Spec.ProviderID, id)
	}
	eni := eniState(t, sim, primaryENIID(t, simInstance(t, sim, id)))
	if len(eni.prefixes) != 1 || second.Spec.PodCIDR != eni.prefixes[0].String() {
		t.Errorf("podCIDR %q, new instance's ENI holds %v", second.Spec.PodCIDR, eni.prefixes)
	}
}
