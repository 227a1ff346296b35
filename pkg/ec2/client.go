package ec2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/time/rate"
	"k8s.io/klog/v2"
)

// Defaults applied by New and NewFromAWSConfig to zero Config fields.
const (
	DefaultCallTimeout   = 30 * time.Second
	DefaultBatchWindow   = 50 * time.Millisecond
	DefaultCacheTTL      = 30 * time.Second
	DefaultMutatingQPS   = 4.5 // AWS refills AssignIpv6Addresses at 5/s
	DefaultMutatingBurst = 90  // of a bucket of 100
	// CreateTags and DeleteTags each have their own AWS bucket (100 tokens,
	// refilled at 10/s), apart from AssignIpv6Addresses': a burst of
	// assignments never holds tagging up, nor the reverse.
	DefaultTagQPS   = 9
	DefaultTagBurst = 90
	// DescribeInstances by InstanceId.N alone (no filter, no paging) is
	// charged to AWS's smaller unfiltered bucket: 50 tokens, refilled at 10/s.
	DefaultDescribeQPS   = 9  // AWS refills unfiltered DescribeInstances at 10/s
	DefaultDescribeBurst = 45 // of a bucket of 50
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Region is the EC2 region; required.
	Region string
	// Endpoint is a custom EC2 URL. AWS_ENDPOINT_URL_EC2 is honoured by the
	// SDK itself when Endpoint is empty.
	Endpoint string
	// SigningRegion and SigningName override SigV4 signing (ServiceOverride).
	SigningRegion, SigningName string
	// DualStack selects the dual-stack endpoint ec2.<region>.api.aws. An
	// endpoint URL (Endpoint, AWS_ENDPOINT_URL_EC2) wins over it.
	DualStack bool
	// Access holds the settings New applies to every client it builds: STS,
	// the credential chain's IMDS client, and EC2 (whose dual-stack choice
	// DualStack makes). Access.Region defaults to Region.
	Access Access
	// RoleARN, when set, is assumed through STS; SourceARN is sent along as
	// the x-amz-source-arn header, as upstream does.
	RoleARN, SourceARN string
	// CallTimeout bounds every EC2 call, retries included.
	CallTimeout time.Duration
	// BatchWindow is how long the resolver collects lookups before describing.
	BatchWindow time.Duration
	// CacheTTL is how long a described instance answers lookups. Negative
	// disables the cache.
	CacheTTL time.Duration
	// MutatingQPS and MutatingBurst size the client-side bucket for
	// AssignIpv6Addresses.
	MutatingQPS   float64
	MutatingBurst int
	// DescribeQPS and DescribeBurst size the bucket for DescribeInstances.
	DescribeQPS   float64
	DescribeBurst int
	// ELB is where the Elastic Load Balancing v2 client sends requests.
	ELB ELBConfig
}

func (c *Config) defaults() {
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.MutatingQPS <= 0 {
		c.MutatingQPS = DefaultMutatingQPS
	}
	if c.MutatingBurst <= 0 {
		c.MutatingBurst = DefaultMutatingBurst
	}
	if c.DescribeQPS <= 0 {
		c.DescribeQPS = DefaultDescribeQPS
	}
	if c.DescribeBurst <= 0 {
		c.DescribeBurst = DefaultDescribeBurst
	}
}

// Client is the CCM's access to EC2: rate-limited, timed-out, metered calls
// and a batching, caching instance resolver. It is safe for concurrent use.
type Client struct {
	api        sdkOps
	cfg        Config
	describeRL *rate.Limiter
	mutateRL   *rate.Limiter
	tagRL      map[bool]*rate.Limiter // CreateTags (true) and DeleteTags (false)
	res        *resolver

	creditMu sync.Mutex
	credits  map[string]int // ENI ID → assign calls already rate-limited by ReserveAssign
	// returnedTokens holds the mutating tokens ReleaseAssign gave back.
	returnedTokens returnedPool

	subnets    subnetCache
	vpcSubnets vpcSubnetCache
	topo       topology // batched DescribeInstanceTopology (topology.go)

	elb *ELB
	// netRL paces the security-group and network-interface calls the load
	// balancers make, apart from the node controller's assignments.
	netRL *rate.Limiter
}

// New builds a Client from the SDK's default configuration chain
// (environment, shared config, web identity, IMDS role credentials).
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, errors.New("ec2 client: region is required")
	}
	access := cfg.Access
	access.Region = cfg.Region
	awsCfg, err := LoadAWSConfig(ctx, access)
	if err != nil {
		return nil, err
	}
	if cfg.RoleARN != "" {
		provider, err := assumeRoleProvider(awsCfg, cfg)
		if err != nil {
			return nil, err
		}
		awsCfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return NewFromAWSConfig(awsCfg, cfg)
}

