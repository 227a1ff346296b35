package e2e

import (
	"testing"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestFaultStormConverges: 50 bare nodes while AssignIpv6Addresses fails
// 20% of the time with InternalError before taking effect, 5% of the time
// takes effect and loses its reply (500), and its token bucket is nearly
// drained by someone else (capacity 20 instead of 100, AWS's refill of 5/s).
// Every node must converge with exactly one address and one /80, within
// twice the time that bucket allows for the calls the storm makes
// necessary. With count-based assignment each 500 was a possible second
// prefix, waited out for the 2-minute settle window: this took 8 minutes.
func TestFaultStormConverges(t *testing.T) {
	const (
		n          = 50
		errRate    = 0.20 // fails before taking effect
		lostRate   = 0.05 // takes effect, reply lost
		capacity   = 20.0
		refill     = 5.0 // tokens per second, AWS's for AssignIpv6Addresses
		apiQPS     = 20.0
		apiWrites  = 3 // intent, status, spec per bare node
		startSlack = 10 * time.Second
	)
	w := newWorld(t, demoScenario(t), true)
	ctx := t.Context()
	rec := recordNodes(t, w)
	w.Sim.SetBucket("AssignIpv6Addresses", capacity, refill)
	w.Sim.SetFault("AssignIpv6Addresses", ec2sim.Fault{ErrorRate: errRate, LostReplyRate: lostRate})
	ccm := startCCM(t, w, harness.CCMOptions{})

	specs, want := addBareNodes(t, w, n)
	start := time.Now()
	if err := createNodes(ctx, w, specs, 4, 0); err != nil {
		t.Fatal(err)
	}
	rec.waitInitialized(ctx, t, n, 5*time.Minute)
	took := time.Since(start)
	checkConverged(ctx, t, w, rec, want)
	rec.check(t)

	// The calls the storm makes necessary: two per node, each failing with
	// errRate and needing one more attempt after a lost reply.
	need := 2 * n / (1 - errRate) * (1 + lostRate)
	bucketTime := time.Duration(max(0, need-capacity) / refill * float64(time.Second))
	apiTime := time.Duration(float64(apiWrites*n) / apiQPS * float64(time.Second))
	bound := 2*max(bucketTime, apiTime) + startSlack
	counts := w.Sim.Counts()["AssignIpv6Addresses"]
	t.Logf("%d nodes converged in %s (bound %s: bucket %s, API writes %s); AssignIpv6Addresses %v",
		n, took.Round(100*time.Millisecond), bound.Round(time.Second), bucketTime.Round(time.Second), apiTime.Round(time.Second), counts)
	if took > bound {
		t.Errorf("converged in %s, more than twice what the buckets allow (%s)", took.Round(time.Second), bound)
	}
	if counts["InternalError"] == 0 || counts["throttled"] == 0 {
		t.Errorf("the storm did not happen: %v", counts)
	}
	if ccm.Exited() {
		t.Fatalf("CCM exited:\n%s", tail(ccm.Log(), 4000))
	}
	noForbidden(t, ccm)
}
