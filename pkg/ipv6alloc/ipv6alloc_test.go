package ipv6alloc

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
)

func collect(subnet netip.Prefix, eni string) []Choice {
	var out []Choice
	for c := range Candidates(subnet, eni) {
		out = append(out, c)
	}
	return out
}

// checkChoices asserts every property a caller relies on.
func checkChoices(t *testing.T, subnet netip.Prefix, eni string, cs []Choice) {
	t.Helper()
	first16 := netip.PrefixFrom(subnet.Masked().Addr(), PrefixBits) // the /80 holding ::0-::3
	seenA := map[netip.Addr]bool{}
	seenP := map[netip.Prefix]bool{}
	for i, c := range cs {
		switch {
		case c.Index != i:
			t.Fatalf("%s %s: candidate %d has Index %d", subnet, eni, i, c.Index)
		case !subnet.Contains(c.Addr):
			t.Fatalf("%s %s: address %s outside the subnet", subnet, eni, c.Addr)
		case Reserved(subnet, c.Addr):
			t.Fatalf("%s %s: address %s is reserved by AWS", subnet, eni, c.Addr)
		case c.Prefix.Bits() != 80 || c.Prefix.Masked() != c.Prefix:
			t.Fatalf("%s %s: prefix %s is not an aligned /80", subnet, eni, c.Prefix)
		case !subnet.Contains(c.Prefix.Addr()):
			t.Fatalf("%s %s: prefix %s outside the subnet", subnet, eni, c.Prefix)
		case c.Prefix.Contains(c.Addr):
			t.Fatalf("%s %s: address %s inside its own prefix %s", subnet, eni, c.Addr, c.Prefix)
		case c.Prefix.Overlaps(first16):
			t.Fatalf("%s %s: prefix %s covers the reserved first addresses", subnet, eni, c.Prefix)
		case seenA[c.Addr] || seenP[c.Prefix]:
			t.Fatalf("%s %s: candidate %d repeats an earlier value", subnet, eni, i)
		}
		last := lastAddr(subnet)
		if c.Prefix.Contains(last) {
			t.Fatalf("%s %s: prefix %s covers the reserved last address", subnet, eni, c.Prefix)
		}
		seenA[c.Addr], seenP[c.Prefix] = true, true
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	binary.BigEndian.PutUint64(b[8:], ^uint64(0))
	return netip.AddrFrom16(b)
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name   string
		subnet string
		eni    string
		want   int
	}{
		{"typical", "2600:1f18:4000:a901::/64", "eni-0123456789abcdef0", MaxCandidates},
		{"unmasked subnet", "2600:1f18:4000:a901::77/64", "eni-0123456789abcdef0", MaxCandidates},
		{"short eni id", "2001:db8:1234:1a00::/64", "eni-1", MaxCandidates},
		{"ipv4 subnet", "10.0.0.0/24", "eni-1", 0},
		{"ipv4-mapped", "::ffff:10.0.0.0/120", "eni-1", 0},
		{"/56 subnet", "2600:1f18:4000:a900::/56", "eni-1", 0},
		{"/80 subnet", "2600:1f18:4000:a901:1::/80", "eni-1", 0},
		{"no eni", "2600:1f18:4000:a901::/64", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subnet := netip.MustParsePrefix(tc.subnet)
			cs := collect(subnet, tc.eni)
			if len(cs) != tc.want {
				t.Fatalf("got %d candidates, want %d", len(cs), tc.want)
			}
			checkChoices(t, subnet.Masked(), tc.eni, cs)
		})
	}
}

// The sequence is a protocol between process lifetimes and versions: a
// restarted (or upgraded) controller must ask for the value the previous one
// may already have got. These values pin it; changing them is a breaking
// change for clusters that upgrade in the middle of an assignment.
func TestCandidatesArePinned(t *testing.T) {
	subnet := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	cs := collect(subnet, "eni-0123456789abcdef0")
	got := []string{cs[0].Addr.String(), cs[0].Prefix.String(), cs[1].Addr.String(), cs[1].Prefix.String()}
	want := pinned
	if !slices.Equal(got, want) {
		t.Fatalf("candidates changed:\n got %q\nwant %q", got, want)
	}
}

