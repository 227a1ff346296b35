package ec2

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The resolver answers instance lookups from four parts, each with its own
// lock and file:
//   - cache.go: the TTL cache, its indexes and the forget fence;
//   - batch.go: collecting lookups into batches;
//   - expect.go: announced lookups that ride along in other describes;
//   - describe.go: DescribeInstances with paging, limits and bisection.
// This file ties them together and holds the Client's lookup API for one
// instance; instances_batch.go holds the lookups of many at once.

type lookupKind uint8

const (
	byID lookupKind = iota
	byDNS
)

type lookupKey struct {
	kind  lookupKind
	value string
}

type result struct {
	inst *Instance
	err  error
}

// resolver batches instance lookups and caches what it describes.
type resolver struct {
	c     *Client
	cache *instanceCache
	exp   *expectations
	batch *batcher[lookupKey, waiter]
}

func newResolver(c *Client, window, ttl time.Duration) *resolver {
	r := &resolver{
		c: c,
		cache: newInstanceCache(ttl, time.Now, cacheGauges{
			entries: instanceCacheEntries,
			names:   instanceCacheIndexEntries.WithLabelValues("private_dns_name"),
			enis:    instanceCacheIndexEntries.WithLabelValues("eni"),
			fence:   instanceCacheIndexEntries.WithLabelValues("forget_fence"),
		}),
	}
	r.exp = newExpectations(instanceExpectations, func() time.Time { return r.cache.now() })
	r.batch = newBatcher(window, r.flush, instanceLookupsPending)
	return r
}

// maxParallelDescribes bounds the DescribeInstances calls one batch runs at
// once (a batch of 1000 names needs five).
const maxParallelDescribes = 4

// Expect announces a lookup the caller will make later, under key (the node
// controller uses the node name): by instance ID, or by private DNS name
// when id is empty. It replaces whatever key announced before, so a node
// announced by name and later by ID holds one expectation; with neither id
// nor name it withdraws key. Until Unexpect(key), whenever the resolver
// describes other instances, expected ones not freshly cached ride along in
// the same calls (up to 1000 IDs or 200 names per call), so callers that
// reach their lookups one at a time, e.g. paced by API-server writes, are
// still answered from a few batched describes. Expected instances EC2 does
// not know are dropped after their first describe.
func (c *Client) Expect(key, id, privateDNSName string) {
	c.ExpectFor(key, id, privateDNSName, 0)
}

// ExpectFor is Expect with a lifetime: the expectation lapses ttl after the
// last announcement under key (ttl ≤ 0: never). For callers that ask about
// an instance periodically and never say when they stop, such as the
// lifecycle controller's passes over NotReady nodes.
func (c *Client) ExpectFor(key, id, privateDNSName string, ttl time.Duration) {
	switch {
	case id != "":
		c.res.exp.set(key, lookupKey{byID, id}, ttl)
	case privateDNSName != "":
		c.res.exp.set(key, lookupKey{byDNS, privateDNSName}, ttl)
	default:
		c.res.exp.remove(key)
	}
}

// Unexpect withdraws the expectation announced under key.
func (c *Client) Unexpect(key string) {
	c.res.exp.remove(key)
}

// InstanceByID returns the instance with the given ID. Concurrent lookups are
// batched into one DescribeInstances. An unknown ID yields an error wrapping
// ErrInstanceNotFound.
func (c *Client) InstanceByID(ctx context.Context, id string) (*Instance, error) {
	if id == "" {
		return nil, fmt.Errorf("instance %q: %w", id, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byID, id}, time.Time{})
}

// InstanceByPrivateDNSName returns the non-terminated instance with the given
// private DNS name, batched like InstanceByID.
func (c *Client) InstanceByPrivateDNSName(ctx context.Context, name string) (*Instance, error) {
	if name == "" {
		return nil, fmt.Errorf("private dns name %q: %w", name, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byDNS, name}, time.Time{})
}

