package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/node"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// Leader election as the binary does it: the framework's Lease
// kube-system/cloud-controller-manager, with periods short enough that a
// replacement takes over within seconds of a SIGKILL (defaults: 15s/10s/2s).
const (
	leaseNamespace = "kube-system"
	leaseName      = "cloud-controller-manager"
	// acquiredLease is what client-go's leaderelection logs on becoming
	// leader, with lock="<namespace>/<name>".
	acquiredLease = "Successfully acquired lease"
)

var fastLeaderElection = []string{
	"--leader-elect=true",
	"--leader-elect-lease-duration=6s",
	"--leader-elect-renew-deadline=4s",
	"--leader-elect-retry-period=1s",
}

// demoIPv6Subnets are the dual-stack subnets of the demo scenario.
var demoIPv6Subnets = []string{"subnet-0de00000000000a01", "subnet-0de00000000000b01"}

// addBareNodes adds n running instances without any IPv6 address or prefix
// to ec2sim (alternating over the demo's dual-stack subnets) and returns the
// Nodes kubelet would register for them: every other one with a providerID,
// the rest named by private DNS name only. want maps node name to instance ID.
func addBareNodes(t *testing.T, w *harness.World, n int) (specs []harness.NodeSpec, want map[string]string) {
	t.Helper()
	want = map[string]string{}
	var ids []string
	for i := range n {
		id, err := w.Sim.AddInstance(ec2sim.Instance{Type: "m5.large", Subnet: demoIPv6Subnets[i%len(demoIPv6Subnets)]})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	byID := map[string]ec2sim.InstanceState{}
	for _, in := range w.Sim.State().Instances {
		byID[in.ID] = in
	}
	for i, id := range ids {
		in := byID[id]
		if in.PrivateDNSName == "" || len(primaryENI(in).IPv6) != 0 || len(primaryENI(in).IPv6Prefixes) != 0 {
			t.Fatalf("added instance %s is not a bare running instance: %+v", id, in)
		}
		s := harness.NodeSpec{Name: in.PrivateDNSName}
		if i%2 == 1 {
			s.ProviderID = providerid.Format(in.Zone, id)
		}
		specs = append(specs, s)
		want[s.Name] = id
	}
	return specs, want
}

// createNodes registers the nodes with `parallel` concurrent creators, each
// waiting pace between creations. It returns when all are created; the
// first error is returned.
func createNodes(ctx context.Context, w *harness.World, specs []harness.NodeSpec, parallel int, pace time.Duration) error {
	next := make(chan harness.NodeSpec)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for s := range next {
				if _, err := w.CreateNode(ctx, s); err != nil {
					errs <- fmt.Errorf("create node %s: %w", s.Name, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for i, s := range specs {
		if i > 0 && pace > 0 {
			select {
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			case <-time.After(pace):
			}
		}
		select {
		case next <- s:
		case err = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs // nil when the channel is empty
	}
	return err
}

// nodeRecorder watches Nodes from before a burst starts. It records the first
// podCIDR each node carried and any later change, taint removal before a
// podCIDR was set, and node deletions; and it counts initialized nodes.
type nodeRecorder struct {
	mu         sync.Mutex
	firstCIDR  map[string]string
	init       map[string]bool
	violations []string
	ended      chan struct{}
}

// recordNodes starts a nodeRecorder that runs until the test's context ends.
func recordNodes(t *testing.T, w *harness.World) *nodeRecorder {
	t.Helper()
	ctx := t.Context()
	list, err := w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &nodeRecorder{firstCIDR: map[string]string{}, init: map[string]bool{}, ended: make(chan struct{})}
	for i := range list.Items {
		r.observe(watch.Added, &list.Items[i])
	}
	// A watch the server closes is resumed from the last resourceVersion
	// seen, as an informer does, so no event is missed; a resume the server
	// refuses (the version is gone) ends the record.
	rv := list.ResourceVersion
	go func() {
		defer close(r.ended)
		for ctx.Err() == nil {
			wi, err := w.Admin.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				if ctx.Err() == nil {
					r.mu.Lock()
					r.violations = append(r.violations, fmt.Sprintf("node watch from resourceVersion %s: %v", rv, err))
					r.mu.Unlock()
				}
				return
			}
			for ev := range wi.ResultChan() {
				if n, ok := ev.Object.(*corev1.Node); ok {
					rv = n.ResourceVersion
					if ev.Type != watch.Bookmark {
						r.observe(ev.Type, n)
					}
				} else if ev.Type == watch.Error {
					r.mu.Lock()
					r.violations = append(r.violations, fmt.Sprintf("node watch error: %v", ev.Object))
					r.mu.Unlock()
					wi.Stop()
					return
				}
			}
			wi.Stop()
		}
	}()
	return r
}

func (r *nodeRecorder) observe(typ watch.EventType, n *corev1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if typ == watch.Deleted {
		r.violations = append(r.violations, n.Name+": deleted")
		delete(r.init, n.Name)
		return
	}
	cidr := n.Spec.PodCIDR
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDRs[0] != cidr {
		r.violations = append(r.violations, fmt.Sprintf("%s: podCIDR %q but podCIDRs %v", n.Name, cidr, n.Spec.PodCIDRs))
	}
	// The whole list: with dual-stack pod CIDRs, neither range may change.
	all := strings.Join(n.Spec.PodCIDRs, ",")
	if first, ok := r.firstCIDR[n.Name]; ok && all != first {
		r.violations = append(r.violations, fmt.Sprintf("%s: podCIDRs changed from %s to %q", n.Name, first, all))
	} else if !ok && all != "" {
		r.firstCIDR[n.Name] = all
	}
	if initialized(n) {
		if cidr == "" && !r.init[n.Name] {
			r.violations = append(r.violations, n.Name+": taint removed before podCIDR was written")
		}
		r.init[n.Name] = true
	}
}

// initialized counts nodes seen without the uninitialized taint.
func (r *nodeRecorder) initialized() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.init)
}

// waitInitialized waits until at least n nodes were seen initialized.
func (r *nodeRecorder) waitInitialized(ctx context.Context, t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		select {
		case <-r.ended:
			return false, fmt.Errorf("node watch ended")
		default:
		}
		return r.initialized() >= n, nil
	})
	if err != nil {
		r.check(t)
		t.Fatalf("fewer than %d nodes initialized (%d): %v", n, r.initialized(), err)
	}
}

