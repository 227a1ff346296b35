package main

import (
	"context"
	"fmt"

	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	genericcontrollermanager "k8s.io/controller-manager/app"
	"k8s.io/controller-manager/controller"
)

// refuse returns a constructor for a controller this CCM does not implement:
// it is disabled by default, and naming it in --controllers stops startup
// with a message saying so.
func refuse(name string) app.InitFuncConstructor {
	return func(app.ControllerInitContext, *config.CompletedConfig, cloudprovider.Interface) app.InitFunc {
		return func(context.Context, genericcontrollermanager.ControllerContext) (controller.Interface, bool, error) {
			return nil, false, fmt.Errorf("controller %q is not implemented by aws-cloud-controller-manager; remove it from --controllers (or use --controllers=*,-%s)", name, name)
		}
	}
}
