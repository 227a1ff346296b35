package ec2

import (
	"context"
	"sync"
	"testing"
	"time"
)

// More IDs than one call may name are split into calls of at most
// MaxTagResources (AWS: "Up to 1000 resource IDs"); every instance in
// ec2sim ends up with the tag, and untagging removes it the same way.
func TestTagCallsSplitAtTheLimit(t *testing.T) {
	const n = 2*MaxTagResources + 500
	sim, c, _ := simClient(t, n, Config{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = simID(i)
	}
	tags := map[string]string{"team": "ipv6"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	b := c.NewTagBatcher(t.Context(), tags, true, 50*time.Millisecond)
	for _, id := range ids {
		wg.Add(1)
		b.Add(id, func(err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d tags failed, first: %v", len(failed), failed[0])
	}
	if got := sim.Calls("CreateTags"); got != 3 {
		t.Errorf("%d CreateTags calls for %d IDs, want 3", got, n)
	}
	for _, in := range sim.State().Instances {
		if in.Tags["team"] != "ipv6" {
			t.Fatalf("%s not tagged: %v", in.ID, in.Tags)
		}
	}
	if bad, err := c.DeleteTags(t.Context(), ids, tags); err != nil || len(bad) != 0 {
		t.Fatalf("DeleteTags: %v, bad %v", err, bad)
	}
	if got := sim.Calls("DeleteTags"); got != 3 {
		t.Errorf("%d DeleteTags calls for %d IDs, want 3", got, n)
	}
	for _, in := range sim.State().Instances {
		if _, ok := in.Tags["team"]; ok {
			t.Fatalf("%s still tagged: %v", in.ID, in.Tags)
		}
	}
}

// Tag calls draw on buckets of their own: with the assignments' bucket
// owing minutes of tokens, CreateTags and DeleteTags still go out at once
// (rate.Limiter refuses at once a wait past the context's deadline).
func TestTagCallsNotHeldByAssignments(t *testing.T) {
	sim, c, _ := simClient(t, 2, Config{})
	for range 12 { // ~240 s of assignments queued (a reservation may not exceed the burst)
		if r := c.mutateRL.ReserveN(time.Now(), DefaultMutatingBurst); !r.OK() {
			t.Fatal("reservation refused")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ids := []string{simID(0), simID(1)}
	if bad, err := c.CreateTags(ctx, ids, map[string]string{"team": "ipv6"}); err != nil || len(bad) != 0 {
		t.Fatalf("CreateTags behind a deep assignment backlog: %v, bad %v", err, bad)
	}
	if bad, err := c.DeleteTags(ctx, ids, map[string]string{"team": "ipv6"}); err != nil || len(bad) != 0 {
		t.Fatalf("DeleteTags behind a deep assignment backlog: %v, bad %v", err, bad)
	}
	if sim.Calls("CreateTags") != 1 || sim.Calls("DeleteTags") != 1 {
		t.Errorf("calls: CreateTags %d, DeleteTags %d; want 1 each", sim.Calls("CreateTags"), sim.Calls("DeleteTags"))
	}
}
