package node

import (
	"errors"

	"net/netip"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/podcidr"
)

// ipv4Ranges pairs each node's IPv6 /80 with an IPv4 pod range from the
// cluster CIDR (dual-stack spec.podCIDRs). The allocator is filled from the
// Nodes as the informer delivers them, before any worker runs, so a range
// a Node holds is never handed out again, across restarts and leader
// changes; a deleted node's range is freed once the delete is observed.
type ipv4Ranges struct {
	alloc *podcidr.Allocator

	mu      sync.Mutex
	byNode  map[string]netip.Prefix // ranges Nodes hold or this process reserved for them
	owner   map[netip.Prefix]string
	waiting map[string]struct{} // nodes refused for want of a free range
}

func newIPv4Ranges(pool netip.Prefix, maskBits int) (*ipv4Ranges, error) {
	a, err := podcidr.New(pool, maskBits)
	if err != nil {
		return nil, err
	}
	return &ipv4Ranges{alloc: a, byNode: map[string]netip.Prefix{}, owner: map[netip.Prefix]string{}, waiting: map[string]struct{}{}}, nil
}

// ipv4PodCIDR returns the first IPv4 entry of the node's spec.podCIDRs.
func ipv4PodCIDR(n *v1.Node) (netip.Prefix, bool) {
	for _, s := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// ipv6PodCIDR is what the IPv6 decision checks against the ENI's /80s: the
// IPv6 entry of spec.podCIDRs, else spec.podCIDR (an IPv4-only value set by
// someone else is then reported as a mismatch).
func ipv6PodCIDR(n *v1.Node) string {
	for _, s := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() {
			return s
		}
	}
	return n.Spec.PodCIDR
}

// observe records the IPv4 range a Node shows. A range of this process's
// own that the Node does not show (another writer won) is given back. Two
// Nodes showing one range is logged: nothing here ever writes that.
func (r *ipv4Ranges) observe(n *v1.Node) {
	p, ok := ipv4PodCIDR(n)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, had := r.byNode[n.Name]
	if had && cur == p {
		return
	}
	if had {
		r.releaseLocked(n.Name, cur)
	}
	if other, taken := r.owner[p]; taken && other != n.Name {
		klog.ErrorS(nil, "Two Nodes show the same IPv4 pod range", "range", p.String(), "node", n.Name, "otherNode", other)
		return
	}
	if _, err := r.alloc.Occupy(p); err != nil {
		// Outside the cluster CIDR: nothing to track; the node's sync reports it.
		return
	}
	r.byNode[n.Name], r.owner[p] = p, n.Name
	delete(r.waiting, n.Name)
}

func (r *ipv4Ranges) releaseLocked(name string, p netip.Prefix) {
	delete(r.byNode, name)
	if r.owner[p] == name {
		delete(r.owner, p)
		r.alloc.Release(p)
	}
}

// forget frees a deleted node's range and returns the nodes that were
// waiting for one, to be synced again.
func (r *ipv4Ranges) forget(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, name)
	p, ok := r.byNode[name]
	if !ok {
		return nil
	}
	r.releaseLocked(name, p)
	out := make([]string, 0, len(r.waiting))
	for w := range r.waiting {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// reserve returns the node's range, reserving a free one if it has none.
// A reservation is kept until the node shows another range or is deleted,
// so retries after a failed or ambiguous write reuse it.
func (r *ipv4Ranges) reserve(name string) (netip.Prefix, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.byNode[name]; ok {
		return p, nil
	}
	p, err := r.alloc.Allocate()
	if errors.Is(err, podcidr.ErrFull) {
		r.waiting[name] = struct{}{}
		return netip.Prefix{}, failure(ReasonCIDRNotAvailable, err,
			"no free IPv4 pod range of /%d in cluster CIDR %s: every range is held by a Node; the node stays tainted until one is deleted",
			r.alloc.MaskBits(), r.alloc.Cluster())
	}
	if err != nil {
		return netip.Prefix{}, err
	}
	delete(r.waiting, name)
	r.byNode[name], r.owner[p] = p, name
	return p, nil
}

// checkPreset judges spec.podCIDRs someone else set on a node (a set value
// is never changed): consistent when it holds an IPv4 range of the cluster
// CIDR of the allocator's size that no other Node holds.
func (r *ipv4Ranges) checkPreset(n *v1.Node) error {
	p, ok := ipv4PodCIDR(n)
	if !ok {
		return failure(ReasonPodCIDRMismatch, nil, "spec.podCIDRs %v has no IPv4 range and cannot be changed once set; leaving the node alone", n.Spec.PodCIDRs)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner := r.owner[p]; owner != n.Name {
		if owner == "" {
			return failure(ReasonPodCIDRMismatch, nil, "IPv4 pod range %s is not a /%d of cluster CIDR %s; leaving the node alone", p, r.alloc.MaskBits(), r.alloc.Cluster())
		}
		return failure(ReasonPodCIDRMismatch, nil, "IPv4 pod range %s is held by node %s too; leaving the node alone", p, owner)
	}
	return nil
}

// sizes returns the number of nodes holding a range and waiting for one.
func (r *ipv4Ranges) sizes() (held, waiting int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byNode), len(r.waiting)
}

// orderPodCIDRs returns spec.podCIDRs for an IPv6 /80 and an optional IPv4
// range, the cluster's primary family first.
func orderPodCIDRs(v6, v4 netip.Prefix, ipv4First bool) []string {
	if !v4.IsValid() {
		return []string{v6.String()}
	}
	if ipv4First {
		return []string{v4.String(), v6.String()}
	}
	return []string{v6.String(), v4.String()}
}
