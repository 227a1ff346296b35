package ec2

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

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

// Target is an instance registered in a target group, on a port.
type Target struct {
	ID   string
	Port int32
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
	return inChunks(ts, func(chunk []Target) error {
		return elbDo(ctx, e, elbRegistration, e.api.RegisterTargets,
			&elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: sdkTargets(chunk)},
			fmt.Sprintf("register %d targets in %s", len(chunk), tgARN))
	})
}

// DeregisterTargets deregisters targets, in calls of at most MaxTargetsPerCall.
func (e *ELB) DeregisterTargets(ctx context.Context, tgARN string, ts []Target) error {
	return inChunks(ts, func(chunk []Target) error {
		return elbDo(ctx, e, elbRegistration, e.api.DeregisterTargets,
			&elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgARN), Targets: sdkTargets(chunk)},
			fmt.Sprintf("deregister %d targets from %s", len(chunk), tgARN))
	})
}

func inChunks(ts []Target, f func([]Target) error) error {
	for chunk := range slices.Chunk(ts, MaxTargetsPerCall) {
		if err := f(chunk); err != nil {
			return err
		}
	}
	return nil
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

func sdkTargets(ts []Target) []elbtypes.TargetDescription {
	out := make([]elbtypes.TargetDescription, len(ts))
	for i, t := range ts {
		out[i] = elbtypes.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)}
	}
	return out
}
