package main

import (
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	genericcontrollermanager "k8s.io/controller-manager/app"
	"k8s.io/klog/v2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/tagging"
)

// noEffectFlags are upstream's flags this binary accepts, so that upstream's
// command lines start unchanged, but does not act on, with the reason.
var noEffectFlags = map[string]string{
	"allocate-node-cidrs":          "this CCM runs no pod CIDR allocator; pod CIDRs come from each node's ENI IPv6 prefix (IPv6PrefixDelegation in the cloud config) or from kube-controller-manager",
	"cluster-cidr":                 "it is read only with IPv4PodCIDRSource = cluster-cidr in the cloud config (dual-stack pod CIDRs), and there is no route controller",
	"cidr-allocator-type":          "this CCM runs no pod CIDR allocator",
	"configure-cloud-routes":       "the route controller is not implemented (the provider has no Routes())",
	"route-reconciliation-period":  "the route controller is not implemented (the provider has no Routes())",
	"external-cloud-volume-plugin": "only kube-controller-manager reads it",
}

// warnNoEffect logs a warning for each flag set on the command line that
// has no effect here (--cluster-cidr unless used), and for
// tagging-controller flags given without the tagging controller in
// --controllers.
func warnNoEffect(fs *pflag.FlagSet, c *config.CompletedConfig, clusterCIDRUsed bool) {
	fs.Visit(func(f *pflag.Flag) {
		if f.Name == "node-cidr-mask-size-ipv4" && !clusterCIDRUsed {
			klog.Warningf("Flag --node-cidr-mask-size-ipv4 has no effect: it sizes IPv4 pod ranges, which need IPv4PodCIDRSource = cluster-cidr in the cloud config")
		}
		if f.Name == "cluster-cidr" && clusterCIDRUsed {
			return
		}
		if why, ok := noEffectFlags[f.Name]; ok {
			klog.Warningf("Flag --%s is accepted for compatibility with upstream but has no effect in aws-cloud-controller-manager: %s", f.Name, why)
		}
	})
	if c == nil || genericcontrollermanager.IsControllerEnabled(tagging.ControllerName, app.ControllersDisabledByDefault, c.ComponentConfig.Generic.Controllers) {
		return
	}
	var set []string
	fs.Visit(func(f *pflag.Flag) {
		if f.Name == "tags" || f.Name == "resources" || strings.HasPrefix(f.Name, "tagging-controller-") {
			set = append(set, "--"+f.Name)
		}
	})
	if len(set) > 0 {
		slices.Sort(set)
		klog.Warningf("Flags %s have no effect: the tagging controller is not enabled (add tagging to --controllers)", strings.Join(set, ", "))
	}
}
