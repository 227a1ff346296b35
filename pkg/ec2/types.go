// Package ec2 is the only package that talks to AWS. It turns EC2 and IMDS
// replies into the small model below, batches instance lookups, rate-limits
// calls and records metrics per action.
package ec2

import (
	"net/netip"
	"slices"
	"time"
)

// Instance states as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
)

// Instance is the part of an EC2 instance the CCM uses. It is built from one
// DescribeInstances reply and never aliases SDK memory.
type Instance struct {
	ID             string
	Type           string
	State          string
	Zone           string
	ZoneID         string
	VPCID          string
	SubnetID       string
	PrivateDNSName string
	PrivateIP      netip.Addr
	PublicIP       netip.Addr
	PublicDNSName  string
	LaunchTime     time.Time
	Tags           map[string]string
	// NetworkNodes are the instance's network nodes from
	// DescribeInstanceTopology, top layer first; describes leave it empty
	// and the node controller fills a copy at initialization.
	NetworkNodes []string
	// ENIs are sorted by network card index, then device index.
	ENIs []ENI
}

// ENI is one network interface attached to an instance.
type ENI struct {
	ID               string
	SubnetID         string
	MAC              string
	NetworkCardIndex int32
	DeviceIndex      int32
	// PrivateIPv4 holds the ENI's private IPv4 addresses, primary first.
	PrivateIPv4 []netip.Addr
	// IPv6 holds the ENI's IPv6 addresses in the order EC2 listed them.
	IPv6 []IPv6Address
	// IPv6Prefixes holds the delegated IPv6 prefixes, sorted.
	IPv6Prefixes []netip.Prefix
	// SecurityGroups holds the IDs of the ENI's security groups, sorted.
	SecurityGroups []string
}

// IPv6Address is an IPv6 address of an ENI.
type IPv6Address struct {
	Addr    netip.Addr
	Primary bool
}

// PrimaryENI returns the ENI on network card 0 at device index 0, or nil.
func (i *Instance) PrimaryENI() *ENI {
	for k := range i.ENIs {
		if i.ENIs[k].NetworkCardIndex == 0 && i.ENIs[k].DeviceIndex == 0 {
			return &i.ENIs[k]
		}
	}
	return nil
}

// PrimaryIPv6 returns the address EC2 flags as primary, else the lowest one.
func (e *ENI) PrimaryIPv6() (netip.Addr, bool) {
	var best netip.Addr
	for _, a := range e.IPv6 {
		if a.Primary {
			return a.Addr, true
		}
		if !best.IsValid() || a.Addr.Less(best) {
			best = a.Addr
		}
	}
	return best, best.IsValid()
}

// PodPrefix returns the /80 prefix the node uses as its pod CIDR: the lowest
// /80 delegated to the ENI. The choice is deterministic whatever order EC2
// lists prefixes in. The bool is false when the ENI has no /80.
func (e *ENI) PodPrefix() (netip.Prefix, bool) {
	var ps []netip.Prefix
	for _, p := range e.IPv6Prefixes {
		if p.Bits() == 80 && p.Addr().Is6() {
			ps = append(ps, p.Masked())
		}
	}
	if len(ps) == 0 {
		return netip.Prefix{}, false
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return ps[0], true
}

// Assigned is what AssignIpv6Addresses reports it assigned.
type Assigned struct {
	ENI       string
	Addresses []netip.Addr
	Prefixes  []netip.Prefix
}
