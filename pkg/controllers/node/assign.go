package node

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// maxAssignSteps bounds the assign calls of one sync: a conflict on a value
// moves to the next candidate at once, a few times, before the node is
// requeued with backoff.
const maxAssignSteps = 4

// errStillChoosing requeues a node whose candidates kept conflicting.
var errStillChoosing = errors.New("explicit IPv6 values kept conflicting; trying the next candidates after backoff")

// ensureIPv6 finds, or in ModeAssign assigns, the primary ENI's IPv6 address
// and /80 prefix and fills p.ipv6 and p.prefix. It gathers the facts,
// carries out what decideIPv6 says, and records the outcome in the memo.
// It returns the node as last written.
func (c *Controller) ensureIPv6(ctx context.Context, node *v1.Node, inst *ec2.Instance, eni *ec2.ENI, p *plan) (*v1.Node, error) {
	logger := klog.FromContext(ctx).WithValues("node", node.Name, "instanceID", inst.ID, "eni", eni.ID)
	f := assignFacts{
		Mode: c.opts.Mode, ENI: eni.ID, SubnetID: eni.SubnetID,
		ShownPrefixes: pod80s(eni), PodCIDR: ipv6PodCIDR(node), Settle: c.opts.AssignSettle,
	}
	f.ShownAddr, _ = eni.PrimaryIPv6()
	for step := 0; ; step++ {
		f.Memo = c.memoOf(node.Name, eni.ID)
		f.Intent, f.HasIntent = parseIntent(node.Annotations[AnnotationAssignStarted])
		f.Now = c.now()
		d := decideIPv6(f)
		logger.V(4).Info("IPv6 decision", "verdict", d.Verdict.String(), "address", d.Addr, "prefix", d.Prefix, "reason", d.Reason)
		switch d.Verdict {
		case verdictAdopt:
			if len(d.Extra) > 0 {
				c.recorder.Eventf(node, v1.EventTypeWarning, ReasonMultiplePrefixes,
					"primary ENI %s holds %d /80 prefixes; using the lowest, %s (others: %v)", eni.ID, len(d.Extra)+1, d.Prefix, d.Extra)
				syncErrors.WithLabelValues(ReasonMultiplePrefixes).Inc()
			}
			p.ipv6, p.prefix = d.Addr, d.Prefix
			return node, nil
		case verdictFail:
			c.cloud.Forget(inst.ID) // the retry must see what EC2 holds then
			return node, failure(d.Reason, nil, "%s", d.Message)
		case verdictWait:
			c.recorder.Event(node, v1.EventTypeNormal, d.Reason, d.Message)
			c.cloud.Forget(inst.ID)
			return node, &waitError{after: d.After}
		case verdictNeedSubnet:
			cidr, err := c.cloud.SubnetIPv6CIDR(ctx, eni.SubnetID)
			if err != nil {
				return node, failure(ReasonDescribeFailed, err, "describe subnet %s of %s: %s", eni.SubnetID, eni.ID, errText(err))
			}
			f.Subnet, f.SubnetKnown = cidr, true
			continue
		}
		// verdictAssign.
		if step >= maxAssignSteps {
			return node, errStillChoosing
		}
		var err error
		if node, err = c.assign(ctx, logger, node, inst, eni, f, d); err != nil {
			return node, err
		}
	}
}

// waitError asks the worker to look at the node again after a while,
// without backoff.
type waitError struct{ after time.Duration }

func (e *waitError) Error() string { return "waiting for EC2 to show an earlier assignment" }

// assign carries out one verdictAssign: it takes the rate-limit tokens,
// records the values in the intent annotation (when it does not hold them
// already), asks EC2 for them, gives back the tokens of calls not made, and
// records the outcome in the memo. A value EC2 refuses as in use is not an
// error here: the memo holds it and the next decision chooses or waits.
func (c *Controller) assign(ctx context.Context, logger klog.Logger, node *v1.Node, inst *ec2.Instance, eni *ec2.ENI, f assignFacts, d decision) (*v1.Node, error) {
	calls := 0
	if d.Addr.IsValid() {
		calls++
	}
	if d.Prefix.IsValid() {
		calls++
	}
	// Take the tokens before recording the intent, so the intent's time is
	// when the calls go out.
	if err := c.cloud.ReserveAssign(ctx, eni.ID, calls); err != nil {
		return node, err
	}
	defer c.cloud.ReleaseAssign(eni.ID) // tokens of calls not made go back
	want := intent{at: c.now(), eni: eni.ID, addr: d.Addr, prefix: d.Prefix, explicit: true}
	if f.HasIntent && f.Intent.eni == eni.ID && f.Intent.explicit {
		// Keep a value asked for earlier and not shown yet.
		if !want.addr.IsValid() {
			want.addr = f.Intent.addr
		}
		if !want.prefix.IsValid() {
			want.prefix = f.Intent.prefix
		}
	}
	if !f.HasIntent || f.Intent.eni != want.eni || !f.Intent.explicit || f.Intent.addr != want.addr || f.Intent.prefix != want.prefix {
		written, err := c.patchIntent(ctx, node, want)
		if err != nil {
			return node, failure(ReasonAPIWriteFailed, err, "record assignment intent: %v", err)
		}
		node = written
	}
	defer c.cloud.Forget(inst.ID)
	logger.Info("Assigning IPv6", "address", d.Addr, "prefix", d.Prefix)
	res, err := c.cloud.AssignIPv6Explicit(ctx, eni.ID, d.Addr, d.Prefix)
	c.remember(node.Name, eni.ID, d, res, err)
	var inUse *ec2.InUseError
	switch {
	case errors.As(err, &inUse):
		logger.Info("IPv6 value in use", "value", inUse.Value, "holder", inUse.Holder, "confirmed", errors.Is(err, ec2.ErrInUse))
		return node, nil
	case err != nil:
		return node, failure(ReasonIPv6AssignmentFailed, err, "assign IPv6 %s to %s: %s", valuesText(d), eni.ID, errText(err))
	}
	logger.Info("Assigned IPv6", "address", d.Addr, "prefix", d.Prefix)
	return node, nil
}

