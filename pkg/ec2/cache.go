package ec2

import (
	"sync"
	"time"
)

// gauge is the part of a metrics gauge the resolver's parts report to.
type gauge interface{ Add(float64) }

// cacheGauges receive the sizes of the cache's maps.
type cacheGauges struct {
	entries, names, enis, fence gauge
}

// instanceCache holds described instances for ttl, by instance ID, with
// indexes by private DNS name and by ENI ID, under its own lock.
//
// Expired entries are deleted, not merely ignored: while the cache holds
// entries a timer sweeps it, at most twice per ttl, so an entry is gone at
// the latest 1.5 ttl after it was stored and the cache shrinks back to empty
// once lookups stop.
//
// The forget fence: a describe takes a fence with begin before it calls EC2,
// stores what it found with that fence and calls end. A forget(id) between
// begin and store keeps that describe from caching id, since what it read
// may predate the change that made the caller forget.
type instanceCache struct {
	ttl time.Duration // negative: nothing is cached
	now func() time.Time
	g   cacheGauges

	mu       sync.Mutex
	byID     map[string]cacheEntry
	byName   map[string]string // private DNS name → instance ID
	eniOwner map[string]string // ENI ID → instance ID
	// seq counts forgets; forgotten holds, while describes are in flight,
	// the seq of each forget since the oldest began.
	seq       uint64
	forgotten map[string]uint64
	inflight  int
	timer     *time.Timer // armed while the cache is not empty
}

type cacheEntry struct {
	inst *Instance
	// described is when the describe that read inst began: the data is at
	// least as recent as that.
	described time.Time
	expires   time.Time
}

// fence is what begin hands a describe: the forget sequence and the time at
// its start.
type fence struct {
	seq uint64
	at  time.Time
}

func newInstanceCache(ttl time.Duration, now func() time.Time, g cacheGauges) *instanceCache {
	return &instanceCache{
		ttl:       ttl,
		now:       now,
		g:         g,
		byID:      map[string]cacheEntry{},
		byName:    map[string]string{},
		eniOwner:  map[string]string{},
		forgotten: map[string]uint64{},
	}
}

// sizes are the lengths of the cache's maps, for the gauges.
type sizes [4]int

func (c *instanceCache) sizesLocked() sizes {
	return sizes{len(c.byID), len(c.byName), len(c.eniOwner), len(c.forgotten)}
}

// reportLocked adds the change since before to the gauges. Call it as
// `defer c.reportLocked(c.sizesLocked())` right after locking.
func (c *instanceCache) reportLocked(before sizes) {
	after := c.sizesLocked()
	for i, g := range []gauge{c.g.entries, c.g.names, c.g.enis, c.g.fence} {
		if d := after[i] - before[i]; d != 0 && g != nil {
			g.Add(float64(d))
		}
	}
}

// get returns a copy of the cached instance for k, or nil: unexpired, read
// by a describe that began no earlier than notBefore (zero: any), and for a
// DNS-name lookup, still holding that name and not terminated.
func (c *instanceCache) get(k lookupKey, notBefore time.Time) *Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	if inst := c.peekLocked(k, notBefore); inst != nil {
		return inst.clone()
	}
	return nil
}

// fresh says whether get(k, notBefore) would answer.
func (c *instanceCache) fresh(k lookupKey, notBefore time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peekLocked(k, notBefore) != nil
}

// peekLocked is get without the copy.
func (c *instanceCache) peekLocked(k lookupKey, notBefore time.Time) *Instance {
	if c.ttl < 0 {
		return nil
	}
	id := k.value
	if k.kind == byDNS {
		id = c.byName[k.value]
	}
	e, ok := c.byID[id]
	if !ok || !c.now().Before(e.expires) || e.described.Before(notBefore) {
		return nil
	}
	if k.kind == byDNS && (e.inst.PrivateDNSName != k.value || e.inst.State == StateTerminated) {
		return nil
	}
	return e.inst
}

// begin marks a describe as in flight; end must follow.
func (c *instanceCache) begin() fence {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight++
	return fence{seq: c.seq, at: c.now()}
}

func (c *instanceCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	c.inflight--
	if c.inflight == 0 {
		clear(c.forgotten)
	}
}

// store caches instances read by the describe that took f, except those
// forgotten since, and those cached from a describe that began later.
func (c *instanceCache) store(f fence, found map[string]*Instance) {
	if c.ttl < 0 || len(found) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	expires := c.now().Add(c.ttl)
	for id, inst := range found {
		if seq, ok := c.forgotten[id]; ok && seq > f.seq {
			continue
		}
		if old, ok := c.byID[id]; ok {
			if old.described.After(f.at) {
				continue
			}
			c.unindexLocked(id, old.inst)
		}
		c.byID[id] = cacheEntry{inst: inst.clone(), described: f.at, expires: expires}
		if inst.PrivateDNSName != "" {
			c.byName[inst.PrivateDNSName] = id
		}
		for _, eni := range inst.ENIs {
			c.eniOwner[eni.ID] = id
		}
	}
	c.armLocked()
}

// forget drops any cached copy of id and fences describes in flight.
func (c *instanceCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	c.forgetLocked(id)
}

// forgetENI forgets the cached instance that owns eni, if any.
func (c *instanceCache) forgetENI(eni string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	if id, ok := c.eniOwner[eni]; ok {
		c.forgetLocked(id)
	}
}

func (c *instanceCache) forgetLocked(id string) {
	c.dropLocked(id)
	c.seq++
	if c.inflight > 0 {
		c.forgotten[id] = c.seq
	}
}

// dropLocked removes id and its index entries, without fencing.
func (c *instanceCache) dropLocked(id string) {
	if e, ok := c.byID[id]; ok {
		c.unindexLocked(id, e.inst)
		delete(c.byID, id)
	}
}

// unindexLocked removes the index entries of inst that point at id.
func (c *instanceCache) unindexLocked(id string, inst *Instance) {
	if c.byName[inst.PrivateDNSName] == id {
		delete(c.byName, inst.PrivateDNSName)
	}
	for _, eni := range inst.ENIs {
		if c.eniOwner[eni.ID] == id {
			delete(c.eniOwner, eni.ID)
		}
	}
}

// sweep deletes expired entries and returns how many remain.
func (c *instanceCache) sweep() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	c.sweepLocked()
	return len(c.byID)
}

func (c *instanceCache) sweepLocked() {
	now := c.now()
	for id, e := range c.byID {
		if !now.Before(e.expires) {
			c.dropLocked(id)
		}
	}
}

// armLocked starts the sweep timer, half a ttl out, if entries wait and
// none is armed. It is re-armed only by a sweep or a store into an emptied
// cache, so sweeps never run more often than twice per ttl.
func (c *instanceCache) armLocked() {
	if c.timer != nil || len(c.byID) == 0 {
		return
	}
	c.timer = time.AfterFunc(max(c.ttl/2, time.Millisecond), c.onTimer)
}

func (c *instanceCache) onTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.reportLocked(c.sizesLocked())
	c.timer = nil
	c.sweepLocked()
	c.armLocked()
}

// len returns the number of cached instances, expired or not.
func (c *instanceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}