// NewFromAWSConfig builds a Client on an existing aws.Config, e.g. one that
// points at ec2sim. cfg.Region, when set, overrides awsCfg.Region.
func NewFromAWSConfig(awsCfg aws.Config, cfg Config) (*Client, error) {
	if cfg.Region == "" {
		cfg.Region = awsCfg.Region
	}
	if cfg.Region == "" {
		return nil, errors.New("ec2 client: region is required")
	}
	cfg.defaults()
	RegisterMetrics()
	opts := []func(*ec2.Options){func(o *ec2.Options) {
		o.Region = cfg.Region
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.DualStack {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}
		o.APIOptions = append(o.APIOptions, addMetricsMiddleware)
	}}
	if cfg.SigningName != "" {
		opts = append(opts, ec2.WithSigV4SigningName(cfg.SigningName))
	}
	if cfg.SigningRegion != "" {
		opts = append(opts, ec2.WithSigV4SigningRegion(cfg.SigningRegion))
	}
	opts = append(opts, func(o *ec2.Options) {
		dualStackUnlessCustom("ec2", o.BaseEndpoint, &o.EndpointOptions.UseDualStackEndpoint)
	})
	c := &Client{
		api:        newSDKOps(ec2.NewFromConfig(awsCfg, opts...)),
		cfg:        cfg,
		describeRL: rate.NewLimiter(rate.Limit(cfg.DescribeQPS), cfg.DescribeBurst),
		mutateRL:   rate.NewLimiter(rate.Limit(cfg.MutatingQPS), cfg.MutatingBurst),
		tagRL: map[bool]*rate.Limiter{
			true:  rate.NewLimiter(DefaultTagQPS, DefaultTagBurst),
			false: rate.NewLimiter(DefaultTagQPS, DefaultTagBurst),
		},
		credits: map[string]int{},
		subnets: subnetCache{m: map[string]subnetEntry{}},
	}
	c.res = newResolver(c, cfg.BatchWindow, cfg.CacheTTL)
	c.elb = newELB(awsCfg, cfg.Region, cfg.ELB, cfg.CallTimeout)
	c.netRL = rate.NewLimiter(DefaultNetworkQPS, DefaultNetworkBurst)
	return c, nil
}

// ELB returns the client for Elastic Load Balancing v2, sharing this
// client's credentials and region.
func (c *Client) ELB() *ELB { return c.elb }

// Region returns the region the client talks to.
func (c *Client) Region() string { return c.cfg.Region }

// assumeRoleProvider returns STS assume-role credentials for cfg.RoleARN,
// sending x-amz-source-account (and x-amz-source-arn) as upstream does.
func assumeRoleProvider(awsCfg aws.Config, cfg Config) (aws.CredentialsProvider, error) {
	parsed, err := arn.Parse(cfg.RoleARN)
	if err != nil {
		return nil, fmt.Errorf("parse RoleARN %q: %w", cfg.RoleARN, err)
	}
	headers := map[string]string{"x-amz-source-account": parsed.AccountID}
	if cfg.SourceARN != "" {
		headers["x-amz-source-arn"] = cfg.SourceARN
	}
	stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Build.Add(middleware.BuildMiddlewareFunc("CCMSourceHeaders", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					for k, v := range headers {
						req.Header.Set(k, v)
					}
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
		})
	}, func(o *sts.Options) {
		dualStackUnlessCustom("sts", o.BaseEndpoint, &o.EndpointOptions.UseDualStackEndpoint)
	})
	klog.InfoS("Using STS assume-role for EC2", "roleARN", cfg.RoleARN)
	return stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN), nil
}

// dualStackUnlessCustom turns dual-stack off for a client with an endpoint
// URL (ServiceOverride, AWS_ENDPOINT_URL_<SERVICE>): the SDK refuses the two
// together, and the URL is the more specific setting.
func dualStackUnlessCustom(service string, base *string, state *aws.DualStackEndpointState) {
	if base != nil && *state == aws.DualStackEndpointStateEnabled {
		klog.V(2).InfoS("Endpoint URL set; not using the dual-stack endpoint", "service", service, "url", *base)
		*state = aws.DualStackEndpointStateDisabled
	}
}

// wait takes a token from the bucket, recording how long it waited.
func (c *Client) wait(ctx context.Context, l *rate.Limiter, bucket string) error {
	return c.waitN(ctx, l, bucket, 1)
}

// waitN takes n tokens from l, recording the wait.
func (c *Client) waitN(ctx context.Context, l *rate.Limiter, bucket string, n int) error {
	return waitBucket(ctx, l, bucket, n)
}

// waitBucket takes n tokens from l, recording the wait under bucket.
func waitBucket(ctx context.Context, l *rate.Limiter, bucket string, n int) error {
	start := time.Now()
	err := l.WaitN(ctx, n)
	rateLimitWait.WithLabelValues(bucket).Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("wait for %s rate limit: %w", bucket, err)
	}
	return nil
}

// validENI rejects IDs EC2 would answer with InvalidNetworkInterfaceId.Malformed.
func validENI(id string) bool {
	return strings.HasPrefix(id, "eni-") && len(id) > len("eni-")
}
