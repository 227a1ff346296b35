package ec2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	sdkec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ipv6alloc"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// explicitWorld is ec2sim with n bare m5.large instances in IPv6 subnets.
type explicitWorld struct {
	sim *ec2sim.Sim
	ids []string
}

func newExplicitWorld(t *testing.T, n int) *explicitWorld {
	t.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, IPv6Subnet: true, Zones: 1})
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatalf("start ec2sim: %v", err)
	}
	t.Cleanup(sim.Close)
	w := &explicitWorld{sim: sim}
	for _, i := range sim.State().Instances {
		w.ids = append(w.ids, i.ID)
	}
	if len(w.ids) != n {
		t.Fatalf("%d instances, want %d", len(w.ids), n)
	}
	return w
}

// eni returns the primary ENI of instance i and its subnet's IPv6 /64, from
// the emulator's state.
func (w *explicitWorld) eni(t *testing.T, i int) (string, netip.Prefix) {
	t.Helper()
	st := w.sim.State()
	inst, ok := st.Instance(w.ids[i])
	if !ok || len(inst.ENIs) == 0 {
		t.Fatalf("no instance %s", w.ids[i])
	}
	e := inst.ENIs[0]
	for _, sn := range st.Subnets {
		if sn.ID == e.Subnet {
			return e.ID, netip.MustParsePrefix(sn.IPv6CIDR)
		}
	}
	t.Fatalf("no subnet %s", e.Subnet)
	return "", netip.Prefix{}
}

// held returns what the emulator says instance i's primary ENI holds now.
func (w *explicitWorld) held(t *testing.T, i int) (addrs, prefixes []string) {
	t.Helper()
	inst, _ := w.sim.State().Instance(w.ids[i])
	for _, a := range inst.ENIs[0].IPv6 {
		addrs = append(addrs, a.Address)
	}
	return addrs, inst.ENIs[0].IPv6Prefixes
}

func fastRetryConfig(cfg aws.Config) aws.Config {
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	return cfg
}

func (w *explicitWorld) client(t *testing.T, cfg Config, transport http.RoundTripper) *Client {
	t.Helper()
	awsCfg := fastRetryConfig(w.sim.AWSConfig())
	if transport != nil {
		awsCfg.HTTPClient = &http.Client{Transport: transport}
	}
	c, err := NewFromAWSConfig(awsCfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Client) creditENIs() int {
	c.creditMu.Lock()
	defer c.creditMu.Unlock()
	return len(c.credits)
}

// Reserving 2 and releasing them gives both tokens back, and the map keeps
// no entry for the ENI.
func TestReleaseAssignReturnsTokens(t *testing.T) {
	w := newExplicitWorld(t, 1)
	// Four tokens, refilled once every ~17 minutes: a wait fails at once.
	c := w.client(t, Config{MutatingQPS: 0.001, MutatingBurst: 4}, nil)
	eni, _ := w.eni(t, 0)
	before := c.mutatingTokens()
	if before < 3.99 {
		t.Fatalf("tokens before = %v", before)
	}
	if err := c.ReserveAssign(t.Context(), eni, 2); err != nil {
		t.Fatal(err)
	}
	if got := c.mutatingTokens(); got > before-1.99 || c.creditENIs() != 1 {
		t.Fatalf("after reserve: tokens %v, %d ENIs with credits", got, c.creditENIs())
	}
	c.ReleaseAssign(eni)
	if got := c.mutatingTokens(); got < before-0.01 {
		t.Errorf("after release: tokens %v, want %v", got, before)
	}
	if c.creditENIs() != 0 {
		t.Errorf("credits map keeps %d entries", c.creditENIs())
	}
	c.ReleaseAssign("eni-0123456789abcdef0") // unknown: no-op, no entry
	if c.creditENIs() != 0 {
		t.Errorf("releasing an unknown ENI added an entry")
	}
	// The returned tokens are spendable: all four go out without waiting
	// (the limiter alone holds two), and a fifth does not.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := c.ReserveAssign(ctx, eni, 4); err != nil {
		t.Fatalf("reserve 4 after release: %v", err)
	}
	if err := c.ReserveAssign(ctx, eni, 1); err == nil {
		t.Fatal("a fifth token was granted")
	}
	c.ReleaseAssign(eni)
	if c.creditENIs() != 0 {
		t.Errorf("credits map keeps %d entries", c.creditENIs())
	}
}

