package loadbalancer

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// subnetsOf returns the load balancer's subnets (for health check rules).
func (lb *LoadBalancers) subnetsOf(ctx context.Context, l *ec2.LoadBalancer, insts map[string]*ec2.Instance) ([]ec2.Subnet, error) {
	vpc := l.VPCID
	if vpc == "" {
		vpc = lb.vpc(insts)
	}
	all, err := lb.ec2.VPCSubnets(ctx, vpc)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(sn ec2.Subnet) bool { return !slices.Contains(l.Subnets, sn.ID) }), nil
}

// syncRules makes the rules for the load balancer on each node security
// group (a cluster-tagged group on a target's primary network interface)
// exactly want, and removes them from cluster-tagged groups no target uses.
func (lb *LoadBalancers) syncRules(ctx context.Context, s *Spec, vpcID string, insts map[string]*ec2.Instance, want []ec2.IngressRule) error {
	sgs, err := lb.ec2.TaggedSecurityGroups(ctx, vpcID, TagClusterPrefix+lb.cfg.ClusterID)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, in := range insts {
		if eni := in.PrimaryENI(); eni != nil {
			for _, g := range eni.SecurityGroups {
				used[g] = true
			}
		}
	}
	for _, sg := range sgs {
		w := want
		if !used[sg.ID] {
			w = nil
		}
		add, remove := DiffRules(sg.Ingress, w, s.Name)
		if err := lb.ec2.AuthorizeIngress(ctx, sg.ID, add); err != nil {
			return err
		}
		if err := lb.ec2.RevokeIngress(ctx, sg.ID, remove); err != nil {
			return err
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
