package loadbalancer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// Subnet role tags, as upstream and kOps set them.
const (
	TagRoleELB         = "kubernetes.io/role/elb"
	TagRoleInternalELB = "kubernetes.io/role/internal-elb"
)

// ChooseSubnets picks the load balancer's subnets from the VPC's. Named
// subnets (by ID or Name tag) are used as given; otherwise one subnet per
// zone, as upstream: subnets with the scheme's role tag first, then those
// with this cluster's tag, then the lowest subnet ID. A dual-stack load
// balancer needs every subnet to have an IPv6 CIDR.
func ChooseSubnets(s *Spec, vpc []ec2.Subnet, clusterID string) ([]ec2.Subnet, error) {
	if len(s.Subnets) > 0 {
		var out []ec2.Subnet
		for _, want := range s.Subnets {
			i := slices.IndexFunc(vpc, func(sn ec2.Subnet) bool { return sn.ID == want || sn.Tags["Name"] == want })
			if i < 0 {
				return nil, fmt.Errorf("%s: no subnet %q (by ID or Name tag) in the VPC", AnnotationSubnets, want)
			}
			if slices.ContainsFunc(vpc[i+1:], func(sn ec2.Subnet) bool { return sn.Tags["Name"] == want }) {
				return nil, fmt.Errorf("%s: %q names more than one subnet", AnnotationSubnets, want)
			}
			if slices.ContainsFunc(out, func(sn ec2.Subnet) bool { return sn.Zone == vpc[i].Zone }) {
				return nil, fmt.Errorf("%s: two subnets in zone %s; a load balancer takes one per zone", AnnotationSubnets, vpc[i].Zone)
			}
			out = append(out, vpc[i])
		}
		return out, checkIPv6Subnets(s, out)
	}
	role := TagRoleELB
	if s.Scheme == SchemeInternal {
		role = TagRoleInternalELB
	}
	score := func(sn ec2.Subnet) int {
		n := 0
		if v, ok := sn.Tags[role]; ok && (v == "" || v == "1" || v == "true") {
			n += 2
		}
		if _, ok := sn.Tags[TagClusterPrefix+clusterID]; ok {
			n++
		}
		return n
	}
	best := map[string]ec2.Subnet{}
	for _, sn := range vpc {
		if score(sn) < 2 {
			continue // untagged subnets are never guessed at
		}
		if s.IPAddressType == IPAddressTypeDualStack && !sn.IPv6CIDR.IsValid() {
			continue
		}
		cur, ok := best[sn.Zone]
		if !ok || score(sn) > score(cur) || score(sn) == score(cur) && sn.ID < cur.ID {
			best[sn.Zone] = sn
		}
	}
	if len(best) == 0 {
		extra := ""
		if s.IPAddressType == IPAddressTypeDualStack {
			extra = " and an IPv6 CIDR (the load balancer is dualstack)"
		}
		return nil, fmt.Errorf("no subnet in the VPC is tagged %s%s; tag one per zone or name them in %s", role, extra, AnnotationSubnets)
	}
	out := make([]ec2.Subnet, 0, len(best))
	for _, sn := range best {
		out = append(out, sn)
	}
	slices.SortFunc(out, func(a, b ec2.Subnet) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func checkIPv6Subnets(s *Spec, subnets []ec2.Subnet) error {
	if s.IPAddressType != IPAddressTypeDualStack {
		return nil
	}
	for _, sn := range subnets {
		if !sn.IPv6CIDR.IsValid() {
			return fmt.Errorf("subnet %s has no IPv6 CIDR, which a dualstack load balancer needs", sn.ID)
		}
	}
	return nil
}
