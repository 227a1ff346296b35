package metricsserver

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	cloudproviderapi "k8s.io/cloud-provider/api"
	msutils "sigs.k8s.io/metrics-server/pkg/utils"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/controllers/node"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/ec2"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// A bare dual-stack instance: the controller assigns its IPv6 address.
const scenario = `
region: us-east-1
zones: [{name: us-east-1a, id: use1-az1}]
vpcs: [{id: vpc-0a000000000000001, cidr: 10.0.0.0/16, ipv6CIDR: "2600:1f18:4000:a900::/56"}]
subnets:
- {id: subnet-0a000000000000001, vpc: vpc-0a000000000000001, zone: us-east-1a, cidr: 10.0.1.0/24, ipv6CIDR: "2600:1f18:4000:a901::/64"}
instances:
- id: i-0a000000000000002
  type: m5.large
  subnet: subnet-0a000000000000001
  privateDNSName: ip-10-0-1-12.ec2.internal
  enis: [{id: eni-0a000000000000002, deviceIndex: 0, privateIPs: [10.0.1.12]}]
`

// TestMetricsServerPicksIPv6 initializes a Node with the node controller in
// assign mode and asks metrics-server's own resolver, configured with
// InternalIP first (--kubelet-preferred-address-types=InternalIP,...), which
// address it would scrape: it must be the IPv6 address EC2 assigned.
func TestMetricsServerPicksIPv6(t *testing.T) {
	sc, err := ec2sim.ParseScenario([]byte(scenario))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	sim, err := ec2sim.Start(ec2sim.Options{Scenario: sc})
	if err != nil {
		t.Fatalf("start ec2sim: %v", err)
	}
	defer sim.Close()
	cloud, err := ec2.NewFromAWSConfig(sim.AWSConfig(), ec2.Config{Region: sim.Region()})
	if err != nil {
		t.Fatalf("ec2 client: %v", err)
	}

	kube := fake.NewClientset(&v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-12.ec2.internal"},
		Spec: v1.NodeSpec{
			ProviderID: "aws:///us-east-1a/i-0a000000000000002",
			Taints:     []v1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule}},
		},
	})
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := node.New(kube, factory.Core().V1().Nodes(), cloud, node.Options{
		Mode: node.ModeAssign, Families: []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, Workers: 2, Region: "us-east-1",
	})
	if err != nil {
		t.Fatalf("node controller: %v", err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	defer func() { cancel(); wg.Wait(); factory.Shutdown() }()

	var n *v1.Node
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := kube.CoreV1().Nodes().Get(ctx, "ip-10-0-1-12.ec2.internal", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n = got
		return len(got.Spec.Taints) == 0, nil
	})
	if err != nil {
		t.Fatalf("node not initialized: %v", err)
	}

	var assigned []string
	for _, inst := range sim.State().Instances {
		for _, e := range inst.ENIs {
			for _, a := range e.IPv6 {
				assigned = append(assigned, a.Address)
			}
		}
	}
	if len(assigned) != 1 {
		t.Fatalf("ec2sim holds IPv6 addresses %v, want exactly one", assigned)
	}

	resolver := msutils.NewPriorityNodeAddressResolver([]v1.NodeAddressType{
		v1.NodeInternalIP, v1.NodeExternalIP, v1.NodeHostName, v1.NodeInternalDNS, v1.NodeExternalDNS,
	})
	got, err := resolver.NodeAddress(n)
	if err != nil {
		t.Fatalf("metrics-server resolver: %v", err)
	}
	if ip, err := netip.ParseAddr(got); err != nil || !ip.Is6() || got != assigned[0] {
		t.Errorf("metrics-server would scrape %q, want the assigned IPv6 %s (addresses %v)", got, assigned[0], n.Status.Addresses)
	}
}
