package node

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// AnnotationAssignStarted records, before the first mutating EC2 call for a
// node, when and on which ENI an assignment started: "<RFC3339>/<eni-id>".
// It lets a restarted controller wait for EC2's eventual consistency instead
// of assigning a second prefix. The final spec write removes it.
const AnnotationAssignStarted = "ipv6.aws-ipv6-ccm.io/assign-started"

// settlePoll is how often a node waiting for an earlier assignment to
// become visible is looked at again.
const settlePoll = 10 * time.Second

// assignMemo is what this process assigned on one ENI, from the assign
// replies. clean is false once a call's outcome is unknown (timeout, 5xx):
// then only EC2 can tell, after the settle time.
type assignMemo struct {
	eni      string
	addrs    []netip.Addr
	prefixes []netip.Prefix
	clean    bool
	intentAt time.Time // when this process last recorded the intent
}

// intent is a parsed AnnotationAssignStarted.
type intent struct {
	at  time.Time
	eni string
}

func parseIntent(s string) (intent, bool) {
	ts, eni, ok := strings.Cut(s, "/")
	if !ok || eni == "" {
		return intent{}, false
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return intent{}, false
	}
	return intent{at: at, eni: eni}, true
}

func (i intent) String() string { return i.at.UTC().Format(time.RFC3339) + "/" + i.eni }

