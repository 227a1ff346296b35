package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	cloudproviderapi "k8s.io/cloud-provider/api"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/addresses"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
)

// sync brings one node to its desired state. A positive duration asks for a
// plain requeue after it; an error asks for a requeue with backoff.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	node, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get node %s: %w", name, err)
	}
	pending := hasCloudTaint(node) || (c.ipv6() && node.Spec.PodCIDR == "")
	if c.stale(node, pending) {
		return 0, nil // the informer will deliver our write and requeue if needed
	}
	if !pending {
		return 0, c.reconcileBetaLabels(ctx, node)
	}
	return c.initialize(ctx, node)
}

// stale reports whether the cached node predates this process's own
// initializing write, which the informer has not delivered yet.
func (c *Controller) stale(node *v1.Node, pending bool) bool {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	e, ok := c.done[node.Name]
	if !ok {
		return false
	}
	if pending && e.uid == node.UID && c.now().Sub(e.at) < expectationTTL {
		return true
	}
	delete(c.done, node.Name)
	c.recordSizesLocked()
	return false
}

// expect records that this process initialized the node.
func (c *Controller) expect(node *v1.Node) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	c.done[node.Name] = expectation{uid: node.UID, at: c.now()}
	c.recordSizesLocked()
}

// plan is what one node should look like, computed before any write.
type plan struct {
	inst    *ec2.Instance
	addrs   []v1.NodeAddress
	prefix  netip.Prefix // zero in ModeOff
	v4      netip.Prefix // the IPv4 pod range beside it, zero without dual-stack pod CIDRs
	ipv6    netip.Addr   // the primary ENI's IPv6 address, zero in ModeOff
	eniID   string
	tainted bool
}

// initialize runs the init path: resolve, ensure IPv6, build addresses,
// write status, then spec with the taint removed.
func (c *Controller) initialize(ctx context.Context, node *v1.Node) (time.Duration, error) {
	logger := klog.FromContext(ctx).WithValues("node", node.Name)
	inst, err := c.instanceFor(ctx, node)
	if err != nil {
		return 0, err
	}
	logger = logger.WithValues("instanceID", inst.ID)
	// Everything that can refuse the node is checked before any mutating
	// EC2 call: kubelet's node IP must be the instance's (an IPv6 address
	// not on it yet can never be the one EC2 would assign).
	if _, err := c.addressesFor(node, inst, false); err != nil {
		return 0, err
	}
	// Network topology labels go in the same spec write as the zone
	// labels; only types that may have a topology are asked, in batches.
	if _, ok := node.Labels[nodemeta.LabelNetworkNodePrefix+"1"]; !ok {
		if inst.NetworkNodes, err = c.cloud.NetworkNodes(ctx, inst.ID, inst.Type); err != nil {
			return 0, fmt.Errorf("network topology of instance %s: %w", inst.ID, err)
		}
	}
	p := plan{inst: inst, tainted: hasCloudTaint(node)}
	// The IPv4 pod range, like the node IP, can refuse the node: settled
	// before any mutating EC2 call.
	if c.v4 != nil {
		if node.Spec.PodCIDR == "" {
			if p.v4, err = c.v4.reserve(node.Name); err != nil {
				c.recordV4Sizes()
				return 0, err
			}
			c.recordV4Sizes()
		} else if err := c.v4.checkPreset(node); err != nil {
			return 0, err
		}
	}
	view := inst
	if c.ipv6() {
		eni := inst.PrimaryENI()
		if eni == nil {
			return 0, failure(ReasonNoPrimaryENI, nil, "instance %s has no ENI at network card 0, device index 0", inst.ID)
		}
		p.eniID = eni.ID
		node, err = c.ensureIPv6(ctx, node, inst, eni, &p)
		if w := (*waitError)(nil); errors.As(err, &w) {
			return w.after, nil
		}
		if err != nil {
			return 0, err
		}
		view = withAddress(inst, eni.ID, p.ipv6)
		if err := c.ensurePrimaryIPv6(ctx, view); err != nil {
			return 0, err
		}
	}
	addrs, err := c.addressesFor(node, view, true)
	if err != nil {
		return 0, err
	}
	p.addrs = addrs

	// The informer may not show this process's own status write yet (a
	// retry after a conflicting spec patch): write the addresses once.
	if !addresses.Equal(node.Status.Addresses, addrs) && !c.wroteStatus(node.Name, addrs) {
		written, err := c.patchStatus(ctx, node, addrs)
		if apierrors.IsNotFound(err) {
			return 0, nil // deleted meanwhile
		}
		if err != nil {
			return 0, failure(ReasonAPIWriteFailed, err, "patch node status: %v", err)
		}
		c.recordStatus(node.Name, addrs)
		node = written
	}
	updated, err := c.patchSpec(ctx, node, &p)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if apierrors.IsConflict(err) {
		// Someone else changed the node (kubelet's status, a label): not a
		// failure of this node, so no growing backoff; look again soon.
		f := failure(ReasonAPIConflict, err, "patch node spec: %v", err).(*nodeError)
		f.retry = conflictRetry
		return 0, f
	}
	if err != nil {
		return 0, failure(ReasonAPIWriteFailed, err, "patch node spec: %v", err)
	}
	c.expect(updated)
	c.forgetMemo(node.Name)
	if p.tainted {
		nodesInitialized.Inc()
		initLatency.Observe(c.now().Sub(updated.CreationTimestamp.Time).Seconds())
	}
	if p.prefix.IsValid() && p.v4.IsValid() {
		logger.Info("Node initialized", "eni", p.eniID, "prefix", p.prefix.String(), "ipv4Range", p.v4.String(), "ipv6", p.ipv6.String())
		c.recorder.Eventf(updated, v1.EventTypeNormal, ReasonSynced, "Node synced successfully: podCIDRs %v (/80 from %s), IPv6 %s",
			orderPodCIDRs(p.prefix, p.v4, c.opts.IPv4First), p.eniID, p.ipv6)
	} else if p.prefix.IsValid() {
		logger.Info("Node initialized", "eni", p.eniID, "prefix", p.prefix.String(), "ipv6", p.ipv6.String())
		c.recorder.Eventf(updated, v1.EventTypeNormal, ReasonSynced, "Node synced successfully: podCIDR %s from %s, IPv6 %s", p.prefix, p.eniID, p.ipv6)
	} else {
		logger.Info("Node initialized")
		c.recorder.Event(updated, v1.EventTypeNormal, ReasonSynced, "Node synced successfully")
	}
	return 0, nil
}

