// Package ec2sim is an EC2 Query API and IMDSv2 emulator for tests. It speaks
// the wire protocol the unmodified aws-sdk-go-v2 expects, over real HTTP on
// loopback, and holds VPCs, subnets, instances, ENIs, IPv6 addresses and /80
// prefixes described by a YAML scenario.
package ec2sim

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"sigs.k8s.io/yaml"
)

// Scenario describes the world the emulator starts with. Missing IDs,
// addresses, MACs and DNS names are filled in deterministically.
type Scenario struct {
	// Region defaults to us-east-1.
	Region string `json:"region,omitempty"`
	// AccountID is the owner of every resource; defaults to 111122223333.
	AccountID string `json:"accountID,omitempty"`
	// Seed makes generated IDs and random IPv6 choices reproducible; default 1.
	Seed int64 `json:"seed,omitempty"`
	// Zones default to <region>a, <region>b and <region>c.
	Zones []Zone `json:"zones,omitempty"`
	// VPCs default to one VPC 10.0.0.0/16 with an IPv6 /56.
	VPCs []VPC `json:"vpcs,omitempty"`
	// Subnets default to one dual-stack subnet per zone in the first VPC.
	Subnets []Subnet `json:"subnets,omitempty"`
	// InstanceTypes add to (or override) the built-in table.
	InstanceTypes []InstanceType `json:"instanceTypes,omitempty"`
	// Instances and their ENIs.
	Instances []Instance `json:"instances,omitempty"`
	// IMDSInstance is the instance IMDS answers for; defaults to the first.
	IMDSInstance string `json:"imdsInstance,omitempty"`
	// InstanceRole is the name of the IAM role of the instance profile the
	// IMDS instance carries; empty = no role. When set, IMDS serves
	// meta-data/iam/info and meta-data/iam/security-credentials/<role> with
	// temporary credentials the EC2 endpoint accepts.
	InstanceRole string `json:"instanceRole,omitempty"`
	// ClusterID, when set, adds a Kubernetes cluster to the defaults: a node
	// security group "<clusterID>-node" tagged kubernetes.io/cluster/<id>:
	// owned in the first VPC, given to every ENI that names no group; and,
	// when Subnets is empty, cluster-tagged default subnets plus one public
	// subnet per zone tagged kubernetes.io/role/elb: "1".
	ClusterID string `json:"clusterID,omitempty"`
	// SecurityGroups add to each VPC's default group (and the node group).
	SecurityGroups []SecurityGroup `json:"securityGroups,omitempty"`
}

// Zone is an availability zone.
type Zone struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`
}

// VPC is a virtual private cloud with an IPv4 CIDR and an optional IPv6 /56.
type VPC struct {
	ID       string            `json:"id,omitempty"`
	CIDR     string            `json:"cidr,omitempty"`
	IPv6CIDR string            `json:"ipv6CIDR,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// DNSHostnames is the VPC's enableDnsHostnames attribute (off by
	// default in a VPC one creates): with it on, instances with a public
	// IPv4 address get a public DNS name (dnsName).
	DNSHostnames bool `json:"dnsHostnames,omitempty"`
}

// Subnet lives in one zone of one VPC; IPv6CIDR, when set, is a /64.
type Subnet struct {
	ID   string `json:"id,omitempty"`
	VPC  string `json:"vpc,omitempty"`
	Zone string `json:"zone,omitempty"`
	// CIDR is the IPv4 CIDR: required, except for an IPv6-native subnet,
	// which has none.
	CIDR     string `json:"cidr,omitempty"`
	IPv6CIDR string `json:"ipv6CIDR,omitempty"`
	// IPv6Native makes an IPv6-only subnet: IPv6CIDR is required, CIDR
	// must be empty, and its ENIs have no IPv4 address.
	IPv6Native bool `json:"ipv6Native,omitempty"`
	// PrivateDNSNameOptionsOnLaunch are the hostname options instances
	// launched into the subnet get (AWS's privateDnsNameOptionsOnLaunch).
	// Default: ip-name, or resource-name in an IPv6-native subnet.
	PrivateDNSNameOptionsOnLaunch *PrivateDNSNameOptions `json:"privateDnsNameOptionsOnLaunch,omitempty"`
	Tags                          map[string]string      `json:"tags,omitempty"`
	// MapPublicIPOnLaunch is the subnet's mapPublicIpOnLaunch attribute.
	MapPublicIPOnLaunch bool `json:"mapPublicIpOnLaunch,omitempty"`
}

// Hostname types of PrivateDNSNameOptions.
const (
	HostnameTypeIPName       = "ip-name"
	HostnameTypeResourceName = "resource-name"
)

