package node

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// dualStackNodes are three instances of the test world that initialize.
var dualStackNodes = map[string]string{"n1": "i-0a000000000000001", "n2": "i-0a000000000000002", "n3": "i-0a000000000000003"}

// TestDualStackPodCIDRs: each node gets its primary ENI's /80 and an IPv4
// range of the pool, IPv6 first by default and IPv4 first when asked,
// spec.podCIDR the first; no range on two nodes; still one spec write.
func TestDualStackPodCIDRs(t *testing.T) {
	for _, ipv4First := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv6-first", true: "ipv4-first"}[ipv4First], func(t *testing.T) {
			sim := startSim(t, world)
			kube := fake.NewClientset()
			for name, id := range dualStackNodes {
				if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, pid(id), nil), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			pool := netip.MustParsePrefix("10.244.0.0/22")
			runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, IPv4Pool: pool, IPv4MaskBits: 24, IPv4First: ipv4First})
			seen := map[string]string{}
			for name, id := range dualStackNodes {
				n := waitInitialized(t, kube, name)
				in := simInstance(t, sim, id)
				var eni80 string
				for _, e := range in.ENIs {
					if e.DeviceIndex == 0 && len(e.IPv6Prefixes) > 0 {
						eni80 = e.IPv6Prefixes[0]
					}
				}
				if len(n.Spec.PodCIDRs) != 2 {
					t.Fatalf("%s: podCIDRs %v, want two", name, n.Spec.PodCIDRs)
				}
				v6, v4 := n.Spec.PodCIDRs[0], n.Spec.PodCIDRs[1]
				if ipv4First {
					v6, v4 = v4, v6
				}
				if v6 != eni80 {
					t.Errorf("%s: IPv6 pod CIDR %s, want the ENI's %s", name, v6, eni80)
				}
				r := netip.MustParsePrefix(v4)
				if !r.Addr().Is4() || r.Bits() != 24 || !pool.Contains(r.Addr()) {
					t.Errorf("%s: IPv4 pod range %s not a /24 of %s", name, v4, pool)
				}
				if other, dup := seen[v4]; dup {
					t.Errorf("%s and %s share %s", name, other, v4)
				}
				seen[v4] = name
				if n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
					t.Errorf("%s: podCIDR %s, want the first of %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
				}
				// A pre-prefixed node: two writes, as without IPv4 ranges.
				if got := nodePatches(kube, name); name == "n1" && (len(got) != 2 || got["status"] != 1 || got[""] != 1) {
					t.Errorf("%s: writes %v, want one status and one spec patch", name, got)
				}
			}
		})
	}
}

