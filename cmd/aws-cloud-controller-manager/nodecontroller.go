package main

import (
	"context"
	"fmt"

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
		ctrl, err := node.New(
			cc.ClientBuilder.ClientOrDie(initCtx.ClientName),
			cc.SharedInformers.Core().V1().Nodes(),
			aws.EC2(),
			node.Options{
				Mode:          node.Mode(cfg.IPv6PrefixDelegation),
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
