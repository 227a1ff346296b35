package loadbalancer

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// ensure makes the AWS objects match the spec, adopting what exists under
// the Service's names and tags; every step is idempotent, so a crash
// anywhere is repaired by the next call.
func (lb *LoadBalancers) ensure(ctx context.Context, svc *v1.Service, s *Spec, nodes []*v1.Node) (*ec2.LoadBalancer, error) {
	insts, err := lb.instances(ctx, svc, s, nodes)
	if err != nil {
		return nil, err
	}
	vpcID := lb.vpc(insts)
	if vpcID == "" {
		return nil, fmt.Errorf("no VPC: set VPC in the cloud config or give the Service a node with an instance")
	}
	vpcSubnets, err := lb.ec2.VPCSubnets(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	subnets, err := ChooseSubnets(s, vpcSubnets, lb.cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	subnetIDs := make([]string, len(subnets))
	for i, sn := range subnets {
		subnetIDs[i] = sn.ID
	}
	l, err := lb.elb.LoadBalancerByName(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	if l != nil {
		if err := lb.checkOwned(ctx, l.ARN, s); err != nil {
			return nil, err
		}
		if l.Scheme != s.Scheme {
			// The scheme cannot change in place: make it anew.
			klog.InfoS("Replacing load balancer for a scheme change", "service", klog.KObj(svc), "name", s.Name, "from", l.Scheme, "to", s.Scheme)
			if err := lb.deleteLB(ctx, l); err != nil {
				return nil, err
			}
			l = nil
		}
	}
	if l == nil {
		if l, err = lb.elb.CreateLoadBalancer(ctx, ec2.LoadBalancerSpec{
			Name: s.Name, Scheme: s.Scheme, IPAddressType: s.IPAddressType, Subnets: subnetIDs, Tags: s.Tags,
			// UDP listeners on a dualstack NLB need an IPv6 source NAT
			// prefix per subnet, chosen at creation.
			SourceNATIPv6: s.IPAddressType == IPAddressTypeDualStack && slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Protocol == "UDP" }),
		}); err != nil {
			return nil, err
		}
		klog.InfoS("Created load balancer", "service", klog.KObj(svc), "name", s.Name, "ipAddressType", s.IPAddressType, "scheme", s.Scheme)
	}
	if l.IPAddressType != s.IPAddressType && s.IPAddressType == IPAddressTypeDualStack {
		if err := lb.elb.SetIPAddressType(ctx, l.ARN, s.IPAddressType); err != nil {
			return nil, err
		}
	}
	if !slices.Equal(l.Subnets, subnetIDs) {
		if err := lb.elb.SetSubnets(ctx, l.ARN, subnetIDs); err != nil {
			return nil, err
		}
	}
	if s.CrossZone != nil {
		attrs, err := lb.elb.LoadBalancerAttributes(ctx, l.ARN)
		if err != nil {
			return nil, err
		}
		if want := fmt.Sprint(*s.CrossZone); attrs[crossZoneAttribute] != want {
			if err := lb.elb.ModifyLoadBalancerAttributes(ctx, l.ARN, map[string]string{crossZoneAttribute: want}); err != nil {
				return nil, err
			}
		}
	}
	attached, err := lb.elb.TargetGroups(ctx, l.ARN)
	if err != nil {
		return nil, err
	}
	listeners, err := lb.elb.Listeners(ctx, l.ARN)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	initializing := initializingNodes(nodes)
	waiting := map[string]bool{}
	for _, p := range s.Ports {
		tg, err := lb.targetGroup(ctx, svc, s, p, vpcID, attached)
		if err != nil {
			return nil, err
		}
		keep[tg.ARN] = true
		if err := lb.listener(ctx, l, s, p, tg, listeners); err != nil {
			return nil, err
		}
		if err := lb.syncTargets(ctx, svc, tg, p, s.TargetFamily, insts, initializing, waiting); err != nil {
			return nil, err
		}
	}
	for _, ls := range listeners {
		if !slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Port == ls.Port }) {
			if err := lb.elb.DeleteListener(ctx, ls.ARN); err != nil {
				return nil, err
			}
		}
	}
	if err := lb.deleteOwnedGroups(ctx, s, attached, keep); err != nil {
		return nil, err
	}
	if l.IPAddressType != s.IPAddressType && s.IPAddressType == IPAddressTypeIPv4 {
		// Only now that no IPv6 target group is attached.
		if err := lb.elb.SetIPAddressType(ctx, l.ARN, s.IPAddressType); err != nil {
			return nil, err
		}
	}
	if err := lb.syncRules(ctx, s, vpcID, insts, IngressRules(s, subnets)); err != nil {
		return nil, err
	}
	if err := waitingError(waiting); err != nil {
		return nil, err
	}
	return l, nil
}

