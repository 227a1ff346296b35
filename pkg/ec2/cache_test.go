package ec2

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// countGauge is a gauge the tests read back.
type countGauge struct {
	mu sync.Mutex
	v  float64
}

func (g *countGauge) Add(d float64) { g.mu.Lock(); g.v += d; g.mu.Unlock() }
func (g *countGauge) value() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.v
}

type testGauges struct{ entries, names, enis, fence countGauge }

func (tg *testGauges) cacheGauges() cacheGauges {
	return cacheGauges{entries: &tg.entries, names: &tg.names, enis: &tg.enis, fence: &tg.fence}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testInstance(id, name string, enis ...string) *Instance {
	inst := &Instance{ID: id, PrivateDNSName: name, State: StateRunning, PrivateIP: netip.MustParseAddr("10.0.0.1")}
	for _, e := range enis {
		inst.ENIs = append(inst.ENIs, ENI{ID: e})
	}
	return inst
}

func TestCacheGetStoreAndIndexes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var g testGauges
	c := newInstanceCache(time.Hour, clk.now, g.cacheGauges())
	f := c.begin()
	c.store(f, map[string]*Instance{"i-1": testInstance("i-1", "ip-1", "eni-1", "eni-2")})
	c.end()
	if got := c.get(lookupKey{byID, "i-1"}, time.Time{}); got == nil || got.ID != "i-1" {
		t.Fatalf("by ID: %v", got)
	}
	if got := c.get(lookupKey{byDNS, "ip-1"}, time.Time{}); got == nil || got.ID != "i-1" {
		t.Fatalf("by name: %v", got)
	}
	got := c.get(lookupKey{byID, "i-1"}, time.Time{})
	got.Tags = map[string]string{"x": "y"}
	if again := c.get(lookupKey{byID, "i-1"}, time.Time{}); again.Tags["x"] != "" {
		t.Error("get returned the cached copy, not a clone")
	}
	if g.entries.value() != 1 || g.names.value() != 1 || g.enis.value() != 2 {
		t.Errorf("gauges entries=%v names=%v enis=%v, want 1 1 2", g.entries.value(), g.names.value(), g.enis.value())
	}
	// Stored again with one ENI detached: the old ENI's index entry goes.
	f = c.begin()
	c.store(f, map[string]*Instance{"i-1": testInstance("i-1", "ip-1", "eni-1")})
	c.end()
	if g.enis.value() != 1 {
		t.Errorf("eni index holds %v entries after the ENI left, want 1", g.enis.value())
	}
	c.forgetENI("eni-2") // no longer owned: a no-op
	if c.get(lookupKey{byID, "i-1"}, time.Time{}) == nil {
		t.Error("forgetting a detached ENI forgot its former instance")
	}
	c.forgetENI("eni-1")
	if c.get(lookupKey{byID, "i-1"}, time.Time{}) != nil || c.get(lookupKey{byDNS, "ip-1"}, time.Time{}) != nil {
		t.Error("forgetENI left the owner cached")
	}
	if g.entries.value() != 0 || g.names.value() != 0 || g.enis.value() != 0 || g.fence.value() != 0 {
		t.Errorf("gauges after forget: %v %v %v %v, want 0", g.entries.value(), g.names.value(), g.enis.value(), g.fence.value())
	}
}

// The forget fence: a describe that began before Forget(id) does not cache
// id; one that began after does; and the fence is cleared once no describe
// is in flight.
func TestCacheForgetFence(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var g testGauges
	c := newInstanceCache(time.Hour, clk.now, g.cacheGauges())
	k := lookupKey{byID, "i-1"}

	// Forget with nothing in flight leaves no fence behind.
	c.forget("i-1")
	if g.fence.value() != 0 {
		t.Fatalf("fence holds %v entries with no describe in flight", g.fence.value())
	}

	old := c.begin()
	c.forget("i-1") // the instance changed after old's describe began
	if g.fence.value() != 1 {
		t.Errorf("fence holds %v entries, want 1", g.fence.value())
	}
	newer := c.begin()
	c.store(old, map[string]*Instance{"i-1": testInstance("i-1", "ip-1")})
	if c.get(k, time.Time{}) != nil {
		t.Fatal("a describe begun before Forget cached the instance")
	}
	c.store(old, map[string]*Instance{"i-2": testInstance("i-2", "ip-2")})
	if c.get(lookupKey{byID, "i-2"}, time.Time{}) == nil {
		t.Error("the fence kept an instance that was not forgotten")
	}
	c.store(newer, map[string]*Instance{"i-1": testInstance("i-1", "ip-1")})
	if c.get(k, time.Time{}) == nil {
		t.Error("a describe begun after Forget did not cache the instance")
	}
	c.end()
	if g.fence.value() != 1 {
		t.Errorf("fence cleared while a describe is still in flight")
	}
	c.end()
	if g.fence.value() != 0 {
		t.Errorf("fence holds %v entries after the last describe ended, want 0", g.fence.value())
	}
}

