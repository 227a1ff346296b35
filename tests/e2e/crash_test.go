package e2e

import (
	"testing"
	"time"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
)

// TestCrashMidBurst SIGKILLs the only replica when about a third of a
// 200-node burst of bare instances is initialized, restarts it, and checks
// the invariants once all 200 are initialized: one /80 and one IPv6 address
// per primary ENI, podCIDR equal to it, no shared podCIDR, no podCIDR ever
// changed, and exactly two assign calls per node.
//
// The CCM's own limit on AssignIpv6Addresses (burst 90, then 4.5/s; two
// calls per node) paces the burst, so most nodes are queued behind it at
// the kill. A node gets its assign-started intent only once the limiter has
// granted its calls, so the queued ones carry none and the restarted
// replica assigns them at once: the test takes about a minute. A node whose
// calls were in flight at the kill would wait for AssignSettle (2 minutes)
// first; the test logs how many there were. That path is covered by
// TestCrashBetweenAssignAndWrite in pkg/controllers/node.
func TestCrashMidBurst(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	rec := recordNodes(t, w)
	first := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	_, holder := waitLeader(ctx, t, w, "", first)

	const n = 200
	specs, want := addBareNodes(t, w, n)
	start := time.Now()
	created := make(chan error, 1)
	go func() { created <- createNodes(ctx, w, specs, 4, 0) }()
	rec.waitInitialized(ctx, t, n/3, 3*time.Minute)
	first.Kill()
	killedAt := time.Now()
	done, assigning := countInitialized(ctx, t, w, want)
	t.Logf("killed %s %s into the burst with %d/%d nodes initialized, %d with an assignment in flight",
		first.Name, killedAt.Sub(start).Round(100*time.Millisecond), done, n, assigning)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if done == n {
		t.Fatalf("all %d nodes were initialized before the kill; the burst was not interrupted", n)
	}

	second := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	waitLeader(ctx, t, w, holder, second)
	t.Logf("%s leads %s after the kill", second.Name, time.Since(killedAt).Round(100*time.Millisecond))
	waitNodes(ctx, t, w, nodeNames(want), 6*time.Minute, initialized)
	t.Logf("all %d nodes initialized %s after the kill, %s after the burst started",
		n, time.Since(killedAt).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))

	checkConverged(ctx, t, w, rec, want)
	rec.check(t)
	if got := w.Sim.Counts()["AssignIpv6Addresses"]["success"]; got != 2*n {
		t.Errorf("AssignIpv6Addresses successes = %d, want %d; counts %v", got, 2*n, w.Sim.Counts()["AssignIpv6Addresses"])
	}
	if second.Exited() {
		t.Errorf("restarted replica %s exited", second.Name)
	}
	noForbidden(t, first, second)
}
