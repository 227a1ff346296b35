package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// subnetTTL is how long a subnet's IPv6 CIDR answers lookups. Subnets gain
// or lose an IPv6 CIDR rarely, and a stale answer only delays a node: an
// assignment outside the subnet's CIDR is refused by EC2.
const subnetTTL = 10 * time.Minute

// ErrSubnetNotFound reports a subnet EC2 does not know.
var ErrSubnetNotFound = errors.New("subnet not found")

// subnetCache holds subnets' IPv6 CIDRs; it is bounded by the number of
// subnets nodes live in, and entries expire.
type subnetCache struct {
	mu sync.Mutex
	m  map[string]subnetEntry
	// group makes concurrent lookups of one subnet share one describe.
	group singleflight.Group
}

type subnetEntry struct {
	cidr netip.Prefix
	at   time.Time
}

// SubnetIPv6CIDR returns the subnet's IPv6 /64 (its first associated IPv6
// CIDR block), or an invalid prefix when it has none. Answers are cached
// for ten minutes. The call is DescribeSubnets, charged to the describe
// bucket.
func (c *Client) SubnetIPv6CIDR(ctx context.Context, subnetID string) (netip.Prefix, error) {
	if !strings.HasPrefix(subnetID, "subnet-") {
		return netip.Prefix{}, fmt.Errorf("subnet %q: invalid subnet ID", subnetID)
	}
	now := time.Now()
	c.subnets.mu.Lock()
	if e, ok := c.subnets.m[subnetID]; ok && now.Sub(e.at) < subnetTTL {
		c.subnets.mu.Unlock()
		return e.cidr, nil
	}
	c.subnets.mu.Unlock()
	v, err, _ := c.subnets.group.Do(subnetID, func() (any, error) { return c.describeSubnet(ctx, subnetID, now) })
	if err != nil {
		return netip.Prefix{}, err
	}
	return v.(netip.Prefix), nil
}

// describeSubnet reads one subnet's IPv6 CIDR from EC2 and caches it.
func (c *Client) describeSubnet(ctx context.Context, subnetID string, now time.Time) (netip.Prefix, error) {
	if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
		return netip.Prefix{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	out, err := c.api.DescribeSubnets(callCtx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}})
	if ErrorCode(err) == "InvalidSubnetID.NotFound" {
		return netip.Prefix{}, fmt.Errorf("describe subnet %s: %w: %w", subnetID, ErrSubnetNotFound, err)
	}
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("describe subnet %s: %w", subnetID, err)
	}
	var found *ec2types.Subnet
	for i := range out.Subnets {
		if aws.ToString(out.Subnets[i].SubnetId) == subnetID {
			found = &out.Subnets[i]
		}
	}
	if found == nil {
		return netip.Prefix{}, fmt.Errorf("describe subnet %s: %w", subnetID, ErrSubnetNotFound)
	}
	cidr := subnetIPv6(found)
	c.subnets.mu.Lock()
	for id, e := range c.subnets.m {
		if now.Sub(e.at) >= subnetTTL {
			delete(c.subnets.m, id)
		}
	}
	c.subnets.m[subnetID] = subnetEntry{cidr: cidr, at: now}
	c.subnets.mu.Unlock()
	return cidr, nil
}

// subnetIPv6 returns the first associated IPv6 /64 of a subnet.
func subnetIPv6(s *ec2types.Subnet) netip.Prefix {
	for _, a := range s.Ipv6CidrBlockAssociationSet {
		if a.Ipv6CidrBlockState != nil && a.Ipv6CidrBlockState.State != ec2types.SubnetCidrBlockStateCodeAssociated {
			continue
		}
		p, err := netip.ParsePrefix(aws.ToString(a.Ipv6CidrBlock))
		if err == nil && p.Addr().Is6() && p.Bits() == 64 {
			return p.Masked()
		}
	}
	return netip.Prefix{}
}
