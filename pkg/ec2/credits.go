package ec2

import (
	"context"
	"math"
	"sync"

	"golang.org/x/time/rate"
	"k8s.io/component-base/metrics"
)

var assignCreditENIs = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace:      metricsNamespace,
	Subsystem:      metricsSubsystem,
	Name:           "assign_credit_enis",
	Help:           "Network interfaces holding assign calls paid for by ReserveAssign and not yet made.",
	StabilityLevel: metrics.ALPHA,
})

// ReserveAssign waits until the client-side limiter allows calls assign
// calls and charges for them now; the next calls assign calls on eniID then
// go out without waiting again. Callers that must record an intent right
// before the calls go out reserve first. Calls that will not be made after
// all (the intent write failed, the first call failed) are given back with
// ReleaseAssign.
func (c *Client) ReserveAssign(ctx context.Context, eniID string, calls int) error {
	if calls <= 0 {
		return nil
	}
	if err := c.takeMutating(ctx, calls); err != nil {
		return err
	}
	c.creditMu.Lock()
	c.credits[eniID] += calls
	assignCreditENIs.Set(float64(len(c.credits)))
	c.creditMu.Unlock()
	return nil
}

// ReleaseAssign drops the calls reserved on eniID and not made, and gives
// their tokens back to the mutating limiter, so that a retry does not pay
// twice and no ENI keeps credits forever. It is a no-op for an ENI without
// credits.
//
// The tokens cannot go back through rate.Reservation.Cancel: Cancel restores
// nothing once the reservation's time to act has passed, and ReserveAssign
// returns only then. They are kept beside the limiter instead and spent
// before it, never more than the bucket could hold: together with the
// limiter's own tokens they never exceed its burst, as in AWS's bucket,
// which never saw those calls.
func (c *Client) ReleaseAssign(eniID string) {
	c.creditMu.Lock()
	n := c.credits[eniID]
	delete(c.credits, eniID)
	assignCreditENIs.Set(float64(len(c.credits)))
	c.creditMu.Unlock()
	if n > 0 {
		c.returned().put(c.mutateRL, n)
	}
}

// useCredit spends one reserved call on eniID, if there is one.
func (c *Client) useCredit(eniID string) bool {
	c.creditMu.Lock()
	defer c.creditMu.Unlock()
	if c.credits[eniID] <= 0 {
		delete(c.credits, eniID)
		return false
	}
	c.credits[eniID]--
	if c.credits[eniID] == 0 {
		delete(c.credits, eniID)
	}
	assignCreditENIs.Set(float64(len(c.credits)))
	return true
}

// returnedPool holds the mutating tokens given back by ReleaseAssign.
type returnedPool struct {
	mu sync.Mutex
	n  int
}

func (c *Client) returned() *returnedPool { return &c.returnedTokens }

// returnRoom is how many returned tokens may count now: the limiter's tokens plus
// these never exceed its burst.
func returnRoom(l *rate.Limiter) int {
	// The epsilon absorbs the limiter's float refill since the last call.
	return max(0, int(math.Floor(float64(l.Burst())-l.Tokens()+1e-6)))
}

func (p *returnedPool) put(l *rate.Limiter, n int) {
	p.mu.Lock()
	p.n = min(p.n+n, returnRoom(l))
	p.mu.Unlock()
}

// take removes up to n returned tokens and reports how many it took.
func (p *returnedPool) take(l *rate.Limiter, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = min(p.n, returnRoom(l))
	k := min(p.n, n)
	p.n -= k
	return k
}

// takeMutating charges n mutating calls: returned tokens first, then the
// limiter, waiting for it as needed.
func (c *Client) takeMutating(ctx context.Context, n int) error {
	pool := c.returned()
	k := pool.take(c.mutateRL, n)
	if n-k > 0 {
		if err := c.waitN(ctx, c.mutateRL, "mutating", n-k); err != nil {
			pool.put(c.mutateRL, k)
			return err
		}
	}
	return nil
}

// mutatingTokens is how many mutating calls could go out now without
// waiting: the limiter's tokens and the returned ones.
func (c *Client) mutatingTokens() float64 {
	p := c.returned()
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.mutateRL.Tokens() + float64(min(p.n, returnRoom(c.mutateRL)))
}
