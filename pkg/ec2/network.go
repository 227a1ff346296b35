package ec2

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The client-side bucket for the security-group and network-interface calls
// load balancers make. AWS charges them to its mutating-actions bucket.
const (
	DefaultNetworkQPS   = 4
	DefaultNetworkBurst = 20
)

// Subnet is the part of a subnet the load balancers use.
type Subnet struct {
	ID, VPCID, Zone string
	IPv4CIDR        netip.Prefix
	// IPv6CIDR is the subnet's associated IPv6 /64, or invalid.
	IPv6CIDR netip.Prefix
	Tags     map[string]string
}

// vpcSubnetsTTL is how long a VPC's subnet list answers VPCSubnets: load
// balancers read it at every sync (to choose subnets, and for health check
// rules), and subnets and their tags change rarely.
const vpcSubnetsTTL = time.Minute

// vpcSubnetCache holds VPCs' subnet lists; one entry per VPC the cluster's
// load balancers use.
type vpcSubnetCache struct {
	mu    sync.Mutex
	m     map[string]vpcSubnetsEntry
	group singleflight.Group
}

type vpcSubnetsEntry struct {
	subnets []Subnet
	at      time.Time
}

// VPCSubnets returns every subnet of a VPC, sorted by ID: a copy the caller
// may change. Answers are cached for a minute; the call is DescribeSubnets
// with a vpc-id filter, charged to the describe bucket.
func (c *Client) VPCSubnets(ctx context.Context, vpcID string) ([]Subnet, error) {
	now := time.Now()
	c.vpcSubnets.mu.Lock()
	if e, ok := c.vpcSubnets.m[vpcID]; ok && now.Sub(e.at) < vpcSubnetsTTL {
		c.vpcSubnets.mu.Unlock()
		return cloneSubnets(e.subnets), nil
	}
	c.vpcSubnets.mu.Unlock()
	v, err, _ := c.vpcSubnets.group.Do(vpcID, func() (any, error) {
		subnets, err := c.describeVPCSubnets(ctx, vpcID)
		if err != nil {
			return nil, err
		}
		c.vpcSubnets.mu.Lock()
		if c.vpcSubnets.m == nil {
			c.vpcSubnets.m = map[string]vpcSubnetsEntry{}
		}
		c.vpcSubnets.m[vpcID] = vpcSubnetsEntry{subnets: subnets, at: now}
		c.vpcSubnets.mu.Unlock()
		return subnets, nil
	})
	if err != nil {
		return nil, err
	}
	return cloneSubnets(v.([]Subnet)), nil
}

func cloneSubnets(in []Subnet) []Subnet {
	out := slices.Clone(in)
	for i := range out {
		out[i].Tags = maps.Clone(out[i].Tags)
	}
	return out
}

func (c *Client) describeVPCSubnets(ctx context.Context, vpcID string) ([]Subnet, error) {
	in := &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}}
	var subnets []Subnet
	for {
		if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
			return nil, err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		out, err := c.api.DescribeSubnets(callCtx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe subnets of %s: %w", vpcID, err)
		}
		for i := range out.Subnets {
			s := &out.Subnets[i]
			sub := Subnet{
				ID:       aws.ToString(s.SubnetId),
				VPCID:    aws.ToString(s.VpcId),
				Zone:     aws.ToString(s.AvailabilityZone),
				IPv6CIDR: subnetIPv6(s),
				Tags:     make(map[string]string, len(s.Tags)),
			}
			if p, err := netip.ParsePrefix(aws.ToString(s.CidrBlock)); err == nil {
				sub.IPv4CIDR = p
			}
			for _, t := range s.Tags {
				sub.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			subnets = append(subnets, sub)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	slices.SortFunc(subnets, func(a, b Subnet) int { return strings.Compare(a.ID, b.ID) })
	return subnets, nil
}

// SecurityGroup is a security group with its ingress rules.
type SecurityGroup struct {
	ID, Name, VPCID string
	Tags            map[string]string
	Ingress         []IngressRule
}

// IngressRule is one ingress permission for one source CIDR. Protocol is
// "tcp", "udp", "icmp" or "-1"; for ICMP FromPort and ToPort are type and code.
type IngressRule struct {
	Protocol         string
	FromPort, ToPort int32
	CIDR             netip.Prefix
	Description      string
}

// SecurityGroups returns the named security groups.
func (c *Client) SecurityGroups(ctx context.Context, ids []string) ([]SecurityGroup, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	sgs, err := c.securityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	if err != nil {
		return nil, fmt.Errorf("describe security groups %s: %w", strings.Join(ids, ","), err)
	}
	return sgs, nil
}

// TaggedSecurityGroups returns the security groups of a VPC that carry the
// tag key (e.g. kubernetes.io/cluster/<id>).
func (c *Client) TaggedSecurityGroups(ctx context.Context, vpcID, tagKey string) ([]SecurityGroup, error) {
	sgs, err := c.securityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
		{Name: aws.String("tag-key"), Values: []string{tagKey}},
	}})
	if err != nil {
		return nil, fmt.Errorf("describe security groups of %s tagged %s: %w", vpcID, tagKey, err)
	}
	return sgs, nil
}

