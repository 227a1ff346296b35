package loadbalancer

import (
	"fmt"
	"net/netip"
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

// Rule descriptions mark the node security group rules made for one load
// balancer, as upstream names them.
func clientRuleDescription(lbName string) string { return "kubernetes.io/rule/nlb/client=" + lbName }
func healthRuleDescription(lbName string) string { return "kubernetes.io/rule/nlb/health=" + lbName }

// ours reports whether a rule was made for the load balancer.
func ours(r ec2.IngressRule, lbName string) bool {
	return r.Description == clientRuleDescription(lbName) || r.Description == healthRuleDescription(lbName)
}

// IngressRules are the node security group rules a load balancer needs:
// its clients to every NodePort, and its subnets to the health check port
// (in each family the load balancer has) where no client rule covers them.
func IngressRules(s *Spec, subnets []ec2.Subnet) []ec2.IngressRule {
	var rules []ec2.IngressRule
	for _, p := range s.Ports {
		for _, cidr := range s.SourceRanges {
			rules = append(rules, ec2.IngressRule{Protocol: strings.ToLower(p.Protocol), FromPort: p.NodePort, ToPort: p.NodePort, CIDR: cidr, Description: clientRuleDescription(s.Name)})
		}
	}
	var hcPorts []int32
	if s.HealthCheck.Port == "traffic-port" {
		for _, p := range s.Ports {
			hcPorts = append(hcPorts, p.NodePort)
		}
	} else {
		var n int32
		fmt.Sscan(s.HealthCheck.Port, &n)
		hcPorts = append(hcPorts, n)
	}
	var sources []netip.Prefix
	for _, sn := range subnets {
		if sn.IPv4CIDR.IsValid() {
			sources = append(sources, sn.IPv4CIDR)
		}
		if s.IPAddressType == IPAddressTypeDualStack && sn.IPv6CIDR.IsValid() {
			sources = append(sources, sn.IPv6CIDR)
		}
	}
	for _, port := range slices.Compact(slices.Sorted(slices.Values(hcPorts))) {
		for _, cidr := range sources {
			h := ec2.IngressRule{Protocol: "tcp", FromPort: port, ToPort: port, CIDR: cidr, Description: healthRuleDescription(s.Name)}
			// A client rule that already lets the health checker in makes
			// the health rule redundant (upstream skips it too). Security
			// groups hold 60 inbound rules per family: each rule counts.
			if !slices.ContainsFunc(rules, func(c ec2.IngressRule) bool { return covers(c, h) }) {
				rules = append(rules, h)
			}
		}
	}
	slices.SortFunc(rules, compareRules)
	return slices.CompactFunc(rules, func(a, b ec2.IngressRule) bool { return compareRules(a, b) == 0 })
}

// covers reports whether rule c lets in everything rule h does.
func covers(c, h ec2.IngressRule) bool {
	return c.Protocol == h.Protocol && c.FromPort <= h.FromPort && c.ToPort >= h.ToPort &&
		c.CIDR.Addr().Is4() == h.CIDR.Addr().Is4() && c.CIDR.Bits() <= h.CIDR.Bits() && c.CIDR.Contains(h.CIDR.Addr())
}

func compareRules(a, b ec2.IngressRule) int {
	return strings.Compare(ruleKey(a), ruleKey(b))
}

func ruleKey(r ec2.IngressRule) string {
	return fmt.Sprintf("%s/%05d-%05d/%s/%s", r.Protocol, r.FromPort, r.ToPort, r.CIDR, r.Description)
}

// DiffRules returns the rules to add to and remove from a security group so
// that its rules for lbName are exactly want.
func DiffRules(have []ec2.IngressRule, want []ec2.IngressRule, lbName string) (add, remove []ec2.IngressRule) {
	haveSet := map[string]bool{}
	for _, r := range have {
		if ours(r, lbName) {
			haveSet[ruleKey(r)] = true
		}
	}
	wantSet := map[string]bool{}
	for _, r := range want {
		wantSet[ruleKey(r)] = true
		if !haveSet[ruleKey(r)] {
			add = append(add, r)
		}
	}
	for _, r := range have {
		if ours(r, lbName) && !wantSet[ruleKey(r)] {
			remove = append(remove, r)
		}
	}
	return add, remove
}

// DiffTargets returns the targets to register and deregister.
func DiffTargets(have, want []ec2.Target) (add, remove []ec2.Target) {
	in := func(ts []ec2.Target, t ec2.Target) bool { return slices.Contains(ts, t) }
	for _, t := range want {
		if !in(have, t) {
			add = append(add, t)
		}
	}
	for _, t := range have {
		if !in(want, t) {
			remove = append(remove, t)
		}
	}
	return add, remove
}
