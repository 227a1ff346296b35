package node

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ipv6alloc"
)

// AnnotationAssignStarted records, before the first mutating EC2 call for a
// node, when, on which ENI and for which explicit values an assignment
// started: "<RFC3339>/<eni-id>/<address>/<prefix>" (an empty field: that
// value was not asked for). A restarted controller asks EC2 for the same
// values again, which is safe (a value already on the ENI is success), so a
// crash can never give an ENI a second prefix. The final spec write removes
// it. Versions before explicit assignment wrote "<RFC3339>/<eni-id>", whose
// values are unknown: that form is waited out for AssignSettle.
const AnnotationAssignStarted = "ipv6.aws-ipv6-ccm.io/assign-started"

// settlePoll is how often a node waiting for EC2 to show an earlier
// assignment is looked at again.
const settlePoll = 10 * time.Second

// intent is a parsed AnnotationAssignStarted.
type intent struct {
	at     time.Time
	eni    string
	addr   netip.Addr   // zero: not asked for, or an old-form intent
	prefix netip.Prefix // zero: not asked for, or an old-form intent
	// explicit is false for the old form, whose values are unknown.
	explicit bool
}

// parseIntent parses both forms of the annotation.
func parseIntent(s string) (intent, bool) {
	ts, rest, ok := strings.Cut(s, "/")
	if !ok {
		return intent{}, false
	}
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return intent{}, false
	}
	eni, values, explicit := strings.Cut(rest, "/")
	if eni == "" {
		return intent{}, false
	}
	in := intent{at: at, eni: eni, explicit: explicit}
	if !explicit {
		return in, true
	}
	a, p, ok := strings.Cut(values, "/")
	if !ok {
		return intent{}, false
	}
	if a != "" {
		if in.addr, err = netip.ParseAddr(a); err != nil || !in.addr.Is6() {
			return intent{}, false
		}
	}
	if p != "" {
		if in.prefix, err = netip.ParsePrefix(p); err != nil || !in.prefix.Addr().Is6() || in.prefix.Bits() != ipv6alloc.PrefixBits {
			return intent{}, false
		}
	}
	return in, true
}

func (i intent) String() string {
	s := i.at.UTC().Format(time.RFC3339) + "/" + i.eni
	if !i.explicit {
		return s
	}
	s += "/"
	if i.addr.IsValid() {
		s += i.addr.String()
	}
	s += "/"
	if i.prefix.IsValid() {
		s += i.prefix.String()
	}
	return s
}

// assignMemo is what this process learnt on one node's primary ENI from its
// own assign calls: the values EC2 accepted, the values it refused as held
// by another ENI, and those it refused as in use while no holder was
// visible (maybe this ENI's own, not shown yet), with when that was first
// seen.
type assignMemo struct {
	eni         string
	addr        netip.Addr
	prefix      netip.Prefix
	taken       map[string]bool
	unconfirmed map[string]time.Time
}

