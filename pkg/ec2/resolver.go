package ec2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// AWS's limits for one DescribeInstances call.
const (
	maxIDsPerCall          = 1000
	maxFilterValuesPerCall = 200
)

// aliveStates excludes terminated instances from private-DNS-name lookups, as
// upstream does: EC2 reuses private IPs, and with them DNS names.
var aliveStates = []string{StatePending, StateRunning, StateShuttingDown, StateStopping, StateStopped}

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

type cacheEntry struct {
	inst    *Instance
	expires time.Time
}

// resolver batches instance lookups and caches what it describes.
//
// Lookups arriving within window join one pending batch; when the window
// closes the whole batch is described at once, so the batch size is bounded
// only by how many lookups wait, never by the callers' worker count.
type resolver struct {
	c      *Client
	window time.Duration
	ttl    time.Duration
	now    func() time.Time

	mu        sync.Mutex
	pending   map[lookupKey][]chan result
	scheduled bool
	flushing  bool
	cache     map[string]cacheEntry // instance ID → entry
	byName    map[string]string     // private DNS name → instance ID
	eniOwner  map[string]string     // ENI ID → instance ID
	nextSweep time.Time
	// seq orders Forget calls against describes in flight: a describe that
	// started before Forget(id) must not cache id.
	seq       uint64
	forgotten map[string]uint64
	inflight  int
	// expected holds lookups callers announced with Expect: they ride along
	// in the describes of other lookups, filling each call up to AWS's limit.
	expected  map[lookupKey]uint64 // → order of announcement
	expectSeq uint64
}

func newResolver(c *Client, window, ttl time.Duration) *resolver {
	return &resolver{
		c:         c,
		window:    window,
		ttl:       ttl,
		now:       time.Now,
		pending:   map[lookupKey][]chan result{},
		cache:     map[string]cacheEntry{},
		byName:    map[string]string{},
		eniOwner:  map[string]string{},
		forgotten: map[string]uint64{},
		expected:  map[lookupKey]uint64{},
	}
}

// Expect announces a lookup the caller will make later: by instance ID, or
// by private DNS name when id is empty. Until Unexpect, whenever the resolver
// describes other instances, expected ones not freshly cached ride along in
// the same calls (up to 1000 IDs or 200 names per call), so callers that
// reach their lookups one at a time, e.g. paced by API-server writes, are
// still answered from a few batched describes. Expected instances EC2 does
// not know are dropped after their first describe.
func (c *Client) Expect(id, privateDNSName string) {
	k, ok := expectKey(id, privateDNSName)
	if !ok {
		return
	}
	r := c.res
	r.mu.Lock()
	if _, ok := r.expected[k]; !ok {
		r.expectSeq++
		r.expected[k] = r.expectSeq
	}
	r.mu.Unlock()
}

// Unexpect withdraws an Expect.
func (c *Client) Unexpect(id, privateDNSName string) {
	k, ok := expectKey(id, privateDNSName)
	if !ok {
		return
	}
	r := c.res
	r.mu.Lock()
	delete(r.expected, k)
	r.mu.Unlock()
}

func expectKey(id, name string) (lookupKey, bool) {
	switch {
	case id != "":
		return lookupKey{byID, id}, true
	case name != "":
		return lookupKey{byDNS, name}, true
	}
	return lookupKey{}, false
}

// rideAlongLocked returns expected IDs and names, not in batch and not
// freshly cached, that fit in the unused room of the calls the batch needs
// anyway; the earliest announced first, as a FIFO work queue will reach them.
func (r *resolver) rideAlongLocked(batch map[lookupKey][]chan result, ids, names int) (extraIDs, extraNames []string) {
	roomIDs := room(ids, maxIDsPerCall)
	roomNames := room(names, maxFilterValuesPerCall)
	if roomIDs == 0 && roomNames == 0 {
		return nil, nil
	}
	type cand struct {
		k   lookupKey
		seq uint64
	}
	var cands []cand
	for k, seq := range r.expected {
		if (k.kind == byID && roomIDs == 0) || (k.kind == byDNS && roomNames == 0) {
			continue
		}
		if _, ok := batch[k]; ok || r.freshLocked(k) != nil {
			continue
		}
		cands = append(cands, cand{k, seq})
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range cands {
		switch {
		case c.k.kind == byID && len(extraIDs) < roomIDs:
			extraIDs = append(extraIDs, c.k.value)
		case c.k.kind == byDNS && len(extraNames) < roomNames:
			extraNames = append(extraNames, c.k.value)
		}
	}
	return extraIDs, extraNames
}

// room is how many more values fit in the calls n values need.
func room(n, perCall int) int {
	if n == 0 {
		return 0
	}
	return (n+perCall-1)/perCall*perCall - n
}

// unexpectMissing drops expected keys EC2 did not find.
func (r *resolver) unexpectMissing(keys []lookupKey) {
	if len(keys) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		delete(r.expected, k)
	}
}

