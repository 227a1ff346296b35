package node

import (
	"context"
	"net/netip"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/addresses"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// refresh updates addresses and labels of all initialized nodes from one
// batched describe: EC2 calls grow with batches, not with nodes. A node's
// status is patched only when its whole ordered address list differs.
func (c *Controller) refresh(ctx context.Context) {
	logger := klog.FromContext(ctx)
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		logger.Error(err, "List nodes for address refresh")
		return
	}
	byID := map[string][]*v1.Node{}
	var ids []string
	for _, n := range nodes {
		if hasCloudTaint(n) || n.Spec.ProviderID == "" {
			continue
		}
		id, err := providerid.Parse(n.Spec.ProviderID)
		if err != nil {
			continue
		}
		if _, seen := byID[id.InstanceID]; !seen {
			ids = append(ids, id.InstanceID)
		}
		byID[id.InstanceID] = append(byID[id.InstanceID], n)
	}
	if len(ids) == 0 {
		return
	}
	insts, err := c.cloud.Instances(ctx, ids)
	if err != nil {
		syncErrors.WithLabelValues(ReasonRefreshFailed).Inc()
		logger.Error(err, "Describe instances for address refresh", "instances", len(ids))
		return
	}
	patched := 0
	for id, ns := range byID {
		inst, ok := insts[id]
		if !ok {
			continue // the lifecycle controller deals with vanished instances
		}
		for _, n := range ns {
			if ctx.Err() != nil {
				return
			}
			if c.refreshNode(ctx, n, inst) {
				patched++
			}
		}
	}
	logger.V(2).Info("Address refresh done", "nodes", len(nodes), "instances", len(ids), "patched", patched)
}

// refreshNode brings an initialized node's addresses and labels up to date
// and reports whether it patched its addresses.
func (c *Controller) refreshNode(ctx context.Context, n *v1.Node, inst *ec2.Instance) bool {
	view := inst
	if c.ipv6() {
		view = c.keepIPv6(n, inst)
	}
	addrs, err := c.addressesFor(n, view, true)
	if err != nil {
		c.report(n, err)
		return false
	}
	// Nodes initialized before EnablePrimaryIPv6 was set get it here.
	if err := c.ensurePrimaryIPv6(ctx, inst); err != nil {
		c.report(n, err)
	}
	patched := false
	if len(addrs) > 0 && !addresses.Equal(n.Status.Addresses, addrs) {
		if _, err := c.patchStatus(ctx, n, addrs); err != nil {
			c.report(n, failure(ReasonAPIWriteFailed, err, "%v", err))
			return false
		}
		patched = true
		klog.FromContext(ctx).Info("Node addresses updated", "node", n.Name, "instanceID", inst.ID)
	}
	if l := c.labelChanges(n, inst); len(l) > 0 {
		if err := c.patchLabels(ctx, n, l); err != nil {
			c.report(n, failure(ReasonAPIWriteFailed, err, "%v", err))
		}
	}
	return patched
}

// keepIPv6 returns the instance as the node's addresses must be built from
// it: the IPv6 address the Node publishes first stays first while it is on
// the primary ENI, and also while EC2 does not show it, until two describes
// at least AssignSettle apart have both not shown it. Only then is it
// dropped, with an IPv6AddressGone Warning. EC2 is eventually consistent: a
// describe right after an assignment may not show the address yet, and a
// refresh must never turn a Node IPv4-first because of it.
func (c *Controller) keepIPv6(n *v1.Node, inst *ec2.Instance) *ec2.Instance {
	cur := firstIPv6(n)
	eni := inst.PrimaryENI()
	if !cur.IsValid() || eni == nil {
		return inst
	}
	shown := slices.ContainsFunc(eni.IPv6, func(a ec2.IPv6Address) bool { return a.Addr == cur })
	now := c.now()
	c.memoMu.Lock()
	since, seen := c.gone[n.Name]
	switch {
	case shown:
		delete(c.gone, n.Name)
	case !seen:
		c.gone[n.Name] = now
	case now.Sub(since) >= c.opts.AssignSettle:
		delete(c.gone, n.Name)
	}
	c.recordSizesLocked()
	c.memoMu.Unlock()
	if !shown && seen && now.Sub(since) >= c.opts.AssignSettle {
		c.recorder.Eventf(n, v1.EventTypeWarning, ReasonIPv6AddressGone,
			"IPv6 address %s is no longer on primary ENI %s (not shown by EC2 since %s); publishing the ENI's addresses",
			cur, eni.ID, since.UTC().Format(time.RFC3339))
		syncErrors.WithLabelValues(ReasonIPv6AddressGone).Inc()
		return inst
	}
	return pinIPv6(inst, eni.ID, cur)
}

// firstIPv6 returns the node's first InternalIP when it is an IPv6 address.
func firstIPv6(n *v1.Node) netip.Addr {
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is6() {
			return ip
		}
		return netip.Addr{}
	}
	return netip.Addr{}
}

// pinIPv6 returns a copy of inst whose ENI eniID holds addr as its only
// primary IPv6 address, so that addresses.Build puts it first.
func pinIPv6(inst *ec2.Instance, eniID string, addr netip.Addr) *ec2.Instance {
	cp := *inst
	cp.ENIs = slices.Clone(inst.ENIs)
	for i := range cp.ENIs {
		e := &cp.ENIs[i]
		if e.ID != eniID {
			continue
		}
		v6 := []ec2.IPv6Address{{Addr: addr, Primary: true}}
		for _, a := range e.IPv6 {
			if a.Addr != addr {
				v6 = append(v6, ec2.IPv6Address{Addr: a.Addr})
			}
		}
		e.IPv6 = v6
	}
	return &cp
}
