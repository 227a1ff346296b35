package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/addresses"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// LabelZoneID is the node label holding the zone ID, as upstream sets it.
const LabelZoneID = nodemeta.LabelZoneID

// instanceFor resolves a Node's instance by the shared rule of
// nodemeta.LookupOf: providerID, else an instance ID in the node name
// (bare or resource-based), else the private DNS name.
func (c *Cloud) instanceFor(ctx context.Context, node *v1.Node) (*ec2.Instance, error) {
	l, err := nodemeta.LookupOf(node)
	if err != nil {
		return nil, err
	}
	return c.instanceBy(ctx, l)
}

func (c *Cloud) instanceBy(ctx context.Context, l nodemeta.Lookup) (*ec2.Instance, error) {
	if l.InstanceID != "" {
		return c.ec2.InstanceByID(ctx, l.InstanceID)
	}
	return c.ec2.InstanceByPrivateDNSName(ctx, l.PrivateDNSName)
}

// LifecycleMaxAge is how old an EC2 answer about a NotReady node's instance
// may be. The framework's lifecycle controller asks InstanceExists and then
// InstanceShutdown for each NotReady node every --node-monitor-period (5 s):
// from the cache, whose TTL is 30 s, a terminated instance's Node lived on for
// up to 35 s. Any max age under the monitor period sees a change at the
// first pass at least that long after it, so within about one period; 4 s
// (not less) leaves a pass over thousands of NotReady nodes, whose refreshes
// of 1,000 instances a call take a while on a busy machine, time to finish
// before its first refreshes are stale again. Within this age the second
// question reuses the first's describe, and both batch with every other lookup.
const LifecycleMaxAge = 4 * time.Second

// lifecycleExpectTTL is how long a NotReady node's instance stays announced
// to the resolver after the lifecycle controller last asked about it: four
// monitor periods (5 s each by default), so that a node that became Ready
// or was deleted, which the provider is not told about, stops riding along
// soon after. The node controller's own announcement, withdrawn on delete,
// is the main one; this is the fallback without it.
const lifecycleExpectTTL = 20 * time.Second

// lifecycleInstanceFor resolves the Node's instance for InstanceExists and
// InstanceShutdown: fresh (at most LifecycleMaxAge old) for a node whose
// Ready condition is not True, the ones the lifecycle controller acts on;
// from the cache otherwise.
//
// The lifecycle controller asks about nodes one at a time. Each NotReady
// node's instance is announced to the resolver under
// nodemeta.LifecycleKey: by the node controller as soon as it sees the node
// NotReady, and here (with a lifetime, for when the node controller does
// not run). The describe one fresh lookup makes then refreshes up to 1,000
// of its peers too, and the rest of the pass is answered from the cache: a
// pass over N NotReady nodes costs about N/1000 DescribeInstances, not N.
func (c *Cloud) lifecycleInstanceFor(ctx context.Context, node *v1.Node) (*ec2.Instance, error) {
	key := nodemeta.LifecycleKey(node.Name)
	if nodemeta.Ready(node) {
		c.ec2.Unexpect(key)
		return c.instanceFor(ctx, node)
	}
	l, err := nodemeta.LookupOf(node)
	if err != nil {
		return nil, err
	}
	c.ec2.ExpectFor(key, l.InstanceID, l.PrivateDNSName, lifecycleExpectTTL)
	if l.InstanceID != "" {
		return c.ec2.InstanceByIDFresh(ctx, l.InstanceID, LifecycleMaxAge)
	}
	return c.ec2.InstanceByPrivateDNSNameFresh(ctx, l.PrivateDNSName, LifecycleMaxAge)
}

