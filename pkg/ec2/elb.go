package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"golang.org/x/time/rate"
)

// Client-side buckets for Elastic Load Balancing v2, each 90% of AWS's
// per-account bucket: every call takes a token of the account bucket (AWS:
// 40, refilled 10/s) and one of its category's: describes (40, 10/s),
// CreateLoadBalancer and SetSubnets (resource-intensive: 10, 0.2/s),
// RegisterTargets and DeregisterTargets (registration: 20, 4/s) and every
// other change (mutating: 20, 3/s).
const (
	DefaultELBAccountQPS             = 9
	DefaultELBAccountBurst           = 36
	DefaultELBDescribeQPS            = 9
	DefaultELBDescribeBurst          = 36
	DefaultELBResourceIntensiveQPS   = 0.18
	DefaultELBResourceIntensiveBurst = 9
	DefaultELBRegistrationQPS        = 3.6
	DefaultELBRegistrationBurst      = 18
	DefaultELBMutatingQPS            = 2.7
	DefaultELBMutatingBurst          = 18
)

// elbBucket is a client-side ELBv2 token bucket category.
type elbBucket int

const (
	elbDescribe elbBucket = iota
	elbResourceIntensive
	elbRegistration
	elbMutating
)

var elbBucketNames = [...]string{"elb-describe", "elb-resource-intensive", "elb-registration", "elb-mutating"}

// ELB error codes the package branches on.
const (
	codeLoadBalancerNotFound = "LoadBalancerNotFound"
	codeTargetGroupNotFound  = "TargetGroupNotFound"
	codeListenerNotFound     = "ListenerNotFound"
)

// ELBConfig is where the Elastic Load Balancing v2 client sends requests.
// Empty fields leave the SDK's resolution (AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2,
// the Region's endpoint) in place.
type ELBConfig struct {
	Endpoint, SigningRegion, SigningName string
}

// ELB is the CCM's access to Elastic Load Balancing v2 (Network Load
// Balancers): rate-limited, timed-out, metered calls on a small model.
type ELB struct {
	api     elbOps
	timeout time.Duration
	account *rate.Limiter
	buckets [len(elbBucketNames)]*rate.Limiter
}

