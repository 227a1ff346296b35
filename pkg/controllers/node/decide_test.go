package node

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ipv6alloc"
)

// TestDecideIPv6 runs the decision case by case: every crash and
// eventual-consistency case of docs/explanation/node-controller.md, and the
// explicit-value choices. Expected values come from ipv6alloc's candidate
// sequence, an independent pure function with pinned values of its own.
func TestDecideIPv6(t *testing.T) {
	const eniID = "eni-0a000000000000002"
	subnet := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	var cands []ipv6alloc.Choice
	for c := range ipv6alloc.Candidates(subnet, eniID) {
		cands = append(cands, c)
	}
	if len(cands) < 3 {
		t.Fatalf("only %d candidates", len(cands))
	}
	c0, c1, c2 := cands[0], cands[1], cands[2]
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const settle = 2 * time.Minute
	shownAddr := netip.MustParseAddr("2600:1f18:4000:a901::11")
	p1 := netip.MustParsePrefix("2600:1f18:4000:a901:11::/80")
	p2 := netip.MustParsePrefix("2600:1f18:4000:a901:22::/80")
	// base is a bare ENI in an IPv6 subnet, assign mode, subnet looked up.
	base := func() assignFacts {
		return assignFacts{Mode: ModeAssign, ENI: eniID, SubnetID: "subnet-0a000000000000001",
			Subnet: subnet, SubnetKnown: true, Now: now, Settle: settle}
	}
	explicitIntent := func(at time.Time, a netip.Addr, p netip.Prefix) intent {
		return intent{at: at, eni: eniID, addr: a, prefix: p, explicit: true}
	}
	taken := func(vs ...string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	cases := []struct {
		name   string
		facts  func() assignFacts
		want   decision
		inMsg  string // the Message must contain this
		wantIn time.Duration
	}{
		{"pre-prefixed: adopt what EC2 shows, no subnet lookup", func() assignFacts {
			f := base()
			f.SubnetKnown, f.Subnet = false, netip.Prefix{}
			f.ShownAddr, f.ShownPrefixes = shownAddr, []netip.Prefix{p1}
			return f
		}, decision{Verdict: verdictAdopt, Addr: shownAddr, Prefix: p1}, "", 0},
		{"two prefixes: the lowest, the other reported", func() assignFacts {
			f := base()
			f.ShownAddr, f.ShownPrefixes = shownAddr, []netip.Prefix{p2, p1}
			return f
		}, decision{Verdict: verdictAdopt, Addr: shownAddr, Prefix: p1, Extra: []netip.Prefix{p2}}, "", 0},
		{"describe lags behind this process's assignment: adopt from the memo", func() assignFacts {
			f := base()
			f.Memo = assignMemo{eni: eniID, addr: c0.Addr, prefix: c0.Prefix}
			return f
		}, decision{Verdict: verdictAdopt, Addr: c0.Addr, Prefix: c0.Prefix}, "", 0},
		{"podCIDR set and on the ENI: kept, even if not the lowest", func() assignFacts {
			f := base()
			f.ShownAddr, f.ShownPrefixes, f.PodCIDR = shownAddr, []netip.Prefix{p1, p2}, p2.String()
			return f
		}, decision{Verdict: verdictAdopt, Addr: shownAddr, Prefix: p2}, "", 0},
		{"podCIDR set and not on the ENI: left alone", func() assignFacts {
			f := base()
			f.ShownAddr, f.ShownPrefixes, f.PodCIDR = shownAddr, []netip.Prefix{p1}, "10.244.1.0/24"
			return f
		}, decision{Verdict: verdictFail, Reason: ReasonPodCIDRMismatch}, "10.244.1.0/24", 0},
		{"adopt mode never assigns", func() assignFacts {
			f := base()
			f.Mode, f.ShownAddr = ModeAdopt, shownAddr
			return f
		}, decision{Verdict: verdictFail, Reason: ReasonIPv6NotAssigned}, "/80 prefix", 0},
		{"bare ENI, subnet not looked up yet", func() assignFacts {
			f := base()
			f.SubnetKnown, f.Subnet = false, netip.Prefix{}
			return f
		}, decision{Verdict: verdictNeedSubnet}, "", 0},
		{"subnet without IPv6: refused without a call", func() assignFacts {
			f := base()
			f.Subnet = netip.Prefix{}
			return f
		}, decision{Verdict: verdictFail, Reason: ReasonIPv6AssignmentFailed}, "subnet-0a000000000000001", 0},
		{"bare ENI: the first candidates", base,
			decision{Verdict: verdictAssign, Addr: c0.Addr, Prefix: c0.Prefix}, "", 0},
		{"address there, prefix missing: the prefix only", func() assignFacts {
			f := base()
			f.ShownAddr = shownAddr
			return f
		}, decision{Verdict: verdictAssign, Prefix: c0.Prefix}, "", 0},
		{"crash after the calls, describe lagging: the recorded values again", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = explicitIntent(now.Add(-5*time.Second), c1.Addr, c2.Prefix), true
			return f
		}, decision{Verdict: verdictAssign, Addr: c1.Addr, Prefix: c2.Prefix}, "", 0},
		{"recorded values long ago: still the same values (a repeat is safe)", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = explicitIntent(now.Add(-time.Hour), c1.Addr, c1.Prefix), true
			return f
		}, decision{Verdict: verdictAssign, Addr: c1.Addr, Prefix: c1.Prefix}, "", 0},
		{"intent of another ENI (instance replaced): ignored", func() assignFacts {
			f := base()
			in := explicitIntent(now, c1.Addr, c1.Prefix)
			in.eni = "eni-0ffffffffffffffff"
			f.Intent, f.HasIntent = in, true
			return f
		}, decision{Verdict: verdictAssign, Addr: c0.Addr, Prefix: c0.Prefix}, "", 0},
		{"intent values outside the subnet: ignored", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = explicitIntent(now, netip.MustParseAddr("2600:1f18:4000:a999::5"), netip.MustParsePrefix("2600:1f18:4000:a999:5::/80")), true
			return f
		}, decision{Verdict: verdictAssign, Addr: c0.Addr, Prefix: c0.Prefix}, "", 0},
		{"old-form intent within the settle time: wait for EC2", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = intent{at: now.Add(-30 * time.Second), eni: eniID}, true
			return f
		}, decision{Verdict: verdictWait, Reason: ReasonAssignPending}, "not visible yet", settlePoll},
		{"old-form intent, settle time almost over: wait the rest", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = intent{at: now.Add(-settle + 3*time.Second), eni: eniID}, true
			return f
		}, decision{Verdict: verdictWait, Reason: ReasonAssignPending}, "", 3 * time.Second},
		{"old-form intent past the settle time: assign", func() assignFacts {
			f := base()
			f.Intent, f.HasIntent = intent{at: now.Add(-settle), eni: eniID}, true
			return f
		}, decision{Verdict: verdictAssign, Addr: c0.Addr, Prefix: c0.Prefix}, "", 0},
		{"first values held by other ENIs: the next candidates", func() assignFacts {
			f := base()
			f.Memo = assignMemo{eni: eniID, taken: taken(c0.Addr.String(), c0.Prefix.String())}
			return f
		}, decision{Verdict: verdictAssign, Addr: c1.Addr, Prefix: c1.Prefix}, "", 0},
		{"recorded prefix taken by another ENI: the first free candidate", func() assignFacts {
			f := base()
			f.ShownAddr = shownAddr
			f.Intent, f.HasIntent = explicitIntent(now, netip.Addr{}, c2.Prefix), true
			f.Memo = assignMemo{eni: eniID, taken: taken(c2.Prefix.String())}
			return f
		}, decision{Verdict: verdictAssign, Prefix: c0.Prefix}, "", 0},
		{"in use, holder not visible, within the settle time: wait", func() assignFacts {
			f := base()
			f.Memo = assignMemo{eni: eniID, unconfirmed: map[string]time.Time{c0.Addr.String(): now.Add(-time.Minute)}}
			return f
		}, decision{Verdict: verdictWait, Reason: ReasonAssignPending}, c0.Addr.String(), settlePoll},
		{"in use, holder not visible for the whole settle time: move on", func() assignFacts {
			f := base()
			f.Memo = assignMemo{eni: eniID, unconfirmed: map[string]time.Time{c0.Addr.String(): now.Add(-settle)}}
			return f
		}, decision{Verdict: verdictAssign, Addr: c1.Addr, Prefix: c0.Prefix}, "", 0},
		{"every candidate taken: fail", func() assignFacts {
			f := base()
			f.ShownAddr = shownAddr
			m := map[string]bool{}
			for _, c := range cands {
				m[c.Prefix.String()] = true
			}
			f.Memo = assignMemo{eni: eniID, taken: m}
			return f
		}, decision{Verdict: verdictFail, Reason: ReasonIPv6AssignmentFailed}, "no free /80 prefix", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideIPv6(tc.facts())
			if got.Verdict != tc.want.Verdict || got.Addr != tc.want.Addr || got.Prefix != tc.want.Prefix || got.Reason != tc.want.Reason ||
				len(got.Extra) != len(tc.want.Extra) {
				t.Fatalf("decideIPv6 = %s addr %v prefix %v extra %v reason %q (%s)\nwant %s addr %v prefix %v extra %v reason %q",
					got.Verdict, got.Addr, got.Prefix, got.Extra, got.Reason, got.Message,
					tc.want.Verdict, tc.want.Addr, tc.want.Prefix, tc.want.Extra, tc.want.Reason)
			}
			for i := range got.Extra {
				if got.Extra[i] != tc.want.Extra[i] {
					t.Errorf("extra %v, want %v", got.Extra, tc.want.Extra)
				}
			}
			if !strings.Contains(got.Message, tc.inMsg) {
				t.Errorf("message %q lacks %q", got.Message, tc.inMsg)
			}
			if got.After != tc.wantIn {
				t.Errorf("after %s, want %s", got.After, tc.wantIn)
			}
		})
	}
}