// PrivateDNSNameOptions are EC2's hostname options: with resource-name the
// instance's private DNS name is <instance-id>.ec2.internal (us-east-1) or
// <instance-id>.<region>.compute.internal.
type PrivateDNSNameOptions struct {
	// HostnameType is "ip-name" or "resource-name"; empty inherits.
	HostnameType                    string `json:"hostnameType,omitempty"`
	EnableResourceNameDNSARecord    bool   `json:"enableResourceNameDnsARecord,omitempty"`
	EnableResourceNameDNSAAAARecord bool   `json:"enableResourceNameDnsAAAARecord,omitempty"`
}

// InstanceType carries the networking limits DescribeInstanceTypes reports
// and AssignIpv6Addresses enforces.
type InstanceType struct {
	Name         string `json:"name"`
	MaxENIs      int    `json:"maxENIs"`
	IPv4PerENI   int    `json:"ipv4PerENI"`
	IPv6PerENI   int    `json:"ipv6PerENI"`
	NetworkCards int    `json:"networkCards,omitempty"`
}

// Instance is an EC2 instance in scenario form.
type Instance struct {
	ID             string `json:"id,omitempty"`
	Type           string `json:"type,omitempty"`
	Subnet         string `json:"subnet,omitempty"`
	State          string `json:"state,omitempty"`
	PrivateDNSName string `json:"privateDNSName,omitempty"`
	// PrivateDNSNameOptions override the subnet's options at launch.
	PrivateDNSNameOptions *PrivateDNSNameOptions `json:"privateDnsNameOptions,omitempty"`
	PublicIP              string                 `json:"publicIP,omitempty"`
	Tags                  map[string]string      `json:"tags,omitempty"`
	LaunchTime            time.Time              `json:"launchTime,omitzero"`
	ENIs                  []ENI                  `json:"enis,omitempty"`
	// SecurityGroups (IDs or names in the ENI's VPC) of ENIs that list
	// none; default: the cluster's node group, else the VPC's default group.
	SecurityGroups []string `json:"securityGroups,omitempty"`
}

// ENI is a network interface attached to an instance.
type ENI struct {
	ID               string     `json:"id,omitempty"`
	Subnet           string     `json:"subnet,omitempty"`
	DeviceIndex      int        `json:"deviceIndex"`
	NetworkCardIndex int        `json:"networkCardIndex,omitempty"`
	PrivateIPs       []string   `json:"privateIPs,omitempty"`
	IPv6             []IPv6Addr `json:"ipv6,omitempty"`
	IPv6Prefixes     []string   `json:"ipv6Prefixes,omitempty"`
	// IPv6AddressCount and IPv6PrefixCount ask the emulator to assign that
	// many random addresses and /80 prefixes at load time, as a launch
	// template would.
	IPv6AddressCount int    `json:"ipv6AddressCount,omitempty"`
	IPv6PrefixCount  int    `json:"ipv6PrefixCount,omitempty"`
	MAC              string `json:"mac,omitempty"`
	// SecurityGroups (IDs or names, at most 5) override the instance's.
	SecurityGroups []string `json:"securityGroups,omitempty"`
	// EnablePrimaryIPv6 makes the first IPv6 address the primary IPv6
	// address, as ModifyNetworkInterfaceAttribute EnablePrimaryIpv6 does.
	EnablePrimaryIPv6 bool `json:"enablePrimaryIpv6,omitempty"`
}

// IPv6Addr is an IPv6 address on an ENI.
type IPv6Addr struct {
	Address string `json:"address"`
	Primary bool   `json:"primary,omitempty"`
}

// ParseScenario decodes a YAML (or JSON) scenario; unknown fields are errors.
func ParseScenario(data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	return &s, nil
}

// LoadScenario reads and parses a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(data)
}

// validate checks the syntax of addresses and CIDRs; references are checked
// when the world is built.
func (s *Scenario) validate() error {
	var errs []error
	for _, v := range s.VPCs {
		errs = append(errs, checkPrefix("vpc cidr", v.CIDR, true, 0), checkPrefix("vpc ipv6CIDR", v.IPv6CIDR, false, 56))
	}
	for _, sn := range s.Subnets {
		errs = append(errs, checkPrefix("subnet cidr", sn.CIDR, true, 0), checkPrefix("subnet ipv6CIDR", sn.IPv6CIDR, false, 64),
			checkSubnetFields(sn), checkDNSOptions("subnet "+sn.ID+" privateDnsNameOptionsOnLaunch", sn.PrivateDNSNameOptionsOnLaunch))
	}
	for _, in := range s.Instances {
		if in.State != "" {
			if _, ok := stateCodes[in.State]; !ok {
				errs = append(errs, fmt.Errorf("instance %q: unknown state %q", in.ID, in.State))
			}
		}
		errs = append(errs, checkDNSOptions("instance "+in.ID+" privateDnsNameOptions", in.PrivateDNSNameOptions))
		for _, e := range in.ENIs {
			for _, ip := range e.PrivateIPs {
				if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
					errs = append(errs, fmt.Errorf("eni %q: bad private IP %q", e.ID, ip))
				}
			}
			for _, a := range e.IPv6 {
				if p, err := netip.ParseAddr(a.Address); err != nil || !p.Is6() || p.Is4In6() {
					errs = append(errs, fmt.Errorf("eni %q: bad IPv6 address %q", e.ID, a.Address))
				}
			}
			for _, p := range e.IPv6Prefixes {
				errs = append(errs, checkPrefix("eni ipv6Prefixes", p, false, 80))
			}
		}
	}
	return errors.Join(errs...)
}

