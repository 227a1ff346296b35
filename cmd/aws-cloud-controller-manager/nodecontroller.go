package main

import (
	"context"
	"fmt"

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

// startNodeController starts our IPv6-aware node controller as "cloud-node":
// mode and address families come from the cloud config, workers from
// --concurrent-node-syncs and the address refresh period from
// --node-status-update-frequency.
func startNodeController(initCtx app.ControllerInitContext, cc *config.CompletedConfig, cp cloudprovider.Interface) app.InitFunc {
	return func(ctx context.Context, _ genericcontrollermanager.ControllerContext) (controller.Interface, bool, error) {
		aws, ok := cp.(*cloud.Cloud)
		if !ok {
			return nil, false, fmt.Errorf("cloud-node controller needs the aws provider, got %T", cp)
		}
		cfg := aws.Config()
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
			})
		if err != nil {
			return nil, false, fmt.Errorf("cloud-node controller: %w", err)
		}
		klog.InfoS("Starting cloud-node controller", "mode", cfg.IPv6PrefixDelegation, "families", cfg.NodeIPFamilies,
			"workers", cc.ComponentConfig.NodeController.ConcurrentNodeSyncs)
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