// TestDualStackFullPoolThenFreed: with one range for two nodes, the second
// gets CIDRNotAvailable (a Warning, counted), keeps its taint and is never
// written; deleting the first frees the range and the second takes it. A
// restarted controller rebuilds its ranges from the Nodes and never hands
// out one a Node holds.
func TestDualStackFullPoolThenFreed(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset(kubeletNode("n1", pid("i-0a000000000000001"), nil))
	one := netip.MustParsePrefix("10.244.7.0/24")
	opts := Options{Mode: ModeAssign, IPv4Pool: one, IPv4MaskBits: 24}
	stop := runController(t, kube, newEC2(t, sim), opts)
	if got := waitInitialized(t, kube, "n1").Spec.PodCIDRs; len(got) != 2 || got[1] != one.String() {
		t.Fatalf("n1 podCIDRs %v, want [/80, %s]", got, one)
	}
	stop()

	// A new process: the range n1 holds is known before any sync.
	before := syncErrorCount(t, ReasonCIDRNotAvailable)
	if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode("n2", pid("i-0a000000000000002"), nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube.ClearActions()
	c := runControllerWith(t, kube, newEC2(t, sim), opts)
	ev := waitWarning(t, kube, "n2", ReasonCIDRNotAvailable, before, 1)
	if !strings.Contains(ev.Message, one.String()) {
		t.Errorf("event message %q does not name the cluster CIDR", ev.Message)
	}
	if n := getNode(t, kube, "n2"); !hasCloudTaint(n) || n.Spec.PodCIDR != "" {
		t.Fatalf("n2 written without a range: %v %v", n.Spec.Taints, n.Spec.PodCIDRs)
	}
	if m := sim.Calls("AssignIpv6Addresses"); m != 0 {
		t.Errorf("%d assignments for a node refused for want of a range, want 0", m)
	}
	if got := c.StateSizes()["ipv4_waiting"]; got != 1 {
		t.Errorf("%d nodes waiting for a range, want 1", got)
	}
	if err := kube.CoreV1().Nodes().Delete(t.Context(), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitInitialized(t, kube, "n2").Spec.PodCIDRs; len(got) != 2 || got[1] != one.String() {
		t.Fatalf("n2 podCIDRs %v, want [/80, %s]", got, one)
	}
	if s := c.StateSizes(); s["ipv4_ranges"] != 1 || s["ipv4_waiting"] != 0 {
		t.Errorf("state %v, want one range held and none waiting", s)
	}
}

// TestDualStackPresetPodCIDRs: podCIDRs someone else set are adopted when
// consistent (the /80 of the ENI and a free range of the pool, which is then
// never handed out) and otherwise refused with PodCIDRMismatch, never
// changed.
func TestDualStackPresetPodCIDRs(t *testing.T) {
	sim := startSim(t, world)
	pool := netip.MustParsePrefix("10.244.0.0/23")
	preset := func(name, id string, cidrs ...string) *v1.Node {
		n := kubeletNode(name, pid(id), nil)
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidrs[0], cidrs
		return n
	}
	kube := fake.NewClientset(
		preset("good", "i-0a000000000000001", "2600:1f18:4000:a901:11::/80", "10.244.1.0/24"),
		preset("no-ipv4", "i-0a000000000000003", "2600:1f18:4000:a901:131::/80"),
		kubeletNode("new", pid("i-0a000000000000002"), nil),
	)
	before := syncErrorCount(t, ReasonPodCIDRMismatch)
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, IPv4Pool: pool, IPv4MaskBits: 24})
	if n := waitInitialized(t, kube, "good"); n.Spec.PodCIDRs[1] != "10.244.1.0/24" {
		t.Errorf("good: podCIDRs changed to %v", n.Spec.PodCIDRs)
	}
	if n := waitInitialized(t, kube, "new"); n.Spec.PodCIDRs[1] != "10.244.0.0/24" {
		t.Errorf("new: podCIDRs %v, want the one free range 10.244.0.0/24 beside its /80", n.Spec.PodCIDRs)
	}
	ev := waitWarning(t, kube, "no-ipv4", ReasonPodCIDRMismatch, before, 1)
	if !strings.Contains(ev.Message, "no IPv4 range") {
		t.Errorf("event %q", ev.Message)
	}
	if n := getNode(t, kube, "no-ipv4"); !hasCloudTaint(n) || len(n.Spec.PodCIDRs) != 1 {
		t.Errorf("no-ipv4 changed: %v %v", n.Spec.Taints, n.Spec.PodCIDRs)
	}
}

// Dual-stack pod CIDRs need an IPv6 mode and a sane pool.
func TestDualStackOptionsRefused(t *testing.T) {
	sim := startSim(t, world)
	kube := fake.NewClientset()
	nodes := informers.NewSharedInformerFactory(kube, 0).Core().V1().Nodes()
	if _, err := New(kube, nodes, newEC2(t, sim), Options{Mode: ModeAssign, IPv4Pool: netip.MustParsePrefix("10.244.0.0/16"), IPv4MaskBits: 24}); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	for _, o := range []Options{
		{Mode: ModeOff, IPv4Pool: netip.MustParsePrefix("10.244.0.0/16"), IPv4MaskBits: 24},
		{Mode: ModeAssign, IPv4Pool: netip.MustParsePrefix("10.244.0.0/16"), IPv4MaskBits: 12},
		{Mode: ModeAssign, IPv4Pool: netip.MustParsePrefix("fd00::/48"), IPv4MaskBits: 64},
	} {
		if _, err := New(kube, nodes, newEC2(t, sim), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// IPv4 ranges cost no EC2 call: the same nodes initialized with and
// without them make the same calls, action by action.
func TestDualStackNoExtraEC2Calls(t *testing.T) {
	counts := func(pool netip.Prefix) map[string]map[string]int {
		sim := startSim(t, world)
		kube := fake.NewClientset()
		for name, id := range dualStackNodes {
			if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, pid(id), nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		stop := runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, IPv4Pool: pool, IPv4MaskBits: 24})
		for name := range dualStackNodes {
			waitInitialized(t, kube, name)
		}
		stop()
		return sim.Counts()
	}
	without, with := counts(netip.Prefix{}), counts(netip.MustParsePrefix("10.244.0.0/16"))
	if !reflect.DeepEqual(without, with) {
		t.Errorf("EC2 calls\n without IPv4 ranges %v\n with them         %v", without, with)
	}
}