func valuesText(d decision) string {
	switch {
	case d.Addr.IsValid() && d.Prefix.IsValid():
		return d.Addr.String() + " and " + d.Prefix.String()
	case d.Addr.IsValid():
		return d.Addr.String()
	}
	return d.Prefix.String()
}

// pod80s lists the ENI's /80 prefixes, lowest first.
func pod80s(eni *ec2.ENI) []netip.Prefix {
	var out []netip.Prefix
	for _, q := range eni.IPv6Prefixes {
		if q.Bits() == 80 && q.Addr().Is6() {
			out = append(out, q.Masked())
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return slices.Compact(out)
}

// ambiguous reports whether a failed call may still have taken effect.
// Client errors and throttling are definitive; timeouts, transport errors and
// server errors are not. With explicit values an ambiguous failure is
// harmless: the retry asks for the same values.
func ambiguous(err error) bool {
	if ec2.IsThrottle(err) {
		return false
	}
	switch ec2.ErrorCode(err) {
	case "", "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable":
		return true
	}
	return false
}

func outcome(err error) string {
	var inUse *ec2.InUseError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &inUse):
		return "in_use"
	case ec2.IsThrottle(err):
		return "throttled"
	case ambiguous(err):
		return "unknown"
	default:
		return "failed"
	}
}

// memoOf returns what this process assigned on the node's ENI; nothing when
// the memo is of another ENI (the node's instance was replaced).
func (c *Controller) memoOf(node, eni string) assignMemo {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	m, ok := c.memo[node]
	if !ok || m.eni != eni {
		return assignMemo{eni: eni}
	}
	return m.clone()
}

// remember records an assign call's outcome: the values EC2 accepted, or
// the value it refused as in use (held by another ENI, or holder unseen).
func (c *Controller) remember(node, eni string, d decision, res ec2.Assigned, err error) {
	// Count the calls made: AssignIPv6Explicit asks for the address first
	// and makes no prefix call when that one fails.
	addrFailed := d.Addr.IsValid() && !slices.Contains(res.Addresses, d.Addr)
	if d.Addr.IsValid() {
		assignments.WithLabelValues("address", outcome(errFor(err, res.Addresses, d.Addr))).Inc()
	}
	if d.Prefix.IsValid() && !addrFailed {
		assignments.WithLabelValues("prefix", outcome(errFor(err, res.Prefixes, d.Prefix))).Inc()
	}
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	m, ok := c.memo[node]
	if !ok || m.eni != eni {
		m = &assignMemo{eni: eni}
		c.memo[node] = m
		c.recordSizesLocked()
	}
	if len(res.Addresses) > 0 {
		m.addr = res.Addresses[0]
	}
	if i := slices.IndexFunc(res.Prefixes, func(q netip.Prefix) bool { return q.Bits() == 80 }); i >= 0 {
		m.prefix = res.Prefixes[i].Masked()
	}
	var inUse *ec2.InUseError
	if !errors.As(err, &inUse) {
		return
	}
	if errors.Is(err, ec2.ErrInUse) {
		if m.taken == nil {
			m.taken = map[string]bool{}
		}
		m.taken[inUse.Value] = true
		delete(m.unconfirmed, inUse.Value)
		return
	}
	if m.unconfirmed == nil {
		m.unconfirmed = map[string]time.Time{}
	}
	if _, seen := m.unconfirmed[inUse.Value]; !seen {
		m.unconfirmed[inUse.Value] = c.now()
	}
}

// errFor is err when it concerns the value of one kind (it was not among
// what EC2 accepted), else nil.
func errFor[T comparable](err error, accepted []T, v T) error {
	if slices.Contains(accepted, v) {
		return nil
	}
	return err
}

// forgetMemo drops what only an uninitialized node needs: the assign memo
// and the record of status writes.
func (c *Controller) forgetMemo(node string) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	delete(c.memo, node)
	delete(c.status, node)
	c.recordSizesLocked()
}
