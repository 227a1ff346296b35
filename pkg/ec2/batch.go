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

// batcher collects lookups for a window and hands them to flush as one
// batch. One flush runs at a time: lookups arriving meanwhile wait for it and
// then form the next batch, so under load batches grow instead of calls
// multiplying. The batch size is bounded only by how many lookups wait,
// never by the callers' worker count.
type batcher struct {
	window time.Duration
	flush  func(map[lookupKey][]waiter)
	g      gauge // distinct lookups waiting for a batch

	mu        sync.Mutex
	pending   map[lookupKey][]waiter
	scheduled bool
	flushing  bool
}

func newBatcher(window time.Duration, flush func(map[lookupKey][]waiter), g gauge) *batcher {
	return &batcher{window: window, flush: flush, g: g, pending: map[lookupKey][]waiter{}}
}

func (b *batcher) gaugeAdd(d int) {
	if d != 0 && b.g != nil {
		b.g.Add(float64(d))
	}
}

// add queues w for k and arranges a flush after the window, unless one is
// scheduled or running (a running flush reschedules when it finishes).
func (b *batcher) add(k lookupKey, w waiter) {
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
// lookups arrived meanwhile.
func (b *batcher) run() {
	b.mu.Lock()
	batch := b.pending
	b.pending = map[lookupKey][]waiter{}
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
