package ec2

import (
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fromSDK copies the fields the CCM uses out of an SDK instance. Unparsable
// addresses are skipped: EC2 never sends them, and a garbage reply must not
// produce a half-valid address.
func fromSDK(in *ec2types.Instance) *Instance {
	out := &Instance{
		ID:             aws.ToString(in.InstanceId),
		Type:           string(in.InstanceType),
		VPCID:          aws.ToString(in.VpcId),
		SubnetID:       aws.ToString(in.SubnetId),
		PrivateDNSName: aws.ToString(in.PrivateDnsName),
		PublicDNSName:  aws.ToString(in.PublicDnsName),
		PrivateIP:      parseAddr(in.PrivateIpAddress),
		PublicIP:       parseAddr(in.PublicIpAddress),
		LaunchTime:     aws.ToTime(in.LaunchTime),
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
		out.ZoneID = aws.ToString(in.Placement.AvailabilityZoneId)
	}
	if len(in.Tags) > 0 {
		out.Tags = make(map[string]string, len(in.Tags))
		for _, t := range in.Tags {
			out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	for i := range in.NetworkInterfaces {
		out.ENIs = append(out.ENIs, eniFromSDK(&in.NetworkInterfaces[i]))
	}
	slices.SortStableFunc(out.ENIs, func(a, b ENI) int {
		if a.NetworkCardIndex != b.NetworkCardIndex {
			return int(a.NetworkCardIndex) - int(b.NetworkCardIndex)
		}
		if a.DeviceIndex != b.DeviceIndex {
			return int(a.DeviceIndex) - int(b.DeviceIndex)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func eniFromSDK(n *ec2types.InstanceNetworkInterface) ENI {
	e := ENI{
		ID:       aws.ToString(n.NetworkInterfaceId),
		SubnetID: aws.ToString(n.SubnetId),
		MAC:      aws.ToString(n.MacAddress),
	}
	// An ENI without attachment data sorts last and is never primary.
	e.NetworkCardIndex, e.DeviceIndex = math.MaxInt32, math.MaxInt32
	if a := n.Attachment; a != nil && a.DeviceIndex != nil {
		e.NetworkCardIndex = aws.ToInt32(a.NetworkCardIndex)
		e.DeviceIndex = *a.DeviceIndex
	}
	var secondary []netip.Addr
	for _, p := range n.PrivateIpAddresses {
		a := parseAddr(p.PrivateIpAddress)
		if !a.IsValid() {
			continue
		}
		if aws.ToBool(p.Primary) {
			e.PrivateIPv4 = append(e.PrivateIPv4, a)
		} else {
			secondary = append(secondary, a)
		}
	}
	if len(e.PrivateIPv4) == 0 {
		if a := parseAddr(n.PrivateIpAddress); a.IsValid() {
			e.PrivateIPv4 = append(e.PrivateIPv4, a)
			secondary = slices.DeleteFunc(secondary, func(s netip.Addr) bool { return s == a })
		}
	}
	e.PrivateIPv4 = append(e.PrivateIPv4, secondary...)
	for _, a := range n.Ipv6Addresses {
		addr := parseAddr(a.Ipv6Address)
		if !addr.Is6() {
			continue
		}
		e.IPv6 = append(e.IPv6, IPv6Address{Addr: addr, Primary: aws.ToBool(a.IsPrimaryIpv6)})
	}
	for _, p := range n.Ipv6Prefixes {
		pfx, err := netip.ParsePrefix(aws.ToString(p.Ipv6Prefix))
		if err != nil || !pfx.Addr().Is6() {
			continue
		}
		e.IPv6Prefixes = append(e.IPv6Prefixes, pfx.Masked())
	}
	slices.SortFunc(e.IPv6Prefixes, comparePrefix)
	for _, g := range n.Groups {
		if id := aws.ToString(g.GroupId); id != "" {
			e.SecurityGroups = append(e.SecurityGroups, id)
		}
	}
	slices.Sort(e.SecurityGroups)
	return e
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func parseAddr(s *string) netip.Addr {
	if s == nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(*s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

// clone returns a deep copy so callers never share memory with the cache.
func (i *Instance) clone() *Instance {
	if i == nil {
		return nil
	}
	c := *i
	if i.Tags != nil {
		c.Tags = make(map[string]string, len(i.Tags))
		for k, v := range i.Tags {
			c.Tags[k] = v
		}
	}
	c.NetworkNodes = slices.Clone(i.NetworkNodes)
	c.ENIs = make([]ENI, len(i.ENIs))
	for k, e := range i.ENIs {
		e.PrivateIPv4 = slices.Clone(e.PrivateIPv4)
		e.IPv6 = slices.Clone(e.IPv6)
		e.IPv6Prefixes = slices.Clone(e.IPv6Prefixes)
		c.ENIs[k] = e
	}
	if i.ENIs == nil {
		c.ENIs = nil
	}
	return &c
}
