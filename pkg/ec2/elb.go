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

func elbTags(tags map[string]string) []elbtypes.Tag {
	var out []elbtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, elbtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
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