// elbOps holds the SDK's operations as method values (see sdkOps).
type elbOps struct {
	CreateLoadBalancer             func(context.Context, *elb.CreateLoadBalancerInput, ...func(*elb.Options)) (*elb.CreateLoadBalancerOutput, error)
	DescribeLoadBalancers          func(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DeleteLoadBalancer             func(context.Context, *elb.DeleteLoadBalancerInput, ...func(*elb.Options)) (*elb.DeleteLoadBalancerOutput, error)
	SetIpAddressType               func(context.Context, *elb.SetIpAddressTypeInput, ...func(*elb.Options)) (*elb.SetIpAddressTypeOutput, error)
	SetSubnets                     func(context.Context, *elb.SetSubnetsInput, ...func(*elb.Options)) (*elb.SetSubnetsOutput, error)
	DescribeLoadBalancerAttributes func(context.Context, *elb.DescribeLoadBalancerAttributesInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancerAttributesOutput, error)
	ModifyLoadBalancerAttributes   func(context.Context, *elb.ModifyLoadBalancerAttributesInput, ...func(*elb.Options)) (*elb.ModifyLoadBalancerAttributesOutput, error)
	CreateTargetGroup              func(context.Context, *elb.CreateTargetGroupInput, ...func(*elb.Options)) (*elb.CreateTargetGroupOutput, error)
	DescribeTargetGroups           func(context.Context, *elb.DescribeTargetGroupsInput, ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error)
	ModifyTargetGroup              func(context.Context, *elb.ModifyTargetGroupInput, ...func(*elb.Options)) (*elb.ModifyTargetGroupOutput, error)
	DeleteTargetGroup              func(context.Context, *elb.DeleteTargetGroupInput, ...func(*elb.Options)) (*elb.DeleteTargetGroupOutput, error)
	RegisterTargets                func(context.Context, *elb.RegisterTargetsInput, ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets              func(context.Context, *elb.DeregisterTargetsInput, ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
	DescribeTargetHealth           func(context.Context, *elb.DescribeTargetHealthInput, ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	CreateListener                 func(context.Context, *elb.CreateListenerInput, ...func(*elb.Options)) (*elb.CreateListenerOutput, error)
	DescribeListeners              func(context.Context, *elb.DescribeListenersInput, ...func(*elb.Options)) (*elb.DescribeListenersOutput, error)
	ModifyListener                 func(context.Context, *elb.ModifyListenerInput, ...func(*elb.Options)) (*elb.ModifyListenerOutput, error)
	DeleteListener                 func(context.Context, *elb.DeleteListenerInput, ...func(*elb.Options)) (*elb.DeleteListenerOutput, error)
	AddTags                        func(context.Context, *elb.AddTagsInput, ...func(*elb.Options)) (*elb.AddTagsOutput, error)
	DescribeTags                   func(context.Context, *elb.DescribeTagsInput, ...func(*elb.Options)) (*elb.DescribeTagsOutput, error)
}

func newELB(awsCfg aws.Config, region string, cfg ELBConfig, timeout time.Duration) *ELB {
	opts := []func(*elb.Options){func(o *elb.Options) {
		o.Region = region
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.APIOptions = append(o.APIOptions, addMetricsMiddleware)
	}}
	if cfg.SigningName != "" {
		opts = append(opts, elb.WithSigV4SigningName(cfg.SigningName))
	}
	if cfg.SigningRegion != "" {
		opts = append(opts, elb.WithSigV4SigningRegion(cfg.SigningRegion))
	}
	c := elb.NewFromConfig(awsCfg, opts...)
	return &ELB{
		api: elbOps{
			CreateLoadBalancer: c.CreateLoadBalancer, DescribeLoadBalancers: c.DescribeLoadBalancers,
			DeleteLoadBalancer: c.DeleteLoadBalancer, SetIpAddressType: c.SetIpAddressType, SetSubnets: c.SetSubnets,
			DescribeLoadBalancerAttributes: c.DescribeLoadBalancerAttributes, ModifyLoadBalancerAttributes: c.ModifyLoadBalancerAttributes,
			CreateTargetGroup: c.CreateTargetGroup, DescribeTargetGroups: c.DescribeTargetGroups,
			ModifyTargetGroup: c.ModifyTargetGroup, DeleteTargetGroup: c.DeleteTargetGroup,
			RegisterTargets: c.RegisterTargets, DeregisterTargets: c.DeregisterTargets, DescribeTargetHealth: c.DescribeTargetHealth,
			CreateListener: c.CreateListener, DescribeListeners: c.DescribeListeners, ModifyListener: c.ModifyListener,
			DeleteListener: c.DeleteListener, AddTags: c.AddTags, DescribeTags: c.DescribeTags,
		},
		timeout: timeout,
		account: rate.NewLimiter(DefaultELBAccountQPS, DefaultELBAccountBurst),
		buckets: [...]*rate.Limiter{
			elbDescribe:          rate.NewLimiter(DefaultELBDescribeQPS, DefaultELBDescribeBurst),
			elbResourceIntensive: rate.NewLimiter(DefaultELBResourceIntensiveQPS, DefaultELBResourceIntensiveBurst),
			elbRegistration:      rate.NewLimiter(DefaultELBRegistrationQPS, DefaultELBRegistrationBurst),
			elbMutating:          rate.NewLimiter(DefaultELBMutatingQPS, DefaultELBMutatingBurst),
		},
	}
}

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

// TargetGroup is the part of a target group the CCM uses.
type TargetGroup struct {
	ARN, Name string
	// Protocol is TCP, UDP, TCP_UDP or TLS; Port the NodePort.
	Protocol string
	Port     int32
	// IPAddressType is "ipv4" or "ipv6"; TargetType is "instance" here.
	IPAddressType, TargetType string
	VPCID                     string
	HealthCheck               HealthCheck
	LoadBalancerARNs          []string
}

// TargetGroupSpec is what CreateTargetGroup makes (instance targets).
type TargetGroupSpec struct {
	Name, Protocol, IPAddressType, VPCID string
	Port                                 int32
	HealthCheck                          HealthCheck
	Tags                                 map[string]string
}

// HealthCheck is a target group's health check.
type HealthCheck struct {
	// Protocol is TCP, HTTP or HTTPS; Port "traffic-port" or a number.
	Protocol, Port, Path                                                  string
	IntervalSeconds, TimeoutSeconds, HealthyThreshold, UnhealthyThreshold int32
}

// Listener is an NLB listener forwarding to one target group.
type Listener struct {
	ARN, LoadBalancerARN, Protocol string
	Port                           int32
	TargetGroupARN                 string
}

// Target is an instance registered in a target group, on a port.
type Target struct {
	ID   string
	Port int32
}

// elbCall runs one ELBv2 operation after a token from its category's
// bucket (b) and one from the account's, bounded by the client's timeout.
func elbCall[In, Out any](ctx context.Context, e *ELB, b elbBucket, op func(context.Context, *In, ...func(*elb.Options)) (*Out, error), in *In) (*Out, error) {
	if err := waitBucket(ctx, e.buckets[b], elbBucketNames[b], 1); err != nil {
		return nil, err
	}
	if err := waitBucket(ctx, e.account, "elb-account", 1); err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	return op(callCtx, in)
}

// elbDo is elbCall for an operation whose reply is not needed: errors with
// a code in ignore count as success (a delete of what is gone), others are
// wrapped with what.
func elbDo[In, Out any](ctx context.Context, e *ELB, b elbBucket, op func(context.Context, *In, ...func(*elb.Options)) (*Out, error), in *In, what string, ignore ...string) error {
	_, err := elbCall(ctx, e, b, op, in)
	if err == nil || slices.Contains(ignore, ErrorCode(err)) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
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

// TargetGroups returns the target groups a load balancer forwards to.
func (e *ELB) TargetGroups(ctx context.Context, lbARN string) ([]TargetGroup, error) {
	return e.targetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lbARN)})
}

// TargetGroupByName returns the target group of that name, or nil.
func (e *ELB) TargetGroupByName(ctx context.Context, name string) (*TargetGroup, error) {
	tgs, err := e.targetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{name}})
	if err != nil || len(tgs) == 0 {
		return nil, err
	}
	return &tgs[0], nil
}

