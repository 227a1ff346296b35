package ec2

import (
	"context"
	"errors"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Instances describes the given instances afresh, in calls of at most 1000
// IDs. Unknown or malformed IDs are absent from the result.
func (c *Client) Instances(ctx context.Context, ids []string) (map[string]*Instance, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == "" })
	out := make(map[string]*Instance, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cache := c.res.cache
	f := cache.begin()
	defer cache.end()
	instanceBatchSize.Observe(float64(len(ids)))
	for chunk := range slices.Chunk(ids, maxIDsPerCall) {
		found, _, err := c.describeIDs(ctx, chunk)
		if err != nil {
			return nil, err
		}
		cache.store(f, found)
		for id, inst := range found {
			out[id] = inst.clone()
		}
	}
	return out, nil
}

// InstancesCached returns the given instances as InstanceByID would, each
// from the instance cache when it holds it, the others in shared batched
// describes. Unknown IDs are absent from the result.
func (c *Client) InstancesCached(ctx context.Context, ids []string) (map[string]*Instance, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	out := make(map[string]*Instance, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, id := range ids {
		g.Go(func() error {
			in, err := c.InstanceByID(gctx, id)
			if errors.Is(err, ErrInstanceNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out[id] = in
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
