package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// LoadBalancer is the part of a Network Load Balancer the CCM uses.
type LoadBalancer struct {
	ARN, Name, DNSName string
	// Scheme is "internet-facing" or "internal".
	Scheme string
	// IPAddressType is "ipv4" or "dualstack".
	IPAddressType string
	VPCID         string
	// State is AWS's state code: provisioning, active, failed...
	State string
	// Subnets holds one subnet ID per zone, sorted.
	Subnets []string
}

// LoadBalancerSpec is what CreateLoadBalancer makes.
type LoadBalancerSpec struct {
	Name, Scheme, IPAddressType string
	Subnets                     []string
	Tags                        map[string]string
	// SourceNATIPv6 turns on EnablePrefixForIpv6SourceNat, which a
	// dualstack NLB with UDP listeners needs; it can only be set at creation.
	SourceNATIPv6 bool
}

// Listener is an NLB listener forwarding to one target group.
type Listener struct {
	ARN, LoadBalancerARN, Protocol string
	Port                           int32
	TargetGroupARN                 string
}

// LoadBalancerByName returns the load balancer of that name, or nil when
// there is none.
func (e *ELB) LoadBalancerByName(ctx context.Context, name string) (*LoadBalancer, error) {
	out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeLoadBalancers, &elb.DescribeLoadBalancersInput{Names: []string{name}})
	if ErrorCode(err) == codeLoadBalancerNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe load balancer %s: %w", name, err)
	}
	for i := range out.LoadBalancers {
		if aws.ToString(out.LoadBalancers[i].LoadBalancerName) == name {
			return lbFromSDK(&out.LoadBalancers[i]), nil
		}
	}
	return nil, nil
}

// CreateLoadBalancer creates a network load balancer. AWS answers a create
// with the name and settings of an existing one with that one.
func (e *ELB) CreateLoadBalancer(ctx context.Context, s LoadBalancerSpec) (*LoadBalancer, error) {
	in := &elb.CreateLoadBalancerInput{
		Name:          aws.String(s.Name),
		Type:          elbtypes.LoadBalancerTypeEnumNetwork,
		Scheme:        elbtypes.LoadBalancerSchemeEnum(s.Scheme),
		IpAddressType: elbtypes.IpAddressType(s.IPAddressType),
		Subnets:       s.Subnets,
		Tags:          elbTags(s.Tags),
	}
	if s.SourceNATIPv6 {
		in.EnablePrefixForIpv6SourceNat = elbtypes.EnablePrefixForIpv6SourceNatEnumOn
	}
	out, err := elbCall(ctx, e, elbResourceIntensive, e.api.CreateLoadBalancer, in)
	if err != nil {
		return nil, fmt.Errorf("create load balancer %s: %w", s.Name, err)
	}
	if len(out.LoadBalancers) != 1 {
		return nil, fmt.Errorf("create load balancer %s: reply holds %d load balancers", s.Name, len(out.LoadBalancers))
	}
	return lbFromSDK(&out.LoadBalancers[0]), nil
}

// SetIPAddressType switches a load balancer between ipv4 and dualstack.
func (e *ELB) SetIPAddressType(ctx context.Context, lbARN, t string) error {
	return elbDo(ctx, e, elbMutating, e.api.SetIpAddressType,
		&elb.SetIpAddressTypeInput{LoadBalancerArn: aws.String(lbARN), IpAddressType: elbtypes.IpAddressType(t)},
		fmt.Sprintf("set IP address type of %s to %s", lbARN, t))
}

// SetSubnets sets a load balancer's subnets.
func (e *ELB) SetSubnets(ctx context.Context, lbARN string, subnets []string) error {
	return elbDo(ctx, e, elbResourceIntensive, e.api.SetSubnets,
		&elb.SetSubnetsInput{LoadBalancerArn: aws.String(lbARN), Subnets: subnets}, "set subnets of "+lbARN)
}

// DeleteLoadBalancer deletes a load balancer and its listeners; deleting
// one that is gone succeeds.
func (e *ELB) DeleteLoadBalancer(ctx context.Context, lbARN string) error {
	return elbDo(ctx, e, elbMutating, e.api.DeleteLoadBalancer,
		&elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbARN)}, "delete load balancer "+lbARN, codeLoadBalancerNotFound)
}

// LoadBalancerAttributes returns a load balancer's attributes by key.
func (e *ELB) LoadBalancerAttributes(ctx context.Context, lbARN string) (map[string]string, error) {
	out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeLoadBalancerAttributes,
		&elb.DescribeLoadBalancerAttributesInput{LoadBalancerArn: aws.String(lbARN)})
	if err != nil {
		return nil, fmt.Errorf("describe attributes of %s: %w", lbARN, err)
	}
	m := make(map[string]string, len(out.Attributes))
	for _, a := range out.Attributes {
		m[aws.ToString(a.Key)] = aws.ToString(a.Value)
	}
	return m, nil
}

