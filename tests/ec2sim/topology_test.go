package ec2sim

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestDescribeInstanceTopology: supported types (p5, trn1, hpc7g, g6e,
// hpc8a) get three network nodes and p6-b300 four, as AWS's prerequisites
// page lists them, top layer first and shared by neighbours; unsupported
// types (m5) are left out, as AWS does, and more than 100 IDs are refused.
func TestDescribeInstanceTopology(t *testing.T) {
	sc, err := ParseScenario([]byte(testScenarioYAML))
	if err != nil {
		t.Fatal(err)
	}
	types := []string{"p5.48xlarge", "trn1.32xlarge", "hpc7g.16xlarge", "g6e.xlarge", "hpc8a.96xlarge", "p6-b300.48xlarge"}
	layers := []int{3, 3, 3, 3, 3, 4}
	for _, n := range types {
		sc.InstanceTypes = append(sc.InstanceTypes, InstanceType{Name: n, MaxENIs: 4, IPv4PerENI: 10, IPv6PerENI: 10})
	}
	sim, c := newTestSim(t, Options{Scenario: sc})
	var want []string
	for _, typ := range types {
		id, err := sim.AddInstance(Instance{Type: typ, Subnet: "subnet-0aaaaaaaaaaaaaaa1"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	out, err := c.DescribeInstanceTopology(t.Context(), &ec2.DescribeInstanceTopologyInput{InstanceIds: append([]string{idPre}, want...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != len(types) {
		t.Fatalf("got %d instances, want the %d of supported types: %+v", len(out.Instances), len(types), out.Instances)
	}
	for i, in := range out.Instances {
		if aws.ToString(in.InstanceId) != want[i] || len(in.NetworkNodes) != layers[i] || aws.ToString(in.AvailabilityZone) == "" || aws.ToString(in.ZoneId) == "" {
			t.Errorf("item %d: %+v", i, in)
		}
		for _, nn := range in.NetworkNodes {
			if !strings.HasPrefix(nn, "nn-") || len(nn) != 20 {
				t.Errorf("network node %q", nn)
			}
		}
	}
	if out.Instances[0].NetworkNodes[0] != out.Instances[1].NetworkNodes[0] {
		t.Error("neighbours do not share the top layer")
	}
	// Only unsupported types: an empty list, no error.
	out, err = c.DescribeInstanceTopology(t.Context(), &ec2.DescribeInstanceTopologyInput{InstanceIds: []string{idPre}})
	if err != nil || len(out.Instances) != 0 {
		t.Errorf("unsupported type: %+v, %v", out, err)
	}
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = idPre
	}
	if _, err := c.DescribeInstanceTopology(t.Context(), &ec2.DescribeInstanceTopologyInput{InstanceIds: ids}); apiCode(t, err) != "InvalidParameterValue" {
		t.Errorf("101 IDs accepted")
	}
}

// TestPublicDNSName: dnsName follows AWS's rule: a running instance with a
// public IPv4 address in a VPC with DNS hostnames on gets
// ec2-<dashed address>.compute-1.amazonaws.com (us-east-1); without DNS
// hostnames, none.
func TestPublicDNSName(t *testing.T) {
	for _, on := range []bool{false, true} {
		sc, err := ParseScenario([]byte(testScenarioYAML))
		if err != nil {
			t.Fatal(err)
		}
		sc.VPCs[0].DNSHostnames = on
		for i := range sc.Instances {
			if sc.Instances[i].ID == idPre {
				sc.Instances[i].PublicIP = "54.1.2.3"
			}
		}
		_, c := newTestSim(t, Options{Scenario: sc})
		out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{idPre}})
		if err != nil {
			t.Fatal(err)
		}
		got := aws.ToString(out.Reservations[0].Instances[0].PublicDnsName)
		want := ""
		if on {
			want = "ec2-54-1-2-3.compute-1.amazonaws.com"
		}
		if got != want {
			t.Errorf("DNS hostnames %v: dnsName %q, want %q", on, got, want)
		}
	}
}