// checkSubnetFields checks which CIDRs a subnet needs: cidr always, except
// an IPv6-native subnet, which needs ipv6CIDR and must not have cidr.
func checkSubnetFields(sn Subnet) error {
	switch {
	case sn.IPv6Native && sn.CIDR != "":
		return fmt.Errorf("subnet %q: cidr must be empty in an ipv6Native subnet", sn.ID)
	case sn.IPv6Native && sn.IPv6CIDR == "":
		return fmt.Errorf("subnet %q: ipv6CIDR is required in an ipv6Native subnet", sn.ID)
	case !sn.IPv6Native && sn.CIDR == "":
		return fmt.Errorf("subnet %q: cidr is required", sn.ID)
	case sn.IPv6Native && sn.PrivateDNSNameOptionsOnLaunch != nil && sn.PrivateDNSNameOptionsOnLaunch.HostnameType == HostnameTypeIPName:
		return fmt.Errorf("subnet %q: privateDnsNameOptionsOnLaunch.hostnameType must be resource-name in an ipv6Native subnet", sn.ID)
	}
	return nil
}

func checkDNSOptions(what string, o *PrivateDNSNameOptions) error {
	if o == nil {
		return nil
	}
	switch o.HostnameType {
	case "", HostnameTypeIPName, HostnameTypeResourceName:
		return nil
	}
	return fmt.Errorf("%s: hostnameType %q is not ip-name or resource-name", what, o.HostnameType)
}

func checkPrefix(what, s string, v4 bool, bits int) error {
	if s == "" {
		return nil
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: %w", what, s, err)
	case p.Addr().Is4() != v4:
		return fmt.Errorf("%s %q: wrong address family", what, s)
	case p != p.Masked():
		return fmt.Errorf("%s %q: host bits set", what, s)
	case bits != 0 && p.Bits() != bits:
		return fmt.Errorf("%s %q: must be a /%d", what, s, bits)
	}
	return nil
}

// Generate describes a large synthetic scenario.
type Generate struct {
	// Region defaults to us-east-1.
	Region string
	// Instances is the number of running instances (m5.large, one ENI each).
	Instances int
	// PrePrefixed gives every primary ENI an IPv6 address and a /80 already.
	PrePrefixed bool
	// IPv6Subnet gives the subnets an IPv6 /64 (otherwise they are IPv4-only).
	IPv6Subnet bool
	// Zones spreads instances over this many zones (default 3, at most 6).
	Zones int
	// Seed for IDs and random choices (default 1).
	Seed int64
}

// GenerateScenario builds a scenario with g.Instances instances spread over
// one /20 subnet per zone.
func GenerateScenario(g Generate) *Scenario {
	if g.Region == "" {
		g.Region = "us-east-1"
	}
	if g.Zones <= 0 {
		g.Zones = 3
	}
	g.Zones = min(g.Zones, 6)
	s := &Scenario{Region: g.Region, Seed: g.Seed}
	s.VPCs = []VPC{{CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f18:4000:a900::/56"}}
	for z := range g.Zones {
		zone := g.Region + string(rune('a'+z))
		s.Zones = append(s.Zones, Zone{Name: zone})
		sn := Subnet{ID: genID("subnet-", g.Seed, uint64(1<<20+z)), Zone: zone, CIDR: fmt.Sprintf("10.0.%d.0/20", z*16)}
		if g.IPv6Subnet {
			sn.IPv6CIDR = fmt.Sprintf("2600:1f18:4000:a9%02x::/64", z+1)
		}
		s.Subnets = append(s.Subnets, sn)
	}
	s.Instances = make([]Instance, 0, g.Instances)
	for i := range g.Instances {
		in := Instance{Type: "m5.large", State: "running", Subnet: s.Subnets[i%g.Zones].ID}
		if g.PrePrefixed && g.IPv6Subnet {
			in.ENIs = []ENI{{DeviceIndex: 0, IPv6AddressCount: 1, IPv6PrefixCount: 1}}
		}
		s.Instances = append(s.Instances, in)
	}
	return s
}