// InstanceByIDFresh is InstanceByID answered only by a describe that began
// at most maxAge before the call (with maxAge ≤ 0, one that begins after
// it): an older cached copy is not used. It is still batched: concurrent
// lookups, fresh or not, share one describe.
func (c *Client) InstanceByIDFresh(ctx context.Context, id string, maxAge time.Duration) (*Instance, error) {
	if id == "" {
		return nil, fmt.Errorf("instance %q: %w", id, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byID, id}, c.res.notBefore(maxAge))
}

// InstanceByPrivateDNSNameFresh is InstanceByPrivateDNSName with the
// freshness of InstanceByIDFresh.
func (c *Client) InstanceByPrivateDNSNameFresh(ctx context.Context, name string, maxAge time.Duration) (*Instance, error) {
	if name == "" {
		return nil, fmt.Errorf("private dns name %q: %w", name, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byDNS, name}, c.res.notBefore(maxAge))
}

func (r *resolver) notBefore(maxAge time.Duration) time.Time {
	return r.cache.now().Add(-max(maxAge, 0))
}

// Forget drops any cached copy of the instance, and keeps describes already
// in flight from caching it again. Call it after mutating the instance.
func (c *Client) Forget(id string) {
	c.res.cache.forget(id)
}

// forgetENI drops the cached instance that owns eni, if any.
func (r *resolver) forgetENI(eni string) {
	r.cache.forgetENI(eni)
}

func (r *resolver) lookup(ctx context.Context, k lookupKey, notBefore time.Time) (*Instance, error) {
	if inst := r.cache.get(k, notBefore); inst != nil {
		instanceCacheHits.WithLabelValues("hit").Inc()
		return inst, nil
	}
	ch := make(chan result, 1)
	r.batch.add(k, waiter{ch: ch, notBefore: notBefore})
	select {
	case res := <-ch:
		return res.inst, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for instance %s: %w", k.value, ctx.Err())
	}
}