// A store never replaces data read by a describe that began later.
func TestCacheKeepsNewerData(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c := newInstanceCache(time.Hour, clk.now, cacheGauges{})
	early := c.begin()
	clk.add(time.Second)
	late := c.begin()
	stopped := testInstance("i-1", "ip-1")
	stopped.State = StateStopped
	c.store(late, map[string]*Instance{"i-1": stopped})
	c.store(early, map[string]*Instance{"i-1": testInstance("i-1", "ip-1")})
	c.end()
	c.end()
	if got := c.get(lookupKey{byID, "i-1"}, time.Time{}); got == nil || got.State != StateStopped {
		t.Fatalf("got %+v, want the later describe's stopped state", got)
	}
}

// notBefore: an entry read by a describe that began earlier does not
// answer.
func TestCacheNotBefore(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	c := newInstanceCache(time.Hour, clk.now, cacheGauges{})
	f := c.begin()
	c.store(f, map[string]*Instance{"i-1": testInstance("i-1", "ip-1")})
	c.end()
	described := clk.now()
	clk.add(2 * time.Second)
	k := lookupKey{byID, "i-1"}
	if c.get(k, described) == nil || c.get(k, described.Add(-time.Second)) == nil {
		t.Error("an entry as recent as required did not answer")
	}
	if c.get(k, described.Add(time.Millisecond)) != nil {
		t.Error("an entry older than required answered")
	}
}

// Expired entries are deleted by the sweep, so the size gauges return to
// zero once lookups stop.
func TestCacheExpiryReturnsGaugesToZero(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var g testGauges
	const n = 500
	c := newInstanceCache(time.Minute, clk.now, g.cacheGauges())
	found := map[string]*Instance{}
	for i := range n {
		id := "i-" + string(rune('a'+i%26)) + time.Duration(i).String()
		found[id] = testInstance(id, "ip-"+id, "eni-"+id)
	}
	f := c.begin()
	c.store(f, found)
	c.end()
	if g.entries.value() != n || g.names.value() != n || g.enis.value() != n {
		t.Fatalf("gauges %v %v %v, want %d each", g.entries.value(), g.names.value(), g.enis.value(), n)
	}
	clk.add(59 * time.Second)
	if left := c.sweep(); left != n {
		t.Fatalf("sweep before the TTL left %d entries, want %d", left, n)
	}
	clk.add(time.Second)
	for id := range found {
		if c.get(lookupKey{byID, id}, time.Time{}) != nil {
			t.Fatalf("%s answered after its TTL", id)
		}
	}
	if left := c.sweep(); left != 0 {
		t.Fatalf("sweep after the TTL left %d entries", left)
	}
	if g.entries.value() != 0 || g.names.value() != 0 || g.enis.value() != 0 || g.fence.value() != 0 {
		t.Errorf("gauges after expiry: entries=%v names=%v enis=%v fence=%v, want 0",
			g.entries.value(), g.names.value(), g.enis.value(), g.fence.value())
	}
}

// The sweep timer runs by itself: with a real clock and a short TTL, the
// cache empties without further calls.
func TestCacheSweepTimerEmptiesCache(t *testing.T) {
	var g testGauges
	const ttl = 50 * time.Millisecond
	c := newInstanceCache(ttl, time.Now, g.cacheGauges())
	f := c.begin()
	c.store(f, map[string]*Instance{"i-1": testInstance("i-1", "ip-1", "eni-1"), "i-2": testInstance("i-2", "ip-2")})
	c.end()
	deadline := time.Now().Add(2 * time.Second)
	for c.len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.len() != 0 || g.entries.value() != 0 || g.names.value() != 0 || g.enis.value() != 0 {
		t.Fatalf("after %v: %d entries, gauges %v %v %v", 2*time.Second, c.len(), g.entries.value(), g.names.value(), g.enis.value())
	}
	c.mu.Lock()
	armed := c.timer != nil
	c.mu.Unlock()
	if armed {
		t.Error("sweep timer still armed on an empty cache")
	}
}

func TestCacheDisabled(t *testing.T) {
	var g testGauges
	c := newInstanceCache(-1, time.Now, g.cacheGauges())
	f := c.begin()
	c.store(f, map[string]*Instance{"i-1": testInstance("i-1", "ip-1")})
	c.end()
	if c.get(lookupKey{byID, "i-1"}, time.Time{}) != nil || c.len() != 0 || g.entries.value() != 0 {
		t.Error("a disabled cache cached")
	}
}
