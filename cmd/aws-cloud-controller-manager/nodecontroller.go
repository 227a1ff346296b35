package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	genericcontrollermanager "k8s.io/controller-manager/app"
	"k8s.io/controller-manager/controller"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/cloud"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/node"
)

// defaultNodeCIDRMaskSizeIPv4 is kube-controller-manager's default.
const defaultNodeCIDRMaskSizeIPv4 = 24

// nodeIPAMOptions are the kube-controller-manager node IPAM flags this
// binary reads for dual-stack pod CIDRs, under their names there.
type nodeIPAMOptions struct{ maskSizeIPv4 int }

// AddFlags registers --node-cidr-mask-size-ipv4.
func (o *nodeIPAMOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.maskSizeIPv4, "node-cidr-mask-size-ipv4", o.maskSizeIPv4,
		"Prefix length of each node's IPv4 pod range, carved from the IPv4 CIDR of --cluster-cidr, with IPv4PodCIDRSource = cluster-cidr in the cloud config (kube-controller-manager's flag).")
}

// ipv4Pool reads --cluster-cidr as kube-controller-manager does: one CIDR,
// or two of different families, comma-separated, the first family primary.
// It returns the IPv4 one and whether IPv4 comes first.
func ipv4Pool(clusterCIDR string) (netip.Prefix, bool, error) {
	if strings.TrimSpace(clusterCIDR) == "" {
		return netip.Prefix{}, false, errors.New("--cluster-cidr is empty: give the IPv4 CIDR pod ranges are carved from (e.g. --cluster-cidr=10.244.0.0/16, or <IPv6 CIDR>,<IPv4 CIDR> for IPv6 first)")
	}
	var pool netip.Prefix
	ipv4First, seen := false, map[bool]bool{}
	for i, f := range strings.Split(clusterCIDR, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("--cluster-cidr %q: %v", clusterCIDR, err)
		}
		v4 := p.Addr().Is4()
		if seen[v4] {
			return netip.Prefix{}, false, fmt.Errorf("--cluster-cidr %q: at most one CIDR per family", clusterCIDR)
		}
		seen[v4] = true
		if v4 {
			pool, ipv4First = p, i == 0
		}
	}
	if !pool.IsValid() {
		return netip.Prefix{}, false, fmt.Errorf("--cluster-cidr %q has no IPv4 CIDR to carve pod ranges from", clusterCIDR)
	}
	if pool.Masked() != pool {
		return netip.Prefix{}, false, fmt.Errorf("--cluster-cidr %q: %s has host bits set (did you mean %s?)", clusterCIDR, pool, pool.Masked())
	}
	return pool, ipv4First, nil
}

// usesClusterCIDR says whether the provider's cloud config reads --cluster-cidr.
func usesClusterCIDR(cp cloudprovider.Interface) bool {
	aws, ok := cp.(*cloud.Cloud)
	return ok && aws.Config().IPv4PodCIDRSource == cloud.PodCIDRSourceClusterCIDR
}

// startNodeController starts our IPv6-aware node controller as "cloud-node":
// mode and address families come from the cloud config, workers from
// --concurrent-node-syncs and the address refresh period from
// --node-status-update-frequency; with IPv4PodCIDRSource = cluster-cidr,
// IPv4 pod ranges from --cluster-cidr and --node-cidr-mask-size-ipv4.
func startNodeController(ipam *nodeIPAMOptions) app.InitFuncConstructor {
	return func(initCtx app.ControllerInitContext, cc *config.CompletedConfig, cp cloudprovider.Interface) app.InitFunc {
		return nodeControllerInit(initCtx, cc, cp, ipam)
	}
}

func nodeControllerInit(initCtx app.ControllerInitContext, cc *config.CompletedConfig, cp cloudprovider.Interface, ipam *nodeIPAMOptions) app.InitFunc {
	return func(ctx context.Context, _ genericcontrollermanager.ControllerContext) (controller.Interface, bool, error) {
		aws, ok := cp.(*cloud.Cloud)
		if !ok {
			return nil, false, fmt.Errorf("cloud-node controller needs the aws provider, got %T", cp)
		}
		cfg := aws.Config()
		var pool netip.Prefix
		var ipv4First bool
		if cfg.IPv4PodCIDRSource == cloud.PodCIDRSourceClusterCIDR {
			var err error
			if pool, ipv4First, err = ipv4Pool(cc.ComponentConfig.KubeCloudShared.ClusterCIDR); err != nil {
				return nil, false, fmt.Errorf("cloud-node controller: IPv4PodCIDRSource = cluster-cidr: %w", err)
			}
		}
		nodes := cc.SharedInformers.Core().V1().Nodes()
		// No controller here reads managedFields or the image and volume
		// lists kubelet reports, and on Nodes they are most of each object:
		// keep them out of the informer cache. Every write here is a patch
		// of named fields, so nothing writes the trimmed copy back.
		if err := nodes.Informer().SetTransform(cache.TransformFunc(stripNode)); err != nil {
			klog.InfoS("Node informer already started; keeping whole Nodes in its cache", "err", err)
		}
		ctrl, err := node.New(
			cc.ClientBuilder.ClientOrDie(initCtx.ClientName),
			nodes,
			aws.EC2(),
			node.Options{
				Mode:          cfg.IPv6PrefixDelegation,
				Families:      cfg.NodeIPFamilies,
				Workers:       int(cc.ComponentConfig.NodeController.ConcurrentNodeSyncs),
				RefreshPeriod: cc.ComponentConfig.NodeStatusUpdateFrequency.Duration,
				Region:        aws.Region(),
				ClusterID:     aws.ClusterID(),
				IPv4Pool:      pool,
				IPv4MaskBits:  ipam.maskSizeIPv4,
				IPv4First:     ipv4First,

				EnablePrimaryIPv6: cfg.EnablePrimaryIPv6,
			})
		if err != nil {
			return nil, false, fmt.Errorf("cloud-node controller: %w", err)
		}
		klog.InfoS("Starting cloud-node controller", "mode", cfg.IPv6PrefixDelegation, "families", cfg.NodeIPFamilies,
			"workers", cc.ComponentConfig.NodeController.ConcurrentNodeSyncs, "ipv4PodCIDRPool", pool, "ipv4MaskBits", ipam.maskSizeIPv4, "ipv4First", ipv4First)
		go ctrl.Run(ctx)
		return nil, true, nil
	}
}

// stripNode drops from objects entering an informer cache what no
// controller of this binary reads: metadata.managedFields, and on Nodes all
// of status but the addresses and the Ready condition (the lifecycle
// controller's input). Kubelet's capacity, image list (up to 50 names and
// sizes), system info and other conditions are most of a Node's size.
func stripNode(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if n, ok := obj.(*v1.Node); ok {
		kept := v1.NodeStatus{Addresses: n.Status.Addresses}
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady {
				kept.Conditions = []v1.NodeCondition{c}
			}
		}
		n.Status = kept
	}
	return obj, nil
}
