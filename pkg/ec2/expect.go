package ec2

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// expectations are lookups callers announced, each under a key of the
// caller's choosing (the node controller uses the node name): whenever the
// resolver describes other instances, expected ones ride along in the unused
// room of the same calls. A key holds at most one lookup; announcing under it
// again replaces the lookup and keeps the key's place in line. A key
// announced with a lifetime lapses unless announced again within it.
type expectations struct {
	g   gauge // number of keys
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]expected
	seq   uint64
	timer *time.Timer // prunes lapsed keys; nil when none has a lifetime
}

type expected struct {
	lk    lookupKey
	seq   uint64    // order of first announcement
	until time.Time // zero: until withdrawn
}

func newExpectations(g gauge, now func() time.Time) *expectations {
	return &expectations{g: g, now: now, byKey: map[string]expected{}}
}

func (e *expectations) add(d int) {
	if d != 0 && e.g != nil {
		e.g.Add(float64(d))
	}
}

// set expects lk under key, replacing what key held, for ttl (≤ 0: until
// withdrawn).
func (e *expectations) set(key string, lk lookupKey, ttl time.Duration) {
	var until time.Time
	if ttl > 0 {
		until = e.now().Add(ttl)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ttl > 0 && e.timer == nil {
		e.timer = time.AfterFunc(ttl, e.prune)
	}
	if old, ok := e.byKey[key]; ok {
		e.byKey[key] = expected{lk: lk, seq: old.seq, until: until}
		return
	}
	e.seq++
	e.byKey[key] = expected{lk: lk, seq: e.seq, until: until}
	e.add(1)
}

// prune withdraws lapsed keys, and runs again when the next one lapses, so
// that they go even when no describe happens (rideAlong prunes too).
func (e *expectations) prune() {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	var next time.Time
	for key, x := range e.byKey {
		switch {
		case x.until.IsZero():
		case !now.Before(x.until):
			delete(e.byKey, key)
			e.add(-1)
		case next.IsZero() || x.until.Before(next):
			next = x.until
		}
	}
	e.timer = nil
	if !next.IsZero() {
		e.timer = time.AfterFunc(next.Sub(now)+time.Millisecond, e.prune)
	}
}

// remove withdraws key.
func (e *expectations) remove(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.byKey[key]; ok {
		delete(e.byKey, key)
		e.add(-1)
	}
}

// dropMissing withdraws every key whose lookup EC2 did not find.
func (e *expectations) dropMissing(missing []lookupKey) {
	if len(missing) == 0 {
		return
	}
	gone := make(map[lookupKey]bool, len(missing))
	for _, lk := range missing {
		gone[lk] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, x := range e.byKey {
		if gone[x.lk] {
			delete(e.byKey, key)
			e.add(-1)
		}
	}
}

// rideAlong returns up to roomIDs expected IDs and roomNames expected names,
// the earliest announced first (as a FIFO work queue will reach them),
// leaving out lookups skip rejects (those in the batch, or freshly cached).
// It withdraws lapsed keys on the way. skip is called with e's lock held.
func (e *expectations) rideAlong(roomIDs, roomNames int, skip func(lookupKey) bool) (ids, names []string) {
	if roomIDs == 0 && roomNames == 0 {
		return nil, nil
	}
	now := e.now()
	e.mu.Lock()
	cands := make([]expected, 0, len(e.byKey))
	for key, x := range e.byKey {
		if !x.until.IsZero() && now.After(x.until) {
			delete(e.byKey, key)
			e.add(-1)
			continue
		}
		if (x.lk.kind == byID && roomIDs == 0) || (x.lk.kind == byDNS && roomNames == 0) || skip(x.lk) {
			continue
		}
		cands = append(cands, x)
	}
	e.mu.Unlock()
	slices.SortFunc(cands, func(a, b expected) int { return cmp.Compare(a.seq, b.seq) })
	seen := make(map[lookupKey]bool, len(cands))
	for _, x := range cands {
		if seen[x.lk] {
			continue
		}
		seen[x.lk] = true
		switch {
		case x.lk.kind == byID && len(ids) < roomIDs:
			ids = append(ids, x.lk.value)
		case x.lk.kind == byDNS && len(names) < roomNames:
			names = append(names, x.lk.value)
		}
	}
	return ids, names
}

// len returns the number of keys expected.
func (e *expectations) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.byKey)
}
