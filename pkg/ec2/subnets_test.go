package ec2_test

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestSubnetIPv6CIDR: the /64 comes from ec2sim's subnet, a subnet without
// IPv6 yields an invalid prefix, an unknown one ErrSubnetNotFound, and
// concurrent and later lookups of one subnet share one DescribeSubnets.
func TestSubnetIPv6CIDR(t *testing.T) {
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: 1, IPv6Subnet: true})
	v4only := ec2sim.Subnet{ID: "subnet-0bbbbbbbbbbbbbbb1", Zone: sc.Subnets[0].Zone, CIDR: "10.0.200.0/24"}
	sc.Subnets = append(sc.Subnets, v4only)
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region()})
	if err != nil {
		t.Fatal(err)
	}
	var want netip.Prefix
	for _, s := range sim.State().Subnets {
		if s.ID == sc.Subnets[0].ID {
			want = netip.MustParsePrefix(s.IPv6CIDR)
		}
	}
	var wg sync.WaitGroup
	got := make([]netip.Prefix, 20)
	errs := make([]error, 20)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = c.SubnetIPv6CIDR(t.Context(), sc.Subnets[0].ID) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != want {
			t.Fatalf("lookup %d: %v, %v; want %v", i, got[i], errs[i], want)
		}
	}
	if p, err := c.SubnetIPv6CIDR(t.Context(), sc.Subnets[0].ID); err != nil || p != want {
		t.Fatalf("cached lookup: %v %v", p, err)
	}
	if n := sim.Calls("DescribeSubnets"); n != 1 {
		t.Errorf("DescribeSubnets calls = %d for 21 lookups of one subnet, want 1", n)
	}
	if p, err := c.SubnetIPv6CIDR(t.Context(), v4only.ID); err != nil || p.IsValid() {
		t.Errorf("IPv4-only subnet: %v, %v; want an invalid prefix", p, err)
	}
	if _, err := c.SubnetIPv6CIDR(t.Context(), "subnet-0ccccccccccccccc1"); !errors.Is(err, ec2.ErrSubnetNotFound) {
		t.Errorf("unknown subnet: %v, want ErrSubnetNotFound", err)
	}
	if _, err := c.SubnetIPv6CIDR(t.Context(), "vpc-1"); err == nil {
		t.Error("malformed subnet ID accepted")
	}
}
