package ec2sim

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// eniState returns the current ENI state of the instance's ENI eniID.
func eniState(t *testing.T, sim *Sim, inst, eniID string) ENIState {
	t.Helper()
	st, ok := sim.State().Instance(inst)
	if !ok {
		t.Fatalf("no instance %s", inst)
	}
	for _, e := range st.ENIs {
		if e.ID == eniID {
			return e
		}
	}
	t.Fatalf("instance %s has no ENI %s", inst, eniID)
	return ENIState{}
}

func addrsOf(e ENIState) []string {
	var out []string
	for _, a := range e.IPv6 {
		out = append(out, a.Address)
	}
	return out
}

// Explicit values are assigned as asked, and a repeat of the same request on
// the same ENI (a retry after a lost reply) is refused without assigning
// anything: the ENI still holds exactly one address and one prefix.
func TestExplicitAssignAndRepeat(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	eni := primaryENIOf(t, sim, idBare)
	const addr, pfx = "2600:1f18:4000:a901::abcd", "2600:1f18:4000:a901:77::/80"
	out, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Addresses: []string{addr}})
	if err != nil {
		t.Fatalf("assign address: %v", err)
	}
	if !slices.Equal(out.AssignedIpv6Addresses, []string{addr}) || len(out.AssignedIpv6Prefixes) != 0 {
		t.Fatalf("reply = %v / %v", out.AssignedIpv6Addresses, out.AssignedIpv6Prefixes)
	}
	out, err = c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Prefixes: []string{pfx}})
	if err != nil {
		t.Fatalf("assign prefix: %v", err)
	}
	if !slices.Equal(out.AssignedIpv6Prefixes, []string{pfx}) || len(out.AssignedIpv6Addresses) != 0 {
		t.Fatalf("reply = %v / %v", out.AssignedIpv6Addresses, out.AssignedIpv6Prefixes)
	}
	// The same requests again: refused as in use, nothing added.
	_, err = c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Addresses: []string{addr}})
	wantCode(t, err, "InvalidIPAddress.InUse")
	_, err = c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Prefixes: []string{pfx}})
	wantCode(t, err, "InvalidIPAddress.InUse")
	e := eniState(t, sim, idBare, eni)
	if !slices.Equal(addrsOf(e), []string{addr}) || !slices.Equal(e.IPv6Prefixes, []string{pfx}) {
		t.Fatalf("ENI holds %v / %v, want exactly %s / %s", addrsOf(e), e.IPv6Prefixes, addr, pfx)
	}
	if sim.Calls("AssignIpv6Addresses") != 4 {
		t.Errorf("AssignIpv6Addresses calls = %d, want 4", sim.Calls("AssignIpv6Addresses"))
	}
}

// Values held by another ENI are refused with the same code, and the
// holder keeps them.
func TestExplicitConflictWithAnotherENI(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	bare := primaryENIOf(t, sim, idBare)
	pre := eniState(t, sim, idPre, eniPre)
	for _, in := range []ec2.AssignIpv6AddressesInput{
		{NetworkInterfaceId: aws.String(bare), Ipv6Addresses: []string{pre.IPv6[0].Address}},
		{NetworkInterfaceId: aws.String(bare), Ipv6Prefixes: []string{pre.IPv6Prefixes[0]}},
	} {
		_, err := c.AssignIpv6Addresses(t.Context(), &in)
		wantCode(t, err, "InvalidIPAddress.InUse")
	}
	if after := eniState(t, sim, idPre, eniPre); !slices.Equal(addrsOf(after), addrsOf(pre)) || !slices.Equal(after.IPv6Prefixes, pre.IPv6Prefixes) {
		t.Errorf("holder changed: %+v", after)
	}
	if e := eniState(t, sim, idBare, bare); len(e.IPv6) != 0 || len(e.IPv6Prefixes) != 0 {
		t.Errorf("refused values landed on %s: %+v", bare, e)
	}
}