// ModifyLoadBalancerAttributes sets the given attributes.
func (e *ELB) ModifyLoadBalancerAttributes(ctx context.Context, lbARN string, attrs map[string]string) error {
	in := &elb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: aws.String(lbARN)}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		in.Attributes = append(in.Attributes, elbtypes.LoadBalancerAttribute{Key: aws.String(k), Value: aws.String(attrs[k])})
	}
	return elbDo(ctx, e, elbMutating, e.api.ModifyLoadBalancerAttributes, in, "modify attributes of "+lbARN)
}

// Listeners returns a load balancer's listeners.
func (e *ELB) Listeners(ctx context.Context, lbARN string) ([]Listener, error) {
	in := &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbARN)}
	var ls []Listener
	for {
		out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeListeners, in)
		if err != nil {
			return nil, fmt.Errorf("describe listeners of %s: %w", lbARN, err)
		}
		for _, l := range out.Listeners {
			ls = append(ls, listenerFromSDK(&l))
		}
		if aws.ToString(out.NextMarker) == "" {
			return ls, nil
		}
		in.Marker = out.NextMarker
	}
}

// CreateListener adds a listener forwarding protocol/port to a target group.
func (e *ELB) CreateListener(ctx context.Context, lbARN, protocol string, port int32, tgARN string, tags map[string]string) (*Listener, error) {
	in := &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbARN),
		Protocol:        elbtypes.ProtocolEnum(protocol),
		Port:            aws.Int32(port),
		DefaultActions:  forwardTo(tgARN),
		Tags:            elbTags(tags),
	}
	out, err := elbCall(ctx, e, elbMutating, e.api.CreateListener, in)
	if err != nil {
		return nil, fmt.Errorf("create listener %s/%d on %s: %w", protocol, port, lbARN, err)
	}
	if len(out.Listeners) != 1 {
		return nil, fmt.Errorf("create listener %s/%d: reply holds %d listeners", protocol, port, len(out.Listeners))
	}
	l := listenerFromSDK(&out.Listeners[0])
	return &l, nil
}

// ForwardListener points a listener at another target group.
func (e *ELB) ForwardListener(ctx context.Context, listenerARN, tgARN string) error {
	return elbDo(ctx, e, elbMutating, e.api.ModifyListener,
		&elb.ModifyListenerInput{ListenerArn: aws.String(listenerARN), DefaultActions: forwardTo(tgARN)}, "modify listener "+listenerARN)
}

// DeleteListener deletes a listener; one that is gone is no error.
func (e *ELB) DeleteListener(ctx context.Context, listenerARN string) error {
	return elbDo(ctx, e, elbMutating, e.api.DeleteListener,
		&elb.DeleteListenerInput{ListenerArn: aws.String(listenerARN)}, "delete listener "+listenerARN, codeListenerNotFound)
}

func forwardTo(tgARN string) []elbtypes.Action {
	return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}}
}

func lbFromSDK(l *elbtypes.LoadBalancer) *LoadBalancer {
	out := &LoadBalancer{
		ARN:           aws.ToString(l.LoadBalancerArn),
		Name:          aws.ToString(l.LoadBalancerName),
		DNSName:       aws.ToString(l.DNSName),
		Scheme:        string(l.Scheme),
		IPAddressType: string(l.IpAddressType),
		VPCID:         aws.ToString(l.VpcId),
	}
	if l.State != nil {
		out.State = string(l.State.Code)
	}
	for _, az := range l.AvailabilityZones {
		if id := aws.ToString(az.SubnetId); id != "" {
			out.Subnets = append(out.Subnets, id)
		}
	}
	slices.Sort(out.Subnets)
	return out
}

func listenerFromSDK(l *elbtypes.Listener) Listener {
	out := Listener{
		ARN:             aws.ToString(l.ListenerArn),
		LoadBalancerARN: aws.ToString(l.LoadBalancerArn),
		Protocol:        string(l.Protocol),
		Port:            aws.ToInt32(l.Port),
	}
	for _, a := range l.DefaultActions {
		if a.Type == elbtypes.ActionTypeEnumForward {
			out.TargetGroupARN = aws.ToString(a.TargetGroupArn)
			if out.TargetGroupARN == "" && a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) == 1 {
				out.TargetGroupARN = aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn)
			}
		}
	}
	return out
}