func (e *ELB) targetGroups(ctx context.Context, in *elb.DescribeTargetGroupsInput) ([]TargetGroup, error) {
	var tgs []TargetGroup
	for {
		out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeTargetGroups, in)
		if code := ErrorCode(err); code == codeTargetGroupNotFound || code == codeLoadBalancerNotFound {
			return tgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("describe target groups: %w", err)
		}
		for i := range out.TargetGroups {
			tgs = append(tgs, tgFromSDK(&out.TargetGroups[i]))
		}
		if aws.ToString(out.NextMarker) == "" {
			return tgs, nil
		}
		in.Marker = out.NextMarker
	}
}

// CreateTargetGroup creates a target group of instance targets.
func (e *ELB) CreateTargetGroup(ctx context.Context, s TargetGroupSpec) (*TargetGroup, error) {
	hc := s.HealthCheck
	in := &elb.CreateTargetGroupInput{
		Name:                       aws.String(s.Name),
		Protocol:                   elbtypes.ProtocolEnum(s.Protocol),
		Port:                       aws.Int32(s.Port),
		VpcId:                      aws.String(s.VPCID),
		TargetType:                 elbtypes.TargetTypeEnumInstance,
		IpAddressType:              elbtypes.TargetGroupIpAddressTypeEnum(s.IPAddressType),
		HealthCheckProtocol:        elbtypes.ProtocolEnum(hc.Protocol),
		HealthCheckPort:            nonEmpty(hc.Port),
		HealthCheckPath:            nonEmpty(hc.Path),
		HealthCheckIntervalSeconds: nonZero(hc.IntervalSeconds),
		HealthCheckTimeoutSeconds:  nonZero(hc.TimeoutSeconds),
		HealthyThresholdCount:      nonZero(hc.HealthyThreshold),
		UnhealthyThresholdCount:    nonZero(hc.UnhealthyThreshold),
		Tags:                       elbTags(s.Tags),
	}
	out, err := elbCall(ctx, e, elbMutating, e.api.CreateTargetGroup, in)
	if err != nil {
		return nil, fmt.Errorf("create target group %s: %w", s.Name, err)
	}
	if len(out.TargetGroups) != 1 {
		return nil, fmt.Errorf("create target group %s: reply holds %d target groups", s.Name, len(out.TargetGroups))
	}
	tg := tgFromSDK(&out.TargetGroups[0])
	return &tg, nil
}

// ModifyHealthCheck sets a target group's health check.
func (e *ELB) ModifyHealthCheck(ctx context.Context, tgARN string, hc HealthCheck) error {
	in := &elb.ModifyTargetGroupInput{
		TargetGroupArn:             aws.String(tgARN),
		HealthCheckProtocol:        elbtypes.ProtocolEnum(hc.Protocol),
		HealthCheckPort:            nonEmpty(hc.Port),
		HealthCheckPath:            nonEmpty(hc.Path),
		HealthCheckIntervalSeconds: nonZero(hc.IntervalSeconds),
		HealthCheckTimeoutSeconds:  nonZero(hc.TimeoutSeconds),
		HealthyThresholdCount:      nonZero(hc.HealthyThreshold),
		UnhealthyThresholdCount:    nonZero(hc.UnhealthyThreshold),
	}
	return elbDo(ctx, e, elbMutating, e.api.ModifyTargetGroup, in, "modify health check of "+tgARN)
}

// DeleteTargetGroup deletes a target group; one that is gone is no error.
func (e *ELB) DeleteTargetGroup(ctx context.Context, tgARN string) error {
	return elbDo(ctx, e, elbMutating, e.api.DeleteTargetGroup,
		&elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgARN)}, "delete target group "+tgARN, codeTargetGroupNotFound)
}