// ensureIPv6 finds, or in ModeAssign assigns, the primary ENI's IPv6 address
// and /80 prefix and fills p.ipv6 and p.prefix. It returns the node as last
// written.
func (c *Controller) ensureIPv6(ctx context.Context, node *v1.Node, inst *ec2.Instance, eni *ec2.ENI, p *plan) (*v1.Node, time.Duration, error) {
	logger := klog.FromContext(ctx).WithValues("node", node.Name, "instanceID", inst.ID, "eni", eni.ID)
	addr, hasAddr := eni.PrimaryIPv6()
	prefixes := pod80s(eni)
	m := c.memoOf(node.Name, eni.ID)
	if !hasAddr && len(m.addrs) > 0 {
		addr, hasAddr = m.addrs[0], true
	}
	if len(prefixes) == 0 && len(m.prefixes) > 0 {
		prefixes = slices.Clone(m.prefixes)
	}

	if node.Spec.PodCIDR != "" {
		set, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || !slices.Contains(prefixes, set) {
			return node, 0, c.fail(node, ReasonPodCIDRMismatch, nil,
				"podCIDR %s is not a /80 of primary ENI %s (it holds %v); leaving the node alone", node.Spec.PodCIDR, eni.ID, prefixes)
		}
		prefixes = []netip.Prefix{set}
	}
	if len(prefixes) > 1 {
		c.recorder.Eventf(node, v1.EventTypeWarning, ReasonMultiplePrefixes,
			"primary ENI %s holds %d /80 prefixes %v; using the lowest, %s", eni.ID, len(prefixes), prefixes, prefixes[0])
		syncErrors.WithLabelValues(ReasonMultiplePrefixes).Inc()
	}
	if hasAddr && len(prefixes) > 0 {
		p.ipv6, p.prefix = addr, prefixes[0]
		return node, 0, nil
	}

	missing := describeMissing(!hasAddr, len(prefixes) == 0)
	if c.opts.Mode != ModeAssign {
		c.cloud.Forget(inst.ID) // the retry must see what EC2 holds then
		return node, 0, c.fail(node, ReasonIPv6NotAssigned, nil,
			"primary ENI %s has no %s; mode %q never assigns", eni.ID, missing, c.opts.Mode)
	}

	now := c.now()
	in, hasIntent := parseIntent(node.Annotations[AnnotationAssignStarted])
	if hasIntent && in.eni == eni.ID && !m.clean {
		if wait := in.at.Add(c.opts.AssignSettle).Sub(now); wait > 0 {
			c.recorder.Eventf(node, v1.EventTypeNormal, ReasonAssignPending,
				"assignment on %s started at %s is not visible yet; waiting up to %s before assigning again",
				eni.ID, in.at.Format(time.RFC3339), wait.Round(time.Second))
			c.cloud.Forget(inst.ID)
			// Look again soon: the assignment usually shows within seconds.
			return node, min(wait, settlePoll), nil
		}
	}
	// Take the client-side rate-limit tokens for the calls before recording
	// the intent, so the intent's time is when the calls go out: a node
	// queued behind the limiter when the process dies has no intent to wait
	// out, and the settle window is never shortened by time spent queued.
	calls := 0
	if !hasAddr {
		calls++
	}
	if len(prefixes) == 0 {
		calls++
	}
	if err := c.cloud.ReserveAssign(ctx, eni.ID, calls); err != nil {
		return node, 0, err
	}
	if !m.clean || now.Sub(m.intentAt) > c.opts.AssignSettle/2 {
		written, err := c.patchIntent(ctx, node, intent{at: now, eni: eni.ID})
		if err != nil {
			return node, 0, c.fail(node, ReasonAPIWriteFailed, err, "record assignment intent: %v", err)
		}
		node = written
		c.setMemoClean(node.Name, eni.ID, now)
	}

	defer c.cloud.Forget(inst.ID)
	if !hasAddr {
		logger.Info("Assigning IPv6 address")
		res, err := c.cloud.AssignIPv6Addresses(ctx, eni.ID, 1)
		c.remember(node.Name, eni.ID, res, err)
		assignments.WithLabelValues("address", outcome(err)).Inc()
		if err != nil {
			return node, 0, c.fail(node, ReasonIPv6AssignmentFailed, err, "assign IPv6 address to %s: %s", eni.ID, errText(err))
		}
		addr = res.Addresses[0]
		logger.Info("Assigned IPv6 address", "address", addr.String())
	}
	if len(prefixes) == 0 {
		logger.Info("Assigning IPv6 prefix")
		res, err := c.cloud.AssignIPv6Prefixes(ctx, eni.ID, 1)
		c.remember(node.Name, eni.ID, res, err)
		assignments.WithLabelValues("prefix", outcome(err)).Inc()
		if err != nil {
			return node, 0, c.fail(node, ReasonIPv6AssignmentFailed, err, "assign IPv6 prefix to %s: %s", eni.ID, errText(err))
		}
		i := slices.IndexFunc(res.Prefixes, func(q netip.Prefix) bool { return q.Bits() == 80 })
		if i < 0 {
			return node, 0, c.fail(node, ReasonIPv6AssignmentFailed, nil, "assign IPv6 prefix to %s: reply holds no /80: %v", eni.ID, res.Prefixes)
		}
		prefixes = []netip.Prefix{res.Prefixes[i]}
		logger.Info("Assigned IPv6 prefix", "prefix", prefixes[0].String())
	}
	p.ipv6, p.prefix = addr, prefixes[0]
	return node, 0, nil
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

func describeMissing(addr, prefix bool) string {
	switch {
	case addr && prefix:
		return "IPv6 address and no /80 prefix"
	case addr:
		return "IPv6 address"
	default:
		return "/80 prefix"
	}
}

// ambiguous reports whether a failed call may still have taken effect.
// Client errors and throttling are definitive; timeouts, transport errors and
// server errors are not.
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
	switch {
	case err == nil:
		return "success"
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
		return assignMemo{}
	}
	return assignMemo{eni: eni, addrs: slices.Clone(m.addrs), prefixes: slices.Clone(m.prefixes), clean: m.clean, intentAt: m.intentAt}
}

// memoLocked returns the node's memo for eni, replacing one of another ENI.
func (c *Controller) memoLocked(node, eni string) *assignMemo {
	m, ok := c.memo[node]
	if !ok || m.eni != eni {
		m = &assignMemo{eni: eni}
		c.memo[node] = m
		c.recordSizesLocked()
	}
	return m
}

func (c *Controller) setMemoClean(node, eni string, intentAt time.Time) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	m := c.memoLocked(node, eni)
	m.clean, m.intentAt = true, intentAt
}

// remember keeps what an assign reply said, so that retries in this process
// use it even while describes do not show it yet.
func (c *Controller) remember(node, eni string, res ec2.Assigned, err error) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	m := c.memoLocked(node, eni)
	if err != nil {
		if ambiguous(err) {
			m.clean = false
		}
		return
	}
	m.addrs = append(m.addrs, res.Addresses...)
	for _, q := range res.Prefixes {
		if q.Bits() == 80 {
			m.prefixes = append(m.prefixes, q.Masked())
		}
	}
}

func (c *Controller) forgetMemo(node string) {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	delete(c.memo, node)
	c.recordSizesLocked()
}
