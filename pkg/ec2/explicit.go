package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ErrInUse is wrapped (see InUseError) when EC2 refuses an explicit IPv6
// address or prefix as in use and a describe shows another network
// interface holding it: choose another value.
var ErrInUse = errors.New("IPv6 value is in use by another network interface")

// ErrInUseUnconfirmed is wrapped (see InUseError) when EC2 refuses an
// explicit value as in use but no describe shows who holds it: it may be this
// ENI's own earlier assignment not yet visible (EC2 is eventually
// consistent), or a network interface DescribeInstances does not list. Ask
// for the same value again later; do not choose another one yet.
var ErrInUseUnconfirmed = errors.New("IPv6 value is in use; its holder is not visible")

// EC2 codes after which an explicit assignment looks up who holds the value.
// InvalidIPAddress.InUse is what ec2sim answers (AWS does not document the
// code for AssignIpv6Addresses); InvalidParameterValue and
// PrivateIpAddressLimitExceeded are checked too, because a repeat of a value
// already on this ENI might be answered with either.
const (
	codeIPInUse      = "InvalidIPAddress.InUse"
	codeInvalidValue = "InvalidParameterValue"
	codeLimit        = "PrivateIpAddressLimitExceeded"
)

// InUseError is an explicit value EC2 refused as in use.
type InUseError struct {
	ENI   string // the network interface asked for
	Value string // the address or /80 prefix
	// Holder is the network interface a describe shows holding Value, ""
	// when none does.
	Holder string
	Err    error // EC2's answer
}

func (e *InUseError) Error() string {
	if e.Holder != "" {
		return fmt.Sprintf("assign %s to %s: in use by %s: %v", e.Value, e.ENI, e.Holder, e.Err)
	}
	return fmt.Sprintf("assign %s to %s: in use, holder not visible: %v", e.Value, e.ENI, e.Err)
}

// Unwrap gives ErrInUse (holder seen) or ErrInUseUnconfirmed, and EC2's error.
func (e *InUseError) Unwrap() []error {
	if e.Holder != "" {
		return []error{ErrInUse, e.Err}
	}
	return []error{ErrInUseUnconfirmed, e.Err}
}

// AssignIPv6Explicit asks EC2 for exactly addr and prefix (a /80) on the
// ENI; either may be the zero value to skip it. It is safe to repeat: a value
// EC2 refuses because this ENI already holds it is reported as assigned, so a
// retry after an ambiguous 500, a lost reply or a crash never assigns a
// second value (and the SDK's own retries of a 5xx are just as harmless).
//
// Addresses and prefixes go in two calls, address first: AWS does not
// document that AssignIpv6Addresses takes both kinds in one request (and
// documents that CreateNetworkInterface does not), and ec2sim refuses it.
// Each call uses a credit from ReserveAssign when there is one.
//
// A value refused as in use is looked up with DescribeInstances (filters
// network-interface.ipv6-addresses.ipv6-address and
// network-interface.ipv6-prefixes.ipv6-prefix). On this ENI: success. On
// another: *InUseError wrapping ErrInUse, choose another value. Nowhere
// visible: *InUseError wrapping ErrInUseUnconfirmed, ask again later. Other
// errors are EC2's, wrapped. When the address is assigned and the prefix
// fails, the returned Assigned holds the address.
func (c *Client) AssignIPv6Explicit(ctx context.Context, eniID string, addr netip.Addr, prefix netip.Prefix) (Assigned, error) {
	res := Assigned{ENI: eniID}
	if !validENI(eniID) {
		return res, fmt.Errorf("assign ipv6 to %q: invalid network interface ID", eniID)
	}
	hasAddr, hasPrefix := addr.IsValid(), prefix.IsValid()
	switch {
	case !hasAddr && !hasPrefix:
		return res, fmt.Errorf("assign ipv6 to %s: no address and no prefix given", eniID)
	case hasAddr && (!addr.Is6() || addr.Is4In6() || addr.Zone() != ""):
		return res, fmt.Errorf("assign ipv6 to %s: %s is not an IPv6 address", eniID, addr)
	case hasPrefix && (!prefix.Addr().Is6() || prefix.Addr().Is4In6() || prefix.Bits() != 80 || prefix.Masked() != prefix):
		return res, fmt.Errorf("assign ipv6 to %s: %s is not an IPv6 /80 prefix", eniID, prefix)
	}
	if hasAddr {
		err := c.assignExplicit(ctx, eniID, addr.String(), &ec2.AssignIpv6AddressesInput{
			NetworkInterfaceId: aws.String(eniID), Ipv6Addresses: []string{addr.String()}})
		if err != nil {
			return res, err
		}
		res.Addresses = []netip.Addr{addr}
	}
	if hasPrefix {
		err := c.assignExplicit(ctx, eniID, prefix.String(), &ec2.AssignIpv6AddressesInput{
			NetworkInterfaceId: aws.String(eniID), Ipv6Prefixes: []string{prefix.String()}})
		if err != nil {
			return res, err
		}
		res.Prefixes = []netip.Prefix{prefix}
	}
	return res, nil
}

