package node

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// newIdleController builds a controller on kube whose informer is synced
// but whose workers never run, with a settable clock: tests call refresh
// themselves.
func newIdleController(t *testing.T, kube *fake.Clientset, cloud EC2, opts Options) (*Controller, *time.Time) {
	t.Helper()
	if opts.Region == "" {
		opts.Region = testRegion
	}
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := New(kube, factory.Core().V1().Nodes(), cloud, opts)
	if err != nil {
		t.Fatalf("new controller: %v", err)
	}
	c.recorder = tallyingRecorder{record.NewFakeRecorder(100)}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		t.Fatal("informer did not sync")
	}
	return c, &now
}

// recorded drains the fake recorder's events.
func recorded(c *Controller) []string {
	var out []string
	rec := c.recorder.(tallyingRecorder).EventRecorder.(*record.FakeRecorder)
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// TestRefreshKeepsIPv6 is the address-flip defect: an initialized node
// publishes an IPv6 address that EC2's describe does not show (eventual
// consistency right after an assignment, or a start-up refresh). The
// refresh must keep it first until two describes AssignSettle apart have
// not shown it, then drop it with a Warning. Expected addresses are built
// from ec2sim's state.
func TestRefreshKeepsIPv6(t *testing.T) {
	sim := startSim(t, world)
	const id, name = "i-0a000000000000002", "ip-10-0-1-12.ec2.internal" // bare: EC2 shows no IPv6
	inst := simInstance(t, sim, id)
	const published = "2600:1f18:4000:a901::12"
	node := kubeletNode(name, "aws:///us-east-1a/"+id, nil)
	node.Spec.Taints = node.Spec.Taints[1:]
	node.Spec.PodCIDR, node.Spec.PodCIDRs = "2600:1f18:4000:a901:12::/80", []string{"2600:1f18:4000:a901:12::/80"}
	initialized := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: published},
		{Type: v1.NodeInternalIP, Address: inst.PrivateIP},
		{Type: v1.NodeInternalDNS, Address: inst.PrivateDNSName},
		{Type: v1.NodeHostName, Address: inst.PrivateDNSName},
	}
	node.Status.Addresses = initialized
	kube := fake.NewClientset(node)
	const settle = time.Minute
	c, now := newIdleController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, AssignSettle: settle})

	refreshAt := func(at time.Duration) *v1.Node {
		t.Helper()
		*now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(at)
		c.refresh(t.Context())
		n, err := kube.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The informer must see what the refresh wrote before the next one.
		waitFor(t, "informer", func() bool {
			cached, err := c.lister.Get(name)
			return err == nil && cached.ResourceVersion == n.ResourceVersion
		})
		return n
	}
	// The start-up refresh and one within the settle time keep the address.
	for _, at := range []time.Duration{0, settle / 2} {
		n := refreshAt(at)
		if !slicesEqual(n.Status.Addresses, initialized) {
			t.Fatalf("refresh at +%s changed addresses to %v", at, n.Status.Addresses)
		}
		if p := nodePatches(kube, name); p["status"] != 0 {
			t.Fatalf("refresh at +%s patched status %d times", at, p["status"])
		}
		if s := c.StateSizes()["gone"]; s != 1 {
			t.Fatalf("gone entries = %d, want 1", s)
		}
	}
	if ev := recorded(c); len(ev) != 0 {
		t.Fatalf("events within the settle time: %v", ev)
	}
	// A second describe a full settle time after the first: the address is gone.
	n := refreshAt(settle)
	want := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: inst.PrivateIP},
		{Type: v1.NodeInternalDNS, Address: inst.PrivateDNSName},
		{Type: v1.NodeHostName, Address: inst.PrivateDNSName},
	}
	if !slicesEqual(n.Status.Addresses, want) {
		t.Errorf("after the settle time: addresses %v, want %v", n.Status.Addresses, want)
	}
	ev := recorded(c)
	if len(ev) != 1 || !contains(ev[0], "Warning "+ReasonIPv6AddressGone) || !contains(ev[0], published) {
		t.Errorf("events %v, want one %s naming %s", ev, ReasonIPv6AddressGone, published)
	}
	if s := c.StateSizes()["gone"]; s != 0 {
		t.Errorf("gone entries = %d after the drop, want 0", s)
	}
}

// TestRefreshShownIPv6ClearsGone: an address EC2 shows again clears the
// pending drop, and a node deleted while pending leaves no state.
func TestRefreshShownIPv6ClearsGone(t *testing.T) {
	sim := startSim(t, world)
	const id, name = "i-0a000000000000001", "ip-10-0-1-11.ec2.internal" // pre-prefixed
	inst := simInstance(t, sim, id)
	eni := eniState(t, sim, primaryENIID(t, inst))
	node := kubeletNode(name, "aws:///us-east-1a/"+id, nil)
	node.Spec.Taints = node.Spec.Taints[1:]
	node.Status.Addresses = []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: eni.addrs[0].String()},
		{Type: v1.NodeInternalIP, Address: inst.PrivateIP},
		{Type: v1.NodeInternalDNS, Address: inst.PrivateDNSName},
		{Type: v1.NodeHostName, Address: inst.PrivateDNSName},
	}
	kube := fake.NewClientset(node)
	c, _ := newIdleController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign})
	c.memoMu.Lock()
	c.gone[name] = c.now().Add(-time.Second)
	c.memoMu.Unlock()
	c.refresh(t.Context())
	if s := c.StateSizes()["gone"]; s != 0 {
		t.Errorf("gone entries = %d after EC2 showed the address, want 0", s)
	}
	if p := nodePatches(kube, name); p["status"] != 0 {
		t.Errorf("status patched %d times, want 0", p["status"])
	}
	c.memoMu.Lock()
	c.gone[name], c.done[name], c.memo[name] = c.now(), expectation{}, &assignMemo{}
	c.memoMu.Unlock()
	if err := kube.CoreV1().Nodes().Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "state of the deleted node removed", func() bool {
		s := c.StateSizes()
		return s["gone"]+s["done"]+s["memo"] == 0
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
