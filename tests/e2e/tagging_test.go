package e2e

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/tagging"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestTaggingBurst: with upstream's flags (--controllers=*,tagging --tags
// --resources=instance), a burst of 200 Nodes is tagged by at most two
// CreateTags calls once the batching window has passed, each Node gets the
// checksum label, and the instances of deleted Nodes are untagged (a tag
// someone else set on the instance stays).
func TestTaggingBurst(t *testing.T) {
	const n = 200
	tags := map[string]string{"team": "ipv6", "cost-center": "k8s"}
	w := newWorld(t, demoScenario(t), false)
	var specs []harness.NodeSpec
	ids := map[string]string{}
	for range n {
		id, err := w.Sim.AddInstance(ec2sim.Instance{Type: "m5.large", Subnet: demoIPv6Subnets[0]})
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = ""
	}
	for _, in := range w.Sim.State().Instances {
		if _, ok := ids[in.ID]; ok {
			ids[in.ID] = in.PrivateDNSName
			specs = append(specs, harness.NodeSpec{Name: in.PrivateDNSName, ProviderID: providerid.Format(in.Zone, in.ID)})
		}
	}
	ccm := startCCM(t, w, harness.CCMOptions{ExtraArgs: []string{
		"--controllers=*,tagging", "--tags=team=ipv6,cost-center=k8s", "--resources=instance",
		// The whole burst is registered within the window.
		"--tagging-controller-batch-window=5s",
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	before := w.Sim.Calls("CreateTags")
	start := time.Now()
	if err := createNodes(ctx, w, specs, 20, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes registered in %v", n, time.Since(start))

	sum := tagging.Checksum(tags)
	labelled := func() (int, error) {
		list, err := w.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		k := 0
		for _, nd := range list.Items {
			if nd.Labels[tagging.LabelTagsChecksum] == sum {
				k++
			}
		}
		return k, nil
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		k, err := labelled()
		return k >= n, err
	})
	if err != nil {
		k, _ := labelled()
		t.Fatalf("%d of %d nodes labelled: %v", k, n, err)
	}
	t.Logf("%d nodes labelled %v after registration", n, time.Since(start))
	calls := w.Sim.Calls("CreateTags") - before
	t.Logf("CreateTags calls for the burst: %d (outcomes %v)", calls, w.Sim.Counts()["CreateTags"])
	if calls < 1 || calls > 2 {
		t.Errorf("burst of %d nodes took %d CreateTags calls, want 1 or 2", n, calls)
	}
	tagged := 0
	for _, in := range w.Sim.State().Instances {
		if _, ok := ids[in.ID]; ok && in.Tags["team"] == "ipv6" && in.Tags["cost-center"] == "k8s" {
			tagged++
		}
	}
	if tagged != n {
		t.Errorf("%d of %d instances carry the tags", tagged, n)
	}

	// Delete ten Nodes: their instances lose the tags, the rest keep them.
	delBefore := w.Sim.Calls("DeleteTags")
	deleted := map[string]bool{}
	for _, s := range specs[:10] {
		if err := w.Admin.CoreV1().Nodes().Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted[s.Name] = true
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, in := range w.Sim.State().Instances {
			name, ok := ids[in.ID]
			if !ok {
				continue
			}
			if _, has := in.Tags["team"]; has == deleted[name] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("deleted nodes' instances not untagged (or others untagged): %v", err)
	}
	t.Logf("DeleteTags calls for 10 deletions: %d", w.Sim.Calls("DeleteTags")-delBefore)
	if c := w.Sim.Counts()["DeleteTags"]; c["success"] == 0 {
		t.Errorf("DeleteTags outcomes %v", c)
	}
	noForbidden(t, ccm)
	if got := grepLines(ccm.Log(), "Starting tagging controller"); got == "" {
		t.Error("CCM log lacks the tagging controller's start")
	}
}