// checkOwned refuses to touch a load balancer that this cluster did not
// make for this Service.
func (lb *LoadBalancers) checkOwned(ctx context.Context, arn string, s *Spec) error {
	tags, err := lb.elb.Tags(ctx, []string{arn})
	if err != nil {
		return err
	}
	t := tags[arn]
	if !lb.owns(t, s.Tags[TagServiceName]) {
		return fmt.Errorf("load balancer %s exists but is not tagged as this cluster's (%s%s=owned) for Service %s; refusing to adopt it",
			s.Name, TagClusterPrefix, lb.cfg.ClusterID, s.Tags[TagServiceName])
	}
	return nil
}

// owns reports whether tags mark an object this cluster made for the
// Service owner ("<namespace>/<name>").
func (lb *LoadBalancers) owns(tags map[string]string, owner string) bool {
	return tags[TagClusterPrefix+lb.cfg.ClusterID] == "owned" && tags[TagServiceName] == owner
}

// targetGroup returns the port's target group: attached, or found by name
// (made before a crash), or new; its health check follows the spec.
func (lb *LoadBalancers) targetGroup(ctx context.Context, svc *v1.Service, s *Spec, p Port, vpcID string, attached []ec2.TargetGroup) (*ec2.TargetGroup, error) {
	name := TargetGroupName(svc, lb.cfg.ClusterID, p, s.TargetFamily, s.HealthCheck)
	var tg *ec2.TargetGroup
	if i := slices.IndexFunc(attached, func(t ec2.TargetGroup) bool { return t.Name == name }); i >= 0 {
		tg = &attached[i]
	} else {
		var err error
		if tg, err = lb.elb.TargetGroupByName(ctx, name); err != nil {
			return nil, err
		}
	}
	hc := ec2.HealthCheck(s.HealthCheck)
	if tg == nil {
		return lb.elb.CreateTargetGroup(ctx, ec2.TargetGroupSpec{
			Name: name, Protocol: p.Protocol, Port: p.NodePort, IPAddressType: s.TargetFamily, VPCID: vpcID, HealthCheck: hc, Tags: s.Tags,
		})
	}
	if !healthCheckMatches(tg.HealthCheck, hc) {
		if err := lb.elb.ModifyHealthCheck(ctx, tg.ARN, hc); err != nil {
			return nil, err
		}
	}
	return tg, nil
}

// healthCheckMatches compares the fields the spec sets (zero = AWS default).
func healthCheckMatches(have, want ec2.HealthCheck) bool {
	eq := func(h, w int32) bool { return w == 0 || h == w }
	return have.Protocol == want.Protocol && have.Port == want.Port && (want.Path == "" || have.Path == want.Path) &&
		eq(have.IntervalSeconds, want.IntervalSeconds) && eq(have.TimeoutSeconds, want.TimeoutSeconds) &&
		eq(have.HealthyThreshold, want.HealthyThreshold) && eq(have.UnhealthyThreshold, want.UnhealthyThreshold)
}

// listener makes the port's listener forward to tg: kept, repointed, or
// replaced when its protocol changed.
func (lb *LoadBalancers) listener(ctx context.Context, l *ec2.LoadBalancer, s *Spec, p Port, tg *ec2.TargetGroup, existing []ec2.Listener) error {
	i := slices.IndexFunc(existing, func(ls ec2.Listener) bool { return ls.Port == p.Port })
	if i >= 0 && existing[i].Protocol != p.Protocol {
		if err := lb.elb.DeleteListener(ctx, existing[i].ARN); err != nil {
			return err
		}
		i = -1
	}
	if i < 0 {
		_, err := lb.elb.CreateListener(ctx, l.ARN, p.Protocol, p.Port, tg.ARN, s.Tags)
		return err
	}
	if existing[i].TargetGroupARN != tg.ARN {
		return lb.elb.ForwardListener(ctx, existing[i].ARN, tg.ARN)
	}
	return nil
}

// deleteOwnedGroups deletes target groups attached before this ensure that
// no port uses now, if they carry the Service's tags.
func (lb *LoadBalancers) deleteOwnedGroups(ctx context.Context, s *Spec, attached []ec2.TargetGroup, keep map[string]bool) error {
	var stale []string
	for _, tg := range attached {
		if !keep[tg.ARN] {
			stale = append(stale, tg.ARN)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	tags, err := lb.elb.Tags(ctx, stale)
	if err != nil {
		return err
	}
	for _, arn := range stale {
		if lb.owns(tags[arn], s.Tags[TagServiceName]) {
			if err := lb.elb.DeleteTargetGroup(ctx, arn); err != nil {
				return err
			}
		}
	}
	return nil
}
