package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestCrashWhileAssignsInFlight is the settle path on the real apiserver:
// the replica is SIGKILLed while its assign calls have taken effect in EC2
// but not answered, and EC2's describes lag behind them. The restarted
// replica finds the intents, asks EC2 for the recorded values again, is
// told they are in use with no holder visible yet, waits
// (IPv6AssignmentPending) and adopts once EC2 shows them. No ENI ever holds
// a second address or prefix; the invariants are checked as in
// TestCrashMidBurst.
func TestCrashWhileAssignsInFlight(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	rec := recordNodes(t, w)
	w.Sim.SetFault("AssignIpv6Addresses", ec2sim.Fault{ReplyLatency: time.Minute})
	w.Sim.SetFault("DescribeInstances", ec2sim.Fault{ConsistencyLag: 20 * time.Second})
	first := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})

	// The scenario's bare instances: they exist from the start, so lagging
	// describes show them (instances added later would be hidden too).
	want := map[string]string{}
	for _, id := range []string{"i-0b0000000000000b1", "i-0b0000000000000b2", "i-0d00000000000d001"} {
		in := instanceByID(w, id)
		if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: in.PrivateDNSName}); err != nil {
			t.Fatal(err)
		}
		want[in.PrivateDNSName] = id
	}
	n := len(want)
	// Wait until EC2 (its current, unlagged state) holds an address on every
	// node's ENI: the first call of each node took effect, unanswered.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, id := range want {
			if len(primaryENI(instanceByID(w, id)).IPv6) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var missing []string
		for name, id := range want {
			if len(primaryENI(instanceByID(w, id)).IPv6) == 0 {
				missing = append(missing, name)
			}
		}
		t.Fatalf("assign calls never took effect on %v: %v; EC2 calls %v\n%s", missing, err, w.Sim.Counts(), tail(first.Log(), 5000))
	}
	first.Kill()
	killedAt := time.Now()
	w.Sim.SetFault("AssignIpv6Addresses", ec2sim.Fault{})
	if got := rec.initialized(); got != 0 {
		t.Fatalf("%d nodes initialized before the kill; the calls were to be in flight", got)
	}

	second := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	rec.waitInitialized(ctx, t, n, 3*time.Minute)
	t.Logf("all %d nodes initialized %s after the kill", n, time.Since(killedAt).Round(100*time.Millisecond))
	checkConverged(ctx, t, w, rec, want)
	rec.check(t)

	// The restarted replica waited for EC2 to show what the dead one had
	// assigned, at least for one node, instead of assigning again.
	evs, err := w.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=IPv6AssignmentPending"})
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, e := range evs.Items {
		if _, ok := want[e.InvolvedObject.Name]; ok && strings.Contains(e.Message, "in use") {
			pending[e.InvolvedObject.Name] = true
		}
	}
	if len(pending) == 0 {
		t.Error("no node waited for EC2 to show the values asked for before the kill")
	}
	t.Logf("%d of %d nodes waited for EC2 to show their values", len(pending), n)
	noForbidden(t, first, second)
}