// check fails the test for every violation seen and if the watch ended
// early (the record would be incomplete).
func (r *nodeRecorder) check(t *testing.T) {
	t.Helper()
	select {
	case <-r.ended:
		t.Errorf("node watch ended before the test did; podCIDR history is incomplete")
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range r.violations {
		if i == 20 {
			t.Errorf("... and %d more violations", len(r.violations)-i)
			break
		}
		t.Error(v)
	}
}

// firstPodCIDRs returns the first podCIDRs recorded for the node, joined
// by commas.
func (r *nodeRecorder) firstPodCIDRs(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstCIDR[name]
}

// checkConverged asserts the invariants for IPv6-mode nodes made from bare
// instances (want: node name → instance ID): each is initialized with its
// providerID; its primary ENI holds exactly one /80 and exactly one IPv6
// address (both assigned by the CCM, as the instance started with none);
// podCIDR and podCIDRs are that /80 and the first podCIDR ever recorded;
// its first address is that IPv6 address as InternalIP; and no two nodes
// in the cluster share a podCIDR.
func checkConverged(ctx context.Context, t *testing.T, w *harness.World, r *nodeRecorder, want map[string]string) {
	t.Helper()
	checkConvergedWith(ctx, t, w, r, want, func(n *corev1.Node, prefix string) []string { return []string{prefix} })
}

// checkConvergedWith is checkConverged with the expected podCIDRs of each
// node given by podCIDRs (its ENI's /80 in prefix); no podCIDRs entry may
// be on two nodes.
func checkConvergedWith(ctx context.Context, t *testing.T, w *harness.World, r *nodeRecorder, want map[string]string,
	podCIDRs func(n *corev1.Node, prefix string) []string) {
	t.Helper()
	list, err := w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]ec2sim.InstanceState{}
	for _, in := range w.Sim.State().Instances {
		byID[in.ID] = in
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	owner := map[string]string{} // podCIDR -> node
	seen := map[string]bool{}
	for i := range list.Items {
		n := &list.Items[i]
		for _, c := range n.Spec.PodCIDRs {
			if other, dup := owner[c]; dup {
				fail("%s and %s share pod CIDR %s", n.Name, other, c)
			}
			owner[c] = n.Name
		}
		id, ok := want[n.Name]
		if !ok {
			continue
		}
		seen[n.Name] = true
		in := byID[id]
		eni := primaryENI(in)
		if !initialized(n) {
			fail("%s: still tainted", n.Name)
		}
		if pid := providerid.Format(in.Zone, id); n.Spec.ProviderID != pid {
			fail("%s: providerID %q, want %q", n.Name, n.Spec.ProviderID, pid)
		}
		if len(eni.IPv6Prefixes) != 1 || len(eni.IPv6) != 1 {
			fail("%s: primary ENI %q of %s holds prefixes %v and addresses %v, want exactly one of each", n.Name, eni.ID, id, eni.IPv6Prefixes, eni.IPv6)
			continue
		}
		prefix, addr := eni.IPv6Prefixes[0], eni.IPv6[0].Address
		if p, err := netip.ParsePrefix(prefix); err != nil || p.Bits() != 80 {
			fail("%s: ENI prefix %s is not a /80", n.Name, prefix)
		}
		wantCIDRs := podCIDRs(n, prefix)
		if n.Spec.PodCIDR != wantCIDRs[0] || !slices.Equal(n.Spec.PodCIDRs, wantCIDRs) {
			fail("%s: podCIDR %q podCIDRs %v, want %v (the ENI's /80 %s)", n.Name, n.Spec.PodCIDR, n.Spec.PodCIDRs, wantCIDRs, prefix)
		}
		if first := r.firstPodCIDRs(n.Name); first != strings.Join(wantCIDRs, ",") {
			fail("%s: first recorded podCIDRs %q, want %v", n.Name, first, wantCIDRs)
		}
		if len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Type != corev1.NodeInternalIP || n.Status.Addresses[0].Address != addr {
			fail("%s: addresses %v, want the ENI's %s as first InternalIP", n.Name, n.Status.Addresses, addr)
		}
	}
	for name := range want {
		if !seen[name] {
			fail("%s: node missing", name)
		}
	}
	sort.Strings(errs)
	for i, e := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-i)
			break
		}
		t.Error(e)
	}
}

