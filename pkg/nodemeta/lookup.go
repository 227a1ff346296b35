// Package nodemeta holds the rules that map between EC2 instances and Node
// objects, shared by the cloud provider and every controller: how a Node's
// instance is found.
package nodemeta

import (
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
)

// Lookup is what a Node's instance is found by: exactly one of InstanceID
// and PrivateDNSName is set.
type Lookup struct {
	InstanceID     string
	PrivateDNSName string
	// Zone is the zone the providerID names, if any: the instance found
	// must be in it.
	Zone string
}

// LookupOf returns how to find node's instance:
//   - by the instance ID of its providerID, when it has one;
//   - else by instance ID when its name is one, bare (i-0123456789abcdef0) or
//     as a resource-based hostname (i-0123456789abcdef0.ec2.internal,
//     i-0123456789abcdef0.eu-west-1.compute.internal), as kubelet names
//     nodes on IPv6-only subnets;
//   - else by private DNS name (ip-10-0-1-5.ec2.internal), as upstream.
//
// An unparsable providerID is an error naming it; it never falls back to
// the name.
func LookupOf(node *v1.Node) (Lookup, error) {
	if node.Spec.ProviderID != "" {
		id, err := providerid.Parse(node.Spec.ProviderID)
		if err != nil {
			return Lookup{}, err
		}
		return Lookup{InstanceID: id.InstanceID, Zone: id.Zone}, nil
	}
	return LookupByName(node.Name), nil
}

// LookupByName is LookupOf for a node known only by name.
func LookupByName(name string) Lookup {
	if id := InstanceIDFromName(name); id != "" {
		return Lookup{InstanceID: id}
	}
	return Lookup{PrivateDNSName: name}
}

// InstanceIDFromName returns the instance ID a node name carries as its
// first DNS label, or "" when it carries none.
func InstanceIDFromName(name string) string {
	first, _, _ := strings.Cut(name, ".")
	if providerid.ValidInstanceID(first) {
		return first
	}
	return ""
}

// Ready says whether the node's Ready condition is True.
func Ready(node *v1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// LifecycleKey is the key under which a NotReady node's instance is
// announced to the EC2 resolver for the lifecycle controller's fresh
// lookups (ec2.Client.Expect). It cannot collide with a node name, the
// node controller's key, since names hold no "/".
func LifecycleKey(nodeName string) string { return "lifecycle/" + nodeName }