// TestIntentRoundTrip: both annotation forms parse; malformed ones do not.
func TestIntentRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, in := range []intent{
		{at: at, eni: "eni-1"},
		{at: at, eni: "eni-1", explicit: true, addr: netip.MustParseAddr("2600::5")},
		{at: at, eni: "eni-1", explicit: true, prefix: netip.MustParsePrefix("2600:0:0:0:1::/80")},
		{at: at, eni: "eni-1", explicit: true, addr: netip.MustParseAddr("2600::5"), prefix: netip.MustParsePrefix("2600:0:0:0:1::/80")},
	} {
		got, ok := parseIntent(in.String())
		if !ok || got != in {
			t.Errorf("parseIntent(%q) = %+v, %v; want %+v", in.String(), got, ok, in)
		}
	}
	if s := (intent{at: at, eni: "eni-1", explicit: true, addr: netip.MustParseAddr("2600::5"), prefix: netip.MustParsePrefix("2600:0:0:0:1::/80")}).String(); s != "2026-11-30T12:00:00Z/eni-1/2600::5/2600::1:0:0:0/80" {
		t.Errorf("String = %q", s)
	}
	for _, bad := range []string{"", "x", "2026-11-30T12:00:00Z", "2026-11-30T12:00:00Z/", "yesterday/eni-1",
		"2026-11-30T12:00:00Z/eni-1/10.0.0.1/", "2026-11-30T12:00:00Z/eni-1//2600::/64", "2026-11-30T12:00:00Z/eni-1/2600::5"} {
		if in, ok := parseIntent(bad); ok {
			t.Errorf("parseIntent(%q) accepted: %+v", bad, in)
		}
	}
}
