package node

import (
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestChurnLeavesNoState: waves of nodes come and go, some initialized,
// some failing (a subnet without IPv6, a foreign providerID), some deleted
// before they are initialized. After each wave every per-node map of the
// controller and of the EC2 client is back to its floor: a process that
// runs for months does not grow with history. (make bench's churn scenario
// does the same at 20,000 nodes and plots RSS.)
func TestChurnLeavesNoState(t *testing.T) {
	const (
		waves   = 4
		good    = 30 // initialized
		noIPv6  = 6  // IPv6AssignmentFailed until deleted
		foreign = 6  // ProviderIDInvalid until deleted
		early   = 6  // deleted right after creation
	)
	sim := startSim(t, world)
	cloud, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region(), BatchWindow: 10 * time.Millisecond, CacheTTL: 300 * time.Millisecond,
		MutatingQPS: 1000, MutatingBurst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset()
	c := runControllerWith(t, kube, cloud, Options{Mode: ModeAssign})
	const v6Subnet, v4Subnet = "subnet-0a000000000000001", "subnet-0a000000000000002"

	for wave := range waves {
		var names, okNames []string
		add := func(subnet string, named func(id string) (string, string)) string {
			id, err := sim.AddInstance(ec2sim.Instance{Subnet: subnet})
			if err != nil {
				t.Fatal(err)
			}
			name, pid := named(id)
			if _, err := kube.CoreV1().Nodes().Create(t.Context(), kubeletNode(name, pid, nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
			return name
		}
		var ids []string
		for i := range good {
			name := add(v6Subnet, func(id string) (string, string) {
				ids = append(ids, id)
				if i%2 == 0 {
					return id, pid(id) // providerID
				}
				return id + ".ec2.internal", "" // resource name
			})
			okNames = append(okNames, name)
		}
		for range noIPv6 {
			add(v4Subnet, func(id string) (string, string) { ids = append(ids, id); return id, pid(id) })
		}
		for i := range foreign {
			add(v6Subnet, func(id string) (string, string) {
				ids = append(ids, id)
				return fmt.Sprintf("foreign-%d-%d", wave, i), "gce://project/zone/vm"
			})
		}
		for range early {
			name := add(v6Subnet, func(id string) (string, string) { ids = append(ids, id); return id, pid(id) })
			if err := kube.CoreV1().Nodes().Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range okNames {
			waitInitialized(t, kube, n)
		}
		waitFor(t, "failing nodes reported", func() bool {
			return len(events(t, kube, names[good], ReasonIPv6AssignmentFailed)) > 0 &&
				len(events(t, kube, names[good+noIPv6], ReasonProviderIDInvalid)) > 0
		})
		for _, n := range names {
			if err := kube.CoreV1().Nodes().Delete(t.Context(), n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			if err := sim.SetInstanceState(id, "terminated"); err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			if t.Failed() {
				t.Logf("wave %d: controller %v, EC2 client %v", wave, c.StateSizes(), cloud.StateSizes())
			}
		}()
		waitFor(t, fmt.Sprintf("wave %d: every map back to its floor", wave), func() bool {
			s, e := c.StateSizes(), cloud.StateSizes()
			return s["memo"]+s["done"]+s["gone"] == 0 &&
				e["cache"]+e["cache_names"]+e["cache_enis"]+e["expectations"]+e["credits"] == 0 && e["subnets"] <= 2
		})
	}
	t.Logf("after %d waves of %d nodes: controller %v, EC2 client %v", waves, good+noIPv6+foreign+early, c.StateSizes(), cloud.StateSizes())
}