func TestExplicitValidation(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	bare := primaryENIOf(t, sim, idBare)
	pre := eniState(t, sim, idPre, eniPre)
	preAddr := netip.MustParseAddr(pre.IPv6[0].Address)
	prePfx := netip.MustParsePrefix(pre.IPv6Prefixes[0])
	// A /80 holding the pre-assigned address, and an address inside the
	// pre-assigned prefix.
	slotOfPreAddr := netip.PrefixFrom(preAddr, 80).Masked().String()
	insidePrePfx := prePfx.Addr().Next().Next().String()
	a := func(v ...string) ec2.AssignIpv6AddressesInput {
		return ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6Addresses: v}
	}
	p := func(v ...string) ec2.AssignIpv6AddressesInput {
		return ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6Prefixes: v}
	}
	tests := []struct {
		name string
		in   ec2.AssignIpv6AddressesInput
		code string
	}{
		{"prefix not aligned", p("2600:1f18:4000:a901:77::1/80"), "InvalidParameterValue"},
		{"prefix /96", p("2600:1f18:4000:a901:77::/96"), "InvalidParameterValue"},
		{"prefix /64", p("2600:1f18:4000:a901::/64"), "InvalidParameterValue"},
		{"prefix outside the /64", p("2600:1f18:4000:a9ff:77::/80"), "InvalidParameterValue"},
		{"prefix not an ip", p("eni-1"), "InvalidParameterValue"},
		{"prefix ipv4", p("10.0.1.0/28"), "InvalidParameterValue"},
		{"prefix over the reserved first addresses", p("2600:1f18:4000:a901::/80"), "InvalidIPAddress.InUse"},
		{"prefix over the reserved last address", p("2600:1f18:4000:a901:ffff::/80"), "InvalidIPAddress.InUse"},
		{"prefix over another ENI's address", p(slotOfPreAddr), "InvalidIPAddress.InUse"},
		{"address outside the /64", a("2600:1f18:4000:a902::99"), "InvalidParameterValue"},
		{"address reserved ::", a("2600:1f18:4000:a901::"), "InvalidParameterValue"},
		{"address reserved ::3", a("2600:1f18:4000:a901::3"), "InvalidParameterValue"},
		{"address reserved last", a("2600:1f18:4000:a901:ffff:ffff:ffff:ffff"), "InvalidParameterValue"},
		{"address ipv4", a("10.0.1.50"), "InvalidParameterValue"},
		{"address with zone", a("fe80::1%eth0"), "InvalidParameterValue"},
		{"address inside another ENI's prefix", a(insidePrePfx), "InvalidIPAddress.InUse"},
		{"address twice", a("2600:1f18:4000:a901::99", "2600:1f18:4000:a901:0::99"), "InvalidParameterValue"},
		{"prefix twice", p("2600:1f18:4000:a901:77::/80", "2600:1f18:4000:a901:77::/80"), "InvalidParameterValue"},
		{"over the per-ENI limit", p("2600:1f18:4000:a901:77::/80", "2600:1f18:4000:a901:78::/80", "2600:1f18:4000:a901:79::/80"), "PrivateIpAddressLimitExceeded"},
		{"addresses and prefixes together", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Addresses: []string{"2600:1f18:4000:a901::99"}, Ipv6Prefixes: []string{"2600:1f18:4000:a901:77::/80"}}, "InvalidParameterCombination"},
		{"explicit prefix and a count", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6PrefixCount: aws.Int32(1), Ipv6Prefixes: []string{"2600:1f18:4000:a901:77::/80"}}, "InvalidParameterCombination"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AssignIpv6Addresses(t.Context(), &tc.in)
			wantCode(t, err, tc.code)
		})
	}
	if e := eniState(t, sim, idBare, bare); len(e.IPv6) != 0 || len(e.IPv6Prefixes) != 0 {
		t.Errorf("failed calls changed state: %+v", e)
	}
	// A request of two prefixes, the second in use: neither is assigned.
	_, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
		Ipv6Prefixes: []string{"2600:1f18:4000:a901:77::/80", prePfx.String()}})
	wantCode(t, err, "InvalidIPAddress.InUse")
	if e := eniState(t, sim, idBare, bare); len(e.IPv6Prefixes) != 0 {
		t.Errorf("partial assignment: %+v", e)
	}
	// The first value is free again.
	if _, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
		Ipv6Prefixes: []string{"2600:1f18:4000:a901:77::/80"}}); err != nil {
		t.Fatalf("rolled-back value not free: %v", err)
	}
}

// DescribeInstances finds the holder of an address or prefix by filter,
// with the describe's consistency lag.
func TestHolderFilters(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	bare := primaryENIOf(t, sim, idBare)
	pre := eniState(t, sim, idPre, eniPre)
	holders := func(name, value string) []string {
		t.Helper()
		out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
			Filters: []ec2types.Filter{{Name: aws.String(name), Values: []string{value}}}})
		if err != nil {
			t.Fatalf("describe %s=%s: %v", name, value, err)
		}
		var ids []string
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
		return ids
	}
	if got := holders("network-interface.ipv6-prefixes.ipv6-prefix", pre.IPv6Prefixes[0]); !slices.Equal(got, []string{idPre}) {
		t.Errorf("prefix holder = %v", got)
	}
	if got := holders("network-interface.ipv6-addresses.ipv6-address", pre.IPv6[0].Address); !slices.Equal(got, []string{idPre}) {
		t.Errorf("address holder = %v", got)
	}
	if got := holders("network-interface.ipv6-prefixes.ipv6-prefix", "2600:1f18:4000:a901:77::/80"); len(got) != 0 {
		t.Errorf("free prefix has holders %v", got)
	}
	sim.SetFault("DescribeInstances", Fault{ConsistencyLag: time.Hour})
	if _, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
		Ipv6Prefixes: []string{"2600:1f18:4000:a901:77::/80"}}); err != nil {
		t.Fatal(err)
	}
	if got := holders("network-interface.ipv6-prefixes.ipv6-prefix", "2600:1f18:4000:a901:77::/80"); len(got) != 0 {
		t.Errorf("lagged describe already shows the holder: %v", got)
	}
	sim.ClearFaults()
	if got := holders("network-interface.ipv6-prefixes.ipv6-prefix", "2600:1f18:4000:a901:77::/80"); !slices.Equal(got, []string{idBare}) {
		t.Errorf("holder = %v, want %s", got, idBare)
	}
}
