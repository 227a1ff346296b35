// Package addresses builds a Node's addresses from an EC2 instance, in a
// configured family order, and applies kubelet's provided node IP.
package addresses

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
	nodehelpers "k8s.io/cloud-provider/node/helpers"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// Build returns the addresses of inst, family by family in the order given.
//
// IPv4 yields, as upstream does, every private IPv4 address of every ENI
// (primary ENI first, then by network card and device index; each ENI's
// primary address first) as InternalIP, the public IPv4 as ExternalIP, the
// private DNS name as InternalDNS and Hostname, and the public DNS name as
// ExternalDNS. IPv6 yields one InternalIP per ENI: the address EC2 flags as
// primary, else the lowest; for an instance with no IPv4 address at all (in
// an IPv6-only subnet) it also yields the private DNS name, the
// resource-based name there, as InternalDNS and Hostname. No family ever
// yields an empty address. The result does not depend on the order in
// which EC2 listed ENIs or addresses. Unknown families are ignored.
func Build(inst *ec2.Instance, families []v1.IPFamily) []v1.NodeAddress {
	enis := slices.Clone(inst.ENIs)
	slices.SortStableFunc(enis, func(a, b ec2.ENI) int {
		if a.NetworkCardIndex != b.NetworkCardIndex {
			return int(a.NetworkCardIndex - b.NetworkCardIndex)
		}
		return int(a.DeviceIndex - b.DeviceIndex)
	})
	var out []v1.NodeAddress
	add := func(t v1.NodeAddressType, a string) {
		if a == "" {
			return
		}
		na := v1.NodeAddress{Type: t, Address: a}
		if !slices.Contains(out, na) {
			out = append(out, na)
		}
	}
	for _, fam := range families {
		switch fam {
		case v1.IPv4Protocol:
			for _, e := range enis {
				for _, ip := range e.PrivateIPv4 {
					add(v1.NodeInternalIP, ip.String())
				}
			}
			if inst.PublicIP.IsValid() {
				add(v1.NodeExternalIP, inst.PublicIP.String())
			}
			add(v1.NodeInternalDNS, inst.PrivateDNSName)
			add(v1.NodeHostName, inst.PrivateDNSName)
			add(v1.NodeExternalDNS, inst.PublicDNSName)
		case v1.IPv6Protocol:
			for _, e := range enis {
				if ip, ok := e.PrimaryIPv6(); ok {
					add(v1.NodeInternalIP, ip.String())
				}
			}
			if !HasIPv4(inst) {
				add(v1.NodeInternalDNS, inst.PrivateDNSName)
				add(v1.NodeHostName, inst.PrivateDNSName)
			}
		}
	}
	return out
}

// HasIPv4 reports whether the instance has any private IPv4 address; one
// in an IPv6-only subnet has none.
func HasIPv4(inst *ec2.Instance) bool {
	if inst.PrivateIP.IsValid() {
		return true
	}
	return slices.ContainsFunc(inst.ENIs, func(e ec2.ENI) bool { return len(e.PrivateIPv4) > 0 })
}

// HasInternalIP reports whether addrs hold at least one InternalIP.
func HasInternalIP(addrs []v1.NodeAddress) bool {
	return slices.ContainsFunc(addrs, func(a v1.NodeAddress) bool { return a.Type == v1.NodeInternalIP })
}

// ProvidedNodeIP returns kubelet's alpha.kubernetes.io/provided-node-ip annotation.
func ProvidedNodeIP(node *v1.Node) (string, bool) {
	ip, ok := node.Annotations[cloudproviderapi.AnnotationAlphaProvidedIPAddr]
	return ip, ok
}

// ForNode applies the Node's provided node IP to addrs the way
// k8s.io/cloud-provider does: the matching addresses first, other addresses
// of their type dropped. An IP the instance does not have is an error.
//
// A single unspecified IP ("::" or "0.0.0.0", kubelet's --node-ip for "any
// address of this family") matches nothing upstream; here it selects a
// family: that family's addresses move first, nothing is dropped.
func ForNode(node *v1.Node, addrs []v1.NodeAddress) ([]v1.NodeAddress, error) {
	provided, ok := ProvidedNodeIP(node)
	if !ok {
		return addrs, nil
	}
	if ip, err := netip.ParseAddr(provided); err == nil && ip.IsUnspecified() {
		return familyFirst(addrs, ip.Is6()), nil
	}
	out, err := nodehelpers.GetNodeAddressesFromNodeIP(provided, addrs)
	if err != nil {
		return nil, fmt.Errorf("provided node IP %q: %w", provided, err)
	}
	return out, nil
}

// familyFirst stably moves the IP addresses of one family before all others.
func familyFirst(addrs []v1.NodeAddress, v6 bool) []v1.NodeAddress {
	out := slices.Clone(addrs)
	rank := func(a v1.NodeAddress) int {
		ip, err := netip.ParseAddr(a.Address)
		if err == nil && ip.Is6() == v6 {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(out, func(a, b v1.NodeAddress) int { return rank(a) - rank(b) })
	return out
}

// Equal reports whether two address lists are the same, in the same order.
// Unlike comparing by type, two InternalIPs of different families count.
func Equal(a, b []v1.NodeAddress) bool { return slices.Equal(a, b) }
