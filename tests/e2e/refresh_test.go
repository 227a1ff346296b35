package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestRestartUnderDescribeLagKeepsIPv6First is the address-flip defect on
// the real apiserver: a replica initializes a bare node (EC2 assigns its
// IPv6 address), stops, and a new replica starts while EC2's describes lag
// behind the assignment. The new replica's start-up refresh must leave the
// Node's addresses alone, IPv6 first, instead of patching an IPv4-first
// list from the stale describe.
func TestRestartUnderDescribeLagKeepsIPv6First(t *testing.T) {
	w := newWorld(t, demoScenario(t), false)
	ctx := t.Context()
	first := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	const id = "i-0b0000000000000b1"
	name := instanceByID(w, id).PrivateDNSName
	if _, err := w.CreateNode(ctx, harness.NodeSpec{Name: name, Ready: true}); err != nil {
		t.Fatal(err)
	}
	nodes := waitNodes(ctx, t, w, []string{name}, 2*time.Minute, func(n *corev1.Node) bool { return initialized(n) && n.Spec.PodCIDR != "" })
	eni := primaryENI(instanceByID(w, id))
	if len(eni.IPv6) != 1 || nodes[name].Status.Addresses[0].Address != eni.IPv6[0].Address {
		t.Fatalf("initialized node publishes %v, ENI holds %v", nodes[name].Status.Addresses, eni.IPv6)
	}
	published := nodes[name].Status.Addresses
	first.Stop(20 * time.Second)

	// Describes now show the world as it was 10 minutes ago: no IPv6 on the ENI.
	w.Sim.SetFault("DescribeInstances", ec2sim.Fault{ConsistencyLag: 10 * time.Minute})
	out, err := awsec2.NewFromConfig(w.Sim.AWSConfig()).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			for _, e := range in.NetworkInterfaces {
				if len(e.Ipv6Addresses) != 0 {
					t.Fatalf("the lagged describe shows %s's IPv6 addresses: the world does not lag", id)
				}
			}
		}
	}
	rv := nodes[name].ResourceVersion
	second := startCCM(t, w, harness.CCMOptions{ExtraArgs: fastLeaderElection})
	// The start-up refresh logs when it is done (the shipped args run at -v=2).
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		return strings.Contains(second.Log(), "Address refresh done"), nil
	})
	if err != nil {
		t.Fatalf("the new replica never finished its start-up refresh:\n%s", tail(second.Log(), 4000))
	}
	n, err := w.Admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(n.Status.Addresses) != fmt.Sprint(published) {
		t.Errorf("start-up refresh under describe lag changed the addresses\n from %v\n   to %v", published, n.Status.Addresses)
	}
	if n.ResourceVersion != rv {
		t.Errorf("node written by the start-up refresh (resourceVersion %s -> %s)", rv, n.ResourceVersion)
	}
	if !strings.Contains(second.Log(), `"patched"=0`) && !strings.Contains(second.Log(), "patched=0") {
		t.Errorf("refresh log line does not say patched=0:\n%s", grepLines(second.Log(), "Address refresh done"))
	}
	noForbidden(t, first, second)
}

func grepLines(log, substr string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