// leaseHolder returns the holder identity of the CCM's Lease, "" if none.
func leaseHolder(ctx context.Context, w *harness.World) (string, error) {
	l, err := w.Admin.CoordinationV1().Leases(leaseNamespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return holderOf(l), nil
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitLeader waits until the Lease has a holder other than notHolder and
// exactly one of the running replicas has logged acquiring it; it returns
// that replica and the holder identity.
func waitLeader(ctx context.Context, t *testing.T, w *harness.World, notHolder string, cs ...*harness.CCM) (*harness.CCM, string) {
	t.Helper()
	var (
		leader *harness.CCM
		holder string
	)
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		h, err := leaseHolder(ctx, w)
		if err != nil || h == "" || h == notHolder {
			return false, nil
		}
		var acquired []*harness.CCM
		for _, c := range cs {
			if !c.Exited() && loggedAcquired(c) {
				acquired = append(acquired, c)
			}
		}
		if len(acquired) > 1 {
			return false, fmt.Errorf("%d live replicas logged %q", len(acquired), acquiredLease)
		}
		if len(acquired) == 1 {
			leader, holder = acquired[0], h
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no leader (other than %q) among %d replicas: %v", notHolder, len(cs), err)
	}
	return leader, holder
}

// countInitialized lists nodes and counts those of want that are
// initialized, and those still tainted that carry the node controller's
// assign-started annotation (an assignment in flight).
func countInitialized(ctx context.Context, t *testing.T, w *harness.World, want map[string]string) (done, assigning int) {
	t.Helper()
	list, err := w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		n := &list.Items[i]
		if _, ok := want[n.Name]; !ok {
			continue
		}
		if initialized(n) {
			done++
		} else if n.Annotations[node.AnnotationAssignStarted] != "" {
			assigning++
		}
	}
	return done, assigning
}

// nodeNames returns the keys of want.
func nodeNames(want map[string]string) []string {
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// loggedAcquired reports whether the replica logged acquiring the CCM's Lease.
func loggedAcquired(c *harness.CCM) bool {
	lock := `lock="` + leaseNamespace + "/" + leaseName + `"`
	for _, line := range strings.Split(c.Log(), "\n") {
		if strings.Contains(line, acquiredLease) && strings.Contains(line, lock) {
			return true
		}
	}
	return false
}
