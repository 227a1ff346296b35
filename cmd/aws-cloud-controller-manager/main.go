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
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/tagging"
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
// workers, and the route controller disabled by default.
func newCommand() (*cobra.Command, error) {
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	opts.NodeController.ConcurrentNodeSyncs = defaultNodeWorkers
	opts.KubeCloudShared.CloudProvider.Name = cloud.ProviderName

	// Routes are not implemented here: off unless named in --controllers,
	// and then accepted with a warning. Tagging is off by default, as
	// upstream has it.
	app.ControllersDisabledByDefault.Insert(names.NodeRouteController, tagging.ControllerName)

	taggingOpts := tagging.NewOptions()
	fss := cliflag.NamedFlagSets{}
	taggingOpts.AddFlags(fss.FlagSet("tagging controller"))
	ipam := &nodeIPAMOptions{maskSizeIPv4: defaultNodeCIDRMaskSizeIPv4}
	ipam.AddFlags(fss.FlagSet("node IPAM"))
	aliases := names.CCMControllerAliases()
	aliases[tagging.ControllerName] = tagging.ControllerName
	var cmd *cobra.Command
	initCloud := func(c *config.CompletedConfig) cloudprovider.Interface {
		cp := cloudInitializer(c)
		warnNoEffect(cmd.Flags(), c, usesClusterCIDR(cp))
		return cp
	}
	cmd = app.NewCloudControllerManagerCommand(opts, initCloud, controllerInitializers(taggingOpts, ipam),
		aliases, fss, wait.NeverStop)
	cmd.Use = "aws-cloud-controller-manager"
	return cmd, nil
}

// controllerInitializers copies the framework's map, replaces cloud-node with
// our node controller, adds upstream's tagging controller and accepts route
// with a warning that it has no effect here.
func controllerInitializers(taggingOpts *tagging.Options, ipam *nodeIPAMOptions) map[string]app.ControllerInitFuncConstructor {
	m := make(map[string]app.ControllerInitFuncConstructor, len(app.DefaultInitFuncConstructors))
	for k, v := range app.DefaultInitFuncConstructors {
		m[k] = v
	}
	m[names.CloudNodeController] = app.ControllerInitFuncConstructor{
		InitContext: app.ControllerInitContext{ClientName: "node-controller"},
		Constructor: startNodeController(ipam),
	}
	// The tagging controller only patches one Node label, which the node
	// controller's identity may do: with --use-service-account-credentials it
	// needs no service account and RBAC of its own.
	m[tagging.ControllerName] = app.ControllerInitFuncConstructor{
		InitContext: app.ControllerInitContext{ClientName: "node-controller"},
		Constructor: startTaggingController(taggingOpts),
	}
	for name, why := range notImplemented {
		m[name] = app.ControllerInitFuncConstructor{
			InitContext: m[name].InitContext,
			Constructor: noEffect(name, why),
		}
	}
	return m
}

// notImplemented names upstream's controllers this CCM accepts in
// --controllers but does not run, with the reason logged at start-up.
var notImplemented = map[string]string{
	names.NodeRouteController: "this provider implements no VPC routes (Routes() reports unsupported): pods are reached through each node's ENI IPv6 prefix or your CNI",
}

func cloudInitializer(c *config.CompletedConfig) cloudprovider.Interface {
	cc := c.ComponentConfig.KubeCloudShared.CloudProvider
	cp, err := cloudprovider.InitCloudProvider(cc.Name, cc.CloudConfigFile)
	if err != nil {
		klog.Fatalf("Cloud provider could not be initialized: %v", err)
	}
	if cp == nil {
		klog.Fatalf("Cloud provider %q is not known (this binary provides \"aws\")", cc.Name)
	}
	if !cp.HasClusterID() {
		if c.ComponentConfig.KubeCloudShared.AllowUntaggedCloud {
			klog.Warning("No cluster ID found (KubernetesClusterID in the cloud config, or a kubernetes.io/cluster/<id> tag); continuing because of --allow-untagged-cloud")
		} else if aws, ok := cp.(interface{ ClusterIDError() error }); ok && aws.ClusterIDError() != nil {
			klog.Fatalf("No cluster ID found: %v; set KubernetesClusterID in the cloud config to skip the lookup, or pass --allow-untagged-cloud", aws.ClusterIDError())
		} else {
			klog.Fatalf("No cluster ID found: set KubernetesClusterID in the cloud config, tag the instance with kubernetes.io/cluster/<id>, or pass --allow-untagged-cloud")
		}
	}
	if aws, ok := cp.(*cloud.Cloud); ok && aws.Config().IPv4PodCIDRSource == cloud.PodCIDRSourceClusterCIDR {
		if _, _, err := ipv4Pool(c.ComponentConfig.KubeCloudShared.ClusterCIDR); err != nil {
			klog.Fatalf("IPv4PodCIDRSource = cluster-cidr in the cloud config: %v", err)
		}
	}
	return cp
}
