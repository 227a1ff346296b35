package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// TestCNIHostLocal: once the CCM has set IPv6 podCIDRs, the reference
// host-local IPAM plugin (the binary, CNI_COMMAND=ADD) allocates pod
// addresses inside each node's /80, and no address is handed out twice.
func TestCNIHostLocal(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	ccm := startCCM(t, w, harness.CCMOptions{})

	// Pre-prefixed, bare, and multi-ENI instances.
	var names []string
	ids := map[string]string{} // node name -> instance ID
	for _, id := range []string{"i-0a0000000000000c1", "i-0b0000000000000b1", "i-0b0000000000000b2", "i-0d00000000000d001"} {
		in := instanceByID(w, id)
		if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: in.PrivateDNSName, Ready: true}); err != nil {
			t.Fatal(err)
		}
		names = append(names, in.PrivateDNSName)
		ids[in.PrivateDNSName] = id
	}
	nodes := waitNodes(ctx, t, w, names, 2*time.Minute, func(n *corev1.Node) bool {
		return initialized(n) && n.Spec.PodCIDR != ""
	})

	const podsPerNode = 3
	owner := map[netip.Addr]string{} // pod address -> node/pod
	for _, name := range names {
		cidr, err := netip.ParsePrefix(nodes[name].Spec.PodCIDR)
		if err != nil || !cidr.Addr().Is6() || cidr.Bits() != 80 {
			t.Fatalf("%s: podCIDR %q is not an IPv6 /80 (%v)", name, nodes[name].Spec.PodCIDR, err)
		}
		// EC2 routes the /80 to the node only if it is delegated to its primary ENI.
		if eni := primaryENI(instanceByID(w, ids[name])); len(eni.IPv6Prefixes) != 1 || eni.IPv6Prefixes[0] != cidr.String() {
			t.Errorf("%s: podCIDR %s, but primary ENI %s holds prefixes %v", name, cidr, eni.ID, eni.IPv6Prefixes)
		}
		for i := range podsPerNode {
			pod := fmt.Sprintf("%s/pod-%d", name, i)
			ip, err := w.AllocatePodIP(ctx, harness.HostLocal{
				Network: "k8s-pod-network-" + name, Subnet: cidr.String(), ContainerID: fmt.Sprintf("sandbox-%d", i),
			})
			if err != nil {
				t.Fatalf("%s: %v", pod, err)
			}
			if !cidr.Contains(ip) {
				t.Errorf("%s: host-local gave %s, outside the node's podCIDR %s", pod, ip, cidr)
			}
			if prev, dup := owner[ip]; dup {
				t.Errorf("%s and %s were both given %s", prev, pod, ip)
			}
			owner[ip] = pod
		}
	}
	if len(owner) != len(names)*podsPerNode {
		t.Errorf("%d distinct pod addresses, want %d", len(owner), len(names)*podsPerNode)
	}
	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(ccm.Log(), 4000))
	}
}
