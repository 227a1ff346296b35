package e2e

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// watchOrder records, per node, whether the first update that removed the
// uninitialized taint already carried addresses and a podCIDR.
type watchOrder struct {
	mu  sync.Mutex
	bad map[string]string
	ok  map[string]bool
}

func watchTaintRemoval(ctx context.Context, t *testing.T, w *harness.World) *watchOrder {
	t.Helper()
	wo := &watchOrder{bad: map[string]string{}, ok: map[string]bool{}}
	wi, err := w.Admin.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer wi.Stop()
		for ev := range wi.ResultChan() {
			n, ok := ev.Object.(*corev1.Node)
			if !ok || ev.Type == watch.Deleted || hasTaint(n, uninitializedTaint) {
				continue
			}
			wo.mu.Lock()
			if !wo.ok[n.Name] && wo.bad[n.Name] == "" {
				switch {
				case len(n.Status.Addresses) == 0:
					wo.bad[n.Name] = "taint removed before addresses were written"
				case n.Spec.PodCIDR == "":
					wo.bad[n.Name] = "taint removed before podCIDR was written"
				default:
					wo.ok[n.Name] = true
				}
			}
			wo.mu.Unlock()
		}
	}()
	return wo
}

func TestIPv6Mode(t *testing.T) {
	w := newWorld(t, demoScenario(t), true)
	ctx := t.Context()
	wo := watchTaintRemoval(ctx, t, w)
	ccm := startCCM(t, w, harness.CCMOptions{})

	const (
		prePrefixed = "i-0a0000000000000c1"
		bareA       = "i-0b0000000000000b1"
		bareB       = "i-0b0000000000000b2"
		multiENI    = "i-0d00000000000d001"
		noIPv6      = "i-0e0000000000000e1"
	)
	good := map[string]string{} // node name -> instance ID
	// The pre-prefixed control plane and one bare node carry a providerID;
	// the others are found by private DNS name, as kubelet names them.
	for _, id := range []string{prePrefixed, bareA, bareB, multiENI} {
		in := instanceByID(w, id)
		spec := harness.NodeSpec{Name: in.PrivateDNSName}
		if id == prePrefixed || id == bareB {
			spec.ProviderID = providerid.Format(in.Zone, id)
		}
		if _, err := w.CreateNode(ctx, spec); err != nil {
			t.Fatal(err)
		}
		good[spec.Name] = id
	}
	// Bad input: a foreign providerID, an instance that does not exist, a subnet without IPv6.
	bad := []harness.NodeSpec{
		{Name: "foreign", ProviderID: "gce://project/us-central1-a/vm-1"},
		{Name: "ghost", ProviderID: "aws:///eu-west-1a/i-0fffffffffffffff0"},
		{Name: instanceByID(w, noIPv6).PrivateDNSName},
	}
	for _, s := range bad {
		if _, err := w.CreateNode(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	var names []string
	for n := range good {
		names = append(names, n)
	}
	nodes := waitNodes(ctx, t, w, names, 2*time.Minute, initialized)
	seen := map[string]string{}
	for name, node := range nodes {
		id := good[name]
		in := instanceByID(w, id)
		eni := primaryENI(in)
		if len(eni.IPv6Prefixes) != 1 {
			t.Errorf("%s: primary ENI %s holds prefixes %v, want exactly one", name, eni.ID, eni.IPv6Prefixes)
			continue
		}
		if node.Spec.PodCIDR != eni.IPv6Prefixes[0] || len(node.Spec.PodCIDRs) != 1 || node.Spec.PodCIDRs[0] != eni.IPv6Prefixes[0] {
			t.Errorf("%s: podCIDR %q podCIDRs %v, want the ENI's /80 %s", name, node.Spec.PodCIDR, node.Spec.PodCIDRs, eni.IPv6Prefixes[0])
		}
		if other, dup := seen[node.Spec.PodCIDR]; dup {
			t.Errorf("%s and %s share podCIDR %s", name, other, node.Spec.PodCIDR)
		}
		seen[node.Spec.PodCIDR] = name
		if want := providerid.Format(in.Zone, id); node.Spec.ProviderID != want {
			t.Errorf("%s: providerID %q, want %q", name, node.Spec.ProviderID, want)
		}
		if node.Labels["topology.kubernetes.io/zone"] != in.Zone || node.Labels["node.kubernetes.io/instance-type"] != in.Type ||
			node.Labels["topology.kubernetes.io/region"] != "eu-west-1" || node.Labels["topology.k8s.aws/zone-id"] == "" {
			t.Errorf("%s: labels %v", name, node.Labels)
		}
		first := node.Status.Addresses[0]
		ip, err := netip.ParseAddr(first.Address)
		if first.Type != corev1.NodeInternalIP || err != nil || !ip.Is6() {
			t.Errorf("%s: first address %v, want an IPv6 InternalIP", name, first)
		}
		// The pick (docs/explanation/node-controller.md): the address flagged
		// primary, else the lowest.
		var want netip.Addr
		for _, a := range eni.IPv6 {
			ip := netip.MustParseAddr(a.Address)
			switch {
			case a.Primary:
				want = ip
			case !want.IsValid():
				want = ip
			case ip.Less(want) && !primaryFlagged(eni.IPv6):
				want = ip
			}
		}
		if first.Address != want.String() {
			t.Errorf("%s: first InternalIP %s, want %s (ENI addresses %v)", name, first.Address, want, eni.IPv6)
		}
		var onENI bool
		for _, a := range eni.IPv6 {
			onENI = onENI || a.Address == first.Address
		}
		if !onENI {
			t.Errorf("%s: first InternalIP %s is not on primary ENI %s (%v)", name, first.Address, eni.ID, eni.IPv6)
		}
	}
	wo.mu.Lock()
	for n, why := range wo.bad {
		t.Errorf("%s: %s", n, why)
	}
	wo.mu.Unlock()

	// Assignments: two bare nodes and the multi-ENI node needed an address
	// and a prefix each; the pre-prefixed node cost nothing.
	counts := w.Sim.Counts()["AssignIpv6Addresses"]
	if got := counts["success"]; got != 6 {
		t.Errorf("AssignIpv6Addresses successes = %d, want 6 (address + prefix for 3 bare nodes); counts %v", got, counts)
	}

	// Bad input: each gets a Warning event and keeps its taint; the rest were served.
	warningEvent(ctx, t, w, "foreign", "another cloud provider")
	warningEvent(ctx, t, w, "ghost", "i-0fffffffffffffff0")
	warningEvent(ctx, t, w, instanceByID(w, noIPv6).PrivateDNSName, "")
	for _, s := range bad {
		n, err := w.Admin.CoreV1().Nodes().Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !hasTaint(n, uninitializedTaint) || n.Spec.PodCIDR != "" {
			t.Errorf("%s: bad node was initialized: taints %v podCIDR %q", s.Name, n.Spec.Taints, n.Spec.PodCIDR)
		}
	}
	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(ccm.Log(), 4000))
	}
	noForbidden(t, ccm)
}

// primaryFlagged reports whether one of the addresses is flagged primary.
func primaryFlagged(addrs []ec2sim.IPv6Addr) bool {
	for _, a := range addrs {
		if a.Primary {
			return true
		}
	}
	return false
}