func (m assignMemo) clone() assignMemo {
	m.taken = cloneMap(m.taken)
	m.unconfirmed = cloneMap(m.unconfirmed)
	return m
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// assignFacts are all the inputs of decideIPv6.
type assignFacts struct {
	Mode Mode
	// ENI is the primary ENI's ID and SubnetID its subnet's.
	ENI, SubnetID string
	// ShownAddr is the ENI's IPv6 address as EC2's describe shows it (the
	// one flagged primary, else the lowest; zero when none) and
	// ShownPrefixes its /80 prefixes.
	ShownAddr     netip.Addr
	ShownPrefixes []netip.Prefix
	// Memo is what this process's own assign calls on ENI returned.
	Memo assignMemo
	// Intent is the node's AnnotationAssignStarted, when HasIntent.
	Intent    intent
	HasIntent bool
	// PodCIDR is the node's spec.podCIDR, "" when unset.
	PodCIDR string
	// Subnet is the subnet's IPv6 /64 once looked up (SubnetKnown);
	// invalid when the subnet has none.
	Subnet      netip.Prefix
	SubnetKnown bool
	Now         time.Time
	Settle      time.Duration
}

// verdict is what happens next about a node's IPv6.
type verdict int

const (
	// verdictAdopt: publish Addr and use Prefix as the pod CIDR.
	verdictAdopt verdict = iota
	// verdictWait: look again After; Reason and Message say why.
	verdictWait
	// verdictAssign: ask EC2 for Addr and/or Prefix (explicit values).
	verdictAssign
	// verdictFail: a Warning with Reason and Message; retry with backoff.
	verdictFail
	// verdictNeedSubnet: look up the subnet's IPv6 CIDR, then decide again.
	verdictNeedSubnet
)

func (v verdict) String() string {
	return [...]string{"Adopt", "Wait", "Assign", "Fail", "NeedSubnet"}[v]
}

// decision is decideIPv6's answer.
type decision struct {
	Verdict verdict
	Addr    netip.Addr
	Prefix  netip.Prefix
	// Extra lists the ENI's other /80s when adopting (MultiplePrefixes).
	Extra   []netip.Prefix
	After   time.Duration
	Reason  string
	Message string
}

// decideIPv6 decides, from what EC2 shows, what this process remembers, the
// intent annotation, the time and the mode, what happens about one node's
// IPv6 address and /80 prefix. It is pure: the caller gathers the facts,
// carries the decision out and records the outcome in the memo.
func decideIPv6(f assignFacts) decision {
	addr := f.ShownAddr
	if !addr.IsValid() {
		addr = f.Memo.addr
	}
	prefixes := slices.Clone(f.ShownPrefixes)
	if f.Memo.prefix.IsValid() && !slices.Contains(prefixes, f.Memo.prefix) {
		prefixes = append(prefixes, f.Memo.prefix)
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })

	if f.PodCIDR != "" {
		set, err := netip.ParsePrefix(f.PodCIDR)
		if err != nil || !slices.Contains(prefixes, set) {
			return fail(ReasonPodCIDRMismatch, "podCIDR %s is not a /80 of primary ENI %s (it holds %v); leaving the node alone",
				f.PodCIDR, f.ENI, prefixes)
		}
		prefixes = []netip.Prefix{set}
	}
	if addr.IsValid() && len(prefixes) > 0 {
		return decision{Verdict: verdictAdopt, Addr: addr, Prefix: prefixes[0], Extra: prefixes[1:]}
	}
	missing := describeMissing(!addr.IsValid(), len(prefixes) == 0)
	if f.Mode != ModeAssign {
		return fail(ReasonIPv6NotAssigned, "primary ENI %s has no %s; mode %q never assigns", f.ENI, missing, f.Mode)
	}
	// An intent of an older version asked for counts: its values are
	// unknown, so only EC2 can tell, within the settle time.
	if f.HasIntent && f.Intent.eni == f.ENI && !f.Intent.explicit && !f.Memo.addr.IsValid() && !f.Memo.prefix.IsValid() {
		if wait := f.Intent.at.Add(f.Settle).Sub(f.Now); wait > 0 {
			return decision{Verdict: verdictWait, After: min(wait, settlePoll), Reason: ReasonAssignPending,
				Message: fmt.Sprintf("assignment on %s started at %s is not visible yet; waiting up to %s before assigning again",
					f.ENI, f.Intent.at.UTC().Format(time.RFC3339), wait.Round(time.Second))}
		}
	}
	if !f.SubnetKnown {
		return decision{Verdict: verdictNeedSubnet}
	}
	if !f.Subnet.IsValid() {
		return fail(ReasonIPv6AssignmentFailed, "subnet %s of primary ENI %s has no IPv6 CIDR: associate one, or keep this node out of an IPv6 cluster",
			f.SubnetID, f.ENI)
	}
	d := decision{Verdict: verdictAssign}
	var intentAddr netip.Addr
	var intentPrefix netip.Prefix
	if f.HasIntent && f.Intent.eni == f.ENI && f.Intent.explicit {
		intentAddr, intentPrefix = f.Intent.addr, f.Intent.prefix
	}
	var waits []string
	var wait time.Duration
	if !addr.IsValid() {
		v, w, ok := choose(f, intentAddr, func(c ipv6alloc.Choice) string { return c.Addr.String() })
		switch {
		case w > 0:
			waits, wait = append(waits, v), w
		case !ok:
			return fail(ReasonIPv6AssignmentFailed, "no free IPv6 address for %s in %s after %d candidates", f.ENI, f.Subnet, ipv6alloc.MaxCandidates)
		default:
			d.Addr = netip.MustParseAddr(v)
		}
	}
	if len(prefixes) == 0 {
		v, w, ok := choose(f, intentPrefix, func(c ipv6alloc.Choice) string { return c.Prefix.String() })
		switch {
		case w > 0:
			waits, wait = append(waits, v), max(wait, w)
		case !ok:
			return fail(ReasonIPv6AssignmentFailed, "no free /80 prefix for %s in %s after %d candidates", f.ENI, f.Subnet, ipv6alloc.MaxCandidates)
		default:
			d.Prefix = netip.MustParsePrefix(v)
		}
	}
	if len(waits) > 0 {
		return decision{Verdict: verdictWait, After: min(wait, settlePoll), Reason: ReasonAssignPending,
			Message: fmt.Sprintf("EC2 says %s is in use but shows no holder yet (maybe %s's own earlier assignment); asking again, for up to %s",
				strings.Join(waits, " and "), f.ENI, wait.Round(time.Second))}
	}
	return d
}

// choose picks the value of one kind to ask for: the intent's, then the
// ENI's candidates in order, skipping values held by another ENI and values
// refused without a visible holder for longer than the settle time. It
// returns the value, or how long to wait for an unconfirmed one, or false
// when no candidate is left.
func choose[T interface{ IsValid() bool }](f assignFacts, fromIntent T, value func(ipv6alloc.Choice) string) (string, time.Duration, bool) {
	var order []string
	if fromIntent.IsValid() {
		if s := fmt.Sprint(fromIntent); inSubnet(f.Subnet, s) {
			order = append(order, s)
		}
	}
	for c := range ipv6alloc.Candidates(f.Subnet, f.ENI) {
		if v := value(c); !slices.Contains(order, v) {
			order = append(order, v)
		}
	}
	for _, v := range order {
		if f.Memo.taken[v] {
			continue
		}
		if since, ok := f.Memo.unconfirmed[v]; ok {
			if left := since.Add(f.Settle).Sub(f.Now); left > 0 {
				return v, left, true
			}
			continue // not shown on this ENI for the whole settle time: someone else's
		}
		return v, 0, true
	}
	return "", 0, false
}

// inSubnet reports whether an address or prefix (in text) lies in subnet.
func inSubnet(subnet netip.Prefix, s string) bool {
	if p, err := netip.ParsePrefix(s); err == nil {
		return subnet.Contains(p.Addr()) && p.Bits() >= subnet.Bits()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && subnet.Contains(a)
}

func fail(reason, format string, args ...any) decision {
	return decision{Verdict: verdictFail, Reason: reason, Message: fmt.Sprintf(format, args...)}
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
