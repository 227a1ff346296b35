package ec2

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// AssignIPv6Addresses asks EC2 for count more IPv6 addresses on the ENI and
// returns what it assigned, from the reply itself (never a re-describe). The
// cached instance owning the ENI is forgotten whatever the outcome.
func (c *Client) AssignIPv6Addresses(ctx context.Context, eniID string, count int) (Assigned, error) {
	return c.assign(ctx, eniID, &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eniID),
		Ipv6AddressCount:   aws.Int32(int32(count)),
	}, count)
}

// AssignIPv6Prefixes asks EC2 for count more /80 prefixes on the ENI and
// returns what it assigned. Addresses and prefixes are separate calls.
func (c *Client) AssignIPv6Prefixes(ctx context.Context, eniID string, count int) (Assigned, error) {
	return c.assign(ctx, eniID, &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eniID),
		Ipv6PrefixCount:    aws.Int32(int32(count)),
	}, count)
}

func (c *Client) assign(ctx context.Context, eniID string, in *ec2.AssignIpv6AddressesInput, count int) (Assigned, error) {
	if !validENI(eniID) {
		return Assigned{}, fmt.Errorf("assign ipv6 to %q: invalid network interface ID", eniID)
	}
	if count < 1 || count > 1<<16 {
		return Assigned{}, fmt.Errorf("assign ipv6 to %s: invalid count %d", eniID, count)
	}
	if !c.useCredit(eniID) {
		if err := c.takeMutating(ctx, 1); err != nil {
			return Assigned{}, err
		}
	}
	defer c.res.forgetENI(eniID)
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.api.AssignIpv6Addresses(callCtx, in)
	if err != nil {
		return Assigned{}, fmt.Errorf("assign ipv6 to %s: %w", eniID, err)
	}
	res := Assigned{ENI: aws.ToString(out.NetworkInterfaceId)}
	if res.ENI == "" {
		res.ENI = eniID
	}
	for _, s := range out.AssignedIpv6Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Assigned{}, fmt.Errorf("assign ipv6 to %s: reply holds invalid address %q", eniID, s)
		}
		res.Addresses = append(res.Addresses, a)
	}
	for _, s := range out.AssignedIpv6Prefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is6() {
			return Assigned{}, fmt.Errorf("assign ipv6 to %s: reply holds invalid prefix %q", eniID, s)
		}
		res.Prefixes = append(res.Prefixes, p.Masked())
	}
	if in.Ipv6AddressCount != nil && len(res.Addresses) == 0 || in.Ipv6PrefixCount != nil && len(res.Prefixes) == 0 {
		return res, fmt.Errorf("assign ipv6 to %s: reply lists nothing assigned", eniID)
	}
	return res, nil
}
