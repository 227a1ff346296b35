// Package cloud is the AWS cloudprovider.Interface: an adapter from the
// framework's InstancesV2 and Zones to pkg/ec2, configured by upstream's
// cloud-config file.
package cloud

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/loadbalancer"
)

// ProviderName is the name the provider registers under (--cloud-provider=aws).
const ProviderName = "aws"

// Tags upstream reads the cluster ID from.
const (
	TagClusterLegacy = "KubernetesCluster"
	TagClusterPrefix = "kubernetes.io/cluster/"
)

// initTimeout bounds IMDS and EC2 discovery when the provider is built.
const initTimeout = 2 * time.Minute

func init() {
	cloudprovider.RegisterCloudProvider(ProviderName, func(r io.Reader) (cloudprovider.Interface, error) {
		cfg, ignored, err := ReadConfig(r)
		if err != nil {
			return nil, err
		}
		if len(ignored) > 0 {
			klog.InfoS("Ignoring cloud config keys used only by upstream's load balancer and route controllers", "keys", ignored)
		}
		ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
		defer cancel()
		return New(ctx, cfg, Options{})
	})
}

// Options lets tests inject what New would otherwise discover.
type Options struct {
	// EC2 is used instead of a client built from the config.
	EC2 *ec2.Client
	// Metadata is used instead of asking IMDS.
	Metadata *ec2.Metadata
}

// Cloud implements cloudprovider.Interface for AWS.
type Cloud struct {
	cfg       *Config
	ec2       *ec2.Client
	region    string
	zone      string
	vpc       string
	clusterID string
	// clusterIDErr is why reading the cluster ID from the instance's tags
	// failed, when it did.
	clusterIDErr error
	lbs          *loadbalancer.LoadBalancers
}

var (
	_ cloudprovider.Interface   = (*Cloud)(nil)
	_ cloudprovider.InstancesV2 = (*Cloud)(nil)
	_ cloudprovider.Zones       = (*Cloud)(nil)
)

// New builds the provider. Region, zone and VPC come from the config, else
// from IMDSv2; the cluster ID from the config, else from this instance's
// tags, as upstream.
func New(ctx context.Context, cfg *Config, opts Options) (*Cloud, error) {
	c := &Cloud{cfg: cfg, region: cfg.Region, zone: cfg.Zone, vpc: cfg.VPC, clusterID: cfg.ClusterID()}
	md := opts.Metadata
	if md == nil && (c.region == "" || c.zone == "" || c.vpc == "" || c.clusterID == "") && opts.EC2 == nil {
		var err error
		md, err = ec2.GetMetadata(ctx, c.access())
		if err != nil {
			if c.region == "" {
				return nil, fmt.Errorf("discover region from instance metadata (set Region in the cloud config to skip): %w", err)
			}
			klog.InfoS("Instance metadata unavailable; zone, VPC and cluster ID come from the cloud config only", "err", err)
		}
	}
	if md != nil {
		c.region = firstNonEmpty(c.region, md.Region)
		c.zone = firstNonEmpty(c.zone, md.Zone)
		c.vpc = firstNonEmpty(c.vpc, md.VPCID)
	}
	if c.region == "" {
		return nil, fmt.Errorf("no region: set Region in the cloud config")
	}
	c.ec2 = opts.EC2
	if c.ec2 == nil {
		var err error
		if c.ec2, err = ec2.New(ctx, c.ec2Config()); err != nil {
			return nil, fmt.Errorf("build ec2 client: %w", err)
		}
	}
	if cfg.TopologyPattern != nil {
		c.ec2.SetTopologyPattern(cfg.TopologyPattern)
	}
	c.lbs = loadbalancer.New(c.ec2, c.ec2.ELB(), loadbalancer.Config{
		VPCID: c.vpc, DefaultNLB: cfg.DefaultLoadBalancerType == LoadBalancerTypeNLB,
	})
	if c.clusterID == "" && md != nil && md.InstanceID != "" {
		id, err := c.clusterIDFromTags(ctx, md.InstanceID)
		if err != nil {
			c.clusterIDErr = fmt.Errorf("read the cluster ID from the tags of instance %s: %w", md.InstanceID, ec2.WithHint(err))
			klog.ErrorS(c.clusterIDErr, "Cannot read the cluster ID from this instance's tags", "instanceID", md.InstanceID)
		}
		c.clusterID = id
	}
	c.lbs.SetClusterID(c.clusterID)
	klog.InfoS("AWS cloud provider ready", "region", c.region, "zone", c.zone, "vpc", c.vpc, "clusterID", c.clusterID,
		"nodeIPFamilies", cfg.NodeIPFamilies, "ipv6PrefixDelegation", cfg.IPv6PrefixDelegation,
		"imdsEndpointMode", cfg.IMDSEndpointMode, "ec2DualStack", cfg.EC2DualStackEndpoint)
	return c, nil
}

