package ec2sim

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestAssignPrefixAndAddress(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	eni := primaryENIOf(t, sim, idBare)
	out, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6PrefixCount: aws.Int32(1)})
	if err != nil {
		t.Fatalf("assign prefix: %v", err)
	}
	if len(out.AssignedIpv6Prefixes) != 1 || len(out.AssignedIpv6Addresses) != 0 {
		t.Fatalf("assigned = %v / %v", out.AssignedIpv6Addresses, out.AssignedIpv6Prefixes)
	}
	pfx := netip.MustParsePrefix(out.AssignedIpv6Prefixes[0])
	subnet := netip.MustParsePrefix("2600:1f18:4000:a901::/64")
	if pfx.Bits() != 80 || !subnet.Contains(pfx.Addr()) {
		t.Errorf("prefix %s is not a /80 of %s", pfx, subnet)
	}
	out, err = c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6AddressCount: aws.Int32(1)})
	if err != nil {
		t.Fatalf("assign address: %v", err)
	}
	if len(out.AssignedIpv6Addresses) != 1 || aws.ToString(out.NetworkInterfaceId) != eni {
		t.Fatalf("assigned = %+v", out)
	}
	addr := netip.MustParseAddr(out.AssignedIpv6Addresses[0])
	if !subnet.Contains(addr) || pfx.Contains(addr) {
		t.Errorf("address %s not in %s or inside prefix %s", addr, subnet, pfx)
	}
	// The describe shows both.
	d, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idBare}})
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	ni := d.Reservations[0].Instances[0].NetworkInterfaces[0]
	if len(ni.Ipv6Addresses) != 1 || aws.ToString(ni.Ipv6Addresses[0].Ipv6Address) != addr.String() ||
		len(ni.Ipv6Prefixes) != 1 || aws.ToString(ni.Ipv6Prefixes[0].Ipv6Prefix) != pfx.String() {
		t.Errorf("describe shows %+v / %+v", ni.Ipv6Addresses, ni.Ipv6Prefixes)
	}
	if sim.MutatingCalls() != 2 || sim.Calls("AssignIpv6Addresses") != 2 {
		t.Errorf("mutating calls = %d, counts = %v", sim.MutatingCalls(), sim.Counts())
	}
	// Unassign both.
	u, err := c.UnassignIpv6Addresses(t.Context(), &ec2.UnassignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Addresses: []string{addr.String()}, Ipv6Prefixes: []string{pfx.String()}})
	if err != nil {
		t.Fatalf("unassign: %v", err)
	}
	if len(u.UnassignedIpv6Addresses) != 1 || len(u.UnassignedIpv6Prefixes) != 1 {
		t.Errorf("unassigned = %+v", u)
	}
	st, _ := sim.State().Instance(idBare)
	if len(st.ENIs[0].IPv6) != 0 || len(st.ENIs[0].IPv6Prefixes) != 0 {
		t.Errorf("state after unassign = %+v", st.ENIs[0])
	}
}

func primaryENIOf(t *testing.T, sim *Sim, id string) string {
	t.Helper()
	st, ok := sim.State().Instance(id)
	if !ok {
		t.Fatalf("no instance %s", id)
	}
	for _, e := range st.ENIs {
		if e.DeviceIndex == 0 && e.NetworkCardIndex == 0 {
			return e.ID
		}
	}
	t.Fatalf("instance %s has no primary ENI", id)
	return ""
}

