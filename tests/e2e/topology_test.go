package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/nodemeta"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/pkg/providerid"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/e2e/harness"
	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// TestNetworkTopologyLabels: nodes of types DescribeInstanceTopology
// supports (p5, trn1) get topology.k8s.aws/network-node-layer-1..3 in the
// same spec write as the zone labels; an m5 node gets none; all of them
// cost one DescribeInstanceTopology call (m5 is never asked about).
func TestNetworkTopologyLabels(t *testing.T) {
	sc := demoScenario(t)
	for _, n := range []string{"p5.48xlarge", "trn1.32xlarge"} {
		sc.InstanceTypes = append(sc.InstanceTypes, ec2sim.InstanceType{Name: n, MaxENIs: 4, IPv4PerENI: 10, IPv6PerENI: 10})
	}
	w := newWorld(t, sc, false)
	types := map[string]string{}
	var specs []harness.NodeSpec
	for _, typ := range []string{"p5.48xlarge", "p5.48xlarge", "trn1.32xlarge", "m5.large"} {
		id, err := w.Sim.AddInstance(ec2sim.Instance{Type: typ, Subnet: demoIPv6Subnets[0]})
		if err != nil {
			t.Fatal(err)
		}
		in := instanceByID(w, id)
		types[in.PrivateDNSName] = typ
		specs = append(specs, harness.NodeSpec{Name: in.PrivateDNSName, ProviderID: providerid.Format(in.Zone, id)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	wi, err := w.Admin.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer wi.Stop()
	ccm := startCCM(t, w, harness.CCMOptions{})
	if err := createNodes(ctx, w, specs, 4, 0); err != nil {
		t.Fatal(err)
	}
	// The first version of each Node carrying the zone label must carry
	// the topology labels too (one write), and keep them.
	first := map[string]*corev1.Node{}
	for len(first) < len(specs) {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d nodes got zone labels", len(first), len(specs))
		case ev := <-wi.ResultChan():
			n, ok := ev.Object.(*corev1.Node)
			if !ok || first[n.Name] != nil || n.Labels[corev1.LabelTopologyZone] == "" {
				continue
			}
			first[n.Name] = n
		}
	}
	for name, n := range first {
		l1 := n.Labels[nodemeta.LabelNetworkNodePrefix+"1"]
		l3 := n.Labels[nodemeta.LabelNetworkNodePrefix+"3"]
		if types[name] == "m5.large" {
			if l1 != "" {
				t.Errorf("%s (m5.large) got topology label %q", name, l1)
			}
			continue
		}
		if l1 == "" || l3 == "" || n.Labels[nodemeta.LabelNetworkNodePrefix+"2"] == "" {
			t.Errorf("%s (%s): zone labels written without the topology labels: %v", name, types[name], n.Labels)
		}
	}
	if c := w.Sim.Calls("DescribeInstanceTopology"); c != 1 {
		t.Errorf("DescribeInstanceTopology calls = %d, want 1 for the burst", c)
	}
	noForbidden(t, ccm)
}
