package ec2_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// instanceID returns the n-th test instance ID (17 hex digits).
func instanceID(n int) string { return fmt.Sprintf("i-0%016x", n+1) }

// startSim starts ec2sim with n running instances named instanceID(0..n-1),
// each with an IPv6 subnet; prefixed gives them an IPv6 address and /80.
func startSim(t *testing.T, n int, prefixed bool) *ec2sim.Sim {
	t.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, PrePrefixed: prefixed, IPv6Subnet: true})
	for i := range sc.Instances {
		sc.Instances[i].ID = instanceID(i)
		sc.Instances[i].PrivateDNSName = fmt.Sprintf("ip-node-%d.ec2.internal", i)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatalf("start ec2sim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// fastRetries keeps the SDK's standard retryer (3 attempts) without its
// one-second throttle backoff, so tests stay fast.
func fastRetries(cfg aws.Config) aws.Config {
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	return cfg
}

func newClient(t *testing.T, sim *ec2sim.Sim, cfg ec2.Config) *ec2.Client {
	t.Helper()
	if cfg.BatchWindow == 0 {
		cfg.BatchWindow = 20 * time.Millisecond
	}
	c, err := ec2.NewFromAWSConfig(fastRetries(sim.AWSConfig()), cfg)
	if err != nil {
		t.Fatalf("NewFromAWSConfig: %v", err)
	}
	return c
}

func TestConcurrentLookupsShareDescribes(t *testing.T) {
	const n = 300
	t0 := time.Now()
	sim := startSim(t, n, true)
	c := newClient(t, sim, ec2.Config{})
	t.Logf("sim start %v", time.Since(t0))
	start := make(chan struct{})
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			inst, err := c.InstanceByID(t.Context(), instanceID(i))
			if err == nil && inst.ID != instanceID(i) {
				err = fmt.Errorf("asked %s, got %s", instanceID(i), inst.ID)
			}
			if err == nil && inst.PrimaryENI() == nil {
				err = fmt.Errorf("%s: no primary ENI", inst.ID)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("ip-node-%d.ec2.internal", i)
			inst, err := c.InstanceByPrivateDNSName(t.Context(), name)
			if err == nil && inst.ID != instanceID(i) {
				err = fmt.Errorf("asked %s, got %s", name, inst.ID)
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// 300 IDs fit one call and 300 names need two; allow one more round of
	// each for lookups that missed the first window.
	if got := sim.Calls("DescribeInstances"); got > 1+2+2 {
		t.Errorf("%d lookups cost %d DescribeInstances", 2*n, got)
	}
}

func TestUnknownAndMalformedIDsDoNotFailTheBatch(t *testing.T) {
	sim := startSim(t, 3, false)
	c := newClient(t, sim, ec2.Config{})
	ids := []string{instanceID(0), instanceID(1), instanceID(2), "i-0fffffffffffffff0", "i-nothex", "i-0fffffffffffffff1"}
	type res struct {
		id   string
		inst *ec2.Instance
		err  error
	}
	out := make(chan res, len(ids))
	for _, id := range ids {
		go func() {
			inst, err := c.InstanceByID(t.Context(), id)
			out <- res{id, inst, err}
		}()
	}
	for range ids {
		r := <-out
		known := r.id == instanceID(0) || r.id == instanceID(1) || r.id == instanceID(2)
		switch {
		case known && r.err != nil:
			t.Errorf("%s: %v", r.id, r.err)
		case known && r.inst.ID != r.id:
			t.Errorf("%s: got %s", r.id, r.inst.ID)
		case !known && !errors.Is(r.err, ec2.ErrInstanceNotFound):
			t.Errorf("%s: err = %v, want ErrInstanceNotFound", r.id, r.err)
		}
	}
	// The bulk path drops unknown IDs the same way.
	got, err := c.Instances(t.Context(), ids)
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(got) != 3 || got[instanceID(1)] == nil {
		t.Errorf("Instances returned %d instances: %v", len(got), got)
	}
}

func TestInstancesChunksAtOneThousand(t *testing.T) {
	sim := startSim(t, 5, false)
	c := newClient(t, sim, ec2.Config{})
	var ids []string
	for i := range 1500 {
		ids = append(ids, instanceID(i))
	}
	got, err := c.Instances(t.Context(), ids)
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d instances, want 5", len(got))
	}
	// Each chunk: one call naming the unknown IDs, one for the rest (the
	// second chunk holds no known ID, so it needs none).
	if calls := sim.Calls("DescribeInstances"); calls > 3 {
		t.Errorf("%d DescribeInstances for two chunks", calls)
	}
}

func TestCacheAndForget(t *testing.T) {
	sim := startSim(t, 1, false)
	c := newClient(t, sim, ec2.Config{CacheTTL: time.Hour})
	id := instanceID(0)
	first, err := c.InstanceByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState(id, ec2.StateStopped); err != nil {
		t.Fatal(err)
	}
	cached, err := c.InstanceByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if cached.State != first.State || sim.Calls("DescribeInstances") != 1 {
		t.Fatalf("cache not used: state %s, %d calls", cached.State, sim.Calls("DescribeInstances"))
	}
	cached.Tags = map[string]string{"mutated": "by caller"}
	c.Forget(id)
	fresh, err := c.InstanceByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.State != ec2.StateStopped {
		t.Errorf("after Forget state = %s, want stopped", fresh.State)
	}
	if fresh.Tags["mutated"] != "" {
		t.Error("caller's copy leaked into the cache")
	}
}

func TestAssignIPv6(t *testing.T) {
	sim := startSim(t, 1, false)
	c := newClient(t, sim, ec2.Config{CacheTTL: time.Hour})
	inst, err := c.InstanceByID(t.Context(), instanceID(0))
	if err != nil {
		t.Fatal(err)
	}
	eni := inst.PrimaryENI()
	if eni == nil || len(eni.IPv6) != 0 || len(eni.IPv6Prefixes) != 0 {
		t.Fatalf("want a bare primary ENI, got %+v", eni)
	}
	addrs, err := c.AssignIPv6Addresses(t.Context(), eni.ID, 1)
	if err != nil {
		t.Fatalf("AssignIPv6Addresses: %v", err)
	}
	pfx, err := c.AssignIPv6Prefixes(t.Context(), eni.ID, 1)
	if err != nil {
		t.Fatalf("AssignIPv6Prefixes: %v", err)
	}
	if len(addrs.Addresses) != 1 || len(pfx.Prefixes) != 1 || pfx.Prefixes[0].Bits() != 80 || addrs.ENI != eni.ID {
		t.Fatalf("assigned %+v and %+v", addrs, pfx)
	}
	// The assign forgot the cached copy: the next lookup sees the change.
	after, err := c.InstanceByID(t.Context(), instanceID(0))
	if err != nil {
		t.Fatal(err)
	}
	got := after.PrimaryENI()
	if a, _ := got.PrimaryIPv6(); a != addrs.Addresses[0] {
		t.Errorf("primary IPv6 %v, assigned %v", a, addrs.Addresses[0])
	}
	if p, _ := got.PodPrefix(); p != pfx.Prefixes[0] {
		t.Errorf("pod prefix %v, assigned %v", p, pfx.Prefixes[0])
	}
	if _, err := c.AssignIPv6Addresses(t.Context(), "eni-0fffffffffffffff0", 1); ec2.ErrorCode(err) == "" {
		t.Errorf("unknown ENI: err = %v, want an AWS error code", err)
	}
	if _, err := c.AssignIPv6Prefixes(t.Context(), "bogus", 1); err == nil {
		t.Error("malformed ENI ID accepted")
	}
}

func TestThrottleIsRetriedAndClassified(t *testing.T) {
	sim := startSim(t, 1, false)
	c := newClient(t, sim, ec2.Config{})
	sim.SetFault("DescribeInstances", ec2sim.Fault{ErrorRate: 1, Code: "RequestLimitExceeded"})
	_, err := c.InstanceByID(t.Context(), instanceID(0))
	if !ec2.IsThrottle(err) || errors.Is(err, ec2.ErrInstanceNotFound) {
		t.Fatalf("err = %v, want a throttle", err)
	}
	if got := sim.Calls("DescribeInstances"); got != 3 {
		t.Errorf("%d attempts, want the standard retryer's 3", got)
	}
	sim.ClearFaults()
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
		t.Fatalf("after faults cleared: %v", err)
	}
}

func TestCallTimeout(t *testing.T) {
	sim := startSim(t, 1, false)
	c := newClient(t, sim, ec2.Config{CallTimeout: 100 * time.Millisecond})
	sim.SetFault("DescribeInstances", ec2sim.Fault{Latency: 5 * time.Second})
	start := time.Now()
	_, err := c.InstanceByID(t.Context(), instanceID(0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timed-out call took %v", d)
	}
}

// hostRecorder sends every request to target and records the host the SDK
// chose, so endpoint resolution is observed without leaving loopback.
type hostRecorder struct {
	target string
	mu     sync.Mutex
	hosts  []string
	auth   []string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(h.target, "http://")
	r.Host = ""
	return http.DefaultTransport.RoundTrip(r)
}

func TestDualStackEndpoint(t *testing.T) {
	sim := startSim(t, 1, false)
	rec := &hostRecorder{target: sim.Endpoint()}
	awsCfg := fastRetries(sim.AWSConfig())
	awsCfg.BaseEndpoint = nil
	awsCfg.HTTPClient = &http.Client{Transport: rec}
	for _, dual := range []bool{false, true} {
		c, err := ec2.NewFromAWSConfig(awsCfg, ec2.Config{DualStack: dual, BatchWindow: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
			t.Fatalf("dual=%v: %v", dual, err)
		}
	}
	want := []string{"ec2." + sim.Region() + ".amazonaws.com", "ec2." + sim.Region() + ".api.aws"}
	if strings.Join(rec.hosts, ",") != strings.Join(want, ",") {
		t.Errorf("hosts = %v, want %v", rec.hosts, want)
	}
}

// TestServiceOverride signs for the override's SigningRegion: ec2sim only
// accepts signatures scoped to its own region.
func TestServiceOverride(t *testing.T) {
	sim := startSim(t, 1, false)
	rec := &hostRecorder{target: sim.Endpoint()}
	awsCfg := fastRetries(sim.AWSConfig())
	awsCfg.BaseEndpoint = nil
	awsCfg.HTTPClient = &http.Client{Transport: rec}
	c, err := ec2.NewFromAWSConfig(awsCfg, ec2.Config{
		Region: "custom-1", Endpoint: "https://ec2.custom.example:8443", SigningRegion: sim.Region(), SigningName: "ec2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
		t.Fatalf("InstanceByID through override: %v", err)
	}
	if rec.hosts[0] != "ec2.custom.example:8443" || !strings.Contains(rec.auth[0], "/"+sim.Region()+"/ec2/aws4_request") {
		t.Errorf("host %q, authorization %q", rec.hosts[0], rec.auth[0])
	}
}

// TestServiceOverrideBeatsDualStack: with both an ec2 ServiceOverride and
// EC2DualStackEndpoint, calls go to the override's URL (docs/reference/
// cloud-config.md: "An override wins over EC2DualStackEndpoint"); the SDK
// would refuse the pair if the client passed both on.
func TestServiceOverrideBeatsDualStack(t *testing.T) {
	sim := startSim(t, 1, false)
	rec := &hostRecorder{target: sim.Endpoint()}
	awsCfg := fastRetries(sim.AWSConfig())
	awsCfg.BaseEndpoint = nil
	awsCfg.HTTPClient = &http.Client{Transport: rec}
	c, err := ec2.NewFromAWSConfig(awsCfg, ec2.Config{
		Region: sim.Region(), Endpoint: "https://ec2.override.example:8443", SigningRegion: sim.Region(), DualStack: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
		t.Fatalf("InstanceByID with override and dual-stack: %v", err)
	}
	if len(rec.hosts) != 1 || rec.hosts[0] != "ec2.override.example:8443" {
		t.Errorf("hosts %v, want only the override's ec2.override.example:8443", rec.hosts)
	}
}

// TestEnvironmentEndpoint builds the client the production way and points
// it at ec2sim with AWS_ENDPOINT_URL_EC2 only.
func TestEnvironmentEndpoint(t *testing.T) {
	sim := startSim(t, 1, false)
	for _, kv := range sim.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c, err := ec2.New(t.Context(), ec2.Config{Region: sim.Region()})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := c.InstanceByID(t.Context(), instanceID(0))
	if err != nil {
		t.Fatalf("InstanceByID via AWS_ENDPOINT_URL_EC2: %v", err)
	}
	if !inst.PrivateIP.IsValid() || inst.Zone == "" {
		t.Errorf("instance %+v", inst)
	}
}

func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"not xml", 200, "this is not xml <<<", "describe instances"},
		{"truncated xml", 200, `<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-0`, "describe instances"},
		{"html error page", 502, "<html><body>Bad Gateway</body></html>", "describe instances"},
		{"bad address", 200, `<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-00000000000000001</instanceId>` +
			`<privateIpAddress>not-an-ip</privateIpAddress></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStaticServer(t, tc.status, tc.body)
			awsCfg := fastRetries(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}})
			c, err := ec2.NewFromAWSConfig(awsCfg, ec2.Config{Endpoint: srv, BatchWindow: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			inst, err := c.InstanceByID(t.Context(), "i-00000000000000001")
			if tc.want == "" {
				// A well-formed reply with a garbage field: the field is dropped.
				if err != nil || inst.PrivateIP.IsValid() {
					t.Fatalf("inst %+v, err %v", inst, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ec2.ErrInstanceNotFound) {
				t.Fatalf("err = %v, want a %q error that is not 'not found'", err, tc.want)
			}
		})
	}
}

// ReserveAssign pays the limiter up front: the reserved calls on that ENI do
// not wait again, and calls beyond the reservation do.
func TestReserveAssignPrepaysCalls(t *testing.T) {
	sim := startSim(t, 1, false)
	// Two tokens, refilled once every ~17 minutes: any wait for a third
	// token exceeds the short deadline below and fails at once.
	c := newClient(t, sim, ec2.Config{CacheTTL: time.Hour, MutatingQPS: 0.001, MutatingBurst: 2})
	inst, err := c.InstanceByID(t.Context(), instanceID(0))
	if err != nil {
		t.Fatal(err)
	}
	eni := inst.PrimaryENI().ID
	assignOK := func() float64 {
		return metricValue(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "AssignIpv6Addresses", "code": "ok"})
	}
	base := assignOK()
	if err := c.ReserveAssign(t.Context(), eni, 2); err != nil {
		t.Fatalf("ReserveAssign: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.AssignIPv6Addresses(ctx, eni, 1); err != nil {
		t.Fatalf("first reserved call: %v", err)
	}
	if _, err := c.AssignIPv6Prefixes(ctx, eni, 1); err != nil {
		t.Fatalf("second reserved call: %v", err)
	}
	if _, err := c.AssignIPv6Prefixes(ctx, eni, 1); err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("third call went out without a token: err = %v", err)
	}
	if err := c.ReserveAssign(ctx, eni, 1); err == nil {
		t.Fatal("ReserveAssign beyond the bucket succeeded")
	}
	if got := assignOK() - base; got != 2 {
		t.Errorf("%v assign calls went out, want 2", got)
	}
}

// Expected lookups ride along in the describes of others: lookups made one at
// a time cost one DescribeInstances while the cache is fresh, and an expected
// instance EC2 does not know is not described again.
func TestExpectedLookupsRideAlong(t *testing.T) {
	const n = 60
	sim := startSim(t, n, true)
	c := newClient(t, sim, ec2.Config{CacheTTL: time.Hour})
	for i := range n {
		if i%2 == 0 {
			c.Expect(instanceID(i), instanceID(i), "")
		} else {
			c.Expect(instanceID(i), "", fmt.Sprintf("ip-node-%d.ec2.internal", i))
		}
	}
	c.Expect("unknown", "i-0fffffffffffffff0", "") // unknown to EC2
	// DescribeInstances operations as the client made them (ec2sim counts
	// HTTP attempts, which include the SDK's rare re-sends).
	ops := func() float64 {
		return metricValue(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "DescribeInstances", "code": "ok"}) +
			metricValue(t, "cloudprovider_aws_api_requests_total", map[string]string{"operation": "DescribeInstances", "code": "InvalidInstanceID.NotFound"})
	}
	base := ops()
	for i := range n {
		var inst *ec2.Instance
		var err error
		if i%2 == 0 {
			inst, err = c.InstanceByID(t.Context(), instanceID(i))
		} else {
			inst, err = c.InstanceByPrivateDNSName(t.Context(), fmt.Sprintf("ip-node-%d.ec2.internal", i))
		}
		if err != nil || inst.ID != instanceID(i) {
			t.Fatalf("lookup %d: %v, %v", i, inst, err)
		}
	}
	// The first lookup (by ID) brings every expected ID; the first lookup by
	// name brings every expected name; the unknown ID costs one retry.
	if got := ops() - base; got != 3 {
		t.Errorf("%d sequential lookups cost %v DescribeInstances, want exactly 3", n, got)
	}
	base = ops()
	c.Forget(instanceID(0))
	if _, err := c.InstanceByID(t.Context(), instanceID(0)); err != nil {
		t.Fatal(err)
	}
	if got := ops() - base; got != 1 {
		t.Errorf("a lookup after Forget cost %v DescribeInstances, want 1 (the unknown expected ID must be gone)", got)
	}

	// Without expectations, sequential lookups are described one by one.
	base = ops()
	c2 := newClient(t, sim, ec2.Config{CacheTTL: time.Hour})
	for i := range 5 {
		if _, err := c2.InstanceByID(t.Context(), instanceID(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ops() - base; got != 5 {
		t.Errorf("5 unannounced sequential lookups cost %v DescribeInstances, want 5", got)
	}
	// Unexpect withdraws: a forgotten instance no longer rides along.
	for i := range n {
		c.Unexpect(instanceID(i))
	}
	c.Forget(instanceID(0))
	c.Forget(instanceID(2))
	base = ops()
	for _, i := range []int{0, 2} {
		if _, err := c.InstanceByID(t.Context(), instanceID(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ops() - base; got != 2 {
		t.Errorf("after Unexpect, two sequential misses cost %v DescribeInstances, want 2", got)
	}
}

// Ride-alongs are taken in announcement order: with room for fewer than
// are expected, the earliest announced are described first.
func TestRideAlongInAnnouncementOrder(t *testing.T) {
	const n = 1100 // more than one call's 1000 IDs
	sim := startSim(t, n, true)
	c := newClient(t, sim, ec2.Config{CacheTTL: time.Hour})
	for i := range n {
		c.Expect(instanceID(i), instanceID(i), "")
	}
	// The lookup of the last one fills its call with the 999 announced first.
	if _, err := c.InstanceByID(t.Context(), instanceID(n-1)); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	for i := range 999 {
		if _, err := c.InstanceByID(t.Context(), instanceID(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Calls("DescribeInstances"); got != 0 {
		t.Errorf("the 999 earliest announced cost %d more describes, want 0 (they rode along)", got)
	}
}