// ensurePrimaryIPv6 marks the primary ENI's IPv6 address primary when the
// option is on and EC2 shows no primary yet. AWS makes the ENI's first
// assigned IPv6 address primary, and the flag can never be removed.
func (c *Controller) ensurePrimaryIPv6(ctx context.Context, inst *ec2.Instance) error {
	if !c.opts.EnablePrimaryIPv6 || !c.ipv6() {
		return nil
	}
	eni := inst.PrimaryENI()
	if eni == nil || len(eni.IPv6) == 0 || slices.ContainsFunc(eni.IPv6, func(a ec2.IPv6Address) bool { return a.Primary }) {
		return nil
	}
	if err := c.cloud.EnablePrimaryIPv6(ctx, eni.ID); err != nil {
		return failure(ReasonPrimaryIPv6Failed, err, "mark the IPv6 address of %s primary: %s", eni.ID, errText(err))
	}
	klog.FromContext(ctx).Info("Marked IPv6 address primary", "instanceID", inst.ID, "eni", eni.ID)
	return nil
}

// lookupOf returns what instanceFor looks the node up by (see
// nodemeta.LookupOf); both are empty for an unparsable providerID.
func lookupOf(node *v1.Node) (id, privateDNSName string) {
	l, err := nodemeta.LookupOf(node)
	if err != nil {
		return "", ""
	}
	return l.InstanceID, l.PrivateDNSName
}

// instanceFor resolves the node's instance by the rule it shares with the
// provider: providerID, else an instance ID in the name, else the private
// DNS name.
func (c *Controller) instanceFor(ctx context.Context, node *v1.Node) (*ec2.Instance, error) {
	l, perr := nodemeta.LookupOf(node)
	if perr != nil {
		return nil, failure(ReasonProviderIDInvalid, perr, "%v", perr)
	}
	var (
		inst *ec2.Instance
		err  error
	)
	if l.InstanceID != "" {
		inst, err = c.cloud.InstanceByID(ctx, l.InstanceID)
	} else {
		// A private DNS name is recycled with its IPv4 address: a cached
		// answer older than the Node may name a terminated instance that
		// held the name before. Only a describe that began after the Node
		// was created knows its instance (still batched with others).
		inst, err = c.cloud.InstanceByPrivateDNSNameFresh(ctx, l.PrivateDNSName, c.now().Sub(node.CreationTimestamp.Time))
	}
	switch {
	case errors.Is(err, ec2.ErrInstanceNotFound):
		return nil, failure(ReasonInstanceNotFound, err, "no instance found: %v", err)
	case err != nil:
		return nil, failure(ReasonDescribeFailed, err, "describe instance: %s", errText(err))
	case inst.State == ec2.StateTerminated || inst.State == ec2.StateShuttingDown:
		return nil, failure(ReasonInstanceNotFound, nil, "instance %s is %s", inst.ID, inst.State)
	case l.Zone != "" && inst.Zone != "" && l.Zone != inst.Zone:
		return nil, failure(ReasonProviderIDZoneMismatch, nil,
			"providerID %s names zone %s, but instance %s is in zone %s: fix kubelet's --provider-id (or leave it empty)",
			node.Spec.ProviderID, l.Zone, inst.ID, inst.Zone)
	}
	return inst, nil
}

