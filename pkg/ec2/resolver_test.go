package ec2

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

func simID(n int) string   { return fmt.Sprintf("i-0%016x", n+1) }
func simName(n int) string { return fmt.Sprintf("ip-node-%d.ec2.internal", n) }

// bodyRecorder forwards requests and keeps their bodies.
type bodyRecorder struct {
	mu     sync.Mutex
	bodies []string
}

func (b *bodyRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		b.mu.Lock()
		b.bodies = append(b.bodies, string(data))
		b.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (b *bodyRecorder) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.bodies
	b.bodies = nil
	return out
}

// simClient starts ec2sim with n instances simID(0..n-1) named simName(i)
// and returns a client on it whose request bodies rec records.
func simClient(t *testing.T, n int, cfg Config) (*ec2sim.Sim, *Client, *bodyRecorder) {
	t.Helper()
	sc := ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, PrePrefixed: true, IPv6Subnet: true})
	for i := range sc.Instances {
		sc.Instances[i].ID = simID(i)
		sc.Instances[i].PrivateDNSName = simName(i)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	awsCfg := sim.AWSConfig()
	rec := &bodyRecorder{}
	awsCfg.HTTPClient = &http.Client{Transport: rec}
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	}
	if cfg.BatchWindow == 0 {
		cfg.BatchWindow = 20 * time.Millisecond
	}
	c, err := NewFromAWSConfig(awsCfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c, rec
}