// assignExplicit makes one explicit call for value and settles an in-use
// answer by looking up the holder.
func (c *Client) assignExplicit(ctx context.Context, eniID, value string, in *ec2.AssignIpv6AddressesInput) error {
	if !c.useCredit(eniID) {
		if err := c.takeMutating(ctx, 1); err != nil {
			return err
		}
	}
	defer c.res.forgetENI(eniID)
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	out, err := c.api.AssignIpv6Addresses(callCtx, in)
	cancel()
	if err == nil {
		// The reply lists what it assigned; an empty list (not documented,
		// but conceivable for a value the ENI already held) still means the
		// value is on the ENI. A different value means EC2 did not do what
		// was asked.
		for _, s := range append(out.AssignedIpv6Addresses, out.AssignedIpv6Prefixes...) {
			if !sameValue(s, value) {
				return fmt.Errorf("assign ipv6 to %s: asked for %s, reply lists %q", eniID, value, s)
			}
		}
		return nil
	}
	code := ErrorCode(err)
	if code != codeIPInUse && code != codeInvalidValue && code != codeLimit {
		return fmt.Errorf("assign %s to %s: %w", value, eniID, err)
	}
	holder, lerr := c.holderOf(ctx, eniID, value, len(in.Ipv6Prefixes) > 0)
	switch {
	case lerr != nil && code == codeIPInUse:
		return &InUseError{ENI: eniID, Value: value, Err: fmt.Errorf("%w (looking up the holder: %v)", err, lerr)}
	case lerr != nil:
		return fmt.Errorf("assign %s to %s: %w", value, eniID, err)
	case holder == eniID:
		return nil
	case holder != "":
		return &InUseError{ENI: eniID, Value: value, Holder: holder, Err: err}
	case code == codeIPInUse:
		return &InUseError{ENI: eniID, Value: value, Err: err}
	default:
		return fmt.Errorf("assign %s to %s: %w", value, eniID, err)
	}
}

// holderOf returns the network interface a DescribeInstances shows holding
// value (an address, or a prefix when isPrefix), preferring eniID; "" when
// none does.
func (c *Client) holderOf(ctx context.Context, eniID, value string, isPrefix bool) (string, error) {
	filter := "network-interface.ipv6-addresses.ipv6-address"
	if isPrefix {
		filter = "network-interface.ipv6-prefixes.ipv6-prefix"
	}
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String(filter), Values: []string{value}}}}
	holder := ""
	for pages := 0; pages < 10; pages++ {
		if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
			return "", err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		out, err := c.api.DescribeInstances(callCtx, in)
		cancel()
		if err != nil {
			return "", fmt.Errorf("describe the holder of %s: %w", value, err)
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				for _, ni := range inst.NetworkInterfaces {
					if !eniHolds(ni, value, isPrefix) {
						continue
					}
					id := aws.ToString(ni.NetworkInterfaceId)
					if id == eniID {
						return id, nil
					}
					if holder == "" {
						holder = id
					}
				}
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return holder, nil
}

func eniHolds(ni ec2types.InstanceNetworkInterface, value string, isPrefix bool) bool {
	if isPrefix {
		for _, p := range ni.Ipv6Prefixes {
			if sameValue(aws.ToString(p.Ipv6Prefix), value) {
				return true
			}
		}
		return false
	}
	for _, a := range ni.Ipv6Addresses {
		if sameValue(aws.ToString(a.Ipv6Address), value) {
			return true
		}
	}
	return false
}

// sameValue compares two addresses or two prefixes as values, whatever
// their spelling.
func sameValue(a, b string) bool {
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x == y
	}
	if x, err := netip.ParsePrefix(a); err == nil {
		y, err := netip.ParsePrefix(b)
		return err == nil && x.Masked() == y.Masked() && x.Bits() == y.Bits()
	}
	return a == b
}
