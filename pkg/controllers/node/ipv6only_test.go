package node

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

// ipv6OnlyWorld has an IPv6-only subnet (no IPv4 at all, resource-based
// names) beside a dual-stack one whose instance also uses resource names.
const ipv6OnlyWorld = `
region: eu-west-1
vpcs:
- cidr: 10.0.0.0/16
  ipv6CIDR: 2600:1f18:4000:a900::/56
subnets:
- id: subnet-0000000000000006a
  zone: eu-west-1a
  ipv6Native: true
  ipv6CIDR: 2600:1f18:4000:a901::/64
- id: subnet-0000000000000004a
  zone: eu-west-1a
  cidr: 10.0.16.0/20
  ipv6CIDR: 2600:1f18:4000:a902::/64
  privateDnsNameOptionsOnLaunch:
    hostnameType: resource-name
instances:
- id: i-0b000000000000001
  subnet: subnet-0000000000000006a
- id: i-0b000000000000002
  subnet: subnet-0000000000000006a
- id: i-0b000000000000003
  subnet: subnet-0000000000000006a
- id: i-0b000000000000004
  subnet: subnet-0000000000000004a
`

// simInstance returns an instance as ec2sim's state holds it.
func simInstance(t *testing.T, sim *ec2sim.Sim, id string) ec2sim.InstanceState {
	t.Helper()
	for _, in := range sim.State().Instances {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("instance %s not in ec2sim state", id)
	return ec2sim.InstanceState{}
}

// TestIPv6OnlyInstances initializes IPv6-only instances whose Nodes are
// named by resource name (with and without providerID) and by bare instance
// ID, and a dual-stack resource-named one. Expected addresses come from
// ec2sim's state after the run.
func TestIPv6OnlyInstances(t *testing.T) {
	sim := startSim(t, ipv6OnlyWorld)
	names := map[string]string{
		"i-0b000000000000001": "i-0b000000000000001.eu-west-1.compute.internal", // resource name, no providerID
		"i-0b000000000000002": "i-0b000000000000002",                            // bare instance ID
		"i-0b000000000000003": "i-0b000000000000003.eu-west-1.compute.internal", // resource name with providerID
		"i-0b000000000000004": "i-0b000000000000004.eu-west-1.compute.internal", // dual-stack, resource name
	}
	var nodes []*v1.Node
	for id, name := range names {
		p := ""
		if id == "i-0b000000000000003" {
			p = "aws:///eu-west-1a/" + id
		}
		nodes = append(nodes, kubeletNode(name, p, nil))
	}
	kube := fake.NewClientset(nodes[0], nodes[1], nodes[2], nodes[3])
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeAssign, Region: "eu-west-1"})
	for id, name := range names {
		n := waitInitialized(t, kube, name)
		inst := simInstance(t, sim, id)
		eni := eniState(t, sim, primaryENIID(t, inst))
		if len(eni.addrs) != 1 || len(eni.prefixes) != 1 {
			t.Fatalf("%s: ENI holds %v and %v, want one address and one /80", id, eni.addrs, eni.prefixes)
		}
		want := []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: eni.addrs[0].String()}}
		if inst.PrivateIP != "" {
			want = append(want, v1.NodeAddress{Type: v1.NodeInternalIP, Address: inst.PrivateIP})
		}
		want = append(want,
			v1.NodeAddress{Type: v1.NodeInternalDNS, Address: inst.PrivateDNSName},
			v1.NodeAddress{Type: v1.NodeHostName, Address: inst.PrivateDNSName})
		if !slicesEqual(n.Status.Addresses, want) {
			t.Errorf("%s addresses\n got %v\nwant %v", name, n.Status.Addresses, want)
		}
		if id != "i-0b000000000000004" && (inst.PrivateIP != "" || inst.PrivateDNSName != id+".eu-west-1.compute.internal") {
			t.Errorf("%s: world is not IPv6-only with resource names: %+v", id, inst)
		}
		for _, a := range n.Status.Addresses {
			if a.Address == "" {
				t.Errorf("%s: empty %s address", name, a.Type)
			}
		}
		if n.Spec.PodCIDR != eni.prefixes[0].String() || n.Spec.ProviderID != "aws:///eu-west-1a/"+id {
			t.Errorf("%s: podCIDR %q providerID %q, want %s", name, n.Spec.PodCIDR, n.Spec.ProviderID, eni.prefixes[0])
		}
	}
}

// TestIPv4FamilyOnIPv6OnlyInstance: NodeIPFamilies = ipv4 on an IPv6-only
// instance is a Warning naming the setting; the node keeps its taint and is
// never written with an address list that has no InternalIP.
func TestIPv4FamilyOnIPv6OnlyInstance(t *testing.T) {
	sim := startSim(t, ipv6OnlyWorld)
	const name = "i-0b000000000000001.eu-west-1.compute.internal"
	kube := fake.NewClientset(kubeletNode(name, "", nil))
	runController(t, kube, newEC2(t, sim), Options{Mode: ModeOff, Families: []v1.IPFamily{v1.IPv4Protocol}, Region: "eu-west-1"})
	ev := waitEvent(t, kube, name, ReasonNoAddressOfFamily)
	if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, "NodeIPFamilies") || !strings.Contains(ev.Message, "i-0b000000000000001") {
		t.Errorf("event %s %q", ev.Type, ev.Message)
	}
	n := getNode(t, kube, name)
	if !hasCloudTaint(n) {
		t.Error("node initialized without an InternalIP")
	}
	if p := nodePatches(kube, name); len(p) != 0 {
		t.Errorf("node writes %v, want none", p)
	}
	if m := sim.MutatingCalls(); m != 0 {
		t.Errorf("mutating EC2 calls = %d", m)
	}
}
