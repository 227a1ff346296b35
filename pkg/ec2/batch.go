package ec2

import (
	"sync"
	"time"
)

// waiter is one caller waiting for a lookup.
type waiter struct {
	ch chan result
	// notBefore: the answer must come from a describe that began at or
	// after this time; zero accepts any unexpired cached copy.
	notBefore time.Time
}

// batcher collects requests (instance lookups, resources to tag) for a
// window and hands them to flush as one batch, keyed by what is asked for.
// One flush runs at a time: requests arriving meanwhile wait for it and then
// form the next batch, so under load batches grow instead of calls
// multiplying. The batch size is bounded only by how many requests wait,
// never by the callers' worker count.
type batcher[K comparable, V any] struct {
	window time.Duration
	flush  func(map[K][]V)
	g      gauge // distinct keys waiting for a batch; may be nil

	mu        sync.Mutex
	pending   map[K][]V
	scheduled bool
	flushing  bool
}

func newBatcher[K comparable, V any](window time.Duration, flush func(map[K][]V), g gauge) *batcher[K, V] {
	return &batcher[K, V]{window: window, flush: flush, g: g, pending: map[K][]V{}}
}

func (b *batcher[K, V]) gaugeAdd(d int) {
	if d != 0 && b.g != nil {
		b.g.Add(float64(d))
	}
}

// add queues w for k and arranges a flush after the window, unless one is
// scheduled or running (a running flush reschedules when it finishes).
func (b *batcher[K, V]) add(k K, w V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.pending[k]; !ok {
		b.gaugeAdd(1)
	}
	b.pending[k] = append(b.pending[k], w)
	if !b.scheduled && !b.flushing {
		b.scheduled = true
		time.AfterFunc(b.window, b.run)
	}
}

// run flushes what is pending, then starts the next flush at once if
// requests arrived meanwhile.
func (b *batcher[K, V]) run() {
	b.mu.Lock()
	batch := b.pending
	b.pending = map[K][]V{}
	b.gaugeAdd(-len(batch))
	b.scheduled = false
	b.flushing = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.flushing = false
		if len(b.pending) > 0 {
			b.scheduled = true
			go b.run()
		}
	}()
	b.flush(batch)
}