// flush answers a batch: waiters the cache satisfies at once, the rest from
// describes of their lookups plus expected ones riding along.
func (r *resolver) flush(batch map[lookupKey][]waiter) {
	f := r.cache.begin()
	defer r.cache.end()
	hits := 0
	for k, ws := range batch {
		rest := ws[:0]
		for _, w := range ws {
			if inst := r.cache.get(k, w.notBefore); inst != nil {
				w.ch <- result{inst: inst}
			} else {
				rest = append(rest, w)
			}
		}
		if len(rest) == 0 {
			delete(batch, k)
			hits++
		} else {
			batch[k] = rest
		}
	}
	if hits > 0 {
		instanceCacheHits.WithLabelValues("hit").Add(float64(hits))
	}
	if len(batch) == 0 {
		return
	}
	instanceCacheHits.WithLabelValues("miss").Add(float64(len(batch)))

	instanceBatchSize.Observe(float64(len(batch)))
	// Expected lookups ride along unless cached fresher than the batch's
	// most demanding waiter needs: a fresh lookup refreshes its peers too.
	var strictest time.Time
	var ids, names []string
	for k, ws := range batch {
		for _, w := range ws {
			if w.notBefore.After(strictest) {
				strictest = w.notBefore
			}
		}
		if k.kind == byID {
			ids = append(ids, k.value)
		} else {
			names = append(names, k.value)
		}
	}
	// A fresh batch also refreshes peers past half the age it allows: peers
	// cached at different times would otherwise go stale one by one, each
	// costing its own describe, instead of riding along together.
	rideFresh := strictest
	if now := r.cache.now(); !strictest.IsZero() && now.After(strictest) {
		rideFresh = strictest.Add(now.Sub(strictest) / 2)
	}
	extraIDs, extraNames := r.exp.rideAlong(room(len(ids), maxIDsPerCall), room(len(names), maxFilterValuesPerCall),
		func(k lookupKey) bool {
			_, inBatch := batch[k]
			return inBatch || r.cache.fresh(k, rideFresh)
		})
	ids = append(ids, extraIDs...)
	names = append(names, extraNames...)
	slices.Sort(ids)
	slices.Sort(names)
	// The batch serves many callers, so it runs on its own context; each
	// call is still bounded by CallTimeout.
	ctx := context.Background()
	answer := func(k lookupKey, res result) {
		for _, w := range batch[k] {
			if res.inst != nil {
				w.ch <- result{inst: res.inst.clone()}
			} else {
				w.ch <- res
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelDescribes)
	run := func(fn func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn()
		}()
	}
	for chunk := range slices.Chunk(ids, maxIDsPerCall) {
		run(func() { r.answerIDs(ctx, f, chunk, answer) })
	}
	for chunk := range slices.Chunk(names, maxFilterValuesPerCall) {
		run(func() { r.answerNames(ctx, f, chunk, answer) })
	}
	wg.Wait()
}

// room is how many more values fit in the calls n values need.
func room(n, perCall int) int {
	if n == 0 {
		return 0
	}
	return (n+perCall-1)/perCall*perCall - n
}

func (r *resolver) answerIDs(ctx context.Context, f fence, chunk []string, answer func(lookupKey, result)) {
	found, bad, err := r.c.describeIDs(ctx, chunk)
	if err == nil {
		r.cache.store(f, found)
		var missing []lookupKey
		for _, id := range chunk {
			if _, ok := found[id]; !ok {
				missing = append(missing, lookupKey{byID, id})
			}
		}
		r.exp.dropMissing(missing)
	}
	for _, id := range chunk {
		k := lookupKey{byID, id}
		switch inst, ok := found[id]; {
		case err != nil:
			answer(k, result{err: err})
		case ok:
			answer(k, result{inst: inst})
		case bad[id] != "":
			answer(k, result{err: fmt.Errorf("instance %s: %s: %w", id, bad[id], ErrInstanceNotFound)})
		default:
			answer(k, result{err: fmt.Errorf("instance %s: %w", id, ErrInstanceNotFound)})
		}
	}
}

func (r *resolver) answerNames(ctx context.Context, f fence, chunk []string, answer func(lookupKey, result)) {
	found, err := r.c.describeNames(ctx, chunk)
	if err == nil {
		m := make(map[string]*Instance, len(found))
		for _, inst := range found {
			m[inst.ID] = inst
		}
		r.cache.store(f, m)
		var missing []lookupKey
		for _, name := range chunk {
			if _, ok := found[name]; !ok {
				missing = append(missing, lookupKey{byDNS, name})
			}
		}
		r.exp.dropMissing(missing)
	}
	for _, name := range chunk {
		k := lookupKey{byDNS, name}
		switch inst, ok := found[name]; {
		case err != nil:
			answer(k, result{err: err})
		case ok:
			answer(k, result{inst: inst})
		default:
			answer(k, result{err: fmt.Errorf("private dns name %s: %w", name, ErrInstanceNotFound)})
		}
	}
}

// StateSizes returns the number of entries in each of the client's
// per-instance, per-node and per-ENI maps: cached instances, expectations,
// ENIs holding reserved assign calls, and cached subnets. Each returns to
// its floor when nodes go (the cache after its TTL).
func (c *Client) StateSizes() map[string]int {
	out := map[string]int{}
	c.res.cache.mu.Lock()
	out["cache"], out["cache_names"], out["cache_enis"] = len(c.res.cache.byID), len(c.res.cache.byName), len(c.res.cache.eniOwner)
	c.res.cache.mu.Unlock()
	c.res.exp.mu.Lock()
	out["expectations"] = len(c.res.exp.byKey)
	c.res.exp.mu.Unlock()
	c.creditMu.Lock()
	out["credits"] = len(c.credits)
	c.creditMu.Unlock()
	c.subnets.mu.Lock()
	out["subnets"] = len(c.subnets.m)
	c.subnets.mu.Unlock()
	return out
}