// addressesFor builds the node's addresses in family order, keeps kubelet's
// hostname when the instance gives none (as upstream does), and applies the
// provided node IP.
//
// Before the IPv6 address is ensured (final false), an IPv6-mode node is not
// refused for lacking an InternalIP: its address may be about to be assigned.
func (c *Controller) addressesFor(node *v1.Node, inst *ec2.Instance, final bool) ([]v1.NodeAddress, error) {
	addrs := addresses.Build(inst, c.opts.Families)
	if !addresses.HasInternalIP(addrs) && (final || !c.ipv6()) {
		have := "IPv4 and IPv6"
		switch {
		case !addresses.HasIPv4(inst):
			have = "only IPv6 (an IPv6-only subnet)"
		case !slices.ContainsFunc(inst.ENIs, func(e ec2.ENI) bool { return len(e.IPv6) > 0 }):
			have = "only IPv4"
		}
		return nil, failure(ReasonNoAddressOfFamily, nil,
			"instance %s has %s addresses, none of the families in NodeIPFamilies %v: list its family in NodeIPFamilies in the cloud config's [Global]",
			inst.ID, have, c.opts.Families)
	}
	if !slices.ContainsFunc(addrs, func(a v1.NodeAddress) bool { return a.Type == v1.NodeHostName }) {
		for _, a := range node.Status.Addresses {
			if a.Type == v1.NodeHostName {
				addrs = append(addrs, a)
			}
		}
	}
	out, err := addresses.ForNode(node, addrs)
	if err != nil {
		return nil, failure(ReasonNodeIPNotFound, err, "%v", err)
	}
	return out, nil
}

// withAddress returns inst, or a copy whose ENI eniID also holds addr when
// EC2's reply did not show it yet (it came from an assign reply).
func withAddress(inst *ec2.Instance, eniID string, addr netip.Addr) *ec2.Instance {
	if !addr.IsValid() {
		return inst
	}
	cp := *inst
	cp.ENIs = slices.Clone(inst.ENIs)
	for i := range cp.ENIs {
		e := &cp.ENIs[i]
		if e.ID != eniID || slices.ContainsFunc(e.IPv6, func(a ec2.IPv6Address) bool { return a.Addr == addr }) {
			continue
		}
		e.IPv6 = append(slices.Clone(e.IPv6), ec2.IPv6Address{Addr: addr})
	}
	return &cp
}

// nodeError is a failure of one node's sync with the reason its Warning
// event carries. Helpers only build it (failure); the worker reports it,
// once (report).
type nodeError struct {
	reason, msg string
	cause       error
	// retry, when set, requeues the node after it without per-node backoff.
	retry time.Duration
}

// conflictRetry is how soon a node whose spec patch conflicted is synced
// again.
var conflictRetry = time.Second

func (e *nodeError) Error() string { return e.reason + ": " + e.msg }

func (e *nodeError) Unwrap() error { return e.cause }

// failure builds a nodeError whose message starts with the AWS error code
// of cause when there is one.
func failure(reason string, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if code := ec2.ErrorCode(cause); code != "" && !strings.HasPrefix(msg, code) {
		// The code leads (events aggregate and read by it), once.
		msg = code + ": " + strings.Replace(msg, code+": ", "", 1)
	}
	return &nodeError{reason: reason, msg: msg, cause: cause}
}

// report records a failed sync once: for a nodeError a Warning event on the
// node, a cloudprovider_aws_node_sync_errors_total{reason} increment and an
// error log line; other errors (a cancelled context, a requeue) a log line.
func (c *Controller) report(node *v1.Node, err error) {
	var ne *nodeError
	if !errors.As(err, &ne) {
		klog.V(2).InfoS("Node sync failed, requeueing", "node", node.Name, "err", err.Error())
		return
	}
	c.recorder.Event(node, v1.EventTypeWarning, ne.reason, ne.msg)
	syncErrors.WithLabelValues(ne.reason).Inc()
	klog.ErrorS(ne.cause, "Node sync failed", "node", node.Name, "providerID", node.Spec.ProviderID, "reason", ne.reason, "message", ne.msg)
}

// errText is an error's text led by its AWS error code, if any.
func errText(err error) string { return ec2.ErrorSummary(err) }

func hasCloudTaint(n *v1.Node) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t v1.Taint) bool {
		return t.Key == cloudproviderapi.TaintExternalCloudProvider
	})
}
