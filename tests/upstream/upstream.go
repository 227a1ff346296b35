// Package upstream models what kubernetes/cloud-provider-aws v1.37, run with
// k8s.io/cloud-provider's node controller, writes to a Node for an instance
// as ec2sim holds it. It is the expected side of this project's drop-in
// tests: written from upstream's documentation and behaviour, sharing no
// code with the CCM under test.
package upstream

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// IPv4Addresses is the address list with NodeIPFamilies = ipv4: every
// private IPv4 of every ENI, ENIs ordered by network card and device index,
// as InternalIP; the public IPv4 as ExternalIP; the private DNS name as
// InternalDNS and Hostname; the public DNS name as ExternalDNS.
func IPv4Addresses(in ec2sim.InstanceState) []corev1.NodeAddress {
	enis := slices.Clone(in.ENIs)
	slices.SortStableFunc(enis, func(a, b ec2sim.ENIState) int {
		return cmp.Or(cmp.Compare(a.NetworkCardIndex, b.NetworkCardIndex), cmp.Compare(a.DeviceIndex, b.DeviceIndex))
	})
	var out []corev1.NodeAddress
	for _, e := range enis {
		for _, ip := range e.PrivateIPs {
			out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
		}
	}
	if in.PublicIP != "" {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: in.PublicIP})
	}
	if in.PrivateDNSName != "" {
		out = append(out,
			corev1.NodeAddress{Type: corev1.NodeInternalDNS, Address: in.PrivateDNSName},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: in.PrivateDNSName})
	}
	if in.PublicDNSName != "" {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalDNS, Address: in.PublicDNSName})
	}
	return out
}

// Labels are the labels the node controller adds at initialization: instance
// type, zone and region under their stable and beta keys, and the AWS zone
// ID. Network topology labels are left out: the model covers instance types
// that DescribeInstanceTopology does not answer for.
func Labels(in ec2sim.InstanceState, region string) map[string]string {
	return map[string]string{
		"node.kubernetes.io/instance-type":         in.Type,
		"beta.kubernetes.io/instance-type":         in.Type,
		"topology.kubernetes.io/zone":              in.Zone,
		"failure-domain.beta.kubernetes.io/zone":   in.Zone,
		"topology.kubernetes.io/region":            region,
		"failure-domain.beta.kubernetes.io/region": region,
		"topology.k8s.aws/zone-id":                 in.ZoneID,
	}
}

// ProviderID is upstream's providerID for the instance.
func ProviderID(in ec2sim.InstanceState) string { return "aws:///" + in.Zone + "/" + in.ID }
