package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// dualStackCCM is the shipped cloud config with IPv4 pod ranges from
// --cluster-cidr, and the flags that give the pool (IPv6 listed first, so
// IPv6 is the primary family).
func dualStackCCM(t *testing.T, w *harness.World, pool string, extra ...string) harness.CCMOptions {
	t.Helper()
	cc, err := w.ShippedCloudConfig()
	if err != nil {
		t.Fatal(err)
	}
	return harness.CCMOptions{
		CloudConfig: cc + "IPv4PodCIDRSource=cluster-cidr\n",
		ExtraArgs:   append([]string{"--cluster-cidr=fd00:10:244::/56," + pool, "--node-cidr-mask-size-ipv4=24"}, extra...),
	}
}

// TestDualStackBurst: 200 bare nodes register at once and the leader is
// killed a third of the way through. Once all are initialized, each has
// podCIDRs [its primary ENI's /80 (from ec2sim), a /24 of the pool], no
// range is on two nodes, and no node's podCIDRs ever changed (recorded
// from a watch opened before the burst). A pod on a node gets one address
// from each range from the real host-local plugin.
func TestDualStackBurst(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	rec := recordNodes(t, w)
	pool := netip.MustParsePrefix("10.200.0.0/16")
	first := startCCM(t, w, dualStackCCM(t, w, pool.String(), fastLeaderElection...))
	_, holder := waitLeader(ctx, t, w, "", first)

	const n = 200
	specs, want := addBareNodes(t, w, n)
	created := make(chan error, 1)
	go func() { created <- createNodes(ctx, w, specs, 4, 0) }()
	rec.waitInitialized(ctx, t, n/3, 3*time.Minute)
	first.Kill()
	done, _ := countInitialized(ctx, t, w, want)
	t.Logf("killed %s with %d/%d nodes initialized", first.Name, done, n)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if done == n {
		t.Fatalf("all %d nodes were initialized before the kill; the burst was not interrupted", n)
	}
	second := startCCM(t, w, dualStackCCM(t, w, pool.String(), fastLeaderElection...))
	waitLeader(ctx, t, w, holder, second)
	nodes := waitNodes(ctx, t, w, nodeNames(want), 6*time.Minute, initialized)

	v4 := map[string]string{} // node → its IPv4 range, checked below
	checkConvergedWith(ctx, t, w, rec, want, func(n *corev1.Node, prefix string) []string {
		r := ""
		if len(n.Spec.PodCIDRs) == 2 {
			r = n.Spec.PodCIDRs[1]
		}
		v4[n.Name] = r
		return []string{prefix, r}
	})
	for name, r := range v4 {
		p, err := netip.ParsePrefix(r)
		if err != nil || !p.Addr().Is4() || p.Bits() != 24 || !pool.Contains(p.Addr()) || p.Masked() != p {
			t.Errorf("%s: IPv4 pod range %q is not a /24 of %s", name, r, pool)
		}
	}
	rec.check(t)

	// A dual-stack pod: host-local with both ranges gives one address of each.
	k := 0
	for name, node := range nodes {
		if k == 3 {
			break
		}
		k++
		addrs, err := w.AllocatePodIPs(ctx, harness.HostLocal{Network: "pods-" + name, ContainerID: fmt.Sprintf("pod-%d", k), Subnets: node.Spec.PodCIDRs})
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range addrs {
			if p := netip.MustParsePrefix(node.Spec.PodCIDRs[i]); !p.Contains(a) {
				t.Errorf("%s: pod address %s not in %s", name, a, p)
			}
		}
		if !addrs[0].Is6() || !addrs[1].Is4() {
			t.Errorf("%s: pod addresses %v, want one IPv6 then one IPv4", name, addrs)
		}
	}
	noForbidden(t, first, second)
}

// TestDualStackFullClusterCIDR: a pool of two /24s and three nodes: the
// third gets a CIDRNotAvailable Warning and keeps its taint; deleting one
// node frees its range and the third is initialized with it.
func TestDualStackFullClusterCIDR(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	startCCM(t, w, dualStackCCM(t, w, "10.201.0.0/23"))
	specs, want := addBareNodes(t, w, 3)
	if err := createNodes(ctx, w, specs[:2], 1, 0); err != nil {
		t.Fatal(err)
	}
	two := waitNodes(ctx, t, w, []string{specs[0].Name, specs[1].Name}, 2*time.Minute, initialized)
	if err := createNodes(ctx, w, specs[2:], 1, 0); err != nil {
		t.Fatal(err)
	}
	third := specs[2].Name
	ev := warningEvent(ctx, t, w, third, "10.201.0.0/23")
	if ev.Reason != "CIDRNotAvailable" {
		t.Errorf("%s: Warning %s: %s, want CIDRNotAvailable", third, ev.Reason, ev.Message)
	}
	if n, err := w.Admin.CoreV1().Nodes().Get(ctx, third, metav1.GetOptions{}); err != nil || initialized(n) || len(n.Spec.PodCIDRs) != 0 {
		t.Fatalf("%s initialized without a range: %v %+v", third, err, n)
	}
	freed := two[specs[0].Name].Spec.PodCIDRs[1]
	if err := w.Admin.CoreV1().Nodes().Delete(ctx, specs[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitNodes(ctx, t, w, []string{third}, 2*time.Minute, initialized)[third]
	eni := primaryENI(instanceByID(w, want[third]))
	if len(got.Spec.PodCIDRs) != 2 || got.Spec.PodCIDRs[0] != eni.IPv6Prefixes[0] || got.Spec.PodCIDRs[1] != freed {
		t.Errorf("%s: podCIDRs %v, want [%v %s]", third, got.Spec.PodCIDRs, eni.IPv6Prefixes, freed)
	}
}
