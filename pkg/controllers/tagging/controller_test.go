package tagging

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

var testTags = map[string]string{"team": "ipv6", "cost-center": "k8s"}

// world starts ec2sim with n instances and returns it with their IDs.
func world(t *testing.T, n int) (*ec2sim.Sim, []string) {
	t.Helper()
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: ec2sim.GenerateScenario(ec2sim.Generate{Instances: n, IPv6Subnet: true, Zones: 1})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	var ids []string
	for _, in := range sim.State().Instances {
		ids = append(ids, in.ID)
	}
	return sim, ids
}

// run starts the controller on kube against sim and returns a stop function.
func run(t *testing.T, kube *fake.Clientset, sim *ec2sim.Sim, batching bool) {
	t.Helper()
	cloud, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region()})
	if err != nil {
		t.Fatal(err)
	}
	opts := *NewOptions()
	opts.Tags, opts.Resources = testTags, []string{ResourceInstance}
	opts.Batching, opts.BatchWindow = batching, 200*time.Millisecond
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := New(kube, factory.Core().V1().Nodes(), cloud, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); factory.Shutdown() })
}

func node(name, zone, id string, age time.Duration) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Now().Add(-age))},
		Spec:       v1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", zone, id)},
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tagged counts the instances ec2sim holds with every test tag.
func tagged(sim *ec2sim.Sim) int {
	n := 0
	for _, in := range sim.State().Instances {
		ok := true
		for k, v := range testTags {
			ok = ok && in.Tags[k] == v
		}
		if ok {
			n++
		}
	}
	return n
}

// A burst of Nodes is tagged in one CreateTags, each Node labelled with the
// checksum once its instance holds the tags; a Node naming an instance EC2
// does not know (created long ago, past the grace for new instances) is
// skipped without holding up the others; deleting the Nodes removes the
// tags in one DeleteTags. Counts and tags are ec2sim's.
func TestBurstTaggedAndUntaggedInBatches(t *testing.T) {
	const n = 30
	sim, ids := world(t, n)
	zone := sim.State().Instances[0].Zone
	before := map[string]map[string]string{}
	for _, in := range sim.State().Instances {
		before[in.ID] = in.Tags
	}
	kube := fake.NewClientset()
	for i, id := range ids {
		if _, err := kube.CoreV1().Nodes().Create(t.Context(), node(fmt.Sprintf("n%d", i), zone, id, time.Hour), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kube.CoreV1().Nodes().Create(t.Context(), node("ghost", zone, "i-0fffffffffffffff0", time.Hour), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run(t, kube, sim, true)
	labelled := func() int {
		nodes, _ := kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
		c := 0
		for _, nd := range nodes.Items {
			if nd.Labels[LabelTagsChecksum] == Checksum(testTags) {
				c++
			}
		}
		return c
	}
	waitFor(t, "every instance tagged and every Node labelled", func() bool { return tagged(sim) == n && labelled() == n })
	// One call for the burst; with the unknown ID in it EC2 refuses the
	// whole call, so at most one more after the batcher drops that ID.
	if got := sim.Calls("CreateTags"); got < 1 || got > 2 {
		t.Errorf("%d CreateTags calls for %d nodes, want 1 (2 with the unknown ID's refusal)", got, n)
	}
	if nd, err := kube.CoreV1().Nodes().Get(t.Context(), "ghost", metav1.GetOptions{}); err != nil || nd.Labels[LabelTagsChecksum] != "" {
		t.Errorf("ghost node: %v, labels %v", err, nd.Labels)
	}
	for _, in := range sim.State().Instances {
		want := maps.Clone(before[in.ID])
		if want == nil {
			want = map[string]string{}
		}
		maps.Copy(want, testTags)
		if !maps.Equal(in.Tags, want) {
			t.Errorf("%s: tags %v, want %v", in.ID, in.Tags, want)
		}
	}

	for i := range ids {
		if err := kube.CoreV1().Nodes().Delete(t.Context(), fmt.Sprintf("n%d", i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every instance untagged", func() bool { return tagged(sim) == 0 })
	for _, in := range sim.State().Instances {
		if len(in.Tags) != len(before[in.ID]) || !maps.Equal(in.Tags, before[in.ID]) && len(before[in.ID]) > 0 {
			t.Errorf("%s: tags after untagging %v, want the original %v", in.ID, in.Tags, before[in.ID])
		}
	}
	if got := sim.Calls("DeleteTags"); got != 1 {
		t.Errorf("%d DeleteTags calls for %d deleted nodes, want 1", got, n)
	}
}

// With batching off (upstream's default), each Node costs its own call.
func TestUnbatchedOneCallPerNode(t *testing.T) {
	const n = 5
	sim, ids := world(t, n)
	zone := sim.State().Instances[0].Zone
	kube := fake.NewClientset()
	for i, id := range ids {
		if _, err := kube.CoreV1().Nodes().Create(t.Context(), node(fmt.Sprintf("n%d", i), zone, id, 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	run(t, kube, sim, false)
	waitFor(t, "every instance tagged", func() bool { return tagged(sim) == n })
	if got := sim.Calls("CreateTags"); got != n {
		t.Errorf("%d CreateTags calls, want %d (one per node)", got, n)
	}
}
