package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

const uninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// initialized reports whether the CCM is done with a node: the
// uninitialized taint is gone and the podCIDR is set.
func initialized(n *corev1.Node) bool {
	return n.Spec.PodCIDR != "" && !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == uninitializedTaint })
}

// recorder times each node: creation when the Create call returned (the
// creationTimestamp has 1 s resolution), initialization when a Node watch
// first shows it initialized.
type recorder struct {
	start time.Time
	want  int

	mu      sync.Mutex
	created map[string]time.Duration
	done    map[string]time.Duration
	all     chan struct{}
	// inited receives each node's name once, when first seen initialized.
	inited chan string
}

func newRecorder(want int) *recorder {
	return &recorder{want: want, created: map[string]time.Duration{}, done: map[string]time.Duration{},
		all: make(chan struct{}), inited: make(chan string, want)}
}

// kubelet reports each node Ready once it is initialized, as kubelet does
// when the CNI has the podCIDR, so the lifecycle controller looks up only
// uninitialized (NotReady) nodes, as in a real cluster. It runs until ctx ends.
func (r *recorder) kubelet(ctx context.Context, cs kubernetes.Interface) {
	for range 8 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case name := <-r.inited:
					// A failure leaves the node NotReady: the lifecycle
					// controller then keeps looking it up, which the counts show.
					_ = patchReady(ctx, cs, name)
				}
			}
		}()
	}
}

// watch runs a Node informer until ctx ends and waits for its first sync.
func (r *recorder) watch(ctx context.Context, cs kubernetes.Interface) error {
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Nodes().Informer()
	see := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && initialized(n) {
			r.observe(n.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("node informer did not sync: %w", ctx.Err())
	}
	return nil
}

func (r *recorder) observe(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.done[name]; ok || r.start.IsZero() {
		return
	}
	r.done[name] = time.Since(r.start)
	r.inited <- name // buffered for every node
	if len(r.done) == r.want {
		close(r.all)
	}
}

func (r *recorder) begin() {
	r.mu.Lock()
	r.start = time.Now()
	r.mu.Unlock()
}

func (r *recorder) createdNow(name string) {
	r.mu.Lock()
	r.created[name] = time.Since(r.start)
	r.mu.Unlock()
}

// results returns the sorted initialization times (the curve) and per-node
// latencies, in seconds.
func (r *recorder) results() (curve, lat []float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, d := range r.done {
		curve = append(curve, round3(d.Seconds()))
		if c, ok := r.created[name]; ok {
			lat = append(lat, round3((d - c).Seconds()))
		}
	}
	slices.Sort(curve)
	slices.Sort(lat)
	return curve, lat
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.done)
}

// parallel runs f on every item with the given number of workers and
// returns the first error.
func parallel[T any](ctx context.Context, workers int, items []T, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan T)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for it := range ch {
				if err := f(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
loop:
	for _, it := range items {
		select {
		case ch <- it:
		case <-ctx.Done():
			break loop
		}
	}
	close(ch)
	wg.Wait()
	return context.Cause(ctx)
}

// createNodes registers a Node per instance, concurrently, recording when
// each Create returned.
func createNodes(ctx context.Context, cs kubernetes.Interface, r *recorder, insts []ec2sim.InstanceState, ready bool) error {
	idx := make(map[string]int, len(insts))
	for i, in := range insts {
		idx[in.ID] = i
	}
	return parallel(ctx, 64, insts, func(ctx context.Context, in ec2sim.InstanceState) error {
		n, err := cs.CoreV1().Nodes().Create(ctx, kubeletNode(in, idx[in.ID], ready), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node %s: %w", in.PrivateDNSName, err)
		}
		if len(n.Status.Conditions) == 0 || len(n.Status.Images) != imagesPerNode {
			return fmt.Errorf("create node %s: the API server dropped the status kubelet wrote", n.Name)
		}
		r.createdNow(in.PrivateDNSName)
		return nil
	})
}

// markReady reports Ready=True on every node, as kubelet does once the CNI
// has the podCIDR: the lifecycle controller then leaves the nodes alone.
func markReady(ctx context.Context, cs kubernetes.Interface, names []string) error {
	return parallel(ctx, 64, names, func(ctx context.Context, name string) error {
		return patchReady(ctx, cs, name)
	})
}

func patchReady(ctx context.Context, cs kubernetes.Interface, name string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Appendf(nil, `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":%q,"lastTransitionTime":%q}]}}`, now, now)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("mark node %s ready: %w", name, err)
	}
	return nil
}

// checkInvariants compares every node with ec2sim: podCIDR is the one /80
// of its primary ENI and the first InternalIP is that ENI's IPv6 address.
// It returns the count of bad nodes and up to five examples.
func checkInvariants(ctx context.Context, cs kubernetes.Interface, st ec2sim.State) ([]string, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	byID := map[string]ec2sim.InstanceState{}
	for _, in := range st.Instances {
		byID[in.ID] = in
	}
	seen := map[string]string{}
	var bad []string
	for _, n := range list.Items {
		if msg := checkNode(&n, byID, seen); msg != "" {
			bad = append(bad, n.Name+": "+msg)
		}
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("... %d nodes in all", len(bad)))
	}
	return bad, nil
}

func checkNode(n *corev1.Node, byID map[string]ec2sim.InstanceState, seen map[string]string) string {
	id, err := providerid.Parse(n.Spec.ProviderID)
	if err != nil {
		return err.Error()
	}
	in, ok := byID[id.InstanceID]
	if !ok {
		return "no instance " + id.InstanceID
	}
	i := slices.IndexFunc(in.ENIs, func(e ec2sim.ENIState) bool { return e.DeviceIndex == 0 && e.NetworkCardIndex == 0 })
	if i < 0 {
		return "no primary ENI"
	}
	eni := in.ENIs[i]
	switch {
	case len(eni.IPv6Prefixes) != 1:
		return fmt.Sprintf("ENI %s holds %d prefixes", eni.ID, len(eni.IPv6Prefixes))
	case len(eni.IPv6) != 1:
		return fmt.Sprintf("ENI %s holds %d IPv6 addresses", eni.ID, len(eni.IPv6))
	case n.Spec.PodCIDR != eni.IPv6Prefixes[0] || len(n.Spec.PodCIDRs) < 1 || len(n.Spec.PodCIDRs) > 2 || n.Spec.PodCIDRs[0] != eni.IPv6Prefixes[0]:
		return fmt.Sprintf("podCIDRs %v, ENI prefix %s", n.Spec.PodCIDRs, eni.IPv6Prefixes[0])
	}
	// Dual-stack pod CIDRs (scenario e): an IPv4 range second.
	if len(n.Spec.PodCIDRs) == 2 {
		if p, err := netip.ParsePrefix(n.Spec.PodCIDRs[1]); err != nil || !p.Addr().Is4() {
			return fmt.Sprintf("podCIDRs %v: the second is not an IPv4 range", n.Spec.PodCIDRs)
		}
	}
	for _, c := range n.Spec.PodCIDRs {
		if seen[c] != "" {
			return "pod CIDR " + c + " shared with " + seen[c]
		}
		seen[c] = n.Name
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		got, err1 := netip.ParseAddr(a.Address)
		want, err2 := netip.ParseAddr(eni.IPv6[0].Address)
		if err1 != nil || err2 != nil || got != want {
			return fmt.Sprintf("first InternalIP %s, ENI IPv6 %s", a.Address, eni.IPv6[0].Address)
		}
		return ""
	}
	return "no InternalIP"
}