// InstanceByID returns the instance with the given ID. Concurrent lookups are
// batched into one DescribeInstances. An unknown ID yields an error wrapping
// ErrInstanceNotFound.
func (c *Client) InstanceByID(ctx context.Context, id string) (*Instance, error) {
	if id == "" {
		return nil, fmt.Errorf("instance %q: %w", id, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byID, id})
}

// InstanceByPrivateDNSName returns the non-terminated instance with the given
// private DNS name, batched like InstanceByID.
func (c *Client) InstanceByPrivateDNSName(ctx context.Context, name string) (*Instance, error) {
	if name == "" {
		return nil, fmt.Errorf("private dns name %q: %w", name, ErrInstanceNotFound)
	}
	return c.res.lookup(ctx, lookupKey{byDNS, name})
}

// Instances describes the given instances afresh, in calls of at most 1000
// IDs. Unknown or malformed IDs are absent from the result.
func (c *Client) Instances(ctx context.Context, ids []string) (map[string]*Instance, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == "" })
	out := make(map[string]*Instance, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	r := c.res
	start := r.begin()
	defer r.end()
	instanceBatchSize.Observe(float64(len(ids)))
	for chunk := range slices.Chunk(ids, maxIDsPerCall) {
		found, _, err := c.describeIDs(ctx, chunk)
		if err != nil {
			return nil, err
		}
		r.store(start, found)
		for id, inst := range found {
			out[id] = inst.clone()
		}
	}
	return out, nil
}

// Forget drops any cached copy of the instance, and keeps describes already
// in flight from caching it again. Call it after mutating the instance.
func (c *Client) Forget(id string) {
	r := c.res
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(id)
}

func (r *resolver) forgetLocked(id string) {
	r.dropLocked(id)
	r.seq++
	if r.inflight > 0 {
		r.forgotten[id] = r.seq
	}
}

// dropLocked removes id from the cache without fencing describes in flight.
func (r *resolver) dropLocked(id string) {
	if e, ok := r.cache[id]; ok {
		for _, eni := range e.inst.ENIs {
			if r.eniOwner[eni.ID] == id {
				delete(r.eniOwner, eni.ID)
			}
		}
		delete(r.cache, id)
	}
}

// forgetENI drops the cached instance that owns eni, if any.
func (r *resolver) forgetENI(eni string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.eniOwner[eni]; ok {
		r.forgetLocked(id)
	}
}

func (r *resolver) lookup(ctx context.Context, k lookupKey) (*Instance, error) {
	ch := make(chan result, 1)
	r.mu.Lock()
	if inst := r.cachedLocked(k); inst != nil {
		r.mu.Unlock()
		instanceCacheHits.WithLabelValues("hit").Inc()
		return inst, nil
	}
	r.pending[k] = append(r.pending[k], ch)
	r.scheduleLocked()
	r.mu.Unlock()
	select {
	case res := <-ch:
		return res.inst, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for instance %s: %w", k.value, ctx.Err())
	}
}

// cachedLocked returns a copy of a fresh cached instance for k, or nil.
func (r *resolver) cachedLocked(k lookupKey) *Instance {
	if inst := r.freshLocked(k); inst != nil {
		return inst.clone()
	}
	return nil
}

// freshLocked returns the fresh cached instance for k (not a copy), or nil.
func (r *resolver) freshLocked(k lookupKey) *Instance {
	if r.ttl < 0 {
		return nil
	}
	id := k.value
	if k.kind == byDNS {
		id = r.byName[k.value]
	}
	e, ok := r.cache[id]
	if !ok || !r.now().Before(e.expires) {
		return nil
	}
	if k.kind == byDNS && (e.inst.PrivateDNSName != k.value || e.inst.State == StateTerminated) {
		return nil
	}
	return e.inst
}

// begin marks a describe as in flight and returns the Forget sequence at its
// start; end must follow.
func (r *resolver) begin() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight++
	return r.seq
}

