// Command aws-cloud-controller-manager is the AWS cloud controller manager:
// the k8s.io/cloud-provider framework with the "aws" provider, our
// IPv6-aware node controller as "cloud-node", and the framework's
// "cloud-node-lifecycle".
package main

import (
	"os"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/cloud" // registers the "aws" provider
)

// defaultNodeWorkers is our default for --concurrent-node-syncs (upstream: 1).
// Node workers only wait on batched EC2 lookups and API writes, so many of
// them let one DescribeInstances serve a whole burst of new nodes.
const defaultNodeWorkers = 64

func main() {
	cmd, err := newCommand()
	if err != nil {
		klog.Fatalf("Unable to initialize command options: %v", err)
	}
	os.Exit(cli.Run(cmd))
}

// newCommand builds the command with our defaults: provider aws, 64 node
// workers, and the service and route controllers disabled by default.
func newCommand() (*cobra.Command, error) {
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	opts.NodeController.ConcurrentNodeSyncs = defaultNodeWorkers
	opts.KubeCloudShared.CloudProvider.Name = cloud.ProviderName

	// Not implemented here: off unless named in --controllers, and then refused.
	app.ControllersDisabledByDefault.Insert(names.ServiceLBController, names.NodeRouteController)

	cmd := app.NewCloudControllerManagerCommand(opts, cloudInitializer, controllerInitializers(),
		names.CCMControllerAliases(), cliflag.NamedFlagSets{}, wait.NeverStop)
	cmd.Use = "aws-cloud-controller-manager"
	return cmd, nil
}

// controllerInitializers copies the framework's map, replaces cloud-node with
// our node controller and refuses service and route.
func controllerInitializers() map[string]app.ControllerInitFuncConstructor {
	m := make(map[string]app.ControllerInitFuncConstructor, len(app.DefaultInitFuncConstructors))
	for k, v := range app.DefaultInitFuncConstructors {
		m[k] = v
	}
	m[names.CloudNodeController] = app.ControllerInitFuncConstructor{
		InitContext: app.ControllerInitContext{ClientName: "node-controller"},
		Constructor: startNodeController,
	}
	for _, name := range []string{names.ServiceLBController, names.NodeRouteController} {
		m[name] = app.ControllerInitFuncConstructor{
			InitContext: m[name].InitContext,
			Constructor: refuse(name),
		}
	}
	return m
}

func cloudInitializer(c *config.CompletedConfig) cloudprovider.Interface {
	cc := c.ComponentConfig.KubeCloudShared.CloudProvider
	cloud, err := cloudprovider.InitCloudProvider(cc.Name, cc.CloudConfigFile)
	if err != nil {
		klog.Fatalf("Cloud provider could not be initialized: %v", err)
	}
	if cloud == nil {
		klog.Fatalf("Cloud provider %q is not known (this binary provides \"aws\")", cc.Name)
	}
	if !cloud.HasClusterID() {
		if c.ComponentConfig.KubeCloudShared.AllowUntaggedCloud {
			klog.Warning("No cluster ID found (KubernetesClusterID in the cloud config, or a kubernetes.io/cluster/<id> tag); continuing because of --allow-untagged-cloud")
		} else if aws, ok := cloud.(interface{ ClusterIDError() error }); ok && aws.ClusterIDError() != nil {
			klog.Fatalf("No cluster ID found: %v; set KubernetesClusterID in the cloud config to skip the lookup, or pass --allow-untagged-cloud", aws.ClusterIDError())
		} else {
			klog.Fatalf("No cluster ID found: set KubernetesClusterID in the cloud config, tag the instance with kubernetes.io/cluster/<id>, or pass --allow-untagged-cloud")
		}
	}
	return cloud
}