// InstanceExists reports whether the Node's instance exists: unknown and
// terminated instances do not; pending, running, shutting-down, stopping
// and stopped ones do (upstream's semantics). For a NotReady node the answer
// comes from EC2 at most LifecycleMaxAge ago, not from the cache.
func (c *Cloud) InstanceExists(ctx context.Context, node *v1.Node) (bool, error) {
	inst, err := c.lifecycleInstanceFor(ctx, node)
	if errors.Is(err, ec2.ErrInstanceNotFound) {
		klog.V(2).InfoS("Instance not found", "node", klog.KObj(node), "providerID", node.Spec.ProviderID)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("instance of node %s: %w", node.Name, err)
	}
	if inst.State == ec2.StateTerminated {
		klog.V(2).InfoS("Instance is terminated", "node", klog.KObj(node), "instanceID", inst.ID)
		return false, nil
	}
	return true, nil
}

// InstanceShutdown reports whether the Node's instance is stopped. As
// upstream, only "stopped" counts; an unknown instance is not shut down
// (InstanceExists handles it).
func (c *Cloud) InstanceShutdown(ctx context.Context, node *v1.Node) (bool, error) {
	inst, err := c.lifecycleInstanceFor(ctx, node)
	if errors.Is(err, ec2.ErrInstanceNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("instance of node %s: %w", node.Name, err)
	}
	return inst.State == ec2.StateStopped, nil
}

// InstanceMetadata returns the Node's providerID, instance type, zone,
// region, zone-ID label and addresses in the configured family order.
func (c *Cloud) InstanceMetadata(ctx context.Context, node *v1.Node) (*cloudprovider.InstanceMetadata, error) {
	inst, err := c.instanceFor(ctx, node)
	if errors.Is(err, ec2.ErrInstanceNotFound) {
		return nil, fmt.Errorf("instance of node %s: %w: %w", node.Name, cloudprovider.InstanceNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("instance of node %s: %w", node.Name, err)
	}
	return c.metadataOf(node, inst), nil
}

func (c *Cloud) metadataOf(node *v1.Node, inst *ec2.Instance) *cloudprovider.InstanceMetadata {
	pid := node.Spec.ProviderID
	if pid == "" {
		pid = nodemeta.ProviderID(inst)
	}
	md := &cloudprovider.InstanceMetadata{
		ProviderID:    pid,
		InstanceType:  inst.Type,
		NodeAddresses: addresses.Build(inst, c.cfg.NodeIPFamilies),
		Zone:          inst.Zone,
		Region:        c.region,
	}
	// The framework sets the zone, region and instance-type labels from the
	// fields above; the rest of the shared label rule goes here.
	if z, ok := nodemeta.Labels(node, inst, c.region)[LabelZoneID]; ok {
		md.AdditionalLabels = map[string]string{LabelZoneID: z}
	}
	return md
}

// GetZone returns the zone and region this process runs in.
func (c *Cloud) GetZone(context.Context) (cloudprovider.Zone, error) {
	if c.zone == "" {
		return cloudprovider.Zone{}, errors.New("zone unknown: set Zone in the cloud config or run with instance metadata")
	}
	return cloudprovider.Zone{FailureDomain: c.zone, Region: c.region}, nil
}

// GetZoneByProviderID returns the zone of the instance with the providerID.
func (c *Cloud) GetZoneByProviderID(ctx context.Context, providerID string) (cloudprovider.Zone, error) {
	id, err := providerid.Parse(providerID)
	if err != nil {
		return cloudprovider.Zone{}, err
	}
	inst, err := c.ec2.InstanceByID(ctx, id.InstanceID)
	if err != nil {
		return cloudprovider.Zone{}, fmt.Errorf("zone of %s: %w", providerID, err)
	}
	return cloudprovider.Zone{FailureDomain: inst.Zone, Region: c.region}, nil
}

// GetZoneByNodeName returns the zone of the named node's instance.
func (c *Cloud) GetZoneByNodeName(ctx context.Context, name types.NodeName) (cloudprovider.Zone, error) {
	inst, err := c.instanceBy(ctx, nodemeta.LookupByName(string(name)))
	if err != nil {
		return cloudprovider.Zone{}, fmt.Errorf("zone of node %s: %w", name, err)
	}
	return cloudprovider.Zone{FailureDomain: inst.Zone, Region: c.region}, nil
}