// access is how every AWS client of the provider reaches AWS: IMDS mode and
// override, and dual-stack endpoints, from the cloud config (which folds in
// the SDK's environment variables).
func (c *Cloud) access() ec2.Access {
	return ec2.Access{
		Region:           c.region,
		IMDSEndpointMode: c.cfg.IMDSEndpointMode,
		IMDSEndpoint:     c.cfg.IMDSEndpoint(),
		DualStack:        c.cfg.EC2DualStackEndpoint,
	}
}

// ec2Config turns the cloud config into pkg/ec2 settings.
func (c *Cloud) ec2Config() ec2.Config {
	ec := ec2.Config{
		Region:    c.region,
		DualStack: c.cfg.EC2DualStackEndpoint,
		RoleARN:   c.cfg.RoleARN,
		SourceARN: c.cfg.SourceARN,
		Access:    c.access(),
	}
	if o, ok := c.cfg.ELBOverride(c.region); ok {
		ec.ELB = ec2.ELBConfig{Endpoint: o.URL, SigningRegion: o.SigningRegion, SigningName: o.SigningName}
	}
	if o, ok := c.cfg.EC2Override(c.region); ok {
		ec.Endpoint, ec.SigningRegion, ec.SigningName = o.URL, o.SigningRegion, o.SigningName
		if ec.DualStack {
			klog.InfoS("EC2 ServiceOverride URL set; ignoring EC2DualStackEndpoint", "url", o.URL)
			ec.DualStack = false
		}
	}
	return ec
}

// clusterIDFromTags reads the cluster ID from an instance's tags, as
// upstream: the legacy KubernetesCluster tag or kubernetes.io/cluster/<id>.
func (c *Cloud) clusterIDFromTags(ctx context.Context, instanceID string) (string, error) {
	inst, err := c.ec2.InstanceByID(ctx, instanceID)
	if err != nil {
		return "", err
	}
	legacy := inst.Tags[TagClusterLegacy]
	var id string
	for k := range inst.Tags {
		if rest, ok := strings.CutPrefix(k, TagClusterPrefix); ok {
			if id != "" && id != rest {
				return "", fmt.Errorf("instance %s has two cluster tags (%q and %q)", instanceID, id, rest)
			}
			id = rest
		}
	}
	if legacy != "" && id != "" && legacy != id {
		return "", fmt.Errorf("instance %s: cluster tags disagree (%q vs %q)", instanceID, legacy, id)
	}
	return firstNonEmpty(legacy, id), nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// EC2 returns the EC2 client the provider uses.
func (c *Cloud) EC2() *ec2.Client { return c.ec2 }

// Config returns the validated cloud config.
func (c *Cloud) Config() *Config { return c.cfg }

// Region returns the region the provider works in.
func (c *Cloud) Region() string { return c.region }

// ClusterID returns the cluster ID, or "" when none is known.
func (c *Cloud) ClusterID() string { return c.clusterID }

// VPC returns the VPC ID, configured or discovered, or "".
func (c *Cloud) VPC() string { return c.vpc }

// Initialize gives the load balancers an event recorder for Services.
func (c *Cloud) Initialize(cb cloudprovider.ControllerClientBuilder, stop <-chan struct{}) {
	client, err := cb.Client("service-controller")
	if err != nil {
		klog.ErrorS(err, "No client for Service events; load balancer events are dropped")
		return
	}
	b := record.NewBroadcaster(record.WithContext(wait.ContextForChannel(stop)))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	c.lbs.SetRecorder(b.NewRecorder(scheme.Scheme, v1.EventSource{Component: "aws-cloud-provider"}))
}

// LoadBalancer returns the Network Load Balancer implementation.
func (c *Cloud) LoadBalancer() (cloudprovider.LoadBalancer, bool) { return c.lbs, true }

// Instances is not implemented: the provider offers InstancesV2 only.
func (c *Cloud) Instances() (cloudprovider.Instances, bool) { return nil, false }

// InstancesV2 returns the provider itself.
func (c *Cloud) InstancesV2() (cloudprovider.InstancesV2, bool) { return c, true }

// Zones returns the provider itself.
func (c *Cloud) Zones() (cloudprovider.Zones, bool) { return c, true }

// Clusters is not implemented.
func (c *Cloud) Clusters() (cloudprovider.Clusters, bool) { return nil, false }

// Routes is not implemented.
func (c *Cloud) Routes() (cloudprovider.Routes, bool) { return nil, false }

// ProviderName returns "aws".
func (c *Cloud) ProviderName() string { return ProviderName }

// ClusterIDError returns why the cluster ID could not be read from the
// instance's tags, or nil.
func (c *Cloud) ClusterIDError() error { return c.clusterIDErr }

// HasClusterID reports whether a cluster ID is configured or tagged.
func (c *Cloud) HasClusterID() bool { return c.clusterID != "" }
