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
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/tagging"
)

// startTaggingController returns the constructor of upstream's "tagging"
// controller (off unless named in --controllers), configured by opts, which
// the command's "tagging controller" flag set fills.
func startTaggingController(opts *tagging.Options) app.InitFuncConstructor {
	return func(initCtx app.ControllerInitContext, cc *config.CompletedConfig, cp cloudprovider.Interface) app.InitFunc {
		return func(ctx context.Context, _ genericcontrollermanager.ControllerContext) (controller.Interface, bool, error) {
			aws, ok := cp.(*cloud.Cloud)
			if !ok {
				return nil, false, fmt.Errorf("tagging controller needs the aws provider, got %T", cp)
			}
			ctrl, err := tagging.New(cc.ClientBuilder.ClientOrDie(initCtx.ClientName),
				cc.SharedInformers.Core().V1().Nodes(), aws.EC2(), *opts)
			if err != nil {
				return nil, false, err
			}
			go ctrl.Run(ctx)
			return nil, true, nil
		}
	}
}

// noEffect returns a constructor for an upstream controller this CCM does
// not implement: naming it in --controllers is accepted, so upstream's
// command lines start, and logs a warning that it does nothing here.
func noEffect(name, why string) app.InitFuncConstructor {
	return func(app.ControllerInitContext, *config.CompletedConfig, cloudprovider.Interface) app.InitFunc {
		return func(context.Context, genericcontrollermanager.ControllerContext) (controller.Interface, bool, error) {
			klog.Warningf("Controller %q is accepted for compatibility with upstream's --controllers but has no effect in aws-cloud-controller-manager: %s", name, why)
			return nil, false, nil
		}
	}
}