func (c *Client) securityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput) ([]SecurityGroup, error) {
	if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.api.DescribeSecurityGroups(callCtx, in)
	if err != nil {
		return nil, err
	}
	var sgs []SecurityGroup
	for _, g := range out.SecurityGroups {
		sg := SecurityGroup{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), VPCID: aws.ToString(g.VpcId), Tags: map[string]string{}}
		for _, t := range g.Tags {
			sg.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		for _, p := range g.IpPermissions {
			proto, from, to := aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
			for _, r := range p.IpRanges {
				if pfx, err := netip.ParsePrefix(aws.ToString(r.CidrIp)); err == nil {
					sg.Ingress = append(sg.Ingress, IngressRule{proto, from, to, pfx, aws.ToString(r.Description)})
				}
			}
			for _, r := range p.Ipv6Ranges {
				if pfx, err := netip.ParsePrefix(aws.ToString(r.CidrIpv6)); err == nil {
					sg.Ingress = append(sg.Ingress, IngressRule{proto, from, to, pfx, aws.ToString(r.Description)})
				}
			}
		}
		sgs = append(sgs, sg)
	}
	return sgs, nil
}

// AuthorizeIngress adds ingress rules to a security group. Rules that
// already exist are no error (the others are still added).
func (c *Client) AuthorizeIngress(ctx context.Context, groupID string, rules []IngressRule) error {
	return c.changeIngress(ctx, groupID, rules, "authorize", "InvalidPermission.Duplicate", func(ctx context.Context, perms []ec2types.IpPermission) error {
		_, err := c.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: perms})
		return err
	})
}

// RevokeIngress removes ingress rules from a security group. Rules that do
// not exist are no error (the others are still revoked).
func (c *Client) RevokeIngress(ctx context.Context, groupID string, rules []IngressRule) error {
	return c.changeIngress(ctx, groupID, rules, "revoke", "InvalidPermission.NotFound", func(ctx context.Context, perms []ec2types.IpPermission) error {
		_, err := c.api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: perms})
		return err
	})
}

// changeIngress makes one authorize or revoke call for rules. EC2 fails the
// whole call when one rule is already there (authorize) or already gone
// (revoke, in a nondefault VPC), and changes nothing: on that code the
// rules are sent again one by one, and a single rule answered with it is
// taken as done.
func (c *Client) changeIngress(ctx context.Context, groupID string, rules []IngressRule, verb, doneCode string, call func(context.Context, []ec2types.IpPermission) error) error {
	if len(rules) == 0 {
		return nil
	}
	if err := c.wait(ctx, c.netRL, "network"); err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	err := call(callCtx, sdkPermissions(rules))
	cancel()
	if err != nil && ErrorCode(err) != doneCode {
		return fmt.Errorf("%s %d ingress rules on %s: %w", verb, len(rules), groupID, err)
	}
	if err != nil && len(rules) > 1 {
		for _, r := range rules {
			if err := c.changeIngress(ctx, groupID, []IngressRule{r}, verb, doneCode, call); err != nil {
				return err
			}
		}
	}
	return nil
}

func sdkPermissions(rules []IngressRule) []ec2types.IpPermission {
	out := make([]ec2types.IpPermission, 0, len(rules))
	for _, r := range rules {
		p := ec2types.IpPermission{IpProtocol: aws.String(r.Protocol), FromPort: aws.Int32(r.FromPort), ToPort: aws.Int32(r.ToPort)}
		desc := nonEmpty(r.Description)
		if r.CIDR.Addr().Is4() {
			p.IpRanges = []ec2types.IpRange{{CidrIp: aws.String(r.CIDR.String()), Description: desc}}
		} else {
			p.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String(r.CIDR.String()), Description: desc}}
		}
		out = append(out, p)
	}
	return out
}

// EnablePrimaryIPv6 makes the ENI's first IPv6 global unicast address its
// primary IPv6 address. AWS cannot undo this.
func (c *Client) EnablePrimaryIPv6(ctx context.Context, eniID string) error {
	if !validENI(eniID) {
		return fmt.Errorf("enable primary IPv6 on %q: invalid network interface ID", eniID)
	}
	if err := c.wait(ctx, c.netRL, "network"); err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	_, err := c.api.ModifyNetworkInterfaceAttribute(callCtx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eniID), EnablePrimaryIpv6: aws.Bool(true),
	})
	// Whatever the outcome, the cached copy of the instance may no longer
	// show the ENI's addresses as they are.
	c.res.forgetENI(eniID)
	if err != nil {
		return fmt.Errorf("enable primary IPv6 on %s: %w", eniID, err)
	}
	return nil
}