// Targets returns the targets registered in a target group, sorted, leaving
// out those being deregistered (draining).
func (e *ELB) Targets(ctx context.Context, tgARN string) ([]Target, error) {
	out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeTargetHealth, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
	if err != nil {
		return nil, fmt.Errorf("describe targets of %s: %w", tgARN, err)
	}
	var ts []Target
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil {
			continue
		}
		if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumDraining {
			continue
		}
		ts = append(ts, Target{ID: aws.ToString(d.Target.Id), Port: aws.ToInt32(d.Target.Port)})
	}
	slices.SortFunc(ts, compareTargets)
	return ts, nil
}

func compareTargets(a, b Target) int {
	if a.ID != b.ID {
		if a.ID < b.ID {
			return -1
		}
		return 1
	}
	return int(a.Port) - int(b.Port)
}

// MaxTargetsPerCall bounds the targets in one (de)registration.
const MaxTargetsPerCall = 200

// RegisterTargets registers instance targets, in calls of at most
// MaxTargetsPerCall.
func (e *ELB) RegisterTargets(ctx context.Context, tgARN string, ts []Target) error {
	for chunk := range slices.Chunk(ts, MaxTargetsPerCall) {
		in := &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: sdkTargets(chunk)}
		if err := elbDo(ctx, e, elbRegistration, e.api.RegisterTargets, in, fmt.Sprintf("register %d targets in %s", len(chunk), tgARN)); err != nil {
			return err
		}
	}
	return nil
}

// DeregisterTargets deregisters targets, in calls of at most MaxTargetsPerCall.
func (e *ELB) DeregisterTargets(ctx context.Context, tgARN string, ts []Target) error {
	for chunk := range slices.Chunk(ts, MaxTargetsPerCall) {
		in := &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: sdkTargets(chunk)}
		if err := elbDo(ctx, e, elbRegistration, e.api.DeregisterTargets, in, fmt.Sprintf("deregister %d targets from %s", len(chunk), tgARN)); err != nil {
			return err
		}
	}
	return nil
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

// MaxTagARNs is how many resources one DescribeTags call reads.
const MaxTagARNs = 20

// Tags returns the tags of each resource, by ARN.
func (e *ELB) Tags(ctx context.Context, arns []string) (map[string]map[string]string, error) {
	m := make(map[string]map[string]string, len(arns))
	for chunk := range slices.Chunk(arns, MaxTagARNs) {
		out, err := elbCall(ctx, e, elbDescribe, e.api.DescribeTags, &elb.DescribeTagsInput{ResourceArns: chunk})
		if err != nil {
			return nil, fmt.Errorf("describe tags of %d resources: %w", len(chunk), err)
		}
		for _, d := range out.TagDescriptions {
			t := make(map[string]string, len(d.Tags))
			for _, tag := range d.Tags {
				t[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			m[aws.ToString(d.ResourceArn)] = t
		}
	}
	return m, nil
}

// AddTags adds (or overwrites) tags on resources. The creates here tag at
// creation, for which AWS checks elasticloadbalancing:AddTags too.
func (e *ELB) AddTags(ctx context.Context, arns []string, tags map[string]string) error {
	return elbDo(ctx, e, elbMutating, e.api.AddTags, &elb.AddTagsInput{ResourceArns: arns, Tags: elbTags(tags)},
		fmt.Sprintf("add tags to %d resources", len(arns)))
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

func tgFromSDK(t *elbtypes.TargetGroup) TargetGroup {
	return TargetGroup{
		ARN:           aws.ToString(t.TargetGroupArn),
		Name:          aws.ToString(t.TargetGroupName),
		Protocol:      string(t.Protocol),
		Port:          aws.ToInt32(t.Port),
		IPAddressType: string(t.IpAddressType),
		TargetType:    string(t.TargetType),
		VPCID:         aws.ToString(t.VpcId),
		HealthCheck: HealthCheck{
			Protocol:           string(t.HealthCheckProtocol),
			Port:               aws.ToString(t.HealthCheckPort),
			Path:               aws.ToString(t.HealthCheckPath),
			IntervalSeconds:    aws.ToInt32(t.HealthCheckIntervalSeconds),
			TimeoutSeconds:     aws.ToInt32(t.HealthCheckTimeoutSeconds),
			HealthyThreshold:   aws.ToInt32(t.HealthyThresholdCount),
			UnhealthyThreshold: aws.ToInt32(t.UnhealthyThresholdCount),
		},
		LoadBalancerARNs: slices.Clone(t.LoadBalancerArns),
	}
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

func elbTags(tags map[string]string) []elbtypes.Tag {
	var out []elbtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, elbtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func sdkTargets(ts []Target) []elbtypes.TargetDescription {
	out := make([]elbtypes.TargetDescription, len(ts))
	for i, t := range ts {
		out[i] = elbtypes.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)}
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func nonZero(n int32) *int32 {
	if n == 0 {
		return nil
	}
	return aws.Int32(n)
}