func TestCandidatesDependOnlyOnSubnetAndENI(t *testing.T) {
	a := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	b := netip.MustParsePrefix("2600:1f18:4000:a902::/64")
	if !slices.Equal(collect(a, "eni-1"), collect(a, "eni-1")) {
		t.Fatal("same inputs, different sequences")
	}
	if !slices.Equal(collect(a, "eni-1"), collect(netip.MustParsePrefix("2600:1f18:4000:a901::5/64"), "eni-1")) {
		t.Fatal("host bits of the subnet changed the sequence")
	}
	fa, _ := First(a, "eni-1")
	fb, _ := First(b, "eni-1")
	if f2, _ := First(a, "eni-2"); f2.Prefix == fa.Prefix || f2.Addr == fa.Addr {
		t.Errorf("eni-1 and eni-2 got the same first choice %v", fa)
	}
	if b.Contains(fa.Addr) || !b.Contains(fb.Addr) {
		t.Errorf("choices not inside their own subnet: %v %v", fa, fb)
	}
}

// Stopping early (the caller found a free value) is honoured.
func TestCandidatesStopEarly(t *testing.T) {
	n := 0
	for range Candidates(netip.MustParsePrefix("2600:1f18:4000:a901::/64"), "eni-1") {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("n = %d", n)
	}
}

// Many ENIs in one subnet: first choices spread over the /64, so a storm
// of nodes mostly converges on first choices.
func TestFirstChoicesSpread(t *testing.T) {
	subnet := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	const n = 1000
	prefixes := map[netip.Prefix]bool{}
	for i := range n {
		c, ok := First(subnet, "eni-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
		if !ok {
			t.Fatal("no first choice")
		}
		prefixes[c.Prefix] = true
	}
	// 1000 draws from 65534 slots: about 8 collide; 30 would be a broken hash.
	if len(prefixes) < n-30 {
		t.Errorf("only %d distinct first prefixes of %d", len(prefixes), n)
	}
}

func TestReserved(t *testing.T) {
	subnet := netip.MustParsePrefix("2001:db8:1234:1a00::/64")
	for _, s := range []string{"2001:db8:1234:1a00::", "2001:db8:1234:1a00::1", "2001:db8:1234:1a00::2", "2001:db8:1234:1a00::3", "2001:db8:1234:1a00:ffff:ffff:ffff:ffff"} {
		if !Reserved(subnet, netip.MustParseAddr(s)) {
			t.Errorf("%s not reserved", s)
		}
	}
	for _, s := range []string{"2001:db8:1234:1a00::4", "2001:db8:1234:1a00:ffff:ffff:ffff:fffe", "2001:db8:1234:1a01::1"} {
		if Reserved(subnet, netip.MustParseAddr(s)) {
			t.Errorf("%s reserved", s)
		}
	}
}

func FuzzCandidates(f *testing.F) {
	f.Add([]byte{0x26, 0, 0x1f, 0x18, 0x40, 0, 0xa9, 1}, "eni-0123456789abcdef0")
	f.Add(make([]byte, 8), "eni-1")
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "x")
	f.Fuzz(func(t *testing.T, net []byte, eni string) {
		var b [16]byte
		copy(b[:8], net)
		subnet := netip.PrefixFrom(netip.AddrFrom16(b), 64)
		cs := collect(subnet, eni)
		if eni != "" && len(cs) != MaxCandidates {
			t.Fatalf("%d candidates", len(cs))
		}
		checkChoices(t, subnet, eni, cs)
		if !slices.Equal(cs, collect(subnet, eni)) {
			t.Fatal("not deterministic")
		}
	})
}

var pinned = []string{
	"2600:1f18:4000:a901:0:9897:6834:71fd", "2600:1f18:4000:a901:9c62::/80",
	"2600:1f18:4000:a901:0:7018:b075:67d8", "2600:1f18:4000:a901:1568::/80",
}