// Returned tokens never lift the bucket above its burst.
func TestReleaseAssignNeverExceedsBurst(t *testing.T) {
	w := newExplicitWorld(t, 1)
	c := w.client(t, Config{MutatingQPS: 1000, MutatingBurst: 4}, nil)
	eni, _ := w.eni(t, 0)
	if err := c.ReserveAssign(t.Context(), eni, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the limiter refills to its burst
	c.ReleaseAssign(eni)
	if got := c.mutatingTokens(); got > 4.0001 {
		t.Errorf("tokens = %v, above the burst of 4", got)
	}
}

// A credit is spent by the call it paid for, and the ENI's entry goes.
func TestExplicitCallSpendsCredit(t *testing.T) {
	w := newExplicitWorld(t, 1)
	c := w.client(t, Config{MutatingQPS: 0.001, MutatingBurst: 2}, nil)
	eni, subnet := w.eni(t, 0)
	first, _ := ipv6alloc.First(subnet, eni)
	if err := c.ReserveAssign(t.Context(), eni, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignIPv6Explicit(t.Context(), eni, first.Addr, first.Prefix); err != nil {
		t.Fatal(err)
	}
	if c.creditENIs() != 0 {
		t.Errorf("credits left after both calls: %d ENIs", c.creditENIs())
	}
}

// First call assigns; a repeat on the same ENI succeeds without a second
// prefix; the same values asked for by another ENI are in use.
func TestAssignIPv6Explicit(t *testing.T) {
	w := newExplicitWorld(t, 2)
	c := w.client(t, Config{}, nil)
	eni0, subnet := w.eni(t, 0)
	eni1, subnet1 := w.eni(t, 1)
	if subnet1 != subnet {
		t.Fatalf("instances in different subnets %s %s", subnet, subnet1)
	}
	first, _ := ipv6alloc.First(subnet, eni0)
	res, err := c.AssignIPv6Explicit(t.Context(), eni0, first.Addr, first.Prefix)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !slices.Equal(res.Addresses, []netip.Addr{first.Addr}) || !slices.Equal(res.Prefixes, []netip.Prefix{first.Prefix}) {
		t.Fatalf("assigned %+v", res)
	}
	wantHeld := func() {
		t.Helper()
		addrs, prefixes := w.held(t, 0)
		if !slices.Equal(addrs, []string{first.Addr.String()}) || !slices.Equal(prefixes, []string{first.Prefix.String()}) {
			t.Fatalf("ENI holds %v / %v, want exactly %s / %s", addrs, prefixes, first.Addr, first.Prefix)
		}
	}
	wantHeld()
	calls := w.sim.Calls("AssignIpv6Addresses")
	// The repeat (a retry after a lost reply, or after a restart).
	res, err = c.AssignIPv6Explicit(t.Context(), eni0, first.Addr, first.Prefix)
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if !slices.Equal(res.Addresses, []netip.Addr{first.Addr}) || !slices.Equal(res.Prefixes, []netip.Prefix{first.Prefix}) {
		t.Fatalf("repeat reports %+v", res)
	}
	wantHeld()
	if got := w.sim.Calls("AssignIpv6Addresses") - calls; got != 2 {
		t.Errorf("repeat made %d assign calls, want 2", got)
	}
	// Another ENI asking for eni0's values.
	_, err = c.AssignIPv6Explicit(t.Context(), eni1, netip.Addr{}, first.Prefix)
	var iu *InUseError
	if !errors.Is(err, ErrInUse) || errors.Is(err, ErrInUseUnconfirmed) || !errors.As(err, &iu) || iu.Holder != eni0 {
		t.Fatalf("conflicting prefix: err = %v", err)
	}
	if ErrorCode(err) != "InvalidIPAddress.InUse" {
		t.Errorf("EC2's code lost: %q", ErrorCode(err))
	}
	_, err = c.AssignIPv6Explicit(t.Context(), eni1, first.Addr, netip.Prefix{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("conflicting address: err = %v", err)
	}
	// eni1 then takes its own first choice.
	own, _ := ipv6alloc.First(subnet, eni1)
	if _, err := c.AssignIPv6Explicit(t.Context(), eni1, own.Addr, own.Prefix); err != nil {
		t.Fatalf("eni1's own values: %v", err)
	}
	if addrs, prefixes := w.held(t, 1); len(addrs) != 1 || len(prefixes) != 1 {
		t.Errorf("eni1 holds %v / %v", addrs, prefixes)
	}
	wantHeld()
}

func TestAssignIPv6ExplicitRejectsBadInput(t *testing.T) {
	w := newExplicitWorld(t, 1)
	c := w.client(t, Config{}, nil)
	eni, subnet := w.eni(t, 0)
	first, _ := ipv6alloc.First(subnet, eni)
	for _, tc := range []struct {
		eni    string
		addr   netip.Addr
		prefix netip.Prefix
	}{
		{"nope", first.Addr, first.Prefix},
		{eni, netip.Addr{}, netip.Prefix{}},
		{eni, netip.MustParseAddr("10.0.0.9"), netip.Prefix{}},
		{eni, netip.Addr{}, netip.PrefixFrom(first.Prefix.Addr(), 96)},
		{eni, netip.Addr{}, netip.PrefixFrom(first.Prefix.Addr().Next(), 80)},
	} {
		if _, err := c.AssignIPv6Explicit(t.Context(), tc.eni, tc.addr, tc.prefix); err == nil {
			t.Errorf("%s %v %v: no error", tc.eni, tc.addr, tc.prefix)
		}
	}
	if n := w.sim.Calls("AssignIpv6Addresses"); n != 0 {
		t.Errorf("%d calls went out for bad input", n)
	}
}

// lostReply forwards the first AssignIpv6Addresses request to EC2 and, once
// EC2 has carried it out, answers the client with a 500 instead of EC2's
// reply: the ambiguous failure that made count-based retries dangerous.
type lostReply struct {
	next http.RoundTripper
	lost atomic.Int32
}

func (l *lostReply) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	resp, err := l.next.RoundTrip(req)
	if err != nil || !strings.Contains(string(body), "Action=AssignIpv6Addresses") || !l.lost.CompareAndSwap(0, 1) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	const xml = `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred.</Message></Error></Errors><RequestID>lost-1</RequestID></Response>`
	return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/xml;charset=UTF-8"}}, Body: io.NopCloser(strings.NewReader(xml)),
		ContentLength: int64(len(xml)), Request: req}, nil
}

// The SDK retries a 500 on AssignIpv6Addresses by itself. With a count that
// retry assigns a second prefix; with an explicit value it is answered "in
// use", found on this ENI, and reported as success.
func TestExplicitSurvivesLostReply(t *testing.T) {
	w := newExplicitWorld(t, 2)
	eni0, subnet := w.eni(t, 0)
	first, _ := ipv6alloc.First(subnet, eni0)
	lr := &lostReply{next: http.DefaultTransport}
	c := w.client(t, Config{}, lr)
	res, err := c.AssignIPv6Explicit(t.Context(), eni0, netip.Addr{}, first.Prefix)
	if err != nil {
		t.Fatalf("explicit after a lost reply: %v", err)
	}
	if lr.lost.Load() != 1 || w.sim.Calls("AssignIpv6Addresses") != 2 {
		t.Fatalf("lost %d replies, %d calls: the SDK did not retry", lr.lost.Load(), w.sim.Calls("AssignIpv6Addresses"))
	}
	if _, prefixes := w.held(t, 0); !slices.Equal(prefixes, []string{first.Prefix.String()}) || !slices.Equal(res.Prefixes, []netip.Prefix{first.Prefix}) {
		t.Fatalf("ENI holds %v, reply %v; want exactly %s", prefixes, res.Prefixes, first.Prefix)
	}
	// Negative control: the same lost reply on a count-based call leaves
	// two prefixes.
	eni1, _ := w.eni(t, 1)
	lr2 := &lostReply{next: http.DefaultTransport}
	c2 := w.client(t, Config{}, lr2)
	if _, err := c2.AssignIPv6Prefixes(t.Context(), eni1, 1); err != nil {
		t.Fatalf("count-based: %v", err)
	}
	if _, prefixes := w.held(t, 1); len(prefixes) != 2 {
		t.Errorf("count-based retry left %d prefixes; the control expects 2", len(prefixes))
	}
}

// While describes lag, an in-use value that is in fact this ENI's cannot be
// told from one held elsewhere: ErrInUseUnconfirmed, never ErrInUse. Once
// describes catch up, the same request succeeds.
func TestExplicitInUseUnconfirmedWhileDescribesLag(t *testing.T) {
	w := newExplicitWorld(t, 1)
	c := w.client(t, Config{}, nil)
	eni, subnet := w.eni(t, 0)
	first, _ := ipv6alloc.First(subnet, eni)
	w.sim.SetFault("DescribeInstances", ec2sim.Fault{ConsistencyLag: time.Hour})
	// An earlier process got the prefix; its reply was lost.
	raw := sdkec2.NewFromConfig(w.sim.AWSConfig())
	if _, err := raw.AssignIpv6Addresses(t.Context(), &sdkec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Prefixes: []string{first.Prefix.String()}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.AssignIPv6Explicit(t.Context(), eni, netip.Addr{}, first.Prefix)
	if !errors.Is(err, ErrInUseUnconfirmed) || errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUseUnconfirmed", err)
	}
	w.sim.ClearFaults()
	if _, err := c.AssignIPv6Explicit(t.Context(), eni, netip.Addr{}, first.Prefix); err != nil {
		t.Fatalf("after the lag: %v", err)
	}
	if _, prefixes := w.held(t, 0); len(prefixes) != 1 {
		t.Errorf("ENI holds %v", prefixes)
	}
}