func (r *resolver) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if r.inflight == 0 {
		clear(r.forgotten)
	}
}

// store caches instances described by a describe that began at start,
// skipping any forgotten since.
func (r *resolver) store(start uint64, found map[string]*Instance) {
	if r.ttl < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for id, inst := range found {
		if seq, ok := r.forgotten[id]; ok && seq > start {
			continue
		}
		r.cache[id] = cacheEntry{inst: inst.clone(), expires: now.Add(r.ttl)}
		if inst.PrivateDNSName != "" {
			r.byName[inst.PrivateDNSName] = id
		}
		for _, eni := range inst.ENIs {
			r.eniOwner[eni.ID] = id
		}
	}
	if now.After(r.nextSweep) {
		r.nextSweep = now.Add(r.ttl)
		for id, e := range r.cache {
			if !now.Before(e.expires) {
				r.dropLocked(id)
			}
		}
		for name, id := range r.byName {
			if _, ok := r.cache[id]; !ok {
				delete(r.byName, name)
			}
		}
	}
}

// maxParallelDescribes bounds the DescribeInstances calls one batch runs at
// once (a batch of 1000 names needs five).
const maxParallelDescribes = 4

// scheduleLocked arranges a flush after the window, unless one is pending or
// running; a running flush reschedules itself when it finishes.
func (r *resolver) scheduleLocked() {
	if !r.scheduled && !r.flushing {
		r.scheduled = true
		time.AfterFunc(r.window, r.flush)
	}
}

