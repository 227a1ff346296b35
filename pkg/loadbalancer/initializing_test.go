package loadbalancer

import (
	"context"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
)

// TestIPv6TargetsWaitForInitializingNode: a node registered with its
// providerID reaches the service controller before the node controller has
// marked its IPv6 address primary. Its initialization changes nothing the
// service controller watches, so unless ensure and update report an error
// (which the controller retries), the node would never become a target of
// the IPv6 groups. A node already initialized without a primary IPv6
// address is skipped without an error (retrying would not help).
func TestIPv6TargetsWaitForInitializingNode(t *testing.T) {
	sim, lbs, _ := startWorld(t)
	ctx := context.Background()
	svc := service(nlb(nil), v1.IPv6Protocol, v1.IPv4Protocol)
	const late = "i-0c000000000000005" // no primary IPv6 address
	primary := []string{"i-0c000000000000001", "i-0c000000000000002", "i-0c000000000000003", "i-0c000000000000004"}
	nodes := nodesOf(sim)
	var lateNode *v1.Node
	for _, n := range nodes {
		if strings.HasSuffix(n.Spec.ProviderID, "/"+late) {
			lateNode = n
		}
	}
	checkTargets := func(ids ...string) {
		t.Helper()
		w := look(t, sim, Name(svc))
		if !slices.Equal(w.targets[80], targetsWant(30080, ids...)) || !slices.Equal(w.targets[443], targetsWant(30443, ids...)) {
			t.Errorf("targets %v, want %v", w.targets, ids)
		}
	}

	// Initialized without a primary IPv6 address: skipped, no error.
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodes); err != nil {
		t.Fatal(err)
	}
	checkTargets(primary...)

	// Not initialized yet: the others are synced, and both calls fail so
	// that the service controller comes back.
	lateNode.Spec.Taints = []v1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule}}
	if err := lbs.UpdateLoadBalancer(ctx, "k", svc, nodes); err == nil || !strings.Contains(err.Error(), lateNode.Name) {
		t.Errorf("UpdateLoadBalancer with an initializing node without a primary IPv6 address: err = %v, want one naming %s", err, lateNode.Name)
	}
	if _, err := lbs.EnsureLoadBalancer(ctx, "k", svc, nodes); err == nil || !strings.Contains(err.Error(), lateNode.Name) {
		t.Errorf("EnsureLoadBalancer with an initializing node without a primary IPv6 address: err = %v, want one naming %s", err, lateNode.Name)
	}
	checkTargets(primary...)

	// The node controller (which shares the provider's EC2 client, and so
	// its instance cache) marks the address primary and initializes the
	// node: the retry registers it.
	c := lbs.ec2.(*ec2.Client)
	var eni string
	for _, in := range sim.State().Instances {
		if in.ID == late {
			eni = in.ENIs[0].ID
		}
	}
	if err := c.EnablePrimaryIPv6(ctx, eni); err != nil {
		t.Fatal(err)
	}
	lateNode.Spec.Taints = nil
	if err := lbs.UpdateLoadBalancer(ctx, "k", svc, nodes); err != nil {
		t.Fatal(err)
	}
	checkTargets(append(primary, late)...)
}
