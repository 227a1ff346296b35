package ec2

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/time/rate"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
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

var assignCreditENIs = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace:      metricsNamespace,
	Subsystem:      metricsSubsystem,
	Name:           "assign_credit_enis",
	Help:           "Network interfaces holding assign calls paid for by ReserveAssign and not yet made.",
	StabilityLevel: metrics.ALPHA,
})

// The gauge registers itself: RegisterMetrics (metrics.go) predates it.
func init() { legacyregistry.MustRegister(assignCreditENIs) }

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

// ReserveAssign waits until the client-side limiter allows calls assign
// calls and charges for them now; the next calls assign calls on eniID then
// go out without waiting again. Callers that must record an intent right
// before the calls go out reserve first. Calls that will not be made after
// all (the intent write failed, the first call failed) are given back with
// ReleaseAssign.
func (c *Client) ReserveAssign(ctx context.Context, eniID string, calls int) error {
	if calls <= 0 {
		return nil
	}
	if err := c.takeMutating(ctx, calls); err != nil {
		return err
	}
	c.creditMu.Lock()
	c.credits[eniID] += calls
	assignCreditENIs.Set(float64(len(c.credits)))
	c.creditMu.Unlock()
	return nil
}

// ReleaseAssign drops the calls reserved on eniID and not made, and gives
// their tokens back to the mutating limiter, so that a retry does not pay
// twice and no ENI keeps credits forever. It is a no-op for an ENI without
// credits.
//
// The tokens cannot go back through rate.Reservation.Cancel: Cancel restores
// nothing once the reservation's time to act has passed, and ReserveAssign
// returns only then. They are kept beside the limiter instead and spent
// before it, never more than the bucket could hold: together with the
// limiter's own tokens they never exceed its burst, as in AWS's bucket,
// which never saw those calls.
func (c *Client) ReleaseAssign(eniID string) {
	c.creditMu.Lock()
	n := c.credits[eniID]
	delete(c.credits, eniID)
	assignCreditENIs.Set(float64(len(c.credits)))
	c.creditMu.Unlock()
	if n > 0 {
		c.returned().put(c.mutateRL, n)
	}
}

// useCredit spends one reserved call on eniID, if there is one.
func (c *Client) useCredit(eniID string) bool {
	c.creditMu.Lock()
	defer c.creditMu.Unlock()
	if c.credits[eniID] <= 0 {
		delete(c.credits, eniID)
		return false
	}
	c.credits[eniID]--
	if c.credits[eniID] == 0 {
		delete(c.credits, eniID)
	}
	assignCreditENIs.Set(float64(len(c.credits)))
	return true
}

// returnedTokens holds, per mutating limiter, the tokens given back by
// ReleaseAssign. It is keyed by the limiter because the Client struct lives
// in client.go; one entry per Client, never removed (Clients are few and
// long-lived).
var returnedTokens sync.Map // *rate.Limiter → *returnedPool

type returnedPool struct {
	mu sync.Mutex
	n  int
}

func (c *Client) returned() *returnedPool {
	v, _ := returnedTokens.LoadOrStore(c.mutateRL, &returnedPool{})
	return v.(*returnedPool)
}

// returnRoom is how many returned tokens may count now: the limiter's tokens plus
// these never exceed its burst.
func returnRoom(l *rate.Limiter) int {
	// The epsilon absorbs the limiter's float refill since the last call.
	return max(0, int(math.Floor(float64(l.Burst())-l.Tokens()+1e-6)))
}

func (p *returnedPool) put(l *rate.Limiter, n int) {
	p.mu.Lock()
	p.n = min(p.n+n, returnRoom(l))
	p.mu.Unlock()
}

// take removes up to n returned tokens and reports how many it took.
func (p *returnedPool) take(l *rate.Limiter, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = min(p.n, returnRoom(l))
	k := min(p.n, n)
	p.n -= k
	return k
}

// takeMutating charges n mutating calls: returned tokens first, then the
// limiter, waiting for it as needed.
func (c *Client) takeMutating(ctx context.Context, n int) error {
	pool := c.returned()
	k := pool.take(c.mutateRL, n)
	if n-k > 0 {
		if err := c.waitN(ctx, c.mutateRL, "mutating", n-k); err != nil {
			pool.put(c.mutateRL, k)
			return err
		}
	}
	return nil
}

// mutatingTokens is how many mutating calls could go out now without
// waiting: the limiter's tokens and the returned ones.
func (c *Client) mutatingTokens() float64 {
	p := c.returned()
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.mutateRL.Tokens() + float64(min(p.n, returnRoom(c.mutateRL)))
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
