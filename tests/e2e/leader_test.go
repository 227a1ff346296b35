package e2e

import (
	"testing"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// TestLeaderElection runs two replicas, SIGKILLs the leader while a burst of
// bare nodes is being initialized, and checks that the other replica takes
// the Lease and brings every node to the IPv6 invariants without a second
// address or prefix on any ENI.
//
// It usually takes about 25 s. When the kill lands inside a node's
// assignment (assign-started annotation written, ENI not complete), that
// node waits for the node controller's AssignSettle (2 minutes, no flag)
// before the new leader assigns, and the test takes about 2.5 minutes.
func TestLeaderElection(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	rec := recordNodes(t, w)
	a := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	b := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	leader, holder := waitLeader(ctx, t, w, "", a, b)
	standby := a
	if leader == a {
		standby = b
	}
	t.Logf("leader %s (%s), standby %s", leader.Name, holder, standby.Name)

	const n = 40
	specs, want := addBareNodes(t, w, n)
	// Register the nodes over about 4 s, so the kill below lands while some
	// are initialized and others are not even registered yet.
	created := make(chan error, 1)
	go func() { created <- createNodes(ctx, w, specs, 1, 100*time.Millisecond) }()
	rec.waitInitialized(ctx, t, 8, 90*time.Second)
	leader.Kill()
	killedAt := time.Now()
	done, assigning := countInitialized(ctx, t, w, want)
	t.Logf("killed leader %s with %d/%d nodes initialized, %d with an assignment in flight", leader.Name, done, n, assigning)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if done == n {
		t.Fatalf("all %d nodes were initialized before the leader was killed; the burst was not interrupted", n)
	}

	newLeader, newHolder := waitLeader(ctx, t, w, holder, standby)
	t.Logf("%s took the lease (%s) %s after the kill", newLeader.Name, newHolder, time.Since(killedAt).Round(100*time.Millisecond))

	waitNodes(ctx, t, w, nodeNames(want), 5*time.Minute, initialized)
	t.Logf("all %d nodes initialized %s after the kill", n, time.Since(killedAt).Round(100*time.Millisecond))
	checkConverged(ctx, t, w, rec, want)
	rec.check(t)
	// Each bare node needed exactly one address and one prefix; the demo's
	// own instances have no Node here and cost nothing.
	if got := w.Sim.Counts()["AssignIpv6Addresses"]["success"]; got != 2*n {
		t.Errorf("AssignIpv6Addresses successes = %d, want %d; counts %v", got, 2*n, w.Sim.Counts()["AssignIpv6Addresses"])
	}
	if h, err := leaseHolder(ctx, w); err != nil || h != newHolder {
		t.Errorf("lease holder %q (%v), want %q", h, err, newHolder)
	}
	if standby.Exited() {
		t.Errorf("surviving replica %s exited", standby.Name)
	}
	noForbidden(t, a, b)
}