// A node announced by name, re-announced by ID under the same key (its
// providerID was set), then withdrawn leaves no expectation behind, and the
// withdrawn name never rides along again.
func TestExpectKeyedByNodeName(t *testing.T) {
	_, c, rec := simClient(t, 4, Config{CacheTTL: time.Hour})
	const node = "ip-node-0.ec2.internal"
	c.Expect(node, "", simName(0))
	c.Expect(node, simID(0), "")
	if got := c.res.exp.len(); got != 1 {
		t.Fatalf("%d expectations after re-announcing under one key, want 1", got)
	}
	// Only the ID rides along now: a lookup by name of another instance
	// describes that name alone.
	if _, err := c.InstanceByPrivateDNSName(t.Context(), simName(1)); err != nil {
		t.Fatal(err)
	}
	for _, body := range rec.take() {
		if strings.Contains(body, simName(0)) {
			t.Errorf("replaced name expectation rode along: %s", body)
		}
	}
	c.Unexpect(node)
	if got := c.res.exp.len(); got != 0 {
		t.Fatalf("%d expectations left after Unexpect, want 0", got)
	}
	// Neither the name nor the ID rides along in later describes.
	if _, err := c.InstanceByID(t.Context(), simID(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstanceByPrivateDNSName(t.Context(), simName(3)); err != nil {
		t.Fatal(err)
	}
	for _, body := range rec.take() {
		if strings.Contains(body, simName(0)) || strings.Contains(body, simID(0)) {
			t.Errorf("withdrawn expectation rode along: %s", body)
		}
	}
	// Expect with neither ID nor name withdraws too.
	c.Expect("other", simID(1), "")
	c.Expect("other", "", "")
	if got := c.res.exp.len(); got != 0 {
		t.Errorf("%d expectations after an empty Expect, want 0", got)
	}
}

// Keys sharing a lookup ride along once, and an expected instance EC2 does
// not know is dropped under every key after its first describe.
func TestExpectSharedAndMissing(t *testing.T) {
	_, c, rec := simClient(t, 3, Config{CacheTTL: time.Hour})
	c.Expect("a", simID(1), "")
	c.Expect("b", simID(1), "")
	c.Expect("c", "i-0fffffffffffffff0", "")
	c.Expect("d", "i-0fffffffffffffff0", "")
	if _, err := c.InstanceByID(t.Context(), simID(0)); err != nil {
		t.Fatal(err)
	}
	for _, body := range rec.take() {
		if strings.Count(body, simID(1)) > 1 {
			t.Errorf("a lookup expected under two keys was sent twice: %s", body)
		}
	}
	if got := c.res.exp.len(); got != 2 {
		t.Errorf("%d expectations, want 2 (the unknown ID dropped under both keys)", got)
	}
}

// A fresh lookup refreshes its expected peers in the same describe, and
// the peers' own fresh lookups are then answered from the cache; an
// expectation announced with a lifetime lapses after it.
func TestFreshLookupRefreshesExpectedPeers(t *testing.T) {
	sim, c, rec := simClient(t, 6, Config{CacheTTL: time.Hour})
	now := time.Now()
	c.res.cache.now = func() time.Time { return now }
	for i := range 5 {
		c.ExpectFor(fmt.Sprintf("lifecycle/%d", i), simID(i), "", time.Minute)
	}
	if _, err := c.InstanceByID(t.Context(), simID(5)); err != nil { // caches all five peers
		t.Fatal(err)
	}
	rec.take()
	now = now.Add(2 * time.Second) // cached copies now older than a fresh lookup's 1 s
	if err := sim.SetInstanceState(simID(3), "stopped"); err != nil {
		t.Fatal(err)
	}
	before := sim.Calls("DescribeInstances")
	for i := range 5 {
		inst, err := c.InstanceByIDFresh(t.Context(), simID(i), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "stopped", false: "running"}[i == 3]; inst.State != want {
			t.Errorf("%s: state %q, want %q", simID(i), inst.State, want)
		}
	}
	if got := sim.Calls("DescribeInstances") - before; got != 1 {
		t.Errorf("five fresh lookups of expected peers cost %d describes, want 1", got)
	}
	if bodies := rec.take(); len(bodies) != 1 || strings.Count(bodies[0], "InstanceId.") != 5 {
		t.Errorf("describe bodies %q, want one naming all five", bodies)
	}
	// Past the lifetime, the next describe withdraws them and none rides along.
	now = now.Add(2 * time.Minute)
	if _, err := c.InstanceByIDFresh(t.Context(), simID(5), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.res.exp.len(); got != 0 {
		t.Errorf("%d expectations after their lifetime, want 0", got)
	}
	if bodies := rec.take(); len(bodies) != 1 || strings.Count(bodies[0], "InstanceId.") != 1 {
		t.Errorf("describe bodies %q, want one naming only %s", bodies, simID(5))
	}
}

// The real gauges, registered apart from the global registry, follow the
// resolver's maps: after N lookups and the cache TTL, the cache gauges
// return to 0; expectations and pending lookups return to 0 too.
func TestSizeGaugesReturnToZero(t *testing.T) {
	const n = 40
	const ttl = 200 * time.Millisecond
	_, c, _ := simClient(t, n, Config{CacheTTL: ttl})
	reg := metrics.NewKubeRegistry()
	newGauge := func(name string) *metrics.Gauge {
		g := metrics.NewGauge(&metrics.GaugeOpts{Name: name, Help: name})
		reg.MustRegister(g)
		return g
	}
	entries, names, enis, fence := newGauge("entries"), newGauge("names"), newGauge("enis"), newGauge("fence")
	expected, pending := newGauge("expected"), newGauge("pending")
	// Swapped in before any use of the client.
	c.res.cache.g = cacheGauges{entries: entries, names: names, enis: enis, fence: fence}
	c.res.exp.g = expected
	c.res.batch.g = pending
	value := func(g *metrics.Gauge) float64 {
		v, err := testutil.GetGaugeMetricValue(g)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	for i := range n {
		c.Expect(simName(i), "", simName(i))
	}
	if got := value(expected); got != n {
		t.Errorf("expectations gauge %v, want %d", got, n)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.InstanceByID(t.Context(), simID(i)); err != nil {
				t.Error(err)
			}
			c.Unexpect(simName(i))
		}()
	}
	wg.Wait()
	if got := value(entries); got != n {
		t.Errorf("cache entries gauge %v after %d lookups, want %d", got, n, n)
	}
	if value(expected) != 0 || value(pending) != 0 {
		t.Errorf("expectations %v, pending %v after the lookups, want 0", value(expected), value(pending))
	}
	deadline := time.Now().Add(10 * ttl)
	for value(entries) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, g := range []struct {
		name string
		g    *metrics.Gauge
	}{{"entries", entries}, {"names", names}, {"enis", enis}, {"fence", fence}} {
		if v := value(g.g); v != 0 {
			t.Errorf("%s gauge %v after the TTL, want 0", g.name, v)
		}
	}
}

// A cached entry older than maxAge is not used: the fresh lookup describes.
// Within maxAge it is used.
func TestFreshLookupSkipsOldCache(t *testing.T) {
	sim, c, _ := simClient(t, 2, Config{CacheTTL: time.Hour})
	id := simID(0)
	if _, err := c.InstanceByID(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState(id, StateStopped); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	if inst, err := c.InstanceByID(t.Context(), id); err != nil || inst.State != StateRunning {
		t.Fatalf("cached lookup: %+v, %v", inst, err)
	}
	if inst, err := c.InstanceByIDFresh(t.Context(), id, time.Hour); err != nil || inst.State != StateRunning {
		t.Fatalf("lookup within max age: %+v, %v", inst, err)
	}
	if got := sim.Calls("DescribeInstances"); got != 0 {
		t.Fatalf("lookups the cache can answer cost %d describes", got)
	}
	time.Sleep(20 * time.Millisecond)
	inst, err := c.InstanceByIDFresh(t.Context(), id, 10*time.Millisecond)
	if err != nil || inst.State != StateStopped {
		t.Fatalf("fresh lookup: %+v, %v; want the stopped state", inst, err)
	}
	if got := sim.Calls("DescribeInstances"); got != 1 {
		t.Errorf("a fresh lookup past max age cost %d describes, want 1", got)
	}
	// The fresh answer refreshed the cache for everyone.
	if inst, err := c.InstanceByID(t.Context(), id); err != nil || inst.State != StateStopped {
		t.Errorf("cached lookup after the fresh one: %+v, %v", inst, err)
	}
	// By name too: a terminated instance is gone at once.
	name := simName(1)
	if _, err := c.InstanceByPrivateDNSName(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState(simID(1), StateTerminated); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InstanceByPrivateDNSNameFresh(t.Context(), name, 0); err == nil {
		t.Error("fresh lookup by name found a terminated instance")
	}
}

// Concurrent fresh lookups, of one instance and of others, share one
// describe, which begins after all of them.
func TestFreshLookupsShareOneDescribe(t *testing.T) {
	const n = 20
	sim, c, _ := simClient(t, n, Config{CacheTTL: time.Hour, BatchWindow: 200 * time.Millisecond})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = simID(i)
	}
	if _, err := c.Instances(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetInstanceState(simID(0), StateStopped); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounts()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := simID(0)
			if i%2 == 1 {
				id = simID(i / 2)
			}
			inst, err := c.InstanceByIDFresh(t.Context(), id, 0)
			if err == nil && id == simID(0) && inst.State != StateStopped {
				err = fmt.Errorf("fresh lookup of %s: state %s, want stopped", id, inst.State)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := sim.Calls("DescribeInstances"); got != 1 {
		t.Errorf("%d concurrent fresh lookups cost %d describes, want 1", 2*n, got)
	}
}

// An expectation with a lifetime lapses on its own, with no describe to
// prune it: a deleted NotReady node's announcement does not stay forever.
func TestExpectationsLapseWithoutDescribes(t *testing.T) {
	_, c, _ := simClient(t, 2, Config{CacheTTL: time.Hour})
	c.ExpectFor("lifecycle/a", simID(0), "", 50*time.Millisecond)
	c.ExpectFor("lifecycle/b", "", simName(1), 150*time.Millisecond)
	c.Expect("node-a", simID(0), "") // no lifetime: stays
	deadline := time.Now().Add(5 * time.Second)
	for c.StateSizes()["expectations"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("expectations %d after their lifetimes, want 1", c.StateSizes()["expectations"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Peers cached at different times are refreshed together: a fresh lookup
// also carries peers past half the age it allows, so they do not go stale
// one by one, each with its own describe.
func TestFreshLookupAlignsStaggeredPeers(t *testing.T) {
	sim, c, _ := simClient(t, 3, Config{CacheTTL: time.Hour})
	now := time.Now()
	c.res.cache.now = func() time.Time { return now }
	for i := range 3 {
		c.Expect(fmt.Sprintf("lifecycle/%d", i), simID(i), "")
	}
	if _, err := c.InstanceByID(t.Context(), simID(0)); err != nil { // all three cached at t0
		t.Fatal(err)
	}
	now = now.Add(1500 * time.Millisecond)
	c.Forget(simID(1))
	if _, err := c.InstanceByID(t.Context(), simID(1)); err != nil { // peer 1 cached again at t0+1.5 s
		t.Fatal(err)
	}
	now = now.Add(2700 * time.Millisecond) // t0+4.2 s: peer 0 and 2 stale for 4 s, peer 1 2.7 s old
	before := sim.Calls("DescribeInstances")
	if _, err := c.InstanceByIDFresh(t.Context(), simID(0), 4*time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(1400 * time.Millisecond) // t0+5.6 s: peer 1 would be 4.1 s old without the refresh
	for i := range 3 {
		if _, err := c.InstanceByIDFresh(t.Context(), simID(i), 4*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := sim.Calls("DescribeInstances") - before; got != 1 {
		t.Errorf("%d describes for fresh lookups of three staggered peers, want 1", got)
	}
}