func TestAssignErrors(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	bare := primaryENIOf(t, sim, idBare)
	noV6 := primaryENIOf(t, sim, idNoV6)
	tests := []struct {
		name string
		in   ec2.AssignIpv6AddressesInput
		code string
	}{
		{"malformed eni", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String("eni-xyz"), Ipv6PrefixCount: aws.Int32(1)}, "InvalidNetworkInterfaceId.Malformed"},
		{"unknown eni", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Ipv6PrefixCount: aws.Int32(1)}, "InvalidNetworkInterfaceID.NotFound"},
		{"nothing", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare)}, "MissingParameter"},
		{"count and list", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6AddressCount: aws.Int32(1),
			Ipv6Addresses: []string{"2600:1f18:4000:a901::99"}}, "InvalidParameterCombination"},
		{"prefix count and list", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6PrefixCount: aws.Int32(1),
			Ipv6Prefixes: []string{"2600:1f18:4000:a901:9::/80"}}, "InvalidParameterCombination"},
		{"address and prefix", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6AddressCount: aws.Int32(1),
			Ipv6PrefixCount: aws.Int32(1)}, "InvalidParameterCombination"},
		{"huge counts", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6AddressCount: aws.Int32(2147483647)}, "PrivateIpAddressLimitExceeded"},
		{"zero count", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6PrefixCount: aws.Int32(0)}, "InvalidParameterValue"},
		{"no ipv6 subnet", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(noV6), Ipv6PrefixCount: aws.Int32(1)}, "InvalidParameterValue"},
		{"over limit", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare), Ipv6PrefixCount: aws.Int32(3)}, "PrivateIpAddressLimitExceeded"},
		{"prefix in use", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Prefixes: []string{"2600:1f18:4000:a901:1234::/80"}}, "InvalidIPAddress.InUse"},
		{"address in use", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Addresses: []string{"2600:1f18:4000:a901::10"}}, "InvalidIPAddress.InUse"},
		{"address inside prefix", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Addresses: []string{"2600:1f18:4000:a901:1234::5"}}, "InvalidIPAddress.InUse"},
		{"prefix not /80", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Prefixes: []string{"2600:1f18:4000:a901:1200::/72"}}, "InvalidParameterValue"},
		{"prefix outside subnet", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Prefixes: []string{"2600:1f18:4000:a902:1::/80"}}, "InvalidParameterValue"},
		{"reserved address", ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(bare),
			Ipv6Addresses: []string{"2600:1f18:4000:a901::1"}}, "InvalidParameterValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AssignIpv6Addresses(t.Context(), &tc.in)
			wantCode(t, err, tc.code)
		})
	}
	// Nothing was assigned by the failed calls.
	st, _ := sim.State().Instance(idBare)
	if len(st.ENIs[0].IPv6) != 0 || len(st.ENIs[0].IPv6Prefixes) != 0 {
		t.Errorf("failed calls changed state: %+v", st.ENIs[0])
	}
	// t3.micro allows 2 per ENI: two prefixes fit, a third does not.
	for range 2 {
		if _, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
			NetworkInterfaceId: aws.String(bare), Ipv6PrefixCount: aws.Int32(1)}); err != nil {
			t.Fatalf("assign: %v", err)
		}
	}
	_, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(bare), Ipv6AddressCount: aws.Int32(1)})
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
}

func TestUnassignErrors(t *testing.T) {
	_, c := newTestSim(t, Options{})
	_, err := c.UnassignIpv6Addresses(t.Context(), &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(eniPre)})
	wantCode(t, err, "MissingParameter")
	_, err = c.UnassignIpv6Addresses(t.Context(), &ec2.UnassignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eniPre), Ipv6Prefixes: []string{"2600:1f18:4000:a901:9999::/80"}})
	wantCode(t, err, "InvalidParameterValue")
}

// TestConcurrentPrefixesNeverOverlap assigns 5,000 /80s in one /64 from
// many goroutines (10 per call) and checks they are distinct and clear of
// every address.
func TestConcurrentPrefixesNeverOverlap(t *testing.T) {
	const n, perCall = 5000, 10
	sc := &Scenario{
		InstanceTypes: []InstanceType{{Name: "x.huge", MaxENIs: 1, IPv4PerENI: 1, IPv6PerENI: n + 50}},
		Subnets:       []Subnet{{ID: "subnet-0123456789abcdef0", CIDR: "10.0.0.0/20", IPv6CIDR: "2600:1f18:4000:a900::/64"}},
		Instances: []Instance{{ID: "i-0123456789abcdef0", Type: "x.huge", ENIs: []ENI{{
			ID: "eni-0123456789abcdef0", IPv6AddressCount: 50}}}},
	}
	sim, c := newTestSim(t, Options{Scenario: sc})
	var (
		mu   sync.Mutex
		got  []string
		errs []error
		wg   sync.WaitGroup
	)
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n/perCall; i += workers {
				out, err := c.AssignIpv6Addresses(t.Context(), &ec2.AssignIpv6AddressesInput{
					NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Ipv6PrefixCount: aws.Int32(perCall)})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					got = append(got, out.AssignedIpv6Prefixes...)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d assigns failed, first: %v", len(errs), errs[0])
	}
	if len(got) != n {
		t.Fatalf("got %d prefixes, want %d", len(got), n)
	}
	st, _ := sim.State().Instance("i-0123456789abcdef0")
	subnet := netip.MustParsePrefix("2600:1f18:4000:a900::/64")
	seen := map[netip.Prefix]bool{}
	for _, s := range got {
		p := netip.MustParsePrefix(s)
		if p.Bits() != 80 || !subnet.Contains(p.Addr()) || seen[p] {
			t.Fatalf("bad or duplicate prefix %s", p)
		}
		seen[p] = true
	}
	for _, a := range st.ENIs[0].IPv6 {
		addr := netip.MustParseAddr(a.Address)
		if seen[netip.PrefixFrom(addr, 80).Masked()] {
			t.Fatalf("address %s lies inside an assigned prefix", addr)
		}
	}
	if len(st.ENIs[0].IPv6Prefixes) != n {
		t.Errorf("state holds %d prefixes, want %d", len(st.ENIs[0].IPv6Prefixes), n)
	}
}
