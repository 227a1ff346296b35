package ec2

import (
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