// flush describes everything pending and answers the waiters. One flush runs
// at a time: lookups arriving meanwhile wait for it and then form the next
// batch, answered from the cache where the previous batch already fetched
// them. So under load batches grow instead of calls multiplying.
func (r *resolver) flush() {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[lookupKey][]chan result{}
	r.scheduled = false
	r.flushing = true
	r.inflight++
	start := r.seq
	hits := 0
	for k, chs := range batch {
		if inst := r.cachedLocked(k); inst != nil {
			for _, ch := range chs {
				ch <- result{inst: inst.clone()}
			}
			delete(batch, k)
			hits++
		}
	}
	r.mu.Unlock()
	defer func() {
		r.end()
		r.mu.Lock()
		r.flushing = false
		if len(r.pending) > 0 {
			r.scheduled = true
			go r.flush()
		}
		r.mu.Unlock()
	}()
	if hits > 0 {
		instanceCacheHits.WithLabelValues("hit").Add(float64(hits))
	}
	if len(batch) == 0 {
		return
	}
	instanceCacheHits.WithLabelValues("miss").Add(float64(len(batch)))

	instanceBatchSize.Observe(float64(len(batch)))
	var ids, names []string
	for k := range batch {
		if k.kind == byID {
			ids = append(ids, k.value)
		} else {
			names = append(names, k.value)
		}
	}
	r.mu.Lock()
	extraIDs, extraNames := r.rideAlongLocked(batch, len(ids), len(names))
	r.mu.Unlock()
	ids = append(ids, extraIDs...)
	names = append(names, extraNames...)
	slices.Sort(ids)
	slices.Sort(names)
	// The batch serves many callers, so it runs on its own context; each
	// call is still bounded by CallTimeout.
	ctx := context.Background()
	answer := func(k lookupKey, res result) {
		for _, ch := range batch[k] {
			if res.inst != nil {
				ch <- result{inst: res.inst.clone()}
			} else {
				ch <- res
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelDescribes)
	run := func(f func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f()
		}()
	}
	for chunk := range slices.Chunk(ids, maxIDsPerCall) {
		run(func() { r.answerIDs(ctx, start, chunk, answer) })
	}
	for chunk := range slices.Chunk(names, maxFilterValuesPerCall) {
		run(func() { r.answerNames(ctx, start, chunk, answer) })
	}
	wg.Wait()
}

func (r *resolver) answerIDs(ctx context.Context, start uint64, chunk []string, answer func(lookupKey, result)) {
	found, bad, err := r.c.describeIDs(ctx, chunk)
	if err == nil {
		r.store(start, found)
		var missing []lookupKey
		for _, id := range chunk {
			if _, ok := found[id]; !ok {
				missing = append(missing, lookupKey{byID, id})
			}
		}
		r.unexpectMissing(missing)
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

func (r *resolver) answerNames(ctx context.Context, start uint64, chunk []string, answer func(lookupKey, result)) {
	found, err := r.c.describeNames(ctx, chunk)
	if err == nil {
		m := make(map[string]*Instance, len(found))
		for _, inst := range found {
			m[inst.ID] = inst
		}
		r.store(start, m)
		var missing []lookupKey
		for _, name := range chunk {
			if _, ok := found[name]; !ok {
				missing = append(missing, lookupKey{byDNS, name})
			}
		}
		r.unexpectMissing(missing)
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

// describeIDs describes ids (≤1000). IDs EC2 reports as unknown or malformed
// are dropped and the rest described again, so one bad ID never fails the
// others; bad maps each dropped ID to the AWS error code.
func (c *Client) describeIDs(ctx context.Context, ids []string) (found map[string]*Instance, bad map[string]string, err error) {
	found = map[string]*Instance{}
	bad = map[string]string{}
	work := [][]string{ids}
	for len(work) > 0 {
		set := work[len(work)-1]
		work = work[:len(work)-1]
		insts, err := c.describe(ctx, &ec2.DescribeInstancesInput{InstanceIds: set})
		if err == nil {
			for _, inst := range insts {
				found[inst.ID] = inst
			}
			continue
		}
		code := ErrorCode(err)
		if code != codeInstanceNotFound && code != codeInstanceMalformed {
			return nil, nil, err
		}
		named := namedIDs(err, set)
		switch {
		case len(named) > 0:
			for _, id := range named {
				bad[id] = code
			}
			rest := slices.DeleteFunc(slices.Clone(set), func(id string) bool { return bad[id] != "" })
			if len(rest) > 0 {
				work = append(work, rest)
			}
		case len(set) == 1:
			bad[set[0]] = code
		default:
			// The message named none of our IDs: bisect.
			half := len(set) / 2
			work = append(work, set[:half], set[half:])
		}
		klog.V(4).InfoS("Dropping unknown instance IDs from batch", "code", code, "named", len(named), "batch", len(set))
	}
	return found, bad, nil
}

// namedIDs returns the IDs of set that an InvalidInstanceID error message
// names, e.g. "The instance IDs 'i-1, i-2' do not exist" or
// `Invalid id: "ma1"`.
func namedIDs(err error, set []string) []string {
	msg := err.Error()
	var apiErr interface{ ErrorMessage() string }
	if errors.As(err, &apiErr) {
		msg = apiErr.ErrorMessage()
	}
	tokens := map[string]bool{}
	for _, tok := range strings.FieldsFunc(msg, func(r rune) bool {
		return r == '\'' || r == '"' || r == ',' || r == ' ' || r == '\t' || r == '(' || r == ')' || r == '[' || r == ']'
	}) {
		tokens[tok] = true
	}
	var named []string
	for _, id := range set {
		if tokens[id] {
			named = append(named, id)
		}
	}
	return named
}

// describeNames looks instances up by private DNS name (≤200 names),
// ignoring terminated instances. When two live instances share a name, the
// running or more recently launched one wins.
func (c *Client) describeNames(ctx context.Context, names []string) (map[string]*Instance, error) {
	insts, err := c.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("private-dns-name"), Values: names},
		{Name: aws.String("instance-state-name"), Values: aliveStates},
	}})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]*Instance{}
	for _, inst := range insts {
		if !want[inst.PrivateDNSName] || inst.State == StateTerminated {
			continue
		}
		if prev, ok := out[inst.PrivateDNSName]; ok && !better(inst, prev) {
			continue
		}
		out[inst.PrivateDNSName] = inst
	}
	return out, nil
}

func better(a, b *Instance) bool {
	if (a.State == StateRunning) != (b.State == StateRunning) {
		return a.State == StateRunning
	}
	return a.LaunchTime.After(b.LaunchTime)
}

// describe runs DescribeInstances through every page, each page taking a
// describe token and bounded by CallTimeout.
func (c *Client) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]*Instance, error) {
	var out []*Instance
	p := ec2.NewDescribeInstancesPaginator(c.api, in)
	for p.HasMorePages() {
		if err := c.wait(ctx, c.describeRL, "describe"); err != nil {
			return nil, err
		}
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		page, err := p.NextPage(callCtx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, rsv := range page.Reservations {
			for i := range rsv.Instances {
				if rsv.Instances[i].InstanceId == nil {
					continue
				}
				out = append(out, fromSDK(&rsv.Instances[i]))
			}
		}
	}
	return out, nil
}
